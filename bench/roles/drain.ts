/**
 * Worker roles that drain pre-enqueued no-op jobs: W3 (one process), one member of W3x4's fleet,
 * and the memory run. Each returns the result object child.ts prints.
 */
import { createInterface } from 'node:readline';
import { storeCpuSeconds, untilDeadline, untilFinished } from '../lib/finish.js';
import type { SystemAdapter } from '../systems/types.js';

export interface DrainContext {
  sys: SystemAdapter;
  url: string;
  /** Jobs in the store to drain (for a fleet member: in the whole store, not its share). */
  jobs: number;
  concurrency: number;
  /** performance.now() value past which the role gives up. */
  deadline: number;
}

/** Counts handler starts; `all` resolves when `target` is reached. */
function handlerCounter(target: number, onCount?: (n: number) => void) {
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  const c = {
    handled: 0,
    all,
    onJob: () => {
      if (++c.handled === target) done();
      onCount?.(c.handled);
    },
  };
  return c;
}

/** Waits for every handler to start, then for the store to show every job terminal. */
async function untilDrained(c: DrainContext, counter: ReturnType<typeof handlerCounter>): Promise<void> {
  await untilDeadline(counter.all, c.deadline);
  const { finished, terminal } = await untilFinished(c.sys, c.url, c.deadline);
  if (!finished) {
    throw new Error(`drain incomplete: ${counter.handled}/${c.jobs} handled before the deadline`);
  }
  if (terminal !== undefined && terminal !== c.jobs) {
    throw new Error(`store counts disagree: ${terminal} jobs terminal, ${c.jobs} enqueued`);
  }
}

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** W3: one worker process drains every job; timed from worker start until the store shows them terminal. */
export async function drain(c: DrainContext): Promise<Record<string, number | null>> {
  const counter = handlerCounter(c.jobs);
  const store0 = await storeCpuSeconds(c.sys);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = await c.sys.startWorker(c.url, { concurrency: c.concurrency, onJob: counter.onJob });
  await untilDrained(c, counter); // on failure the child exits non-zero, which stops the worker
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const store1 = await storeCpuSeconds(c.sys);
  await worker.stop();
  const per10k = 10_000 / c.jobs;
  return {
    jobsPerSec: c.jobs / s,
    seconds: s,
    handled: counter.handled,
    workerCpuPer10k: cpuSeconds(cpu) * per10k,
    storeCpuPer10k: store0 === null || store1 === null ? null : (store1 - store0) * per10k,
  };
}

/**
 * One of W3x4's worker processes. Prints @@READY once loaded, starts its worker on "go" (stdin),
 * reports its handler count as "@@PROGRESS <n>" (at most every 10 ms), and on "stop" returns the
 * CPU it used since "go". The orchestrator times the run and watches the store.
 */
export async function drainMember(c: DrainContext): Promise<Record<string, number | null>> {
  const lines = createInterface({ input: process.stdin });
  const said = (word: string) =>
    new Promise<void>((r) => lines.on('line', (line) => line.trim() === word && r()));
  const go = said('go');
  const stop = said('stop');
  let flushing = false;
  const counter = handlerCounter(Number.POSITIVE_INFINITY, () => {
    if (flushing) return;
    flushing = true;
    setTimeout(() => {
      flushing = false;
      process.stdout.write(`@@PROGRESS ${counter.handled}\n`);
    }, 10);
  });
  process.stdout.write('@@READY\n');
  await untilDeadline(go, c.deadline);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = await c.sys.startWorker(c.url, { concurrency: c.concurrency, onJob: counter.onJob });
  const startSeconds = (performance.now() - t0) / 1000;
  await untilDeadline(stop, c.deadline);
  const cpu = process.cpuUsage(cpu0);
  lines.close();
  await worker.stop();
  return { handled: counter.handled, cpuSeconds: cpuSeconds(cpu), startSeconds };
}

/**
 * The memory run: W3's drain, with the process's RSS sampled every 250 ms. Reports the largest
 * sample, the RSS when 10% and 50% of the jobs have started and at the end, and the RSS before the
 * worker started (the harness and libraries alone).
 */
export async function memoryDrain(c: DrainContext): Promise<Record<string, number | null>> {
  const mb = () => process.memoryUsage.rss() / 2 ** 20;
  const baseline = mb();
  let max = baseline;
  let samples = 0;
  let at10: number | null = null;
  let at50: number | null = null;
  const sampler = setInterval(() => {
    max = Math.max(max, mb());
    samples++;
  }, 250);
  const tenth = Math.max(1, Math.floor(c.jobs / 10));
  const half = Math.max(1, Math.floor(c.jobs / 2));
  const counter = handlerCounter(c.jobs, (n) => {
    if (n === tenth) at10 = mb();
    else if (n === half) at50 = mb();
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = await c.sys.startWorker(c.url, { concurrency: c.concurrency, onJob: counter.onJob });
  await untilDrained(c, counter);
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const end = mb();
  clearInterval(sampler);
  max = Math.max(max, end);
  await worker.stop();
  return {
    jobsPerSec: c.jobs / s,
    seconds: s,
    handled: counter.handled,
    workerCpuPer10k: cpuSeconds(cpu) * (10_000 / c.jobs),
    rssBaselineMb: baseline,
    rssAt10Mb: at10,
    rssAt50Mb: at50,
    rssEndMb: end,
    rssMaxMb: max,
    heapUsedEndMb: process.memoryUsage().heapUsed / 2 ** 20,
    samples,
  };
}
