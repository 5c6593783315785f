export { BatonClient, type BatonOptions, createBaton, createEmbeddedBaton, openPglite } from './client.js';
export { AuditLog, type AuditPruneOptions } from './core/audit.js';
export { retryDelayMs } from './core/backoff.js';
export { Baton, type BatonCoreOptions } from './core/baton.js';
export { type DeadLetterPageOptions, type DeadLetterRetryOptions, DeadLetters } from './core/dead-letters.js';
export type { EnqueuedJob, EnqueueManyItem, EnqueueOptions, JobOptions } from './core/enqueue.js';
export {
  type BackoffPolicy,
  defineKind,
  type JobContext,
  type KindDefinition,
  type KindOptions,
  type RateLimit,
} from './core/kinds.js';
export {
  type ClaimOptions,
  type HeartbeatOptions,
  type LeasedJob,
  type LeaseOutcome,
  type LeaseReport,
  Leases,
} from './core/leases.js';
export { type OpsSnapshotOptions, readOpsSnapshot } from './core/ops.js';
export { pruneFinishedJobs, type RetentionOptions } from './core/retention.js';
export type { Database, Queryable } from './db/database.js';
export { latestMigrationVersion, migrate, schemaVersion } from './db/migrate.js';
export { openPostgres } from './db/postgres.js';
export {
  BatonError,
  type BatonErrorCode,
  isTerminalCode,
  JobError,
  type JobErrorCode,
  LeaseLostError,
  TERMINAL_ERROR_CODES,
} from './errors.js';
export * from './types.js';
export { resolveWorkerSettings, WORKER_ENV, type WorkerSettings } from './worker/options.js';
export { Worker, type WorkerInspection, type WorkerOptions } from './worker/worker.js';
