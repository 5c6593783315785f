/**
 * The table-size run ("retained"): W4's latency and W3's drain on a table that already holds
 * plan.retained finished jobs, and the same on an empty table, in the same repetition. Per table:
 * fresh database, schema, [history written with SQL, VACUUM ANALYZE], checkpoint, W4, then N jobs
 * seeded and drained as in W3. W4 runs first so that it meets exactly the empty or the retained
 * table; the drain then also sees W4's few thousand finished jobs, on both tables alike. The two
 * tables alternate which goes first from one repetition to the next, so a drift in the machine's
 * load does not always favour the same one.
 */
import type { SystemAdapter } from '../systems/types.js';
import { checkpoint, count } from './db.js';
import type { Result } from './proc.js';
import {
  child,
  dbName,
  drainTimeoutMs,
  freshStore,
  type Note,
  type Plan,
  runLatency,
  seed,
} from './workloads.js';

type Table = 'Empty' | 'Retained';

async function measure(
  sys: SystemAdapter,
  plan: Plan,
  table: Table,
  note: Note,
): Promise<{ drain: Result; latency: Result }> {
  await freshStore(sys);
  const env = sys.historyWorkerEnv;
  if (table === 'Retained') {
    await child(sys, 'seed-finished', plan.retained, 300_000 + plan.retained / 2);
  }
  await checkpoint();
  const latency = await runLatency(sys, plan, `retained (${table.toLowerCase()} table) W4`, note, env);
  await seed(sys, plan.jobs);
  const drain = await child(sys, 'w3', plan.jobs, drainTimeoutMs(plan.jobs), { env });
  if (table === 'Retained' && sys.historyCountSql) {
    const kept = await count(dbName(sys), sys.historyCountSql);
    if (kept !== plan.retained) {
      note(
        `retained: ${plan.retained - kept} of the ${plan.retained} finished jobs were deleted during the run`,
      );
    }
  }
  return { drain, latency };
}

const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : Number.NaN;

export async function runRetained(sys: SystemAdapter, plan: Plan, rep: number, note: Note): Promise<Result> {
  if (!sys.seedHistory) throw new Error(`${sys.label} has no seedHistory in its adapter`);
  const order: Table[] = rep % 2 === 1 ? ['Empty', 'Retained'] : ['Retained', 'Empty'];
  const out: Result = {};
  for (const table of order) {
    const { drain, latency } = await measure(sys, plan, table, note);
    out[`drain${table}`] = drain.jobsPerSec ?? Number.NaN;
    out[`workerCpu${table}`] = drain.workerCpuPer10k ?? null;
    out[`storeCpu${table}`] = drain.storeCpuPer10k ?? null;
    out[`p50${table}`] = latency.p50 ?? Number.NaN;
    out[`p99${table}`] = latency.p99 ?? Number.NaN;
  }
  for (const m of ['drain', 'storeCpu', 'p50', 'p99']) {
    out[`${m}Ratio`] = ratio(out[`${m}Retained`], out[`${m}Empty`]);
  }
  return out;
}
