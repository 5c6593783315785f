import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;

export function dbUrl(db: string): string {
  return `postgres://postgres@${PG_HOST}:${PG_PORT}/${db}`;
}

async function withClient<T>(db: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl(db) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Drop and create `name` (names are fixed identifiers chosen by the harness, never user input). */
export async function resetDatabase(name: string): Promise<void> {
  if (!/^bench_[a-z]+$/.test(name)) throw new Error(`refusing to reset database ${name}`);
  await withClient('postgres', async (c) => {
    await c.query(`drop database if exists ${name} with (force)`);
    await c.query(`create database ${name}`);
  });
}

export async function checkpoint(): Promise<void> {
  await withClient('postgres', (c) => c.query('checkpoint').then(() => undefined));
}

export async function serverVersion(): Promise<string> {
  return withClient('postgres', async (c) => (await c.query('show server_version')).rows[0].server_version);
}

export async function count(db: string, sql: string): Promise<number> {
  return withClient(db, async (c) => (await c.query(sql)).rows[0].n as number);
}

/** Repeatedly runs `sql` (one row, column n) until n is 0 or the deadline passes. */
export async function waitUntilZero(
  url: string,
  sql: string,
  deadline: number,
  everyMs = 10,
): Promise<boolean> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    while (performance.now() < deadline) {
      if ((await c.query(sql)).rows[0].n === 0) return true;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return false;
  } finally {
    await c.end();
  }
}

/**
 * CPU seconds used so far by the PostgreSQL server: utime+stime of every live `postgres`
 * process, plus cutime+cstime of the postmaster (exited backends are reaped into it).
 * Returns null when /proc is not readable.
 */
export async function postgresCpuSeconds(): Promise<number | null> {
  const TICKS = 100; // CLK_TCK on Linux x86_64
  try {
    let ticks = 0;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
      const f = stat.slice(close + 2).split(' '); // f[0] is field 3 (state)
      const ppidIsPostgres = await isPostgres(f[1]!);
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
      if (!ppidIsPostgres) ticks += Number(f[13]) + Number(f[14]); // postmaster: cutime, cstime
    }
    return ticks / TICKS;
  } catch {
    return null;
  }
}

async function isPostgres(pid: string): Promise<boolean> {
  try {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8');
    return comm.trim() === 'postgres';
  } catch {
    return false;
  }
}
