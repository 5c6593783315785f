/**
 * Recovery timelines: for the slowest recoveries of a run, what happened to each job from the fault
 * on, read from Baton's own records (attempts and their lease tokens, claim and sweep times), the
 * ledger (handler starts) and the workers' logs (which worker's sweep requeued it). Every time is
 * database time, printed relative to the fault.
 *
 *   job 01a2337a-715a-7000-bfb8-cf86f4e558b8 (seq 207): 2.1 s from SIGKILL 28712 until it ran again, then SIGKILL 28774 interrupted it
 *        +0.00 s  SIGKILL 28712 (worker vm-28712-d5da5f4b) held it (attempt 1) [2 workers running, 8 jobs held in their 20 slots]
 *        +1.92 s  its lease expired [3 workers running, 18 jobs held in their 30 slots]
 *        +2.08 s  requeued by the sweep of vm-28754-4d347efd (attempt 1 recorded lease_expired) [3 workers running, 16 jobs held in their 30 slots]
 *        +2.08 s  claimed by vm-28774-dfd1ae18 (attempt 2), a worker running since +1.68 s [3 workers running, 18 jobs held in their 30 slots]
 *        +2.17 s  SIGKILL 28774 (worker vm-28774-dfd1ae18) held it (attempt 2): its new worker was killed too [2 workers running, 14 jobs held in their 20 slots]
 *
 * "workers running" counts the worker processes registered and not yet exited at that moment, and
 * "jobs held" the attempts they had claimed and not yet settled: with kills faster than
 * replacements start, the first falls, and a requeued job waits for a free slot or for a worker.
 */
import { type Fault, type History, measureRecoveries, type Recovery, readHistory } from './checker.js';
import type { Run } from './harness.js';

interface Event {
  atMs: number;
  text: string;
  /** Not counted as running at this moment (the worker a kill hits). */
  exceptPid?: number;
}

/** Worker processes registered and not yet exited at a local time (Date.now() scale). */
function runningWorkers(run: Run, localMs: number, exceptPid?: number) {
  return run.workers.filter(
    (worker) =>
      worker.pid !== exceptPid &&
      worker.readyAtMs !== undefined &&
      worker.readyAtMs <= localMs &&
      (worker.exitedAtMs === undefined || worker.exitedAtMs > localMs),
  );
}

const runningAt = (run: Run, localMs: number) => runningWorkers(run, localMs).length;

/** Whether some worker was running at every moment (sampled every 50 ms) between two local times. */
function alwaysRunning(run: Run, fromMs: number, toMs: number): boolean {
  for (let at = fromMs; at <= toMs; at += 50) if (runningAt(run, at) === 0) return false;
  return true;
}

interface AttemptRow {
  attempt: number;
  worker_id: string | null;
  lease_token: string | null;
  started_ms: number | null;
  finished_ms: number | null;
  outcome: string;
}

/**
 * The `count` slowest recoveries as text timelines, then the longest chain (a job whose new
 * workers were killed one after another), and a one-line summary ('' when there were none).
 */
export async function recoveryTimelines(
  run: Run,
  count: number,
  slots: number,
): Promise<{ summary: string; timelines: string }> {
  const history = await readHistory(run.pool);
  const recoveries = measureRecoveries(run.faults, history).sort((a, b) => b.ms - a.ms);
  if (recoveries.length === 0) return { summary: '', timelines: '' };
  const chains = chainsOf(recoveries);
  const longestChain = chains.sort((a, b) => chainMs(b) - chainMs(a))[0];
  const draw = await timelineDrawer(run, history, slots);
  const blocks: string[] = [];
  for (const recovery of recoveries.slice(0, count)) {
    const cut = recovery.interruptedBy ? `, then ${recovery.interruptedBy.what} interrupted it` : '';
    blocks.push(
      await draw(
        recovery.jobId,
        recovery.fault,
        recovery.progressMs,
        `${(recovery.ms / 1000).toFixed(1)} s from ${recovery.fault.what} until it ran again${cut}`,
      ),
    );
  }
  if (longestChain && longestChain.length > 1) {
    const [first] = longestChain;
    blocks.push(
      await draw(
        first!.jobId,
        first!.fault,
        longestChain.at(-1)!.progressMs,
        `the longest chain: killed ${longestChain.length} times in a row, ${(chainMs(longestChain) / 1000).toFixed(1)} s from the first kill until it ran (the old figure counted this whole wait as one recovery)`,
      ),
    );
  }
  const offsetMs = await run.clock.ready();
  return { summary: summary(recoveries, longestChain, run, offsetMs), timelines: blocks.join('\n') };
}

/** Recoveries of one job linked by the faults that interrupted them, first to last. */
function chainsOf(recoveries: Recovery[]): Recovery[][] {
  const next = new Map<Recovery, Recovery>();
  const interrupted = new Set<Recovery>();
  for (const recovery of recoveries) {
    if (!recovery.interruptedBy) continue;
    const following = recoveries.find(
      (candidate) => candidate.jobId === recovery.jobId && candidate.fault === recovery.interruptedBy,
    );
    if (following) {
      next.set(recovery, following);
      interrupted.add(following);
    }
  }
  return recoveries
    .filter((recovery) => !interrupted.has(recovery))
    .map((first) => {
      const chain = [first];
      for (let link = next.get(first); link; link = next.get(link)) chain.push(link);
      return chain;
    });
}

const chainMs = (chain: Recovery[]) => chain.at(-1)!.progressMs - chain[0]!.fault.atMs;

/**
 * Draws one job's timeline from a fault until a moment (plus what followed within 2 s), each step
 * with the workers running and how many of their slots (`slots` each) held a job.
 */
async function timelineDrawer(run: Run, history: History, slots: number) {
  const offsetMs = await run.clock.ready(); // database time = local time + offset
  const seqOf = new Map(history.jobs.map((job) => [job.id, job.seq]));
  // Every attempt's hold on a slot, claim to outcome (database time): the recorded attempts, and the
  // final attempt of each job that completed (it has no attempt record).
  const holds = (
    await run.rows<{ worker_id: string; from_ms: number; to_ms: number }>(
      `select worker_id, extract(epoch from started_at) * 1000 as from_ms, extract(epoch from finished_at) * 1000 as to_ms
       from baton.job_attempts where started_at is not null
       union all
       select worker_id, extract(epoch from last_attempt_at) * 1000, extract(epoch from finished_at) * 1000
       from baton.jobs where state = 'completed'`,
    )
  ).map((row) => ({ workerId: row.worker_id, fromMs: Number(row.from_ms), toMs: Number(row.to_ms) }));
  /** Workers running at a moment (database time), and how many of their slots held a job. */
  const capacityAt = (atMs: number, exceptPid?: number) => {
    const running = new Set(runningWorkers(run, atMs - offsetMs, exceptPid).map((worker) => worker.workerId));
    const busy = holds.filter(
      (hold) => running.has(hold.workerId) && hold.fromMs <= atMs && atMs < hold.toMs,
    ).length;
    return `${running.size} workers running, ${busy} jobs held in their ${running.size * slots} slots`;
  };
  const workerById = new Map(
    run.workers.filter((worker) => worker.workerId).map((worker) => [worker.workerId!, worker]),
  );
  const handlerStarts = new Map<string, number>(); // job id/attempt → its handler's first ledger row
  for (const row of history.ledger) {
    const key = `${row.job_id}/${row.attempt}`;
    handlerStarts.set(key, Math.min(handlerStarts.get(key) ?? Number.POSITIVE_INFINITY, row.started_ms));
  }
  const sweeps = new Map<string, string>(); // job id/attempt → the worker whose sweep requeued it
  for (const worker of run.workers)
    for (const line of worker.lines)
      if (line.event === 'recovery.requeued' || (line.event === 'job.dead_lettered' && line.lostWorkerId))
        sweeps.set(`${line.jobId}/${line.attempt}`, worker.workerId ?? `${worker.pid}`);

  return async (jobId: string, from: Fault, untilMs: number, title: string): Promise<string> => {
    const attempts = await attemptsOf(run, jobId);
    const events: Event[] = [];
    for (const fault of run.faults.filter((f) => !f.jobIds.includes(jobId) && f.atMs > from.atMs))
      events.push({
        atMs: fault.atMs,
        text: `${fault.what} (worker ${fault.victim?.workerId ?? '?'}), not holding it`,
        exceptPid: fault.victim?.pid,
      });
    for (const fault of run.faults.filter((f) => f.jobIds.includes(jobId) && f.atMs >= from.atMs)) {
      const lease = fault.leases?.[jobId];
      const held = attempts.find((attempt) => lease && attempt.lease_token === lease.token);
      const again = fault !== from ? ': its new worker was killed too' : '';
      events.push({
        atMs: fault.atMs,
        text: `${fault.what} (worker ${fault.victim?.workerId ?? '?'}) held it${held ? ` (attempt ${held.attempt})` : ''}${again}`,
        exceptPid: fault.victim?.pid,
      });
      if (lease) events.push({ atMs: lease.expiresMs, text: 'its lease expired' });
    }
    for (const attempt of attempts) {
      if (attempt.started_ms !== null && attempt.started_ms >= from.atMs) {
        const worker = attempt.worker_id ? workerById.get(attempt.worker_id) : undefined;
        const ready = worker?.readyAtMs
          ? `, a worker running since ${relative(worker.readyAtMs + offsetMs, from.atMs)}`
          : '';
        events.push({
          atMs: attempt.started_ms,
          text: `claimed by ${attempt.worker_id} (attempt ${attempt.attempt})${ready}`,
        });
        const handlerStart = handlerStarts.get(`${jobId}/${attempt.attempt}`);
        if (handlerStart !== undefined)
          events.push({ atMs: handlerStart, text: `handler started (attempt ${attempt.attempt})` });
      }
      if (attempt.finished_ms !== null && attempt.finished_ms >= from.atMs) {
        const text =
          attempt.outcome === 'lease_expired'
            ? `requeued by the sweep of ${sweeps.get(`${jobId}/${attempt.attempt}`) ?? '?'} (attempt ${attempt.attempt} recorded lease_expired)`
            : `attempt ${attempt.attempt} ${attempt.outcome}`;
        events.push({ atMs: attempt.finished_ms, text });
      }
    }
    events.sort((a, b) => a.atMs - b.atMs);
    return [
      `  job ${jobId} (seq ${seqOf.get(jobId)}): ${title}`,
      ...events
        .filter((event) => event.atMs <= untilMs + 2_000)
        .map(
          (event) =>
            `    ${relative(event.atMs, from.atMs).padStart(8)}  ${event.text} [${capacityAt(event.atMs, event.exceptPid)}]`,
        ),
    ].join('\n');
  };
}

/**
 * One line: the recoveries, the longest, the longest of those during which some worker was running
 * throughout, the chains, how long no worker ran, and how long workers took to start.
 */
function summary(
  recoveries: Recovery[],
  longestChain: Recovery[] | undefined,
  run: Run,
  offsetMs: number,
): string {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const interrupted = recoveries.filter((recovery) => recovery.interruptedBy).length;
  const staffed = recoveries.filter((recovery) =>
    alwaysRunning(run, recovery.fault.atMs - offsetMs + 100, recovery.progressMs - offsetMs),
  );
  const startups = run.workers
    .filter((worker) => worker.readyAtMs)
    .map((worker) => worker.readyAtMs! - worker.spawnedAtMs)
    .sort((a, b) => a - b);
  const median = startups[Math.floor(startups.length / 2)] ?? 0;
  const firstMs = Math.min(...run.faults.map((fault) => fault.atMs)) - offsetMs;
  const lastMs = Math.max(...recoveries.map((recovery) => recovery.progressMs)) - offsetMs;
  let emptyMs = 0;
  for (let at = firstMs; at <= lastMs; at += 50) if (runningAt(run, at) === 0) emptyMs += 50;
  const chain =
    longestChain && longestChain.length > 1
      ? `a job killed ${longestChain.length} times in a row waited ${seconds(chainMs(longestChain))} from the first kill`
      : 'no job was killed twice in a row';
  return (
    `${recoveries.length} recoveries, longest ${seconds(recoveries[0]!.ms)}, ` +
    `longest with a worker running throughout ${staffed.length > 0 ? seconds(staffed[0]!.ms) : '–'}; ` +
    `no worker running for ${seconds(emptyMs)} in all; ${interrupted} ended by a claim that the next kill interrupted; ${chain}; ` +
    `workers took ${seconds(median)} (median, max ${seconds(startups.at(-1) ?? 0)}) from spawn to registered`
  );
}

/** A job's attempts: the recorded ones, and its current (last) attempt from the jobs row. */
async function attemptsOf(run: Run, jobId: string): Promise<AttemptRow[]> {
  const recorded = await run.rows<AttemptRow>(
    `select attempt, worker_id, lease_token, extract(epoch from started_at) * 1000 as started_ms,
            extract(epoch from finished_at) * 1000 as finished_ms, outcome
     from baton.job_attempts where job_id = $1 order by attempt`,
    [jobId],
  );
  const [job] = await run.rows(
    `select attempts, state, worker_id, extract(epoch from last_attempt_at) * 1000 as started_ms,
            extract(epoch from finished_at) * 1000 as finished_ms
     from baton.jobs where id = $1`,
    [jobId],
  );
  const rows = recorded.map((row) => ({
    ...row,
    started_ms: row.started_ms === null ? null : Number(row.started_ms),
    finished_ms: row.finished_ms === null ? null : Number(row.finished_ms),
  }));
  if (job && !rows.some((row) => row.attempt === job.attempts)) {
    rows.push({
      attempt: job.attempts,
      worker_id: job.worker_id,
      lease_token: null,
      started_ms: job.started_ms === null ? null : Number(job.started_ms),
      finished_ms: job.finished_ms === null ? null : Number(job.finished_ms),
      outcome: job.state,
    });
  }
  return rows;
}

const relative = (atMs: number, zeroMs: number) => {
  const seconds = (atMs - zeroMs) / 1000;
  return `${seconds < 0 ? '-' : '+'}${Math.abs(seconds).toFixed(2)} s`;
};
