import type { Baton } from '../core/baton.js';
import type { Logger } from './logger.js';
import type { HttpSettings } from './settings.js';

/** The first periodic prune runs this long after start (or after one interval, if that is shorter). */
const FIRST_PRUNE_DELAY_MS = 5_000;

/** The actor of the periodic prune's audit entries. */
export const PERIODIC_PRUNE_ACTOR = 'baton';

export interface PeriodicAuditPrune {
  /** Stops the timer; a prune in flight stops after its current batch and is awaited. */
  stop(): Promise<void>;
}

/**
 * Prunes audit entries older than `auditTtlDays` soon after start, then every
 * `auditPruneIntervalMs`, `auditPruneBatchSize` entries per statement, as actor `baton`; with a TTL
 * of 0 it does nothing. Runs never overlap (the next is scheduled when one ends), the timer does
 * not keep the process alive, and several servers pruning at once delete disjoint entries (the
 * prune skips rows another holds). Logs `audit.pruned` and `audit.prune_failed`.
 */
export function startPeriodicAuditPrune(
  baton: Baton,
  settings: Pick<HttpSettings, 'auditTtlDays' | 'auditPruneIntervalMs' | 'auditPruneBatchSize'>,
  logger: Logger,
): PeriodicAuditPrune {
  if (settings.auditTtlDays === 0) return { stop: async () => {} };
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const run = async () => {
    const started = Date.now();
    try {
      const result = await baton.audit.prune({
        olderThanDays: settings.auditTtlDays,
        batchSize: settings.auditPruneBatchSize,
        actor: PERIODIC_PRUNE_ACTOR,
        recordEmpty: false,
        signal: stopping.signal,
      });
      const deleted = result.dryRun ? 0 : result.deleted;
      logger.info({
        event: 'audit.pruned',
        deleted,
        olderThanDays: settings.auditTtlDays,
        cutoff: result.cutoff.toISOString(),
        durationMs: Date.now() - started,
      });
    } catch (error) {
      logger.error({ event: 'audit.prune_failed', olderThanDays: settings.auditTtlDays, err: error });
    }
  };

  const schedule = (delayMs: number) => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        schedule(settings.auditPruneIntervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  schedule(Math.min(FIRST_PRUNE_DELAY_MS, settings.auditPruneIntervalMs));

  return {
    async stop() {
      stopping.abort();
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
