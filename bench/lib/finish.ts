import type { SystemAdapter } from '../systems/types.js';
import { postgresCpuSeconds, waitUntilZero } from './db.js';
import { redisCpuSeconds } from './redis.js';

/**
 * Polls the store every 10 ms until it shows no unfinished job (or the deadline, a
 * performance.now() value, passes); also returns the terminal count when the store can give it.
 */
export async function untilFinished(
  sys: SystemAdapter,
  url: string,
  deadline: number,
): Promise<{ finished: boolean; terminal?: number }> {
  if (!sys.jobCounter) {
    if (!sys.unfinishedSql) throw new Error(`${sys.id}: neither unfinishedSql nor jobCounter`);
    return { finished: await waitUntilZero(url, sys.unfinishedSql, deadline) };
  }
  const counter = await sys.jobCounter(url);
  try {
    while (performance.now() < deadline) {
      if ((await counter.unfinished()) === 0) return { finished: true, terminal: await counter.terminal() };
      await new Promise((r) => setTimeout(r, 10));
    }
    return { finished: false };
  } finally {
    await counter.close();
  }
}

/** CPU seconds used so far by the system's store (all PostgreSQL processes, or redis-server). */
export function storeCpuSeconds(sys: SystemAdapter): Promise<number | null> {
  return sys.store === 'redis' ? redisCpuSeconds() : postgresCpuSeconds();
}

/** Resolves when `until` resolves or the deadline (a performance.now() value) passes. */
export async function untilDeadline(until: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    until,
    new Promise((r) => {
      timer = setTimeout(r, Math.max(0, deadline - performance.now()));
    }),
  ]);
  clearTimeout(timer);
}
