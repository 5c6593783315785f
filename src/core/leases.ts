import { z } from 'zod';
import { type Database, type Queryable, queryRows } from '../db/database.js';
import { BatonError, isTerminalCode, TERMINAL_ERROR_CODES } from '../errors.js';
import {
  jobLeaseExpiries,
  jobLeaseExtend,
  jobLeaseState,
  kindLimitsOf,
  kindLimitsSeed,
} from '../sql/jobs-external.js';
import {
  jobClaim,
  jobClaimLimited,
  jobCompleteMany,
  jobFail,
  kindLock,
  leaseRecoverExpired,
} from '../sql/jobs-lease.js';
import type { DeadReason } from '../types.js';
import { DEFAULT_BACKOFF, retryDelayMs } from './backoff.js';
import { type AnyKindDefinition, KIND_NAME } from './kinds.js';

/** Lease lengths a claim or heartbeat may ask for: 1 s to 1 h; 60 s when not given. */
export const LEASE_MS = { min: 1000, max: 3_600_000, default: 60_000 } as const;
/** Jobs one claim may take: 1 to 100; 1 when not given. */
export const CLAIM_BATCH_SIZE = { min: 1, max: 100, default: 1 } as const;
/** Kinds one claim may name. */
export const MAX_CLAIM_KINDS = 50;

const leaseMs = z.number().int().min(LEASE_MS.min).max(LEASE_MS.max);

/** Options of `Leases.claim`; the HTTP API validates its body with the same schema. */
export const claimOptionsSchema = z.strictObject({
  kinds: z
    .array(z.string().regex(KIND_NAME, 'a kind name: letters, digits and ._:- only, 1 to 200 characters'))
    .min(1)
    .max(MAX_CLAIM_KINDS),
  batchSize: z.number().int().min(CLAIM_BATCH_SIZE.min).max(CLAIM_BATCH_SIZE.max).optional(),
  workerId: z.string().min(1).max(512).optional(),
  leaseMs: leaseMs.optional(),
});

/** Options of `Leases.heartbeat`. `progress` is any JSON; leave it out to keep the recorded progress. */
export const heartbeatOptionsSchema = z.strictObject({
  leaseMs: leaseMs.optional(),
  progress: z.unknown().optional(),
});

/** Codes a reported failure may carry: the terminal ones dead-letter at once, EXECUTION_FAILED is retried. */
const reportedCode = z.enum([...TERMINAL_ERROR_CODES, 'EXECUTION_FAILED']);

export const completedOutcomeSchema = z.strictObject({
  outcome: z.literal('completed'),
  result: z.unknown().optional(),
});
export const failedOutcomeSchema = z.strictObject({
  outcome: z.literal('failed'),
  error: z.strictObject({
    code: reportedCode.optional(),
    message: z.string().min(1),
    stack: z.string().optional(),
  }),
});
/** The outcome of an attempt, as `Leases.report` takes it. */
export const leaseOutcomeSchema = z.discriminatedUnion('outcome', [
  completedOutcomeSchema,
  failedOutcomeSchema,
]);

export type ClaimOptions = z.input<typeof claimOptionsSchema>;
export type HeartbeatOptions = z.input<typeof heartbeatOptionsSchema>;
export type LeaseOutcome = z.input<typeof leaseOutcomeSchema>;

/** A job claimed for a worker outside this process: what it needs to run it and to write its outcome. */
export interface LeasedJob {
  id: string;
  kind: string;
  payload: unknown;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
  /** The right to heartbeat and report this attempt; any other token is refused. */
  leaseToken: string;
  /** When the lease ends unless renewed (database time). */
  leaseExpiresAt: Date;
  traceId: string | null;
  group: string | null;
  priority: number;
  createdAt: Date;
}

/** What a report did to the job. */
export interface LeaseReport {
  id: string;
  /** `completed`; `pending` when a failure is retried; `failed` when it was dead-lettered. */
  state: 'completed' | 'pending' | 'failed';
  /** When a retried job is due again (database time); null otherwise. */
  retryAt: Date | null;
  /** Why a failed job was dead-lettered; null otherwise. */
  deadLetterReason: DeadReason | null;
}

/** A job the recovery sweep took back from an expired lease. */
export interface RecoveredJob {
  id: string;
  kind: string;
  /** `pending` (requeued) or `failed` (its attempts were spent: dead-lettered, `max_attempts_exceeded`). */
  state: 'pending' | 'failed';
  attempt: number;
  traceId: string | null;
  /** The worker whose lease expired. */
  lostWorkerId: string | null;
}

interface KindLimitsRow {
  kind: string;
  concurrency: number | null;
  rate_limit: number | null;
  rate_window_ms: number | null;
  group_concurrency: number | null;
}

interface LeaseStateRow {
  id: string;
  kind: string;
  state: string;
  attempts: number;
  held: boolean;
  live: boolean;
  lease_expires_at: Date | null;
}

const uuid = z.uuid();

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const checked = schema.safeParse(value);
  if (checked.success) return checked.data;
  const issue = checked.error.issues[0]!;
  throw new BatonError('OPTIONS_INVALID', `${what}: ${issue.path.join('.') || 'options'}: ${issue.message}`);
}

const isLimited = (row: KindLimitsRow) =>
  row.concurrency !== null || row.rate_limit !== null || row.group_concurrency !== null;

/**
 * Leases for workers outside this process (the HTTP API's claim, heartbeat and report; usable from
 * the library too). Claims are the library worker's own statements, so a remote worker competes
 * fairly with library workers: `skip locked`, `run_at` and priority order, and the fleet-wide
 * limits recorded in `baton.kinds`. Heartbeats and reports are fenced by the lease token (G3).
 *
 * @example
 * const [job] = await baton.leases.claim({ kinds: ['pdf.render'], workerId: 'renderer-1', leaseMs: 30_000 });
 * await baton.leases.heartbeat(job.id, job.leaseToken, { progress: { page: 3 } });
 * await baton.leases.report(job.id, job.leaseToken, { outcome: 'completed', result: { pages: 12 } });
 */
export class Leases {
  /** Kinds whose definition's limits were recorded (if no worker had) by this instance. */
  private readonly seeded = new Set<string>();
  /** Rotates the first limited kind tried, so one busy limited kind cannot starve the others. */
  private limitedTurn = 0;

  constructor(
    readonly db: Database,
    /** The kinds this client defines: their backoff and limits apply to jobs of theirs. */
    private readonly kinds: ReadonlyMap<string, AnyKindDefinition> = new Map(),
  ) {}

  /**
   * Claims up to `batchSize` (default 1) due jobs of `kinds`, like a library worker with that many
   * free slots: kinds without fleet-wide limits in one `jobClaim`, then each limited kind under its
   * kind lock with `jobClaimLimited`. Each job gets a fresh lease of `leaseMs` (default 60 s) on
   * database time and `workerId` (default `external`) as its worker. Answers in claim order
   * (priority, then run time); an empty list when nothing is due.
   */
  async claim(options: ClaimOptions): Promise<LeasedJob[]> {
    const {
      kinds,
      batchSize = CLAIM_BATCH_SIZE.default,
      workerId = 'external',
      leaseMs = LEASE_MS.default,
    } = check(claimOptionsSchema, options, 'claim');
    const served = [...new Set(kinds)];
    await this.seedLimits(served);
    const limits = await queryRows<KindLimitsRow>(this.db, kindLimitsOf, [served]);
    const limited = limits.filter(isLimited).map((row) => row.kind);
    const unlimited = served.filter((kind) => !limited.includes(kind));
    const claimed: Record<string, unknown>[] = [];
    if (unlimited.length > 0) {
      const rows = await this.db.transaction(async (tx) => {
        const { rows } = await tx.query(jobClaim, [unlimited, batchSize, leaseMs, workerId]);
        return withLeaseExpiries(tx, rows);
      });
      claimed.push(...rows);
    }
    for (let index = 0; index < limited.length && claimed.length < batchSize; index++) {
      const kind = limited[(this.limitedTurn + index) % limited.length]!;
      // One transaction per kind, as the worker does: holding two kind locks at once could deadlock
      // against a claimer that takes them in another order.
      const rows = await this.db.transaction(async (tx) => {
        const {
          rows: [lock],
        } = await tx.query(kindLock(this.db.engine), [kind]);
        if (!lock) return [];
        const { rows } = await tx.query(jobClaimLimited, [
          kind,
          batchSize - claimed.length,
          leaseMs,
          workerId,
          lock.concurrency,
          lock.rate_limit,
          lock.rate_window_ms,
          lock.group_concurrency,
        ]);
        return withLeaseExpiries(tx, rows);
      });
      claimed.push(...rows);
    }
    if (limited.length > 0) this.limitedTurn++;
    return claimed.sort(inClaimOrder).map(leasedJobFromRow);
  }

  /**
   * Renews the lease of a running job to `leaseMs` (default 60 s) from now on database time, and
   * records `progress` when given. Only while the job runs under exactly `leaseToken` and the lease
   * has not expired; otherwise nothing changes and it throws `LEASE_LOST` (or `JOB_CANCELLED` when
   * the job was cancelled, `JOB_NOT_FOUND` when there is no such job).
   */
  async heartbeat(
    id: string,
    leaseToken: string,
    options: HeartbeatOptions = {},
  ): Promise<{ id: string; leaseExpiresAt: Date }> {
    this.checkIds(id, leaseToken);
    const { leaseMs = LEASE_MS.default, progress } = check(heartbeatOptionsSchema, options, 'heartbeat');
    const recordsProgress = progress !== undefined;
    const [row] = await queryRows(this.db, jobLeaseExtend, [
      id,
      leaseToken,
      leaseMs,
      recordsProgress,
      recordsProgress ? toJson(progress, 'heartbeat: progress') : null,
    ]);
    if (row) return { id, leaseExpiresAt: row.lease_expires_at };
    throw await this.refusal(id, leaseToken, 'heartbeat');
  }

  /**
   * Writes the outcome of the attempt held under `leaseToken`, as the library worker does: a
   * completion with its result (`jobCompleteMany`), or a failure (`jobFail`) that is retried after
   * the kind's backoff (the default backoff for kinds this client does not define), or
   * dead-lettered at once for a terminal code, or when the attempts are spent. Fenced like
   * `heartbeat`, except that a lease that expired but was not yet taken back still holds: no one
   * else can have the job yet, so its outcome is still the one to keep (as for library workers).
   */
  async report(id: string, leaseToken: string, outcome: LeaseOutcome): Promise<LeaseReport> {
    this.checkIds(id, leaseToken);
    const checked = check(leaseOutcomeSchema, outcome, 'report');
    if (checked.outcome === 'completed') {
      const completed = [{ id, token: leaseToken, result: checked.result ?? null }];
      const { rows } = await this.db.query(jobCompleteMany, [toJson(completed, 'report: result')]);
      if (rows.length === 0) throw await this.refusal(id, leaseToken, 'completion');
      return { id, state: 'completed', retryAt: null, deadLetterReason: null };
    }
    const [job] = await queryRows<LeaseStateRow>(this.db, jobLeaseState, [id, leaseToken]);
    if (!job?.held || job.state !== 'running') throw await this.refusal(id, leaseToken, 'failure', job);
    const { code = 'EXECUTION_FAILED', message, stack } = checked.error;
    const terminal = isTerminalCode(code);
    const delayMs = retryDelayMs(job.attempts, this.kinds.get(job.kind)?.backoff ?? DEFAULT_BACKOFF);
    const [failed] = await queryRows<{ state: 'pending' | 'failed'; run_at: Date }>(this.db, jobFail, [
      id,
      leaseToken,
      terminal,
      delayMs,
      code,
      message.slice(0, 10_000),
      stack?.slice(0, 20_000) ?? null,
      'failed',
    ]);
    if (!failed) throw await this.refusal(id, leaseToken, 'failure');
    return failed.state === 'pending'
      ? { id, state: 'pending', retryAt: failed.run_at, deadLetterReason: null }
      : {
          id,
          state: 'failed',
          retryAt: null,
          deadLetterReason: terminal ? 'non_retryable' : 'max_attempts_exceeded',
        };
  }

  /**
   * The recovery sweep (G5), as every library worker runs it: jobs whose lease expired on database
   * time go back to pending, or are dead-lettered when their attempts are spent, `batchSize`
   * (default 50) per statement until none is left. Safe to run from many processes at once.
   */
  async recoverExpired(options: { batchSize?: number } = {}): Promise<RecoveredJob[]> {
    const batchSize = options.batchSize ?? 50;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new BatonError('OPTIONS_INVALID', `recoverExpired: batchSize must be a positive integer`);
    }
    const recovered: RecoveredJob[] = [];
    for (;;) {
      const rows = await queryRows(this.db, leaseRecoverExpired, [batchSize]);
      for (const row of rows) {
        recovered.push({
          id: row.id,
          kind: row.kind,
          state: row.state,
          attempt: row.attempts,
          traceId: row.trace_id ?? null,
          lostWorkerId: row.lost_worker_id ?? null,
        });
      }
      if (rows.length < batchSize) return recovered;
    }
  }

  /** Records the limits of kinds this client defines, for kinds no worker has published limits for. */
  private async seedLimits(kinds: readonly string[]): Promise<void> {
    const fresh = kinds
      .filter((kind) => !this.seeded.has(kind))
      .map((kind) => this.kinds.get(kind))
      .filter((definition) => definition !== undefined);
    const rows: KindLimitsRow[] = fresh.map((definition) => ({
      kind: definition.kind,
      concurrency: definition.concurrency ?? null,
      rate_limit: definition.rateLimit?.max ?? null,
      rate_window_ms: definition.rateLimit?.windowMs ?? null,
      group_concurrency: definition.groupConcurrency ?? null,
    }));
    const withLimits = rows.filter(isLimited);
    if (withLimits.length > 0) await this.db.query(kindLimitsSeed, [JSON.stringify(withLimits)]);
    for (const row of rows) this.seeded.add(row.kind);
  }

  private checkIds(id: string, leaseToken: string): void {
    if (!uuid.safeParse(id).success)
      throw new BatonError('JOB_NOT_FOUND', `job ${JSON.stringify(id)} does not exist (not a uuid)`);
    if (!uuid.safeParse(leaseToken).success)
      throw new BatonError('OPTIONS_INVALID', 'leaseToken must be the uuid a claim returned');
  }

  /** Why a fenced write changed nothing: no such job, a cancelled job, or a lease that is not (or no longer) this token's. */
  private async refusal(
    id: string,
    leaseToken: string,
    write: string,
    known?: LeaseStateRow,
  ): Promise<BatonError> {
    const [job] = known ? [known] : await queryRows<LeaseStateRow>(this.db, jobLeaseState, [id, leaseToken]);
    if (!job) return new BatonError('JOB_NOT_FOUND', `job ${id} does not exist`);
    if (job.state === 'cancelled') {
      return new BatonError(
        'JOB_CANCELLED',
        `job ${id} was cancelled and its lease revoked: stop working on it; the ${write} was not written`,
      );
    }
    if (job.held && job.state === 'running' && !job.live) {
      return new BatonError(
        'LEASE_LOST',
        `the lease of job ${id} expired at ${job.lease_expires_at?.toISOString()} (database time) and the recovery sweep will take the job back; the ${write} was not written`,
      );
    }
    const where = job.state === 'running' ? 'running under another lease' : job.state;
    return new BatonError(
      'LEASE_LOST',
      `job ${id} no longer runs under this lease token (it is ${where}); the ${write} was not written`,
    );
  }
}

/** The claimed rows with their lease expiry, read in the claim's transaction. */
async function withLeaseExpiries(
  tx: Queryable,
  rows: Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return rows;
  const { rows: expiries } = await tx.query(jobLeaseExpiries, [rows.map((row) => row.id)]);
  const expiryOf = new Map(
    expiries.map((row: { id: string; lease_expires_at: Date }) => [row.id, row.lease_expires_at]),
  );
  return rows.map((row) => ({ ...row, lease_expires_at: expiryOf.get(row.id as string) }));
}

// biome-ignore lint/suspicious/noExplicitAny: claimed rows are untyped until mapped here.
function inClaimOrder(a: Record<string, any>, b: Record<string, any>): number {
  return (
    b.priority - a.priority ||
    new Date(a.run_at).getTime() - new Date(b.run_at).getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

// biome-ignore lint/suspicious/noExplicitAny: claimed rows are untyped until mapped here.
function leasedJobFromRow(row: Record<string, any>): LeasedJob {
  return {
    id: row.id,
    kind: row.kind,
    payload: row.payload,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    leaseToken: row.lease_token,
    leaseExpiresAt: new Date(row.lease_expires_at),
    traceId: row.trace_id ?? null,
    group: row.group_key ?? null,
    priority: row.priority,
    createdAt: new Date(row.created_at),
  };
}

function toJson(value: unknown, what: string): string {
  try {
    return JSON.stringify(value ?? null);
  } catch (error) {
    throw new BatonError('OPTIONS_INVALID', `${what} is not JSON: ${(error as Error).message}`);
  }
}
