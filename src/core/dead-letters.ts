import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type Database, type Queryable, queryRows } from '../db/database.js';
import { BatonError } from '../errors.js';
import {
  deadLetterCount,
  deadLetterListPage,
  deadLetterRetryBatch,
  jobStatesByIds,
} from '../sql/dead-letters.js';
import type {
  DeadLetterFilters,
  DeadLetterItem,
  DeadLetterPage,
  DeadLetterPreviewPage,
  DeadLetterRetryResult,
  DeadLetterSkipReason,
  JobState,
} from '../types.js';
import { decodeKeysetCursor, encodeKeysetCursor } from './cursor.js';
import { deadLetterFromRow } from './rows.js';

/** The largest page of `list` and `preview`, and the most jobs one batch retry touches. */
export const MAX_DEAD_LETTERS_PER_PAGE = 500;
export const MAX_JOBS_PER_RETRY_BATCH = 500;

/** The first page's keyset: every dead letter sorts before ('infinity', this id). */
const LARGEST_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

const uuid = z.uuid();

/** Dead-letter filters as the core accepts them (the HTTP API checks the same fields' types first). */
export const deadLetterFiltersSchema = z.strictObject({
  group: z.string().min(1).max(512).optional(),
  kind: z.string().min(1).max(512).optional(),
  traceId: z.string().min(1).max(256).optional(),
  reason: z.enum(['non_retryable', 'max_attempts_exceeded']).optional(),
  errorCode: z.string().min(1).max(256).optional(),
});

export interface DeadLetterPageOptions {
  /** A `nextCursor` from the previous page of the same filters; none for the first page. */
  cursor?: string | null;
  /** Dead letters per page, 1 to 500. Default 50. */
  limit?: number;
  client?: Queryable;
}

export interface DeadLetterRetryOptions {
  /** Retry the dead letters matching these filters (`{}`: any), newest first. Give this or `jobIds`. */
  filters?: DeadLetterFilters;
  /**
   * Retry exactly these jobs (1 to 500 uuids; a repeated id counts once), e.g. the ones an operator
   * ticked on a preview page. Any failed or cancelled job is retried, dead-lettered or not.
   */
  jobIds?: readonly string[];
  /**
   * The most jobs the batch touches, 1 to 500. With `filters`: default 500, and the first `limit`
   * matches in preview order are taken. With `jobIds`: default their number, and more ids than
   * `limit` are refused (a batch never silently drops ids it was given).
   */
  limit?: number;
  /** Change nothing and write no audit entry; answer what the batch would retry and skip. Default false. */
  dryRun?: boolean;
  /** Who acts, as recorded in the audit log. Default `library`. */
  actor?: string;
  /** Run in the caller's transaction (or on its connection). */
  client?: Queryable;
}

const retryOptionsSchema = z.strictObject({
  filters: deadLetterFiltersSchema.optional(),
  jobIds: z.array(uuid).min(1).max(MAX_JOBS_PER_RETRY_BATCH).optional(),
  limit: z.number().int().min(1).max(MAX_JOBS_PER_RETRY_BATCH).optional(),
  dryRun: z.boolean().optional(),
  actor: z.string().min(1).max(256).optional(),
  client: z.custom<Queryable>((value) => typeof (value as Queryable)?.query === 'function').optional(),
});

/** Zod's first issue as OPTIONS_INVALID naming the field: `deadLetters.retry: jobIds.3: Invalid UUID`. */
function optionsInvalid(operation: string, error: z.ZodError, prefix = ''): BatonError {
  const issue = error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  return new BatonError(
    'OPTIONS_INVALID',
    `deadLetters.${operation}: ${path || 'options'}: ${issue.message}`,
  );
}

function checkFilters(operation: string, filters: unknown): DeadLetterFilters {
  const checked = deadLetterFiltersSchema.safeParse(filters ?? {});
  if (!checked.success) throw optionsInvalid(operation, checked.error, 'filters');
  return checked.data;
}

function filterParams(filters: DeadLetterFilters): (string | null)[] {
  const { group, kind, traceId, reason, errorCode } = filters;
  return [group ?? null, kind ?? null, traceId ?? null, reason ?? null, errorCode ?? null];
}

function checkPageLimit(operation: string, limit: unknown): number {
  const value = limit ?? 50;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_DEAD_LETTERS_PER_PAGE) {
    throw new BatonError(
      'OPTIONS_INVALID',
      `deadLetters.${operation}: limit must be an integer from 1 to ${MAX_DEAD_LETTERS_PER_PAGE}, got ${String(limit)}`,
    );
  }
  return value as number;
}

/** `failed` and `cancelled` jobs can be retried; any other state is a reason to skip. */
const isRetryable = (state: JobState | null): boolean => state === 'failed' || state === 'cancelled';
const skipReason = (state: JobState | null): DeadLetterSkipReason =>
  `job_${state ?? 'missing'}` as DeadLetterSkipReason;

/**
 * Dead letters: list them, preview a batch retry without side effects, and retry a batch (by
 * filters or by job ids) as one audited statement.
 *
 * @example
 * const preview = await baton.deadLetters.preview({ kind: 'email.send', reason: 'non_retryable' });
 * const result = await baton.deadLetters.retry({ filters: { kind: 'email.send' }, limit: 100, actor: 'alice' });
 */
export class DeadLetters {
  constructor(readonly db: Database) {}

  /**
   * One page of dead letters matching every filter given, newest first (by when the job was
   * dead-lettered, then job id), each with its job's state now. Keyset paging: dead letters written
   * while paging appear on no later page and cause no repeats or gaps.
   */
  async list(filters: DeadLetterFilters = {}, page: DeadLetterPageOptions = {}): Promise<DeadLetterPage> {
    return this.page('list', checkFilters('list', filters), page);
  }

  /**
   * What a batch retry by the same filters would touch, paged like `list` (a retry with `limit` N
   * takes the first N, in this order), with the number of matches and of retryable ones (jobs still
   * failed or cancelled). It reads only: nothing is locked, changed or audited.
   */
  async preview(
    filters: DeadLetterFilters = {},
    page: DeadLetterPageOptions = {},
  ): Promise<DeadLetterPreviewPage> {
    const checked = checkFilters('preview', filters);
    const db = page.client ?? this.db;
    const [listed, [counts]] = await Promise.all([
      this.page('preview', checked, page),
      queryRows<{ total: number; retryable: number }>(db, deadLetterCount, filterParams(checked)),
    ]);
    return { ...listed, total: counts?.total ?? 0, retryable: counts?.retryable ?? 0 };
  }

  /**
   * Retries a batch of jobs: by `filters` (the dead letters matching them, newest first, up to
   * `limit`) or by `jobIds`, never both. A job still failed or cancelled goes back to pending with a
   * fresh round of attempts and loses its dead letter; any other (pending, running, completed, or
   * no longer there) is skipped with its reason. Every retried and skipped job gets an audit entry
   * (`job.retry`, `job.retry_skipped`) and the batch a summary (`dead_letters.retry_batch`), all with
   * one batch id and `actor`. It is one statement: all of it is written, or none. Concurrent
   * batches over the same jobs retry each job once in total. With `dryRun`, nothing is written.
   */
  async retry(options: DeadLetterRetryOptions): Promise<DeadLetterRetryResult> {
    const checked = retryOptionsSchema.safeParse(options ?? {});
    if (!checked.success) throw optionsInvalid('retry', checked.error);
    const { filters, jobIds, dryRun = false, actor = 'library', client } = checked.data;
    if ((filters === undefined) === (jobIds === undefined)) {
      throw new BatonError(
        'OPTIONS_INVALID',
        `deadLetters.retry: give exactly one of filters or jobIds, got ${filters ? 'both' : 'neither'}`,
      );
    }
    const db = client ?? this.db;
    let ids: string[];
    let limit: number;
    // Job id → its state now (null: no such job), as read before the batch; used by a dry run only.
    let states: Map<string, JobState | null>;
    if (jobIds) {
      ids = [...new Set(jobIds.map((id) => id.toLowerCase()))];
      limit = checked.data.limit ?? ids.length;
      if (ids.length > limit) {
        throw new BatonError(
          'OPTIONS_INVALID',
          `deadLetters.retry: limit is ${limit} but jobIds has ${ids.length} distinct ids; send at most limit ids`,
        );
      }
      states = new Map(ids.map((id) => [id, null]));
      if (dryRun) {
        const rows = await queryRows<{ id: string; state: JobState }>(db, jobStatesByIds, [ids]);
        for (const row of rows) states.set(row.id, row.state);
      }
    } else {
      limit = checked.data.limit ?? MAX_JOBS_PER_RETRY_BATCH;
      const matched = await this.page('retry', filters!, { limit, client: db });
      ids = matched.deadLetters.map((deadLetter) => deadLetter.jobId);
      states = new Map(matched.deadLetters.map((deadLetter) => [deadLetter.jobId, deadLetter.state]));
    }

    if (dryRun) {
      return {
        batchId: null,
        dryRun,
        retried: ids.filter((id) => isRetryable(states.get(id) ?? null)),
        skipped: ids
          .filter((id) => !isRetryable(states.get(id) ?? null))
          .map((id) => ({ jobId: id, reason: skipReason(states.get(id) ?? null) })),
        matched: ids.length,
      };
    }

    // A batch that matched nothing still writes its summary: the operator's action is on record.
    const batchId = randomUUID();
    const details = filters ? { by: 'filters', filters, limit } : { by: 'jobIds', jobIds: ids, limit };
    const rows = await queryRows<{ id: string; previous_state: JobState | null; retried: boolean }>(
      db,
      deadLetterRetryBatch,
      [ids, actor, batchId, JSON.stringify(details)],
    );
    return {
      batchId,
      dryRun: false,
      retried: rows.filter((row) => row.retried).map((row) => row.id),
      skipped: rows
        .filter((row) => !row.retried)
        .map((row) => ({ jobId: row.id, reason: skipReason(row.previous_state) })),
      matched: rows.length,
    };
  }

  private async page(
    operation: string,
    filters: DeadLetterFilters,
    page: DeadLetterPageOptions,
  ): Promise<DeadLetterPage> {
    const limit = checkPageLimit(operation, page.limit);
    const after = page.cursor
      ? decodeKeysetCursor(page.cursor, (id) => uuid.safeParse(id).success, `deadLetters.${operation}`)
      : null;
    // One row more than the page tells whether another page follows.
    const rows = await queryRows(page.client ?? this.db, deadLetterListPage, [
      ...filterParams(filters),
      after?.createdAt ?? 'infinity',
      after?.id ?? LARGEST_UUID,
      limit + 1,
    ]);
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    const last = pageRows[pageRows.length - 1];
    return {
      deadLetters: pageRows.map(
        (row): DeadLetterItem => ({ ...deadLetterFromRow(row), state: row.state as JobState }),
      ),
      nextCursor:
        more && last ? encodeKeysetCursor(String(last.created_at_exact), String(last.job_id)) : null,
    };
  }
}
