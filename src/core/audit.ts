import { z } from 'zod';
import { type Database, type Queryable, queryRows } from '../db/database.js';
import { BatonError } from '../errors.js';
import {
  auditListPage,
  auditPruneBatch,
  auditPruneCount,
  auditPruneCutoff,
  auditPruneRecord,
} from '../sql/audit.js';
import type { AuditEntry, AuditFilters, AuditPage, AuditPruneFilters, AuditPruneResult } from '../types.js';
import { decodeKeysetCursor, encodeKeysetCursor } from './cursor.js';

/** The largest page `audit.list` returns. */
export const MAX_AUDIT_ENTRIES_PER_PAGE = 500;

/** The oldest a prune may reach back: 100 years. */
export const MAX_AUDIT_PRUNE_DAYS = 36_500;

/** The action of a prune's own entry. */
export const AUDIT_PRUNE_ACTION = 'audit_log.prune';

const pruneFiltersShape = {
  action: z.string().min(1).max(256).optional(),
  actor: z.string().min(1).max(256).optional(),
  batchId: z.uuid().optional(),
  kind: z.string().min(1).max(512).optional(),
  group: z.string().min(1).max(512).optional(),
  traceId: z.string().min(1).max(256).optional(),
  jobId: z.uuid().optional(),
};
const auditFiltersSchema = z.strictObject({
  ...pruneFiltersShape,
  createdFrom: z.date().optional(),
  createdBefore: z.date().optional(),
});
const pruneFiltersSchema = z.strictObject(pruneFiltersShape);

const LARGEST_BIGINT = '9223372036854775807';

function checkFilters<T>(schema: z.ZodType<T>, filters: unknown, operation: string): T {
  const checked = schema.safeParse(filters ?? {});
  if (checked.success) return checked.data;
  const issue = checked.error.issues[0]!;
  const path = issue.path.join('.');
  throw new BatonError('OPTIONS_INVALID', `${operation}: filter${path ? ` ${path}` : 's'}: ${issue.message}`);
}

/** The seven filter parameters ($1 to $7) every audit statement takes. */
function filterParameters(filters: AuditPruneFilters): (string | null)[] {
  return [
    filters.action ?? null,
    filters.actor ?? null,
    filters.batchId ?? null,
    filters.kind ?? null,
    filters.group ?? null,
    filters.traceId ?? null,
    filters.jobId ?? null,
  ];
}

// biome-ignore lint/suspicious/noExplicitAny: database rows are untyped until mapped here.
function entryFromRow(row: Record<string, any>): AuditEntry {
  return {
    id: String(row.id),
    action: row.action,
    actor: row.actor,
    batchId: row.batch_id ?? null,
    jobId: row.job_id ?? null,
    kind: row.kind ?? null,
    group: row.group_key ?? null,
    traceId: row.trace_id ?? null,
    details: row.details ?? {},
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(String(row.created_at)),
  };
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new BatonError(
      'OPTIONS_INVALID',
      `audit.prune: ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export interface AuditPruneOptions {
  /** Entries created more than this many days (of 24 hours) ago are deleted; 0 to 36500. Required. */
  olderThanDays: number;
  /** Only entries matching every filter given are deleted. Default: all. */
  filters?: AuditPruneFilters;
  /** Count the entries that would be deleted, and change nothing (not even the prune's own entry). Default false. */
  dryRun?: boolean;
  /** Who prunes, as recorded in the prune's own `audit_log.prune` entry. Default `library`. */
  actor?: string;
  /** Entries deleted per statement, so no statement locks more; 1 to 100000. Default 1000. */
  batchSize?: number;
  /**
   * Write the `audit_log.prune` entry even when nothing was deleted. Default true; the periodic
   * prune passes false so that an idle system's log does not fill with empty prunes.
   */
  recordEmpty?: boolean;
  /** Stops a long prune between two batches (it still records what it deleted). */
  signal?: AbortSignal;
  client?: Queryable;
}

/**
 * The audit log: one entry per operator action (cancel, retry, batch retry, prune) with its actor.
 * List it newest first with filters and cursor paging, export every matching entry page by page,
 * and prune old entries in batches.
 */
export class AuditLog {
  constructor(readonly db: Database) {}

  /**
   * One page of entries, newest first (by creation time, then id), matching every filter given.
   * Pass the returned `nextCursor` back for the next page; it is null after the last one. Keyset
   * paging: entries written meanwhile cause no repeats or gaps.
   *
   * @example const { entries, nextCursor } = await baton.audit.list({ action: 'job.retry', actor: 'alice' }, { limit: 50 });
   */
  async list(
    filters: AuditFilters = {},
    page: { cursor?: string | null; limit?: number; client?: Queryable } = {},
  ): Promise<AuditPage> {
    const checked = checkFilters(auditFiltersSchema, filters, 'audit.list');
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_ENTRIES_PER_PAGE) {
      throw new BatonError(
        'OPTIONS_INVALID',
        `audit.list: limit must be an integer from 1 to ${MAX_AUDIT_ENTRIES_PER_PAGE}, got ${page.limit}`,
      );
    }
    const after = page.cursor
      ? decodeKeysetCursor(page.cursor, (id) => /^[0-9]{1,19}$/.test(id), 'audit.list')
      : null;
    // One row more than the page tells whether another page follows.
    const rows = await queryRows(page.client ?? this.db, auditListPage, [
      ...filterParameters(checked),
      checked.createdFrom?.toISOString() ?? '-infinity',
      checked.createdBefore?.toISOString() ?? 'infinity',
      after?.createdAt ?? 'infinity',
      after?.id ?? LARGEST_BIGINT,
      limit + 1,
    ]);
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    const last = pageRows[pageRows.length - 1];
    return {
      entries: pageRows.map(entryFromRow),
      nextCursor: more && last ? encodeKeysetCursor(String(last.created_at_exact), String(last.id)) : null,
    };
  }

  /**
   * Every entry matching the filters, newest first, one page at a time: for exports too large to
   * hold in memory. Each page is its own statement (no transaction is held open between pages),
   * so entries written after the export started are not included.
   *
   * @example for await (const entries of baton.audit.export({ actor: 'alice' })) write(entries);
   */
  async *export(
    filters: AuditFilters = {},
    options: { pageSize?: number; client?: Queryable } = {},
  ): AsyncGenerator<AuditEntry[], void, undefined> {
    let cursor: string | null = null;
    do {
      const page: AuditPage = await this.list(filters, {
        cursor,
        limit: options.pageSize ?? MAX_AUDIT_ENTRIES_PER_PAGE,
        client: options.client,
      });
      if (page.entries.length > 0) yield page.entries;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * Deletes entries older than `olderThanDays` that match the filters, `batchSize` at a time, then
   * writes an `audit_log.prune` entry (actor, olderThanDays, filters, deleted, cutoff). That entry
   * is written after the last delete, so the prune never deletes it. With `dryRun` it only counts.
   *
   * @example await baton.audit.prune({ olderThanDays: 30, filters: { action: 'job.retry' }, actor: 'alice' });
   */
  async prune(options: AuditPruneOptions): Promise<AuditPruneResult> {
    const olderThanDays = checkInteger('olderThanDays', options.olderThanDays, 0, MAX_AUDIT_PRUNE_DAYS);
    const batchSize = checkInteger('batchSize', options.batchSize ?? 1000, 1, 100_000);
    const filters = checkFilters(pruneFiltersSchema, options.filters, 'audit.prune');
    const actor = options.actor ?? 'library';
    if (typeof actor !== 'string' || actor === '') {
      throw new BatonError('OPTIONS_INVALID', 'audit.prune: actor must be a non-empty string');
    }
    const db = options.client ?? this.db;
    // One cutoff for the whole prune, so every batch (and a dry run) agrees on what is old.
    const [{ cutoff, cutoff_exact: cutoffExact }] = await queryRows(db, auditPruneCutoff, [olderThanDays]);
    const parameters = [...filterParameters(filters), cutoffExact];
    const cutoffDate = cutoff instanceof Date ? cutoff : new Date(String(cutoff));
    if (options.dryRun) {
      const [row] = await queryRows(db, auditPruneCount, parameters);
      return { dryRun: true, matched: Number(row.matched), cutoff: cutoffDate };
    }
    let deleted = 0;
    for (;;) {
      const [row] = await queryRows(db, auditPruneBatch, [...parameters, batchSize]);
      const count = Number(row.deleted);
      deleted += count;
      if (count < batchSize || options.signal?.aborted) break;
    }
    if (deleted > 0 || options.recordEmpty !== false) {
      await queryRows(db, auditPruneRecord, [
        actor,
        JSON.stringify({ olderThanDays, filters, deleted, cutoff: cutoffDate.toISOString() }),
      ]);
    }
    return { dryRun: false, deleted, cutoff: cutoffDate };
  }
}
