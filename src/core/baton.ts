import { z } from 'zod';
import { type Database, type Queryable, queryRows } from '../db/database.js';
import { type MigrateResult, migrate } from '../db/migrate.js';
import { BatonError } from '../errors.js';
import { auditEnqueueRecord } from '../sql/audit.js';
import { deadLetterGet, jobAttemptsList, jobGet, jobListPage, queueStats } from '../sql/jobs-read.js';
import { jobCancel, jobRetry } from '../sql/jobs-write.js';
import { workerListLive } from '../sql/workers.js';
import type {
  Attempt,
  JobDetail,
  JobListFilters,
  JobListPage,
  KindStats,
  QueueStats,
  WorkerInfo,
} from '../types.js';
import { JOB_STATES, type JobState } from '../types.js';
import { AuditLog } from './audit.js';
import { decodeKeysetCursor, encodeKeysetCursor } from './cursor.js';
import { DeadLetters } from './dead-letters.js';
import {
  buildJobRow,
  type EnqueuedJob,
  type EnqueueManyItem,
  type EnqueueOptions,
  type InsertRow,
  insertJobs,
  insertJobsFast,
  MAX_JOBS_PER_CALL,
} from './enqueue.js';
import { EnqueueBatcher } from './group-commit.js';
import { type AnyKindDefinition, indexKinds, type KindDefinition } from './kinds.js';
import { Leases } from './leases.js';
import { attemptFromRow, deadLetterFromRow, jobFromRow, workerFromRow } from './rows.js';

export interface BatonCoreOptions {
  /** Kinds this client may enqueue by name (a definition object can always be passed directly). */
  kinds?: readonly AnyKindDefinition[];
  /** Largest payload accepted at enqueue, in bytes of JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
}

const uuid = z.uuid();

/** The first page's keyset: every job's id sorts before this one. */
const LARGEST_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/** The largest page `listJobs` returns. */
export const MAX_JOBS_PER_PAGE = 500;

const jobListFiltersSchema = z.strictObject({
  kind: z.string().min(1).max(512).optional(),
  state: z.enum(JOB_STATES as [JobState, ...JobState[]]).optional(),
  group: z.string().min(1).max(512).optional(),
  traceId: z.string().min(1).max(256).optional(),
  errorCode: z.string().min(1).max(256).optional(),
  createdFrom: z.date().optional(),
  createdBefore: z.date().optional(),
});

/** Options of an operator action (cancel, retry): each is written to the audit log in the same statement. */
export interface OperatorOptions {
  client?: Queryable;
  /** Who acts, as recorded in the audit log. Default `library`. */
  actor?: string;
}

/**
 * The core of Baton over one database: enqueue, read, cancel and retry jobs, and statistics.
 * It knows nothing of workers' internals or HTTP.
 */
export class Baton {
  readonly kinds: Map<string, AnyKindDefinition>;
  readonly maxPayloadBytes: number;
  /** Dead letters: list, preview, batch retry. */
  readonly deadLetters: DeadLetters;
  /** The audit log of operator actions: list, export, prune. */
  readonly audit: AuditLog;
  /** Leases for workers outside this process (the HTTP API's claim, heartbeat and report). */
  readonly leases: Leases;

  /** Concurrent single enqueues share statements and commits (group commit); see group-commit.ts. */
  private readonly enqueueBatcher: EnqueueBatcher;

  constructor(
    readonly db: Database,
    options: BatonCoreOptions = {},
  ) {
    this.enqueueBatcher = new EnqueueBatcher(db);
    this.deadLetters = new DeadLetters(db);
    this.audit = new AuditLog(db);
    this.kinds = indexKinds(options.kinds ?? []);
    this.leases = new Leases(db, this.kinds);
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < 1) {
      throw new BatonError(
        'OPTIONS_INVALID',
        `maxPayloadBytes must be a positive integer, got ${options.maxPayloadBytes}`,
      );
    }
  }

  /** Applies pending schema migrations; safe to call from many processes at once. */
  migrate(): Promise<MigrateResult> {
    return migrate(this.db);
  }

  /**
   * Enqueues one job. The payload is validated against the kind's schema first; nothing is written
   * when it fails (`PAYLOAD_INVALID`, `PAYLOAD_TOO_LARGE`).
   *
   * @example await baton.enqueue(sendEmail, { to: 'a@example.com' }, { delayMs: 60_000, client: tx });
   */
  async enqueue<PayloadInput>(
    // biome-ignore lint/suspicious/noExplicitAny: any payload output and result type
    kind: KindDefinition<any, any, PayloadInput> | string,
    payload: NoInfer<PayloadInput>,
    options: EnqueueOptions = {},
  ): Promise<EnqueuedJob> {
    const { client, actor, ...jobOptions } = options;
    const row = buildJobRow(this.resolveKind(kind), payload, jobOptions, this.maxPayloadBytes);
    if (actor !== undefined) {
      const [job] = await this.insertAudited([row], actor, client);
      return job!;
    }
    if (client) {
      const [job] = await insertJobs(client, [row]);
      return job!;
    }
    return this.enqueueBatcher.enqueue(row);
  }

  /** Enqueues many jobs of one kind in one statement (one round trip, one NOTIFY); results keep input order. */
  async enqueueMany<PayloadInput>(
    // biome-ignore lint/suspicious/noExplicitAny: any payload output and result type
    kind: KindDefinition<any, any, PayloadInput> | string,
    items: readonly EnqueueManyItem<NoInfer<PayloadInput>>[],
    options: { client?: Queryable; actor?: string } = {},
  ): Promise<EnqueuedJob[]> {
    if (!Array.isArray(items)) throw new BatonError('OPTIONS_INVALID', 'enqueueMany takes an array of items');
    if (items.length > MAX_JOBS_PER_CALL) {
      throw new BatonError(
        'OPTIONS_INVALID',
        `enqueueMany takes at most ${MAX_JOBS_PER_CALL} jobs per call, got ${items.length}`,
      );
    }
    const definition = this.resolveKind(kind);
    // Each item is its own options (their schema allows `payload`): no copy of it per job.
    const rows = items.map((item, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw new BatonError(
          'OPTIONS_INVALID',
          `kind ${definition.kind}, item ${index}: expected an object with a payload, got ${item === null ? 'null' : Array.isArray(item) ? 'an array' : typeof item}`,
        );
      }
      return buildJobRow(definition, item.payload, item, this.maxPayloadBytes, index);
    });
    if (options.actor !== undefined) return this.insertAudited(rows, options.actor, options.client);
    return options.client ? insertJobs(options.client, rows) : insertJobsFast(this.db, rows);
  }

  /** Inserts jobs of one kind and their `job.enqueue` audit entry, atomically. */
  private async insertAudited(rows: InsertRow[], actor: string, client?: Queryable): Promise<EnqueuedJob[]> {
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200) {
      throw new BatonError('OPTIONS_INVALID', 'actor must be a string of 1 to 200 characters');
    }
    const write = async (db: Queryable) => {
      const jobs = await insertJobs(db, rows);
      const one = rows.length === 1 ? rows[0]! : null;
      await db.query(auditEnqueueRecord, [
        actor,
        rows[0]!.kind,
        one ? jobs[0]!.id : null,
        one?.group_key ?? null,
        one?.trace_id ?? null,
        JSON.stringify({
          count: jobs.length,
          created: jobs.filter((job) => job.created).length,
          jobIds: jobs.slice(0, 100).map((job) => job.id),
        }),
      ]);
      return jobs;
    };
    return client ? write(client) : this.db.transaction(write);
  }

  /** A job with its attempt history and dead letter, or null. */
  async getJob(id: string, options: { client?: Queryable } = {}): Promise<JobDetail | null> {
    if (!uuid.safeParse(id).success) return null;
    const db = options.client ?? this.db;
    const [row] = await queryRows(db, jobGet, [id]);
    if (!row) return null;
    const job = jobFromRow(row);
    const [attempts, [deadLetter]] = await Promise.all([
      queryRows(db, jobAttemptsList, [id]),
      queryRows(db, deadLetterGet, [id]),
    ]);
    const attemptHistory: Attempt[] = attempts.map(attemptFromRow);
    // The attempt in flight, or the one that completed, lives on the job row itself. Attempt numbers
    // restart after an operator's retry, so the current one is matched by its start time too.
    const recorded = attemptHistory.some(
      (attempt) =>
        attempt.attempt === job.attempts && attempt.startedAt?.getTime() === job.lastAttemptAt?.getTime(),
    );
    if (
      job.attempts > 0 &&
      !recorded &&
      (job.state === 'running' || job.state === 'completed' || job.state === 'cancelled')
    ) {
      attemptHistory.push({
        attempt: job.attempts,
        workerId: job.workerId,
        startedAt: job.lastAttemptAt,
        finishedAt: job.state === 'running' ? null : job.finishedAt,
        outcome: job.state === 'running' ? 'running' : job.state === 'completed' ? 'completed' : 'aborted',
        errorCode: null,
        errorMessage: null,
        errorStack: null,
      });
    }
    return { ...job, attemptHistory, deadLetter: deadLetter ? deadLetterFromRow(deadLetter) : null };
  }

  /**
   * One page of jobs, newest first (by creation time, then id), matching every filter given.
   * Pass the returned `nextCursor` to get the next page; it is null after the last one. Paging is
   * keyset-based: jobs created meanwhile appear on no later page and cause no repeats or gaps.
   *
   * @example const { jobs, nextCursor } = await baton.listJobs({ kind: 'email.send', state: 'failed' }, { limit: 50 });
   */
  async listJobs(
    filters: JobListFilters = {},
    page: { cursor?: string | null; limit?: number; client?: Queryable } = {},
  ): Promise<JobListPage> {
    const checked = jobListFiltersSchema.safeParse(filters);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new BatonError('OPTIONS_INVALID', `listJobs: filter ${issue.path.join('.')}: ${issue.message}`);
    }
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_JOBS_PER_PAGE) {
      throw new BatonError(
        'OPTIONS_INVALID',
        `listJobs: limit must be an integer from 1 to ${MAX_JOBS_PER_PAGE}, got ${page.limit}`,
      );
    }
    const after = page.cursor
      ? decodeKeysetCursor(page.cursor, (id) => uuid.safeParse(id).success, 'listJobs')
      : null;
    const { kind, state, group, traceId, errorCode, createdFrom, createdBefore } = checked.data;
    // One row more than the page tells whether another page follows.
    const rows = await queryRows(page.client ?? this.db, jobListPage, [
      kind ?? null,
      state ?? null,
      group ?? null,
      traceId ?? null,
      errorCode ?? null,
      createdFrom?.toISOString() ?? '-infinity',
      createdBefore?.toISOString() ?? 'infinity',
      after?.id ?? LARGEST_UUID,
      limit + 1,
    ]);
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    const last = pageRows[pageRows.length - 1];
    return {
      jobs: pageRows.map((row) => jobFromRow(row)),
      // The list pages on the id alone; the cursor keeps the shape the other lists share.
      nextCursor:
        more && last ? encodeKeysetCursor(new Date(last.created_at).toISOString(), String(last.id)) : null,
    };
  }

  /** Counts per kind and state, and the kinds that have pending jobs but no live worker. */
  async stats(): Promise<QueueStats> {
    const rows = await queryRows<Record<string, number | string>>(this.db, queueStats);
    const kinds: KindStats[] = rows.map((row) => ({
      kind: String(row.kind),
      pending: Number(row.pending),
      due: Number(row.due),
      running: Number(row.running),
      completed: Number(row.completed),
      failed: Number(row.failed),
      cancelled: Number(row.cancelled),
      deadLettered: Number(row.dead_lettered),
      liveWorkers: Number(row.live_workers),
    }));
    const workers = await this.listWorkers();
    return {
      kinds,
      kindsWithoutWorker: kinds
        .filter((kind) => kind.pending > 0 && kind.liveWorkers === 0)
        .map((kind) => kind.kind),
      liveWorkers: workers.length,
    };
  }

  /** Live workers (those whose heartbeat is recent). */
  async listWorkers(): Promise<WorkerInfo[]> {
    return (await queryRows(this.db, workerListLive)).map(workerFromRow);
  }

  /**
   * Cancels a pending job at once, or a running one: its lease is revoked (so its result can no
   * longer be written) and its worker aborts the handler's signal with reason `cancelled`.
   */
  async cancel(id: string, options: OperatorOptions = {}): Promise<{ previousState: string }> {
    const row = await this.changeState(jobCancel, id, options);
    if (!row.cancelled) {
      throw new BatonError(
        'JOB_STATE_CONFLICT',
        `job ${id} is ${row.previous_state}; only pending or running jobs can be cancelled`,
      );
    }
    return { previousState: row.previous_state };
  }

  /** Puts a failed or cancelled job back to pending with a fresh round of attempts. */
  async retry(id: string, options: OperatorOptions = {}): Promise<{ previousState: string }> {
    const row = await this.changeState(jobRetry, id, options);
    if (!row.retried) {
      throw new BatonError(
        'JOB_STATE_CONFLICT',
        `job ${id} is ${row.previous_state}; only failed or cancelled jobs can be retried`,
      );
    }
    return { previousState: row.previous_state };
  }

  /** Waits for enqueues in flight, then closes the database. */
  async close(): Promise<void> {
    await this.enqueueBatcher.drained();
    await this.db.close();
  }

  resolveKind(kind: AnyKindDefinition | string): AnyKindDefinition {
    if (typeof kind !== 'string') return kind;
    const known = this.kinds.get(kind);
    if (!known) {
      throw new BatonError(
        'KIND_UNKNOWN',
        `kind ${JSON.stringify(kind)} is not defined in this client (known: ${[...this.kinds.keys()].join(', ') || 'none'})`,
      );
    }
    return known;
  }

  private async changeState(statement: string, id: string, { client, actor = 'library' }: OperatorOptions) {
    if (!uuid.safeParse(id).success)
      throw new BatonError('JOB_NOT_FOUND', `job ${JSON.stringify(id)} does not exist (not a uuid)`);
    const [row] = await queryRows<{ previous_state: string; cancelled?: boolean; retried?: boolean }>(
      client ?? this.db,
      statement,
      [id, actor],
    );
    if (!row) throw new BatonError('JOB_NOT_FOUND', `job ${id} does not exist`);
    return row;
  }
}
