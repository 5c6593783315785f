/**
 * The checker: after a run has drained (and its workers are gone), compares what the driver was
 * told (acknowledged enqueues) with the ledger and Baton's tables, and counts every way a guarantee
 * could have been broken. A run passes only when all of these are zero:
 *
 * - lost: an acknowledged job that never reached its expected end (completed, or dead-lettered for
 *   the kinds that must fail) and is not stuck;
 * - unexpected: a job that ran or exists although its enqueue was never acknowledged or was rolled
 *   back (enqueues whose answer was lost to a fault are "indeterminate": they may or may not exist);
 * - overlapping: two executions of one job whose lease intervals overlap. An execution's lease
 *   interval runs from its handler's start to the end of its lease: its accepted outcome, else the
 *   moment recovery took the lease away (its `lease_expired` attempt), else its last ledger row;
 * - duplicate completions: a job with more than one committed completion;
 * - over max: a job that ran an attempt numbered above its maxAttempts;
 * - stuck: a job still pending or running when the drain deadline passed.
 *
 * It also reports the longest recovery: for each injected fault, the time from the fault until each
 * affected job next made progress (a new execution started, or its execution's outcome was accepted).
 */
import type pg from 'pg';
import type { LedgerRow } from './ledger.js';

export interface Expectation {
  /** What the job must end as. */
  expect: 'completed' | 'dead';
}

export interface Fault {
  /** What was done, for the report. */
  what: string;
  /** Database time (epoch ms) of the fault. */
  atMs: number;
  /** Jobs the fault interrupted or delayed (by job id). */
  jobIds: string[];
}

export interface CheckInput {
  acknowledged: Map<number, Expectation>;
  indeterminate: Set<number>;
  faults: Fault[];
}

export interface Figures {
  jobs: number;
  faults: number;
  lost: number;
  unexpected: number;
  overlapping: number;
  duplicateCompletions: number;
  overMax: number;
  stuck: number;
  longestRecoveryMs: number | null;
  /** Executions whose outcome was refused by the lease fence (late results). */
  rejected: number;
}

/** Clock offsets of different processes are measured to about a millisecond; overlaps below this are noise. */
const OVERLAP_TOLERANCE_MS = 5;

interface Execution {
  jobId: string;
  token: string;
  startMs: number;
  endMs: number;
  leaseEndMs: number;
}

export async function check(pool: pg.Pool, input: CheckInput): Promise<Figures> {
  const ledger = (await pool.query<LedgerRow>('select * from faults.ledger')).rows.map((row) => ({
    ...row,
    seq: Number(row.seq),
  }));
  const jobs = (
    await pool.query<{ id: string; seq: string; state: string; attempts: number; max_attempts: number }>(
      `select id, payload->>'seq' as seq, state, attempts, max_attempts from baton.jobs`,
    )
  ).rows;
  const attempts = (
    await pool.query<{ job_id: string; lease_token: string; outcome: string; finished_ms: number }>(
      `select job_id, lease_token, outcome, extract(epoch from finished_at) * 1000 as finished_ms
       from baton.job_attempts`,
    )
  ).rows;
  const attemptByToken = new Map(attempts.map((row) => [row.lease_token, row]));

  const completions = new Map<number, number>();
  for (const row of ledger.filter((row) => row.outcome === 'completed'))
    completions.set(row.seq, (completions.get(row.seq) ?? 0) + 1);
  const jobBySeq = new Map(jobs.map((job) => [Number(job.seq), job]));
  const open = (seq: number) => ['pending', 'running'].includes(jobBySeq.get(seq)?.state ?? '');

  let lost = 0;
  for (const [seq, { expect }] of input.acknowledged) {
    if (open(seq)) continue;
    const ended =
      expect === 'completed' ? (completions.get(seq) ?? 0) > 0 : jobBySeq.get(seq)?.state === 'failed';
    if (!ended) lost++;
  }
  const stuck = new Set([...jobBySeq.keys()].filter((seq) => open(seq) && !Number.isNaN(seq))).size;
  const known = (seq: number) => input.acknowledged.has(seq) || input.indeterminate.has(seq);
  const unexpected = new Set(
    [...ledger.map((row) => row.seq), ...jobBySeq.keys()].filter((seq) => !known(seq)),
  ).size;
  const duplicateCompletions = [...completions.values()].filter((count) => count > 1).length;
  const overMax = new Set([
    ...ledger.filter((row) => row.attempt > row.max_attempts).map((row) => row.job_id),
    ...jobs.filter((job) => job.attempts > job.max_attempts).map((job) => job.id),
  ]).size;

  // Executions: the ledger rows of one lease token.
  const executions = new Map<string, Execution & { accepted: boolean }>();
  for (const row of ledger) {
    const execution = executions.get(row.lease_token) ?? {
      jobId: row.job_id,
      token: row.lease_token,
      startMs: row.started_ms,
      endMs: row.ended_ms,
      leaseEndMs: row.ended_ms,
      accepted: false,
    };
    execution.startMs = Math.min(execution.startMs, row.started_ms);
    execution.endMs = Math.max(execution.endMs, row.ended_ms);
    if (row.outcome === 'completed') execution.accepted = true;
    executions.set(row.lease_token, execution);
  }
  const byJob = new Map<string, (Execution & { accepted: boolean })[]>();
  for (const execution of executions.values()) {
    const attempt = attemptByToken.get(execution.token);
    if (attempt && ['failed', 'timed_out'].includes(attempt.outcome)) execution.accepted = true;
    execution.leaseEndMs =
      !execution.accepted && attempt?.outcome === 'lease_expired'
        ? Math.min(execution.endMs, Number(attempt.finished_ms))
        : execution.endMs;
    byJob.set(execution.jobId, [...(byJob.get(execution.jobId) ?? []), execution]);
  }
  let overlapping = 0;
  for (const list of byJob.values()) {
    const overlaps = list.some((a, i) =>
      list.some(
        (b, j) =>
          i < j &&
          a.startMs < b.leaseEndMs - OVERLAP_TOLERANCE_MS &&
          b.startMs < a.leaseEndMs - OVERLAP_TOLERANCE_MS,
      ),
    );
    if (overlaps) overlapping++;
  }

  let longestRecoveryMs: number | null = null;
  for (const fault of input.faults) {
    for (const jobId of fault.jobIds) {
      const progress = (byJob.get(jobId) ?? [])
        .flatMap((execution) => [
          execution.startMs >= fault.atMs ? execution.startMs : Number.POSITIVE_INFINITY,
          execution.accepted && execution.endMs >= fault.atMs ? execution.endMs : Number.POSITIVE_INFINITY,
        ])
        .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
      if (Number.isFinite(progress))
        longestRecoveryMs = Math.max(longestRecoveryMs ?? 0, progress - fault.atMs);
    }
  }
  return {
    jobs: input.acknowledged.size,
    faults: input.faults.length,
    lost,
    unexpected,
    overlapping,
    duplicateCompletions,
    overMax,
    stuck,
    longestRecoveryMs,
    rejected: new Set(ledger.filter((row) => row.outcome === 'rejected').map((row) => row.lease_token)).size,
  };
}

/** Whether the figures show every guarantee held. */
export function passes(figures: Figures): boolean {
  const { lost, unexpected, overlapping, duplicateCompletions, overMax, stuck } = figures;
  return lost + unexpected + overlapping + duplicateCompletions + overMax + stuck === 0;
}
