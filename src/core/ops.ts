import { queryRows } from '../db/database.js';
import { BatonError } from '../errors.js';
import { opsPerMinute, opsRecentDeadLetters, opsRecentFailures } from '../sql/ops.js';
import type {
  AttemptOutcome,
  AuditFilters,
  JobState,
  MinuteCounts,
  OpsSnapshot,
  RecentFailure,
} from '../types.js';
import type { Baton } from './baton.js';
import { deadLetterFromRow } from './rows.js';

/** The most failures and dead letters one snapshot lists. */
export const MAX_OPS_RECENT = 200;

export interface OpsSnapshotOptions {
  /** How many recent failures and recent dead letters to list, 1 to 200. Default 20. */
  recentLimit?: number;
  /** The audit page of the snapshot: its filters (action, actor), cursor and size (1 to 500, default 20). */
  audit?: {
    filters?: Pick<AuditFilters, 'action' | 'actor'>;
    cursor?: string | null;
    limit?: number;
  };
}

const date = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));

/**
 * The ops snapshot: counts per kind and state, kinds nobody serves, live workers, the latest
 * failures and dead letters, a page of the audit log, and completions and failures per minute over
 * the last hour. Each part is its own read (they run concurrently), so parts may differ by the
 * jobs that changed between them.
 *
 * @example const snapshot = await readOpsSnapshot(baton, { recentLimit: 10, audit: { filters: { action: 'job.retry' } } });
 */
export async function readOpsSnapshot(baton: Baton, options: OpsSnapshotOptions = {}): Promise<OpsSnapshot> {
  const recentLimit = options.recentLimit ?? 20;
  if (!Number.isInteger(recentLimit) || recentLimit < 1 || recentLimit > MAX_OPS_RECENT) {
    throw new BatonError(
      'OPTIONS_INVALID',
      `ops snapshot: recentLimit must be an integer from 1 to ${MAX_OPS_RECENT}, got ${options.recentLimit}`,
    );
  }
  const [stats, workers, failureRows, deadLetterRows, audit, minuteRows] = await Promise.all([
    baton.stats(),
    baton.listWorkers(),
    queryRows(baton.db, opsRecentFailures, [recentLimit]),
    queryRows(baton.db, opsRecentDeadLetters, [recentLimit]),
    baton.audit.list(options.audit?.filters ?? {}, {
      cursor: options.audit?.cursor,
      limit: options.audit?.limit ?? 20,
    }),
    queryRows(baton.db, opsPerMinute),
  ]);
  const recentFailures: RecentFailure[] = failureRows.map((row) => ({
    jobId: row.job_id,
    kind: row.kind,
    group: row.group_key ?? null,
    traceId: row.trace_id ?? null,
    attempt: row.attempt,
    outcome: row.outcome as AttemptOutcome,
    errorCode: row.error_code ?? null,
    errorMessage: row.error_message ?? null,
    failedAt: date(row.finished_at),
  }));
  const perMinute: MinuteCounts[] = minuteRows.map((row) => ({
    minute: date(row.minute),
    completed: Number(row.completed),
    failed: Number(row.failed),
  }));
  return {
    generatedAt: date(minuteRows[0]?.generated_at ?? new Date()),
    kinds: stats.kinds,
    kindsWithoutWorker: stats.kindsWithoutWorker,
    workers,
    recentFailures,
    recentDeadLetters: deadLetterRows.map((row) => ({
      ...deadLetterFromRow(row),
      state: row.state as JobState,
    })),
    audit,
    perMinute,
  };
}
