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
 * A job that a later fault hit again before its handler wrote anything (its next worker was killed
 * too) made progress all the same: it was claimed again, which Baton's attempt record shows, and
 * the later fault's wait is measured from the later fault. Measuring to the next ledger row instead
 * added the waits of a chain of kills together (16.5 s for a job killed six times in a row).
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
  /** The process the fault hit, when it hit one. */
  victim?: { pid: number; workerId?: string };
  /** The leases the victim held just before the fault (job id → token and expiry, database time). */
  leases?: Record<string, { token: string; expiresMs: number }>;
}

/** How long one job affected by one fault took to make progress again. */
export interface Recovery {
  fault: Fault;
  jobId: string;
  /** From the fault to the job's next progress. */
  ms: number;
  /** Database time of that progress. */
  progressMs: number;
  /** A later fault hit the job before its handler wrote anything: progress is the claim it interrupted. */
  interruptedBy?: Fault;
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
  /** The longest recovery (see Recovery). */
  longestRecoveryMs: number | null;
  /** Executions whose outcome was refused by the lease fence (late results). */
  rejected: number;
}

/** Clock offsets of different processes are measured to about a millisecond; overlaps below this are noise. */
const OVERLAP_TOLERANCE_MS = 5;

export interface Execution {
  jobId: string;
  token: string;
  startMs: number;
  endMs: number;
  leaseEndMs: number;
  /** Its outcome was accepted: completed, or a failure Baton recorded. */
  accepted: boolean;
}

/** What the run left behind: the ledger, Baton's jobs and attempt records, and executions by job. */
export interface History {
  ledger: (LedgerRow & { seq: number })[];
  jobs: { id: string; seq: string; state: string; attempts: number; max_attempts: number }[];
  /** Baton's attempt records (failed, timed out, lease expired); started_ms is when the attempt was claimed. */
  attempts: {
    job_id: string;
    lease_token: string;
    outcome: string;
    started_ms: number | null;
    finished_ms: number;
  }[];
  /** Executions (the ledger rows of one lease token) by job id. */
  byJob: Map<string, Execution[]>;
}

export async function readHistory(pool: pg.Pool): Promise<History> {
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
    await pool.query<History['attempts'][number]>(
      `select job_id, lease_token, outcome, extract(epoch from started_at) * 1000 as started_ms,
              extract(epoch from finished_at) * 1000 as finished_ms
       from baton.job_attempts`,
    )
  ).rows.map((row) => ({
    ...row,
    started_ms: row.started_ms === null ? null : Number(row.started_ms),
    finished_ms: Number(row.finished_ms),
  }));
  const attemptByToken = new Map(attempts.map((row) => [row.lease_token, row]));
  // Executions: the ledger rows of one lease token.
  const executions = new Map<string, Execution>();
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
  const byJob = new Map<string, Execution[]>();
  for (const execution of executions.values()) {
    const attempt = attemptByToken.get(execution.token);
    if (attempt && ['failed', 'timed_out'].includes(attempt.outcome)) execution.accepted = true;
    execution.leaseEndMs =
      !execution.accepted && attempt?.outcome === 'lease_expired'
        ? Math.min(execution.endMs, Number(attempt.finished_ms))
        : execution.endMs;
    byJob.set(execution.jobId, [...(byJob.get(execution.jobId) ?? []), execution]);
  }
  return { ledger, jobs, attempts, byJob };
}

/**
 * Every (fault, affected job) pair with the time until the job next made progress: a new execution
 * started, or an execution's outcome was accepted, at or after the fault; or, when a later fault hit
 * the job first, the claim that the later fault interrupted. Pairs whose job never made progress
 * after the fault (it had finished just before) are left out.
 */
export function measureRecoveries(faults: Fault[], history: Pick<History, 'byJob' | 'attempts'>): Recovery[] {
  const claims = new Map<string, number[]>(); // job id → claim times of its recorded attempts
  for (const attempt of history.attempts)
    if (attempt.started_ms !== null)
      claims.set(attempt.job_id, [...(claims.get(attempt.job_id) ?? []), attempt.started_ms]);
  const recoveries: Recovery[] = [];
  for (const fault of faults) {
    for (const jobId of fault.jobIds) {
      let progressMs = (history.byJob.get(jobId) ?? [])
        .flatMap((execution) => [
          execution.startMs >= fault.atMs ? execution.startMs : Number.POSITIVE_INFINITY,
          execution.accepted && execution.endMs >= fault.atMs ? execution.endMs : Number.POSITIVE_INFINITY,
        ])
        .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
      const interruptedBy = faults.find(
        (later) => later.atMs > fault.atMs && later.atMs < progressMs && later.jobIds.includes(jobId),
      );
      if (interruptedBy) {
        const claimedMs = (claims.get(jobId) ?? []).filter(
          (atMs) => atMs >= fault.atMs && atMs <= interruptedBy.atMs,
        );
        if (claimedMs.length > 0) progressMs = Math.min(...claimedMs);
      }
      if (!Number.isFinite(progressMs)) continue;
      recoveries.push({ fault, jobId, ms: progressMs - fault.atMs, progressMs, interruptedBy });
    }
  }
  return recoveries;
}

export async function check(pool: pg.Pool, input: CheckInput): Promise<Figures> {
  const history = await readHistory(pool);
  const { ledger, jobs, byJob } = history;

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

  const recoveries = measureRecoveries(input.faults, history);
  const longestRecoveryMs =
    recoveries.length > 0 ? Math.max(...recoveries.map((recovery) => recovery.ms)) : null;
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
