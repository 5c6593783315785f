import type { Attempt, DeadLetter, DeadReason, Job, JobState, WorkerInfo } from '../types.js';

// biome-ignore lint/suspicious/noExplicitAny: database rows are untyped until mapped here.
type Row = Record<string, any>;

/**
 * PGlite and pg both return timestamptz as Date; a row built elsewhere may carry a string, and the
 * claim returns epoch milliseconds (a number), which are far cheaper to turn into a Date.
 */
const date = (value: unknown): Date =>
  value instanceof Date ? value : new Date(typeof value === 'number' ? value : String(value));
const dateOrNull = (value: unknown): Date | null => (value == null ? null : date(value));

export function jobFromRow<Payload = unknown, Result = unknown>(row: Row): Job<Payload, Result> {
  return {
    id: row.id,
    kind: row.kind,
    payload: row.payload as Payload,
    result: (row.result ?? null) as Result | null,
    state: (row.state ?? 'running') as JobState,
    priority: row.priority,
    runAt: date(row.run_at),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastAttemptAt: dateOrNull(row.last_attempt_at),
    leaseToken: row.lease_token ?? null,
    leaseExpiresAt: dateOrNull(row.lease_expires_at),
    workerId: row.worker_id ?? null,
    traceId: row.trace_id ?? null,
    idempotencyKey: row.idempotency_key ?? null,
    group: row.group_key ?? null,
    progress: row.progress ?? null,
    errorCode: row.error_code ?? null,
    errorMessage: row.error_message ?? null,
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at ?? row.created_at),
    finishedAt: dateOrNull(row.finished_at),
  };
}

export function attemptFromRow(row: Row): Attempt {
  return {
    attempt: row.attempt,
    workerId: row.worker_id ?? null,
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
    outcome: row.outcome,
    errorCode: row.error_code ?? null,
    errorMessage: row.error_message ?? null,
    errorStack: row.error_stack ?? null,
  };
}

export function deadLetterFromRow(row: Row): DeadLetter {
  return {
    jobId: row.job_id,
    kind: row.kind,
    reason: row.reason as DeadReason,
    errorCode: row.error_code ?? null,
    errorMessage: row.error_message ?? null,
    group: row.group_key ?? null,
    traceId: row.trace_id ?? null,
    attempts: row.attempts,
    createdAt: date(row.created_at),
  };
}

export function workerFromRow(row: Row): WorkerInfo {
  return {
    id: row.id,
    host: row.host,
    pid: row.pid,
    kinds: row.kinds,
    concurrency: row.concurrency,
    running: row.running,
    startedAt: date(row.started_at),
    lastHeartbeatAt: date(row.last_heartbeat_at),
  };
}
