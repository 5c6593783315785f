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

/** Filters of the audit log; every one given must match. */
export interface AuditFilters {
  /** The action, e.g. `job.retry`, `job.cancel`, `audit_log.prune`. */
  action?: string;
  /** Who acted (the API token's actor, `library`, or `baton` for Baton's own periodic prune). */
  actor?: string;
  /** The batch an entry belongs to (a dead-letter batch retry), a uuid. */
  batchId?: string;
  /** The kind of the job acted on. */
  kind?: string;
  /** The group of the job acted on. */
  group?: string;
  traceId?: string;
  /** The job acted on, a uuid. */
  jobId?: string;
  /** Written at or after this time. */
  createdFrom?: Date;
  /** Written before this time. */
  createdBefore?: Date;
}

/** The filters a prune accepts: the age is given by `olderThanDays` instead of a created range. */
export type AuditPruneFilters = Omit<AuditFilters, 'createdFrom' | 'createdBefore'>;

/** One audit entry: an operator action (or Baton's own, such as a periodic prune) and who did it. */
export interface AuditEntry {
  /** Increasing with insertion; a string because it is a bigint. */
  id: string;
  action: string;
  actor: string;
  batchId: string | null;
  jobId: string | null;
  kind: string | null;
  group: string | null;
  traceId: string | null;
  /** What the action needs to be understood later, e.g. `{ previousState: 'failed' }`. */
  details: Record<string, unknown>;
  createdAt: Date;
}

export interface AuditPage {
  /** Newest first. */
  entries: AuditEntry[];
  /** Give it back to `audit.list` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

/** What `audit.prune` did: with `dryRun`, how many entries match; otherwise how many it deleted. */
export type AuditPruneResult =
  | { dryRun: true; matched: number; cutoff: Date }
  | { dryRun: false; deleted: number; cutoff: Date };

/** One attempt that failed (`failed`, `timed_out` or `lease_expired`), for the ops snapshot. */
export interface RecentFailure {
  jobId: string;
  kind: string;
  group: string | null;
  traceId: string | null;
  attempt: number;
  outcome: AttemptOutcome;
  errorCode: string | null;
  errorMessage: string | null;
  failedAt: Date;
}

/** Jobs completed and attempts failed in one minute (`minute` is its start). */
export interface MinuteCounts {
  minute: Date;
  completed: number;
  failed: number;
}

/** The ops snapshot: everything an operator looks at first, read in one call. */
export interface OpsSnapshot {
  /** Database time of the snapshot. */
  generatedAt: Date;
  /** Counts per kind and state (as `stats()`). */
  kinds: KindStats[];
  /** Kinds with pending jobs and no live worker to run them. */
  kindsWithoutWorker: string[];
  /** Live workers, oldest first. */
  workers: WorkerInfo[];
  /** The latest failed attempts, newest first. */
  recentFailures: RecentFailure[];
  /** The latest dead letters, newest first. */
  /** With the job's state now (a retried job's dead letter is gone; a cancelled one keeps it). */
  recentDeadLetters: (DeadLetter & { state: JobState })[];
  /** A page of the audit log, newest first, with the snapshot's audit filters. */
  audit: AuditPage;
  /** The last 60 minutes, oldest first, the current (partial) minute last; minutes with nothing are zeros. */
  perMinute: MinuteCounts[];
}
