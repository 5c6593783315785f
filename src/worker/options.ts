import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { RateLimit } from '../core/kinds.js';
import { BatonError } from '../errors.js';

/**
 * Every worker setting, its environment variable and its default, defined once.
 * Precedence: defaults < environment < options given in code.
 */
export interface WorkerSettings {
  /** `BATON_WORKER_ID`: unique id of this worker. Default `<host>-<pid>-<random>`. */
  id: string;
  /** `BATON_CONCURRENCY`: jobs run at once by this worker. Default 10. */
  concurrency: number;
  /**
   * `BATON_PREFETCH`: jobs of unlimited kinds a worker may claim beyond its free slots, to start the
   * moment a slot frees (their leases are renewed while they wait). Default `auto`: up to 1,024, but
   * never more than about 50 ms of work by the measured run time, so long jobs are not hoarded.
   * A number fixes it; 0 disables.
   */
  prefetch: number | 'auto';
  /**
   * `BATON_HANDOFF`: while this worker has free slots and nothing to claim, offer them so that a
   * single enqueue hands its job straight to it, already leased (one commit between enqueue and
   * start instead of two). PostgreSQL only; kinds with fleet-wide limits are always claimed.
   * Default true; `false` makes every job wait for a claim.
   */
  handoff: boolean;
  /** `BATON_POLL_INTERVAL_MS`: claim even without a notification this often. Default 1000. */
  pollIntervalMs: number;
  /** `BATON_LEASE_MS`: how long a claim holds a job without a heartbeat. Default 600000 (10 min). */
  leaseMs: number;
  /** `BATON_HEARTBEAT_MS`: how often leases are renewed. Default leaseMs / 3, clamped to [1000, leaseMs - 500]. */
  heartbeatMs: number;
  /** `BATON_RECOVERY_INTERVAL_MS`: how often expired leases are swept. Default 5000. */
  recoveryIntervalMs: number;
  /** `BATON_RECOVERY_BATCH_SIZE`: jobs recovered per sweep statement. Default 50. */
  recoveryBatchSize: number;
  /**
   * `BATON_RETAIN_COMPLETED_MS`: completed jobs are deleted this long after they finished (on
   * database time), keeping the jobs table small. 0 keeps them forever. Default 86400000 (1 day).
   */
  retainCompletedMs: number;
  /**
   * `BATON_RETAIN_FAILED_MS`: failed and cancelled jobs, with their attempts and dead letters, are
   * deleted this long after they finished. 0 keeps them forever. Default 1209600000 (14 days).
   */
  retainFailedMs: number;
  /** `BATON_RETENTION_INTERVAL_MS`: how often this worker deletes finished jobs past retention. Default 60000. */
  retentionIntervalMs: number;
  /** `BATON_RETENTION_BATCH_SIZE`: jobs deleted per statement (at most 20 statements per interval). Default 1000. */
  retentionBatchSize: number;
  /** `BATON_BACKOFF_BASE_MS`: first retry delay for kinds without their own backoff. Default 2000. */
  backoffBaseMs: number;
  /** `BATON_BACKOFF_MAX_MS`: retry delay cap for kinds without their own backoff. Default 60000. */
  backoffMaxMs: number;
  /** `BATON_SHUTDOWN_TIMEOUT_MS`: on stop, how long running jobs may finish before they are aborted and handed back. Default 30000. */
  shutdownTimeoutMs: number;
  /** `BATON_LOG_LEVEL`: trace, debug, info, warn, error, fatal or silent. Default info. */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** `BATON_KIND_CONCURRENCY`: JSON map of fleet-wide per-kind concurrency, e.g. `{"video.render":2}`; overrides the kind's own. */
  kindConcurrency: Record<string, number>;
  /** `BATON_KIND_RATE_LIMIT`: JSON map of per-kind rate windows, e.g. `{"email.send":{"max":10,"windowMs":1000}}`. */
  kindRateLimit: Record<string, RateLimit>;
  /** `BATON_GROUP_CONCURRENCY`: JSON map of per-kind, per-group concurrency, e.g. `{"episode.render":1}`. */
  groupConcurrency: Record<string, number>;
  /** `BATON_HANDLER_CONNECTIONS`: pool size for handlers' transactional completions, kept apart from Baton's own. Default 4. */
  handlerConnections: number;
  /** Stop gracefully on these signals (and exit when nothing else listens for them). Default SIGTERM and SIGINT; [] disables. */
  shutdownSignals: NodeJS.Signals[];
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const positiveMap = z.record(z.string(), z.number().int().min(1));
const jsonOf = <T extends z.ZodType>(schema: T) =>
  z.union([
    z
      .string()
      .transform((text, context) => {
        try {
          return JSON.parse(text);
        } catch {
          context.addIssue({ code: 'custom', message: 'is not valid JSON' });
          return z.NEVER;
        }
      })
      .pipe(schema),
    schema,
  ]);

const settingsSchema = z.object({
  id: z.string().min(1).max(200),
  concurrency: int(1, 10_000),
  prefetch: z.union([z.literal('auto'), int(0, 100_000)]),
  handoff: z.union([z.boolean(), z.enum(['true', 'false']).transform((text) => text === 'true')]),
  pollIntervalMs: int(10),
  leaseMs: int(1000),
  heartbeatMs: int(100).optional(),
  recoveryIntervalMs: int(100),
  recoveryBatchSize: int(1, 10_000),
  retainCompletedMs: int(0),
  retainFailedMs: int(0),
  retentionIntervalMs: int(100, 2_147_483_647),
  retentionBatchSize: int(1, 100_000),
  backoffBaseMs: int(0),
  backoffMaxMs: int(0),
  shutdownTimeoutMs: int(0),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  kindConcurrency: jsonOf(positiveMap),
  kindRateLimit: jsonOf(
    z.record(z.string(), z.object({ max: z.number().int().min(1), windowMs: z.number().int().min(1) })),
  ),
  groupConcurrency: jsonOf(positiveMap),
  handlerConnections: int(1, 1000),
  shutdownSignals: z.array(z.enum(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2'])),
});

/** Environment variable of each setting that has one. */
export const WORKER_ENV: Record<string, keyof WorkerSettings> = {
  BATON_WORKER_ID: 'id',
  BATON_CONCURRENCY: 'concurrency',
  BATON_PREFETCH: 'prefetch',
  BATON_HANDOFF: 'handoff',
  BATON_POLL_INTERVAL_MS: 'pollIntervalMs',
  BATON_LEASE_MS: 'leaseMs',
  BATON_HEARTBEAT_MS: 'heartbeatMs',
  BATON_RECOVERY_INTERVAL_MS: 'recoveryIntervalMs',
  BATON_RECOVERY_BATCH_SIZE: 'recoveryBatchSize',
  BATON_RETAIN_COMPLETED_MS: 'retainCompletedMs',
  BATON_RETAIN_FAILED_MS: 'retainFailedMs',
  BATON_RETENTION_INTERVAL_MS: 'retentionIntervalMs',
  BATON_RETENTION_BATCH_SIZE: 'retentionBatchSize',
  BATON_BACKOFF_BASE_MS: 'backoffBaseMs',
  BATON_BACKOFF_MAX_MS: 'backoffMaxMs',
  BATON_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  BATON_LOG_LEVEL: 'logLevel',
  BATON_KIND_CONCURRENCY: 'kindConcurrency',
  BATON_KIND_RATE_LIMIT: 'kindRateLimit',
  BATON_GROUP_CONCURRENCY: 'groupConcurrency',
  BATON_HANDLER_CONNECTIONS: 'handlerConnections',
};

function defaults(): Omit<WorkerSettings, 'heartbeatMs'> {
  return {
    id: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    concurrency: 10,
    prefetch: 'auto',
    handoff: true,
    pollIntervalMs: 1000,
    leaseMs: 600_000,
    recoveryIntervalMs: 5000,
    recoveryBatchSize: 50,
    retainCompletedMs: 86_400_000,
    retainFailedMs: 14 * 86_400_000,
    retentionIntervalMs: 60_000,
    retentionBatchSize: 1000,
    backoffBaseMs: 2000,
    backoffMaxMs: 60_000,
    shutdownTimeoutMs: 30_000,
    logLevel: 'info',
    kindConcurrency: {},
    kindRateLimit: {},
    groupConcurrency: {},
    handlerConnections: 4,
    shutdownSignals: ['SIGTERM', 'SIGINT'],
  };
}

/**
 * Resolves the worker's settings from defaults, the environment and code, and validates them.
 * A bad value throws `CONFIG_INVALID` naming the setting (and its variable), the value and what is accepted.
 */
export function resolveWorkerSettings(
  given: Partial<WorkerSettings>,
  env: NodeJS.ProcessEnv = process.env,
): WorkerSettings {
  const merged: Record<string, unknown> = { ...defaults() };
  const sourceOf: Record<string, string> = {};
  for (const [variable, key] of Object.entries(WORKER_ENV)) {
    const value = env[variable];
    if (value !== undefined && value !== '') {
      merged[key] = value;
      sourceOf[key] = variable;
    }
  }
  for (const [key, value] of Object.entries(given)) {
    if (value !== undefined) {
      merged[key] = value;
      sourceOf[key] = `option ${key}`;
    }
  }
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    const source = sourceOf[key] ?? `option ${key}`;
    const shown = JSON.stringify(merged[key]);
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting ${source}=${shown}: ${issue.message}`,
      parsed.error.issues,
    );
  }
  const settings = parsed.data;
  const heartbeatMs =
    settings.heartbeatMs ??
    Math.min(Math.max(Math.floor(settings.leaseMs / 3), 1000), settings.leaseMs - 500);
  if (heartbeatMs >= settings.leaseMs) {
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting ${sourceOf.heartbeatMs ?? 'heartbeatMs'}=${heartbeatMs}: must be less than leaseMs (${settings.leaseMs})`,
    );
  }
  if (settings.backoffMaxMs < settings.backoffBaseMs) {
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting ${sourceOf.backoffMaxMs ?? 'backoffMaxMs'}=${settings.backoffMaxMs}: must be >= backoffBaseMs (${settings.backoffBaseMs})`,
    );
  }
  return { ...settings, heartbeatMs } as WorkerSettings;
}
