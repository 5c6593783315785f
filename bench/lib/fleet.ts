/**
 * W3x4: the W3 drain by several worker processes at once. The orchestrator starts them, waits
 * until each has loaded its library (@@READY), writes "go" to all, and times from there until the
 * store shows every job terminal: it sums the handler counts the workers report (@@PROGRESS) and,
 * once they reach N, polls the store every 10 ms as W3's child does. Then it writes "stop"; each
 * worker reports the CPU it used since "go".
 */
import type { SystemAdapter } from '../systems/types.js';
import { dbUrl } from './db.js';
import { storeCpuSeconds, untilDeadline, untilFinished } from './finish.js';
import { type Child, type Result, startChild } from './proc.js';

export async function runFleet(
  sys: SystemAdapter,
  db: string,
  jobs: number,
  fleet: { processes: number; concurrency: number },
  timeoutMs: number,
): Promise<Result> {
  const deadline = performance.now() + timeoutMs;
  const handled: number[] = new Array(fleet.processes).fill(0);
  let allStarted: () => void = () => {};
  const handledAll = new Promise<void>((r) => {
    allStarted = r;
  });
  let exited: Error | undefined;
  const members: Child[] = handled.map((_, i) =>
    startChild(
      { system: sys.id, db, role: 'w3x4-worker', jobs, timeoutMs, concurrency: fleet.concurrency },
      (n) => {
        handled[i] = n;
        if (handled.reduce((a, b) => a + b, 0) >= jobs) allStarted();
      },
    ),
  );
  // A worker that exits before "stop" fails the run at once instead of at the deadline.
  let memberExited: (err: Error) => void = () => {};
  const earlyExit = new Promise<never>((_, reject) => {
    memberExited = reject;
  });
  earlyExit.catch(() => {});
  for (const m of members) {
    m.result.then(
      () => memberExited(new Error('a worker process exited before "stop"')),
      (err: Error) => {
        exited ??= err;
        memberExited(err);
      },
    );
  }
  const stopAll = (signal: 'SIGKILL' | undefined) => {
    for (const m of members) {
      if (signal) m.proc.kill(signal);
      else m.proc.stdin?.write('stop\n');
    }
  };
  try {
    await Promise.race([Promise.all(members.map((m) => m.ready)), earlyExit]);
    if (exited) throw exited;
    const url = dbUrl(db);
    const store0 = await storeCpuSeconds(sys);
    const t0 = performance.now();
    for (const m of members) m.proc.stdin?.write('go\n');
    await Promise.race([untilDeadline(handledAll, deadline), earlyExit]);
    const { finished, terminal } = await Promise.race([untilFinished(sys, url, deadline), earlyExit]);
    const s = (performance.now() - t0) / 1000;
    const store1 = await storeCpuSeconds(sys);
    const total = handled.reduce((a, b) => a + b, 0);
    if (!finished) throw new Error(`drain incomplete: ${total}/${jobs} handled before the deadline`);
    if (terminal !== undefined && terminal !== jobs) {
      throw new Error(`store counts disagree: ${terminal} jobs terminal, ${jobs} enqueued`);
    }
    stopAll(undefined);
    const results = await Promise.all(members.map((m) => m.result));
    const cpu = results.reduce((a, r) => a + (r.cpuSeconds ?? Number.NaN), 0);
    const per10k = 10_000 / jobs;
    return {
      jobsPerSec: jobs / s,
      seconds: s,
      handled: results.reduce((a, r) => a + (r.handled ?? 0), 0),
      workerCpuPer10k: cpu * per10k,
      storeCpuPer10k: store0 === null || store1 === null ? null : (store1 - store0) * per10k,
      // How evenly the fleet shared the jobs: the busiest worker's share of N.
      busiestShare: Math.max(...results.map((r) => r.handled ?? 0)) / jobs,
    };
  } catch (err) {
    stopAll('SIGKILL');
    throw err;
  }
}
