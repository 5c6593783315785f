import { z } from 'zod';
import type { Queryable } from '../db/database.js';
import { BatonError } from '../errors.js';
import type { Job } from '../types.js';

/** What a handler gets besides its payload. */
export interface JobContext<Payload = unknown> {
  /** The claimed job (its lease token included). */
  job: Job<Payload, never>;
  /** Aborted when the handler must stop: timeout, lost lease, cancel, or shutdown past its deadline. `signal.reason` says which. */
  signal: AbortSignal;
  /** Structured logger scoped with the job's id, kind, attempt and trace id. */
  log: JobLogger;
  /** Records progress (any JSON), fenced by the lease like every outcome. Resolves false when the lease is gone. */
  progress(value: unknown): Promise<boolean>;
  /**
   * Runs `work` in the transaction that completes this job (G8): the job row is locked under the
   * lease first, `work` does its own writes on `tx`, and its return value becomes the job's result.
   * If the lease is gone nothing commits and a `LeaseLostError` is thrown.
   */
  completeInTransaction<Result>(work: (tx: Queryable) => Promise<Result>): Promise<Result>;
}

export interface JobLogger {
  info(fields: Record<string, unknown>, message?: string): void;
  warn(fields: Record<string, unknown>, message?: string): void;
  error(fields: Record<string, unknown>, message?: string): void;
}

export interface BackoffPolicy {
  /** First retry delay in ms; each attempt doubles it. */
  baseMs: number;
  /** Cap of the delay in ms. */
  maxMs: number;
}

export interface RateLimit {
  /** At most this many starts of the kind across the fleet... */
  max: number;
  /** ...in any window of this many ms. */
  windowMs: number;
}

export interface KindOptions<Payload, Result, PayloadInput = Payload> {
  /** Unique name, such as `email.send`: letters, digits and `._:-`, at most 200 characters. */
  kind: string;
  /** Validates the payload at enqueue (nothing is written when it fails) and again before the handler runs. */
  payload: z.ZodType<Payload, PayloadInput>;
  /** The handler; a kind without one can still be enqueued (by a producer that does not run it). */
  handler?: (payload: Payload, context: JobContext<Payload>) => Promise<Result>;
  /** Attempts before a failing job is dead-lettered (`max_attempts_exceeded`). Default 5. */
  maxAttempts?: number;
  /** A run longer than this is aborted and counts as a retryable failure. Default 15 minutes. */
  timeoutMs?: number;
  /** Retry delays: exponential from `baseMs` to `maxMs` with full jitter. Default: the worker's setting (2 s to 60 s). */
  backoff?: BackoffPolicy;
  /** Fleet-wide: at most this many jobs of the kind running at once, across all workers. Default unlimited. */
  concurrency?: number;
  /** Fleet-wide: at most `max` starts in any `windowMs`. Default unlimited. */
  rateLimit?: RateLimit;
  /** Fleet-wide: at most this many running jobs of the kind per group. Default unlimited. */
  groupConcurrency?: number;
  /** Default priority of the kind's jobs (higher runs first). Default 0. */
  priority?: number;
  /**
   * Where the handler runs. `'none'` (default): on the worker's event loop. `'thread'`: in a worker
   * thread of its own, terminated at once when the attempt is aborted (timeout, cancel, lost lease,
   * shutdown), so a handler stuck in a CPU loop cannot block the worker's heartbeats or hold its
   * slot. `'process'`: in a child process of its own, killed with SIGKILL when the attempt is
   * aborted; it also contains a handler that crashes its process (`process.abort()`, a native
   * crash, running out of memory): that attempt fails as a retryable `EXECUTION_FAILED` naming the
   * signal or exit code, and the worker goes on. Both start a thread or process per attempt (0.3 s
   * to a few seconds, mostly importing the kind's module; docs/configuration.md) and need
   * `moduleUrl`. An isolated handler gets `job`, `signal`, `log` and `progress`; its payload and
   * result must be structured-clonable, and `completeInTransaction` is not available.
   *
   * @example
   * export const resize = defineKind({
   *   kind: 'image.resize', payload, timeoutMs: 30_000, isolation: 'thread', moduleUrl: import.meta.url,
   *   handler: async (input) => resizeSync(input),
   * });
   */
  isolation?: 'none' | 'thread' | 'process';
  /** The URL of the module that exports this kind (`import.meta.url`): an isolated handler's thread or process imports it. */
  moduleUrl?: string;
}

export interface KindDefinition<Payload = unknown, Result = unknown, PayloadInput = Payload>
  extends KindOptions<Payload, Result, PayloadInput> {
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly priority: number;
}

/** A definition of any payload and result type, for registries and worker options. */
// biome-ignore lint/suspicious/noExplicitAny: handlers are contravariant in their payload; registries hold all kinds.
export type AnyKindDefinition = KindDefinition<any, any, any>;

export const KIND_NAME = /^[A-Za-z0-9_.:-]{1,200}$/;
const positiveInt = z.number().int().min(1);

const kindOptionsSchema = z.object({
  kind: z.string().regex(KIND_NAME, 'letters, digits and ._:- only, 1 to 200 characters'),
  payload: z.custom<z.ZodType>((value) => value instanceof z.ZodType, 'a zod schema'),
  handler: z
    .custom<(...args: never[]) => unknown>((value) => typeof value === 'function', 'a function')
    .optional(),
  maxAttempts: positiveInt.max(1000).optional(),
  timeoutMs: positiveInt.optional(),
  backoff: z.object({ baseMs: positiveInt, maxMs: positiveInt }).optional(),
  concurrency: positiveInt.optional(),
  rateLimit: z.object({ max: positiveInt, windowMs: positiveInt }).optional(),
  groupConcurrency: positiveInt.optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  isolation: z.enum(['none', 'thread', 'process']).optional(),
  moduleUrl: z.url().optional(),
});

/**
 * Defines a kind of job with a typed payload and result.
 *
 * @example
 * const sendEmail = defineKind({
 *   kind: 'email.send',
 *   payload: z.object({ to: z.string().email() }),
 *   maxAttempts: 3,
 *   handler: async ({ to }, { signal }) => { await mailer.send(to, { signal }); return { sent: true }; },
 * });
 */
export function defineKind<Payload, Result = unknown, PayloadInput = Payload>(
  options: KindOptions<Payload, Result, PayloadInput>,
): KindDefinition<Payload, Result, PayloadInput> {
  const checked = kindOptionsSchema.safeParse(options);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new BatonError(
      'OPTIONS_INVALID',
      `kind ${JSON.stringify(options?.kind)}: ${issue.path.join('.') || 'options'}: ${issue.message}`,
      checked.error.issues,
    );
  }
  if ((options.isolation === 'thread' || options.isolation === 'process') && !options.moduleUrl) {
    throw new BatonError(
      'OPTIONS_INVALID',
      `kind ${options.kind}: isolation '${options.isolation}' needs moduleUrl (pass import.meta.url of the module that exports the kind)`,
    );
  }
  if (options.backoff && options.backoff.maxMs < options.backoff.baseMs) {
    throw new BatonError('OPTIONS_INVALID', `kind ${options.kind}: backoff.maxMs must be >= backoff.baseMs`);
  }
  return Object.freeze({
    ...options,
    maxAttempts: options.maxAttempts ?? 5,
    timeoutMs: options.timeoutMs ?? 15 * 60_000,
    priority: options.priority ?? 0,
  });
}

/** Kind definitions by name; refuses two definitions with one name. */
export function indexKinds(kinds: readonly AnyKindDefinition[]): Map<string, AnyKindDefinition> {
  const byName = new Map<string, AnyKindDefinition>();
  for (const kind of kinds) {
    if (byName.has(kind.kind)) throw new BatonError('OPTIONS_INVALID', `kind ${kind.kind} is defined twice`);
    byName.set(kind.kind, kind);
  }
  return byName;
}
