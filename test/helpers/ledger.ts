import type { TestDatabase } from './database.js';

/**
 * The ledger: every execution of a fixture handler writes one row (job, attempt, lease token,
 * worker pid, start, end). Times are epoch ms with sub-ms precision from one machine clock, so
 * intervals of different processes compare.
 */
export async function createLedger(database: TestDatabase): Promise<void> {
  await database.pool.query(`
    create table ledger (
      job_id uuid not null, kind text not null, attempt integer not null, lease_token uuid not null,
      worker_pid integer not null, group_key text, started_ms double precision not null,
      finished_ms double precision not null, outcome text not null
    );
    create table ledger_aborts (job_id uuid not null, worker_pid integer not null, reason text not null, at_ms double precision not null);
    create table side_effects (job_id uuid primary key, note text not null);`);
}

export interface LedgerRow {
  job_id: string;
  kind: string;
  attempt: number;
  lease_token: string;
  worker_pid: number;
  group_key: string | null;
  started_ms: number;
  finished_ms: number;
  outcome: string;
}

/** The largest number of intervals that overlap at one instant. */
export function maxOverlap(rows: { started_ms: number; finished_ms: number }[]): number {
  const edges = rows.flatMap((row) => [
    { at: row.started_ms, delta: 1 },
    { at: row.finished_ms, delta: -1 },
  ]);
  // At equal times, ends come before starts: touching intervals do not overlap.
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let max = 0;
  for (const edge of edges) {
    current += edge.delta;
    max = Math.max(max, current);
  }
  return max;
}
