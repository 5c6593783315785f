/**
 * The ledger: every execution of a fault-suite handler writes rows (seq, job id, attempt, lease
 * token, worker pid, start, end, outcome). The completing row is written in the transaction that
 * completes the job (ctx.completeInTransaction, fenced by the lease), so a `completed` row exists
 * exactly when the completion committed. Rows of failed, aborted or rejected attempts are written in
 * their own transaction.
 *
 * Times are epoch milliseconds on the database's clock: each process measures the offset between
 * its own clock and `clock_timestamp()` once (the best of 5 round trips), so a worker whose clock is
 * hours off (faketime) still writes comparable times, and intervals of different processes compare.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';

export const LEDGER_SCHEMA = `
create schema if not exists faults;
create table faults.ledger (
  seq          bigint not null,
  job_id       uuid not null,
  kind         text not null,
  attempt      integer not null,
  max_attempts integer not null,
  lease_token  uuid not null,
  worker_pid   integer not null,
  started_ms   double precision not null,
  ended_ms     double precision not null,
  -- completed (with the completion, fenced) | failed | aborted | rejected (fenced out) | started
  outcome      text not null,
  detail       text
);
create index ledger_job on faults.ledger (job_id);`;

export type LedgerOutcome = 'completed' | 'failed' | 'aborted' | 'rejected' | 'started';

export interface LedgerRow {
  seq: number;
  job_id: string;
  kind: string;
  attempt: number;
  max_attempts: number;
  lease_token: string;
  worker_pid: number;
  started_ms: number;
  ended_ms: number;
  outcome: LedgerOutcome;
  detail: string | null;
}

export const LEDGER_INSERT = `insert into faults.ledger
  (seq, job_id, kind, attempt, max_attempts, lease_token, worker_pid, started_ms, ended_ms, outcome, detail)
  values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;

const localNow = () => performance.timeOrigin + performance.now();

/** The database's clock as seen from this process: local clock plus a measured offset. */
export class DatabaseClock {
  private offset?: Promise<number>;
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Measures the offset once (the sample with the shortest round trip of 5). A measurement that
   * fails (the database down at a worker's first handler) is not kept: it used to be, and every
   * later handler of that process then failed on it until its jobs were dead-lettered (seen once
   * in CI: immediate-stop's 652 jobs, none ever run).
   */
  ready(): Promise<number> {
    this.offset ??= (async () => {
      let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
      for (let sample = 0; sample < 5; sample++) {
        const sent = localNow();
        const { rows } = await this.pool.query(
          'select extract(epoch from clock_timestamp()) * 1000 as now_ms',
        );
        const received = localNow();
        const rtt = received - sent;
        if (rtt < best.rtt) best = { rtt, offset: Number(rows[0].now_ms) - (sent + received) / 2 };
      }
      return best.offset;
    })().catch((error: unknown) => {
      this.offset = undefined;
      throw error;
    });
    return this.offset;
  }

  /** Database time now (ready() must have resolved; call `await clock.ready()` first). */
  async now(): Promise<number> {
    return localNow() + (await this.ready());
  }
}

/** Values of one ledger row, in LEDGER_INSERT's order. */
export function ledgerValues(
  job: { id: string; kind: string; attempts: number; maxAttempts: number; leaseToken: string | null },
  seq: number,
  startedMs: number,
  endedMs: number,
  outcome: LedgerOutcome,
  detail: string | null = null,
): unknown[] {
  return [
    seq,
    job.id,
    job.kind,
    job.attempts,
    job.maxAttempts,
    job.leaseToken,
    process.pid,
    startedMs,
    endedMs,
    outcome,
    detail,
  ];
}
