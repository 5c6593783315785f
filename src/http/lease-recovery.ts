import type { Baton } from '../core/baton.js';
import { BatonError } from '../errors.js';
import type { Logger } from './logger.js';

/** How often `baton serve` sweeps expired leases by default: the library worker's default (BATON_RECOVERY_INTERVAL_MS). */
export const DEFAULT_RECOVERY_INTERVAL_MS = 5000;

/** The sweep interval to use: `given` (default 5000), checked to be a whole number of ms, 0 to disable. */
export function resolveRecoveryIntervalMs(given: number | undefined): number {
  const intervalMs = given ?? DEFAULT_RECOVERY_INTERVAL_MS;
  if (!Number.isInteger(intervalMs) || intervalMs < 0) {
    throw new BatonError(
      'CONFIG_INVALID',
      `recoveryIntervalMs must be a whole number of ms (0 disables the sweep), got ${given}`,
    );
  }
  return intervalMs;
}

export interface LeaseRecovery {
  /** Stops the timer; a sweep in flight is awaited. */
  stop(): Promise<void>;
}

/**
 * The recovery sweep of `baton serve` (G5): jobs claimed over HTTP by workers that then died lose
 * their leases like any other, but only a process that sweeps takes them back, and a deployment of
 * HTTP workers may have no library worker. So the server sweeps too, at once and then every
 * `intervalMs` (0 disables), with the same statement as the workers (`Leases.recoverExpired`, on
 * database time, `skip locked`, so any number of servers and workers may sweep at once). Sweeps
 * never overlap and the timer does not keep the process alive. Logs `recovery.requeued`,
 * `job.dead_lettered` and `recovery.failed`, as workers do.
 */
export function startLeaseRecovery(baton: Baton, intervalMs: number, logger: Logger): LeaseRecovery {
  if (intervalMs === 0) return { stop: async () => {} };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const sweep = async () => {
    try {
      for (const job of await baton.leases.recoverExpired()) {
        const fields = {
          jobId: job.id,
          kind: job.kind,
          attempt: job.attempt,
          traceId: job.traceId ?? undefined,
          lostWorkerId: job.lostWorkerId,
        };
        if (job.state === 'failed') {
          logger.warn(
            {
              event: 'job.dead_lettered',
              ...fields,
              reason: 'max_attempts_exceeded',
              errorCode: 'EXECUTION_FAILED',
            },
            'lease expired on the last attempt',
          );
        } else {
          logger.warn({ event: 'recovery.requeued', ...fields }, 'lease expired; job requeued');
        }
      }
    } catch (error) {
      logger.warn(
        { event: 'recovery.failed', err: (error as Error).message },
        'recovery sweep failed; retrying at the next interval',
      );
    }
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().finally(() => {
        running = undefined;
        schedule(intervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  schedule(0);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
