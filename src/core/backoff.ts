import type { BackoffPolicy } from './kinds.js';

/**
 * Retry delays of kinds without their own `backoff`, where no worker setting applies (a failure
 * reported over HTTP): the same as the worker's defaults (BATON_BACKOFF_BASE_MS, BATON_BACKOFF_MAX_MS).
 */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 2000, maxMs: 60_000 });

/**
 * Delay before the next attempt after `attempt` failed: exponential (base * 2^(attempt-1)) capped
 * at max, with "equal jitter" (half fixed, half random) so that a burst of failures spreads out
 * but never retries sooner than half the nominal delay.
 */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(nominal / 2 + (random() * nominal) / 2);
}
