/**
 * A private PostgreSQL cluster for the fault suite, so that restarts and immediate stops never
 * disturb the shared server on 5432. initdb into a temporary folder, 127.0.0.1 only, trust auth,
 * fsync and synchronous_commit at their defaults (on). Always removed at the end, also when the
 * run fails or is interrupted (see `removeOnExit`).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const BIN = process.env.BATON_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Cluster {
  port: number;
  dir: string;
  /** URL of a database on the cluster (default `postgres`). */
  url(database?: string): string;
  start(): Promise<void>;
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** Runs one statement on the `postgres` database of the cluster. */
  // biome-ignore lint/suspicious/noExplicitAny: rows of ad hoc admin statements.
  admin<Row = any>(text: string, params?: unknown[]): Promise<Row[]>;
  /** The server log so far. */
  logPath: string;
  destroy(): Promise<void>;
}

/** As root, PostgreSQL's tools must run as the `postgres` OS user; otherwise as ourselves. */
const asRoot = process.getuid?.() === 0;
function command(tool: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, tool), ...args]] : [join(BIN, tool), args];
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

export async function createCluster(settings: Record<string, string> = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-faults-'));
  const data = join(dir, 'data');
  const logPath = join(dir, 'server.log');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  removeOnExit(dir, data);
  const port = await freePort();
  const [initdb, initArgs] = command('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  await run(initdb, [...initArgs, '--locale=C.UTF-8']);
  // 50 workers at once need room: each holds its pool, its listener and its handlers' pool.
  const options = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    max_connections: '400',
    ...settings,
  };
  const serverOptions = Object.entries(options)
    .map(([key, value]) => `-c ${key}=${value}`)
    .join(' ');
  const pgCtl = (args: string[]) => {
    const [tool, toolArgs] = command('pg_ctl', ['-D', data, '-l', logPath, '-w', '-t', '60', ...args]);
    return run(tool, toolArgs);
  };
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const cluster: Cluster = {
    port,
    dir,
    logPath,
    url,
    start: async () => {
      await pgCtl(['-o', serverOptions, 'start']);
    },
    stop: async (mode) => {
      await pgCtl(['-m', mode, 'stop']);
    },
    restart: async (mode) => {
      await pgCtl(['-m', mode, '-o', serverOptions, 'restart']);
    },
    admin: async (text, params) => {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        return (await client.query(text, params)).rows;
      } finally {
        await client.end();
      }
    },
    destroy: async () => {
      if (existsSync(join(data, 'postmaster.pid'))) await cluster.stop('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.start();
  return cluster;
}

/** Stops the server and removes its folder when the runner exits, however it exits. */
function removeOnExit(dir: string, data: string): void {
  const cleanUp = () => {
    if (!existsSync(dir)) return;
    if (existsSync(join(data, 'postmaster.pid'))) {
      const [tool, args] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      try {
        execFileSync(tool, args, { stdio: 'ignore' });
      } catch {
        // Already stopped.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.exit(130);
    });
  }
}
