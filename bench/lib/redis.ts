import { readdir, readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';

/**
 * The bench's Redis: 127.0.0.1:6379, logical database 5 (BENCH_REDIS_DB overrides). The harness
 * owns that database only: it flushes it before each run, and only after checking it holds the
 * bench's marker key (or nothing at all), so a database someone else uses is never emptied.
 */
export const REDIS_HOST = process.env.BENCH_REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.BENCH_REDIS_PORT ?? 6379);
export const REDIS_DB = Number(process.env.BENCH_REDIS_DB ?? 5);
const MARKER = 'baton-bench:owner';

export function redisOptions() {
  return { host: REDIS_HOST, port: REDIS_PORT, db: REDIS_DB, maxRetriesPerRequest: null };
}

/** A short-lived admin connection that fails fast (no reconnects) when Redis is not there. */
async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ ...redisOptions(), lazyConnect: true, retryStrategy: () => null });
  let lastError: Error | undefined;
  r.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await r.connect().catch((err: Error) => {
      throw new Error(`Redis at ${REDIS_HOST}:${REDIS_PORT}: ${lastError?.message ?? err.message}`);
    });
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** FLUSHDB of the bench's logical database, refusing one that has keys but not the marker. */
export async function resetRedisDb(): Promise<void> {
  await withRedis(async (r) => {
    if ((await r.dbsize()) > 0 && (await r.exists(MARKER)) === 0) {
      throw new Error(
        `refusing to flush Redis db ${REDIS_DB}: it holds keys the bench did not write (set BENCH_REDIS_DB)`,
      );
    }
    await r.flushdb();
    await r.set(MARKER, 'baton bench/ flushes this database before every run');
  });
}

/** Redis version and persistence settings, e.g. "Redis 7.0.15, no persistence (appendonly no, save '')". */
export async function redisDescription(): Promise<string> {
  return withRedis(async (r) => {
    const version = /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? '?';
    const [, aof] = (await r.config('GET', 'appendonly')) as string[];
    const [, save] = (await r.config('GET', 'save')) as string[];
    const [, fsync] = (await r.config('GET', 'appendfsync')) as string[];
    const persistence =
      aof === 'no' && !save
        ? 'no persistence'
        : `persistence: appendonly ${aof}${aof === 'yes' ? ` (appendfsync ${fsync})` : ''}, save '${save}'`;
    return `Redis ${version}, ${persistence}`;
  });
}

/**
 * CPU seconds used so far by every `redis-server` process (utime+stime from /proc, all threads).
 * Returns null when /proc is not readable or no redis-server is found.
 */
export async function redisCpuSeconds(): Promise<number | null> {
  const TICKS = 100; // CLK_TCK on Linux x86_64
  try {
    let ticks = 0;
    let found = false;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'redis-server') continue;
      const f = stat.slice(close + 2).split(' '); // f[0] is field 3 (state)
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
      found = true;
    }
    return found ? ticks / TICKS : null;
  } catch {
    return null;
  }
}
