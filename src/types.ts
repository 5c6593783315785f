/**
 * Baton's public types.
 *
 * Glossary (these words, and only these, are used in code, SQL, logs and docs):
 * - **job**: one unit of work, a row in `baton.jobs`, with a kind and a JSON payload.
 * - **kind**: a named type of job with a payload schema, a handler and defaults (`email.send`).
 * - **worker**: a process (or part of one) that claims jobs of the kinds it has handlers for and runs them.
 * - **lease**: a worker's time-limited right to run a job, named by a fresh lease token at each claim.
 *   Every outcome a worker writes is fenced by the token; a lease that expired belongs to no one.
 * - **attempt**: one run of a job under one lease. `attempts` counts them; `maxAttempts` caps them.
 * - **dead letter**: the record of a job that failed for good, with its reason.
 * - **group**: a free grouping key (an episode, a book, a tenant) used for filtering and per-group limits.
 * - **audit entry**: one operator action, with its actor.
 */

export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

export type DeadReason = 'non_retryable' | 'max_attempts_exceeded';

export interface Job<Payload = unknown, Result = unknown> {
  id: string;
  kind: string;
  payload: Payload;
  result: Result | null;
  state: JobState;
  priority: number;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  lastAttemptAt: Date | null;
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  traceId: string | null;
  idempotencyKey: string | null;
  group: string | null;
  progress: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export type AttemptOutcome = 'completed' | 'running' | 'failed' | 'timed_out' | 'lease_expired' | 'aborted';

export interface Attempt {
  attempt: number;
  workerId: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  outcome: AttemptOutcome;
  errorCode: string | null;
  errorMessage: string | null;
  errorStack: string | null;
}

export interface DeadLetter {
  jobId: string;
  kind: string;
  reason: DeadReason;
  errorCode: string | null;
  errorMessage: string | null;
  group: string | null;
  traceId: string | null;
  attempts: number;
  createdAt: Date;
}

export interface JobDetail<Payload = unknown, Result = unknown> extends Job<Payload, Result> {
  /** Every attempt, oldest first: failed ones from the history, the last from the job row itself. */
  attemptHistory: Attempt[];
  deadLetter: DeadLetter | null;
}

export interface KindStats {
  kind: string;
  pending: number;
  /** Pending jobs whose run time has come. */
  due: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  deadLettered: number;
  /** Live workers that have a handler for this kind. */
  liveWorkers: number;
}

export interface QueueStats {
  kinds: KindStats[];
  /** Kinds with pending jobs and no live worker to run them: these wait forever unless one starts. */
  kindsWithoutWorker: string[];
  liveWorkers: number;
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  kinds: string[];
  concurrency: number;
  running: number;
  startedAt: Date;
  lastHeartbeatAt: Date;
}

/** Filters of `listJobs`; every one given must match. */
export interface JobListFilters {
  kind?: string;
  state?: JobState;
  group?: string;
  traceId?: string;
  /** The code of the job's last error. */
  errorCode?: string;
  /** Created at or after this time. */
  createdFrom?: Date;
  /** Created before this time. */
  createdBefore?: Date;
}

export interface JobListPage {
  /** Newest first. */
  jobs: Job[];
  /** Give it back to `listJobs` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

/** Filters of dead letters (list, preview, batch retry); every one given must match. */
export interface DeadLetterFilters {
  group?: string;
  kind?: string;
  traceId?: string;
  reason?: DeadReason;
  /** The code of the error that dead-lettered the job. */
  errorCode?: string;
}

/** A dead letter with its job's state now (`failed` unless something changed it since). */
export interface DeadLetterItem extends DeadLetter {
  state: JobState;
}

export interface DeadLetterPage {
  /** Newest first (by when the job was dead-lettered, then job id). */
  deadLetters: DeadLetterItem[];
  /** Give it back for the next page; null when this page is the last. */
  nextCursor: string | null;
}

/** A page of what a batch retry by the same filters would touch, with counts over every match. */
export interface DeadLetterPreviewPage extends DeadLetterPage {
  /** Dead letters matching the filters, on every page. */
  total: number;
  /** Of those, the ones whose job is still `failed` or `cancelled`, which a retry would put back to pending. */
  retryable: number;
}

/** Why a batch retry left a job alone: it no longer exists, or it is no longer failed or cancelled. */
export type DeadLetterSkipReason = 'job_missing' | 'job_pending' | 'job_running' | 'job_completed';

/** What a batch retry did (or, with `dryRun`, would do). */
export interface DeadLetterRetryResult {
  /** The `batch_id` of every audit entry the batch wrote; null on a dry run, which writes none. */
  batchId: string | null;
  dryRun: boolean;
  /** Jobs put back to pending (or that would be), in the order they matched. */
  retried: string[];
  skipped: { jobId: string; reason: DeadLetterSkipReason }[];
  /** Jobs the batch looked at: `retried.length + skipped.length`. */
  matched: number;
}
