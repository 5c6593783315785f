import type { SystemAdapter } from '../systems/types.js';
import { postgresCpuSeconds, waitUntilZero } from './db.js';

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

/**
 * CPU seconds used so far by the system's store (the PostgreSQL server, or redis-server). The Redis
 * helpers are imported only for a Redis system: they load ioredis (~11 MB RSS), which would
 * otherwise count in the memory run of a PostgreSQL system.
 */
export async function storeCpuSeconds(sys: SystemAdapter): Promise<number | null> {
  if (sys.store !== 'redis') return postgresCpuSeconds();
  return (await import('./redis.js')).redisCpuSeconds();
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
