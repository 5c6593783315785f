import { z } from 'zod';
import { type Database, type Queryable, queryRows } from '../db/database.js';
import { BatonError } from '../errors.js';
import { jobInsertHandingOff } from '../sql/handoff.js';
import {
  jobCopyIn,
  jobFindByIdempotencyKeys,
  jobInsertMany,
  jobInsertManyUnkeyed,
  jobsDueNotify,
} from '../sql/jobs-write.js';
import { newJobId } from './job-id.js';
import type { KindDefinition } from './kinds.js';

/** Options of one enqueued job. */
export interface JobOptions {
  /** When the job may start (database time decides when it is due). Default: now. */
  runAt?: Date;
  /** Alternative to `runAt`: start after this many ms. */
  delayMs?: number;
  /** Higher runs first. Default: the kind's priority (0). */
  priority?: number;
  /** Default: the kind's `maxAttempts` (5). */
  maxAttempts?: number;
  /** Per kind: a second enqueue with the same key returns the first job instead of a new one (G9). */
  idempotencyKey?: string;
  /** Carried into every log line and the API, for correlating with the caller's traces. */
  traceId?: string;
  /** Grouping key (an episode, a book, a tenant) for filtering and per-group limits. */
  group?: string;
}

export interface EnqueueOptions extends JobOptions {
  /** The caller's own client or open transaction: the job exists if and only if it commits (G7). */
  client?: Queryable;
  /**
   * Who enqueues, for the audit log: when given, a `job.enqueue` audit entry is written in the
   * same transaction as the job (the HTTP API passes its caller). Default: not audited, as an
   * application's own enqueues are not operator actions.
   */
  actor?: string;
}

export interface EnqueueManyItem<Payload> extends JobOptions {
  payload: Payload;
}

export interface EnqueuedJob {
  id: string;
  /** False when an idempotency key matched an existing job, whose id is returned. */
  created: boolean;
}

/** The most jobs one `enqueueMany` call takes; larger sets are split by the caller. */
export const MAX_JOBS_PER_CALL = 10_000;

const text = (max: number) => z.string().min(1).max(max);
const jobOptionsSchema = z.strictObject({
  runAt: z
    .date()
    .refine((value) => !Number.isNaN(value.getTime()), 'a valid Date')
    .optional(),
  delayMs: z
    .number()
    .int()
    .min(0)
    .max(10 * 365 * 24 * 3600 * 1000)
    .optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  idempotencyKey: text(512).optional(),
  traceId: text(256).optional(),
  group: text(512).optional(),
  payload: z.unknown().optional(),
  client: z.unknown().optional(),
});

/**
 * A validated job row, ready for `jobInsertMany`. Unset options are left out rather than null:
 * the batch's JSON is then about 40% smaller for PostgreSQL to parse (a missing key reads as null).
 */
export interface InsertRow {
  id: string;
  kind: string;
  /** The validated payload as JSON text (made once, for the size check, and sent as is). */
  payload: string;
  priority: number;
  run_at?: string;
  delay_ms?: number;
  max_attempts: number;
  trace_id?: string;
  idempotency_key?: string;
  group_key?: string;
}

/**
 * A job without options (the common case, and every item of a bulk enqueue that gives only a
 * payload) skips the options schema: an empty object is always valid. Measured on the 2-core VM, a
 * fresh process enqueueing 50,000 jobs in batches of 1,000: client CPU 249-270 ms against 281-322,
 * the batches ~5% faster.
 */
const NO_OPTIONS = { success: true } as const;
function hasOptions(options: object): boolean {
  for (const key in options) if (key !== 'payload') return true;
  return false;
}

/**
 * Validates one job (payload against the kind's schema, size, options) and builds its row.
 * `index` names the item in error messages of a batch.
 */
export function buildJobRow(
  kind: KindDefinition,
  payload: unknown,
  options: JobOptions,
  maxPayloadBytes: number,
  index?: number,
): InsertRow {
  const where = index === undefined ? `kind ${kind.kind}` : `kind ${kind.kind}, item ${index}`;
  const checkedOptions = hasOptions(options) ? jobOptionsSchema.safeParse(options) : NO_OPTIONS;
  if (!checkedOptions.success) {
    const issue = checkedOptions.error.issues[0]!;
    throw new BatonError('OPTIONS_INVALID', `${where}: option ${issue.path.join('.')}: ${issue.message}`);
  }
  if (options.runAt && options.delayMs !== undefined) {
    throw new BatonError('OPTIONS_INVALID', `${where}: give runAt or delayMs, not both`);
  }
  if (payload === undefined) throw new BatonError('PAYLOAD_INVALID', `${where}: payload is missing`);
  const checked = kind.payload.safeParse(payload);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new BatonError(
      'PAYLOAD_INVALID',
      `${where}: payload ${issue.path.join('.') || '(root)'}: ${issue.message}`,
      checked.error.issues,
    );
  }
  const json = JSON.stringify(checked.data) ?? 'null';
  const bytes = Buffer.byteLength(json);
  if (bytes > maxPayloadBytes) {
    throw new BatonError(
      'PAYLOAD_TOO_LARGE',
      `${where}: payload is ${bytes} bytes, more than the limit of ${maxPayloadBytes} (maxPayloadBytes)`,
    );
  }
  const row: InsertRow = {
    id: newJobId(),
    kind: kind.kind,
    payload: json,
    priority: options.priority ?? kind.priority,
    max_attempts: options.maxAttempts ?? kind.maxAttempts,
  };
  if (options.runAt) row.run_at = options.runAt.toISOString();
  if (options.delayMs !== undefined) row.delay_ms = options.delayMs;
  if (options.traceId !== undefined) row.trace_id = options.traceId;
  if (options.idempotencyKey !== undefined) row.idempotency_key = options.idempotencyKey;
  if (options.group !== undefined) row.group_key = options.group;
  return row;
}

/** Inserts prepared rows in one statement (one NOTIFY) and maps each to its job id, in input order. */
export async function insertJobs(db: Queryable, rows: InsertRow[]): Promise<EnqueuedJob[]> {
  if (rows.length === 0) return [];
  if (rows.every((row) => row.idempotency_key === undefined)) {
    // Every row is inserted or the statement fails: the ids are the ones the client made.
    await db.query(jobInsertManyUnkeyed, [rowsJson(rows)]);
    return rows.map((row) => ({ id: row.id, created: true }));
  }
  const inserted = await queryRows<{ id: string }>(db, jobInsertMany, [rowsJson(rows)]);
  const created = new Set(inserted.map((row) => row.id));
  const missing = rows.filter((row) => !created.has(row.id));
  const existing = new Map<string, string>();
  if (missing.length > 0) {
    // Only rows whose idempotency key matched an existing (or same-batch) job are missing.
    const found = await queryRows<{ id: string; kind: string; idempotency_key: string }>(
      db,
      jobFindByIdempotencyKeys,
      [missing.map((row) => row.kind), missing.map((row) => row.idempotency_key)],
    );
    for (const row of found) existing.set(`${row.kind}\u0000${row.idempotency_key}`, row.id);
  }
  return rows.map((row) => {
    if (created.has(row.id)) return { id: row.id, created: true };
    const id = existing.get(`${row.kind}\u0000${row.idempotency_key}`);
    if (!id) throw new Error(`job for kind ${row.kind} was neither inserted nor found; this is a bug`);
    return { id, created: false };
  });
}

/**
 * Inserts a batch of single enqueues made on Baton's own connections (group commit): on
 * PostgreSQL, with `handOff`, a batch without idempotency keys goes in one statement that hands
 * its due jobs to workers waiting with free slots (sql/handoff.ts), created running and leased to
 * them; the rest are pending as with `insertJobs`. `offers` tells whether any worker has slots to
 * offer at all (undefined when not looked for). Not for a caller's transaction: its commit could come long after
 * the lease began, and the slots it took would stay locked until then.
 */
export async function insertJobsHandingOff(
  db: Database,
  rows: InsertRow[],
  handOff: boolean,
): Promise<{ jobs: EnqueuedJob[]; offers?: boolean }> {
  if (!handOff || db.engine !== 'postgres' || rows.some((row) => row.idempotency_key !== undefined)) {
    return { jobs: await insertJobs(db, rows) };
  }
  const {
    rows: [answer],
  } = await db.query(jobInsertHandingOff, [rowsJson(rows)]);
  return { jobs: rows.map((row) => ({ id: row.id, created: true })), offers: answer.offers === true };
}

/**
 * Batches of at least this many jobs go through COPY where they can (`insertJobsFast`); a smaller
 * one is one statement, as COPY takes a second round trip (measured on the 2-core VM, median of 8
 * rounds of 30 batches: 100 jobs 1.99 ms by COPY against 1.85 by the statement, 200 jobs 3.04
 * against 3.26).
 */
export const COPY_MIN_ROWS = 200;

/**
 * Inserts a batch of `enqueueMany` made on Baton's own connections (not a caller's transaction).
 * On PostgreSQL a batch of COPY_MIN_ROWS or more whose jobs have no idempotency key (COPY has no ON
 * CONFLICT) and are due at once (no runAt, no delayMs: run_at is the column's default, now()) is
 * written with COPY and its NOTIFY in one transaction: 1,000 jobs in ~10.9 instead of ~14.4 ms
 * (docs/performance.md), as PostgreSQL writes COPY's rows a page at a time instead of one WAL
 * record per row. Anything else goes to `insertJobs`. The result is the same either way.
 */
export async function insertJobsFast(db: Database, rows: InsertRow[]): Promise<EnqueuedJob[]> {
  if (!db.copyIn || rows.length < COPY_MIN_ROWS) return insertJobs(db, rows);
  let data = '';
  for (const row of rows) {
    if (row.idempotency_key !== undefined || row.run_at !== undefined || row.delay_ms !== undefined) {
      return insertJobs(db, rows);
    }
    data += `${row.id}\t${copyText(row.kind)}\t${copyText(row.payload)}\t${row.priority}\t${row.max_attempts}\t${copyText(row.trace_id)}\t${copyText(row.group_key)}\n`;
  }
  await db.copyIn(jobCopyIn, data, jobsDueNotify);
  return rows.map((row) => ({ id: row.id, created: true }));
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value in COPY's text format: backslash, newline, carriage return and tab escaped; none is `\N`. */
function copyText(value: string | undefined): string {
  if (value === undefined) return '\\N';
  return value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]!);
}

/**
 * The batch parameter of `jobInsertMany`: a JSON array of the rows, written by hand so that each
 * payload's JSON (already made for the size check) is spliced in rather than serialised again.
 * Unset options are left out (a missing key reads as null in `jsonb_to_recordset`).
 */
export function rowsJson(rows: readonly InsertRow[]): string {
  let json = '[';
  for (let index = 0; index < rows.length; index++) {
    const row = rows[index]!;
    if (index > 0) json += ',';
    json += `{"id":"${row.id}","kind":${JSON.stringify(row.kind)},"payload":${row.payload},"priority":${row.priority},"max_attempts":${row.max_attempts}`;
    if (row.run_at !== undefined) json += `,"run_at":"${row.run_at}"`;
    if (row.delay_ms !== undefined) json += `,"delay_ms":${row.delay_ms}`;
    if (row.trace_id !== undefined) json += `,"trace_id":${JSON.stringify(row.trace_id)}`;
    if (row.idempotency_key !== undefined)
      json += `,"idempotency_key":${JSON.stringify(row.idempotency_key)}`;
    if (row.group_key !== undefined) json += `,"group_key":${JSON.stringify(row.group_key)}`;
    json += '}';
  }
  return `${json}]`;
}
