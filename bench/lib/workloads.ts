/**
 * The orchestrator's side of each workload: fresh store, untimed seeding, then the timed child
 * process(es). Each returns the numbers run.ts records (keys of the metrics in lib/metrics.ts).
 */

import { enqueueCeiling } from '../roles/ceiling.js';
import { latencyFloor } from '../roles/floor.js';
import type { SystemAdapter } from '../systems/types.js';
import { compiledChild } from './bundle.js';
import { checkpoint, dbUrl, resetDatabase } from './db.js';
import { runFleet } from './fleet.js';
import { type ChildArgs, type Result, runChild, startChild } from './proc.js';

export interface Plan {
  /** N of W2, W3 and W3x4 (W1 uses N/5). */
  jobs: number;
  /** W4: jobs per second and seconds. */
  rate: number;
  seconds: number;
  /** Finished jobs written before the table-size run. */
  retained: number;
  /** Jobs the memory run drains. */
  memoryJobs: number;
}

/** Where a workload leaves remarks for the report's notes (an enqueuer that fell behind, ...). */
export type Note = (text: string) => void;

export const FLEET = { processes: 4, concurrency: 8 };

/**
 * BENCH_DB_SUFFIX (lower-case letters, digits, _) is appended to every database name, so two people
 * can run the bench on one server at once without dropping each other's databases.
 */
const DB_SUFFIX = process.env.BENCH_DB_SUFFIX ?? '';
if (!/^[a-z0-9_]*$/.test(DB_SUFFIX)) {
  throw new Error(`BENCH_DB_SUFFIX must match [a-z0-9_]*, got ${DB_SUFFIX}`);
}

export function dbName(sys: SystemAdapter): string {
  return `bench_${sys.id}${DB_SUFFIX}`;
}

export function child(
  sys: SystemAdapter,
  role: string,
  jobs: number,
  timeoutMs: number,
  extra: Partial<ChildArgs> = {},
): Promise<Result> {
  return runChild({ system: sys.id, db: dbName(sys), role, jobs, timeoutMs, ...extra });
}

/** Empties the system's store and creates its schema. */
export async function freshStore(sys: SystemAdapter): Promise<void> {
  if (sys.reset) await sys.reset();
  else await resetDatabase(dbName(sys));
  await child(sys, 'setup', 0, 60_000);
}

/** Enqueues n jobs in batches of 1,000 (untimed; ends with a checkpoint). */
export async function seed(sys: SystemAdapter, n: number): Promise<void> {
  await child(sys, 'seed', n, 120_000 + n * 2);
}

/** Deadline for a drain of n jobs: generous, it only stops a run that hangs. */
export const drainTimeoutMs = (n: number) => 180_000 + n * 4;

export async function runWorkload(w: string, sys: SystemAdapter, plan: Plan, note: Note): Promise<Result> {
  await freshStore(sys);
  switch (w) {
    case 'w1':
      await checkpoint();
      return child(sys, 'w1', Math.ceil(plan.jobs / 5), 120_000 + plan.jobs);
    case 'w2':
      await checkpoint();
      return child(sys, 'w2', plan.jobs, 120_000 + plan.jobs * 2);
    case 'w3':
      await seed(sys, plan.jobs);
      return child(sys, 'w3', plan.jobs, drainTimeoutMs(plan.jobs));
    case 'w3x4':
      await seed(sys, plan.jobs);
      return runFleet(sys, dbName(sys), plan.jobs, FLEET, drainTimeoutMs(plan.jobs));
    case 'w4':
      await checkpoint();
      return runLatency(sys, plan, 'W4', note);
    case 'memory': {
      const script = await compiledChild(); // RSS as a deployed worker's, without tsx
      await seed(sys, plan.memoryJobs);
      return child(sys, 'memory', plan.memoryJobs, drainTimeoutMs(plan.memoryJobs), { script });
    }
    default:
      throw new Error(`unknown workload ${w}`);
  }
}

/**
 * W4: a worker process (concurrency 32) starts; then another process enqueues single jobs at
 * plan.rate for plan.seconds; the worker reports handler start minus enqueue time.
 */
export async function runLatency(
  sys: SystemAdapter,
  plan: Plan,
  tag: string,
  note: Note,
  env?: Record<string, string>,
): Promise<Result> {
  const n = plan.rate * plan.seconds;
  const base = { system: sys.id, db: dbName(sys), env };
  const worker = startChild({
    ...base,
    role: 'w4-worker',
    jobs: n + 1,
    timeoutMs: plan.seconds * 1000 + 60_000,
  });
  await worker.ready;
  let expected = n + 1; // the enqueuer's untimed warm-up job is counted too
  try {
    const enq = await runChild({
      ...base,
      role: 'w4-enqueue',
      jobs: n,
      timeoutMs: plan.seconds * 1000 + 30_000,
      rate: plan.rate,
    });
    if (enq.skipped) note(`${tag}: enqueuer fell behind (64 in flight), skipped ${enq.skipped} of ${n}`);
    if (typeof enq.sent === 'number') expected = enq.sent + 1;
    worker.proc.stdin?.write(`${expected}\n`);
  } catch (err) {
    worker.proc.kill('SIGKILL');
    throw err;
  }
  const r = await worker.result;
  if (typeof r.received === 'number' && r.received < expected) {
    note(`${tag}: worker saw only ${r.received} of ${expected} jobs in time`);
  }
  return r;
}

/**
 * W4's floor (roles/floor.ts): PostgreSQL's own durable insert-and-notify at W4's pace, on a fresh
 * database of its own, no queue library involved. Runs in the orchestrator (two plain connections);
 * each of its three measures sends half as many statements as W4 enqueues jobs.
 */
export async function runFloor(plan: Plan): Promise<Result> {
  const db = `bench_floor${DB_SUFFIX}`;
  await resetDatabase(db);
  await checkpoint();
  const n = Math.ceil((plan.rate * plan.seconds) / 2);
  return latencyFloor(dbUrl(db), plan.rate, n, performance.now() + plan.seconds * 3000 + 60_000);
}

/**
 * W1's ceiling (roles/ceiling.ts): PostgreSQL's own durable single-row inserts with 16 in flight,
 * grouped into one statement per 16 and as 16 concurrent commits, on the floor's fresh database, no
 * queue library involved. Runs in the orchestrator; each way writes as many rows as W1 enqueues.
 */
export async function runCeiling(plan: Plan): Promise<Result> {
  const db = `bench_floor${DB_SUFFIX}`;
  await resetDatabase(db);
  await checkpoint();
  return enqueueCeiling(dbUrl(db), Math.ceil(plan.jobs / 5), performance.now() + 120_000);
}
