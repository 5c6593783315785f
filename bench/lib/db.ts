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
  if (!/^bench_[a-z0-9_]+$/.test(name)) throw new Error(`refusing to reset database ${name}`);
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
 * CPU seconds used so far by the PostgreSQL server at PG_HOST:PG_PORT: utime+stime of its
 * postmaster and of every live child of it, plus the postmaster's cutime+cstime (exited backends
 * are reaped into it). Other clusters on the machine (the fault suite starts private ones, whose
 * exit would make a difference negative) are not counted; other databases' work on this server is.
 * Returns null when /proc is not readable.
 */
export async function postgresCpuSeconds(): Promise<number | null> {
  const TICKS = 100; // CLK_TCK on Linux x86_64
  try {
    const postmaster = await postmasterPid();
    let ticks = 0;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const f = await statFields(pid);
      if (!f) continue;
      if (pid === postmaster) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (f[1] === postmaster) ticks += Number(f[11]) + Number(f[12]); // utime, stime
    }
    return ticks / TICKS;
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/stat from field 3 (state) on: [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime. */
async function statFields(pid: string): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

let postmaster: Promise<string> | undefined;

/** The server's postmaster: the parent of a backend of ours. */
function postmasterPid(): Promise<string> {
  postmaster ??= withClient('postgres', async (c) => {
    const backend = String((await c.query('select pg_backend_pid() as pid')).rows[0].pid);
    const f = await statFields(backend);
    if (!f) throw new Error('cannot read the backend in /proc');
    return f[1]!;
  });
  return postmaster;
}
