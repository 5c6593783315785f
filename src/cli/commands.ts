import { z } from 'zod';
import { type BatonClient, createBaton } from '../client.js';
import type { JobOptions } from '../core/enqueue.js';
import { defineKind } from '../core/kinds.js';
import { BatonError } from '../errors.js';
import type { HttpServer } from '../http/server.js';
import { resolveHttpSettings } from '../http/settings.js';
import type { QueueStats } from '../types.js';
import { loadKinds } from './load-kinds.js';

/** The PostgreSQL client of every command but `dev`: DATABASE_URL is required. */
function connect(kinds?: Awaited<ReturnType<typeof loadKinds>>): BatonClient {
  if (!process.env.DATABASE_URL) {
    throw new BatonError(
      'CONFIG_INVALID',
      'DATABASE_URL is not set (for example postgres://postgres@127.0.0.1:5432/app); `baton dev` runs without it',
    );
  }
  return createBaton({ kinds });
}

export async function runMigrate(): Promise<void> {
  const baton = connect();
  try {
    const { applied, version } = await baton.migrate();
    process.stdout.write(
      applied.length > 0
        ? `applied migrations ${applied.join(', ')}; schema at version ${version}\n`
        : `schema already at version ${version}\n`,
    );
  } finally {
    await baton.close();
  }
}

export async function runWorker(options: {
  jobs: string;
  concurrency?: number;
  migrate: boolean;
}): Promise<void> {
  const kinds = await loadKinds(options.jobs);
  const baton = connect(kinds);
  try {
    const worker = baton.createWorker({ kinds, concurrency: options.concurrency });
    if (options.migrate) await baton.migrate();
    await worker.start();
  } catch (error) {
    await baton.close();
    throw error;
  }
  // The worker stops on SIGTERM/SIGINT, then exits the process.
}

/**
 * Serves the HTTP API for the kinds a module exports until SIGTERM/SIGINT, then closes the server
 * (requests in flight finish) and the database pool.
 */
export async function runServe(options: { jobs: string }): Promise<void> {
  const settings = resolveHttpSettings();
  const kinds = await loadKinds(options.jobs);
  const baton = connect(kinds);
  let server: HttpServer;
  try {
    // Loaded here: the HTTP server and its metrics (hono, prom-client) cost a worker ~0.2 s of CPU
    // at every start, and only serve needs them.
    const { startHttpServer } = await import('../http/server.js');
    server = await startHttpServer(baton, settings);
  } catch (error) {
    await baton.close();
    throw error;
  }
  if (settings.tokens.length === 0) {
    process.stderr.write('baton serve: BATON_API_TOKENS is empty; every /api route will answer 401\n');
  }
  process.stdout.write(
    `baton serve: listening on ${server.url} (kinds: ${[...baton.kinds.keys()].join(', ')})\n`,
  );
  const stop = async () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await server.close();
    await baton.close();
    process.stdout.write('baton serve: stopped\n');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** The CLI's enqueue flags are the library's job options (but runAt) plus the module to validate with. */
interface EnqueueFlags extends Omit<JobOptions, 'runAt'> {
  jobs?: string;
}

export async function runEnqueue(kind: string, payloadText: string, flags: EnqueueFlags): Promise<void> {
  let payload: unknown;
  try {
    payload = JSON.parse(payloadText);
  } catch (error) {
    throw new BatonError('PAYLOAD_INVALID', `<payload> is not valid JSON: ${(error as Error).message}`);
  }
  const kinds = flags.jobs ? await loadKinds(flags.jobs) : [];
  const baton = connect(kinds);
  try {
    let definition = baton.kinds.get(kind);
    if (!definition) {
      if (flags.jobs) throw new BatonError('KIND_UNKNOWN', `kind ${kind} is not exported by ${flags.jobs}`);
      // Without the module, the kind must be one a worker has published; the worker validates the payload before running it.
      const { rows } = await baton.db.query('select 1 from baton.kinds where kind = $1', [kind]);
      if (rows.length === 0) {
        throw new BatonError(
          'KIND_UNKNOWN',
          `kind ${kind} is unknown: no worker has registered it; pass --jobs <module> to enqueue it anyway`,
        );
      }
      definition = defineKind({ kind, payload: z.unknown() });
    }
    const { jobs: _module, ...jobOptions } = flags;
    const job = await baton.enqueue(definition, payload, jobOptions);
    process.stdout.write(`${JSON.stringify(job)}\n`);
  } finally {
    await baton.close();
  }
}

export async function runStats(options: { json?: boolean }): Promise<void> {
  const baton = connect();
  try {
    const stats = await baton.stats();
    process.stdout.write(options.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
  } finally {
    await baton.close();
  }
}

export function formatStats(stats: QueueStats): string {
  const header = ['kind', 'pending', 'due', 'running', 'completed', 'failed', 'cancelled', 'dead', 'workers'];
  const rows = stats.kinds.map((kind) =>
    [
      kind.kind,
      kind.pending,
      kind.due,
      kind.running,
      kind.completed,
      kind.failed,
      kind.cancelled,
      kind.deadLettered,
      kind.liveWorkers,
    ].map(String),
  );
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  const out = [line(header), ...rows.map(line), '', `live workers: ${stats.liveWorkers}`];
  if (stats.kindsWithoutWorker.length > 0)
    out.push(`WARNING: pending jobs with no live worker: ${stats.kindsWithoutWorker.join(', ')}`);
  return `${out.join('\n')}\n`;
}
