import { Baton, type BatonCoreOptions } from './core/baton.js';
import type { Database } from './db/database.js';
import { openPostgres } from './db/postgres.js';
import { BatonError } from './errors.js';
import { Worker, type WorkerOptions } from './worker/worker.js';

export interface BatonOptions extends BatonCoreOptions {
  /** PostgreSQL connection string. Default: `DATABASE_URL`. */
  connectionString?: string;
  /** Connections in Baton's own pool. Default 10. */
  maxConnections?: number;
}

/** The library's entry point: the core operations plus `createWorker`. */
export class BatonClient extends Baton {
  private handlerDatabase?: Database;

  constructor(
    db: Database,
    options: BatonCoreOptions,
    private readonly openHandlerDb: (connections: number) => Database,
  ) {
    super(db, options);
  }

  /** Creates a worker for the given kinds; settings come from `options`, then `BATON_*` variables, then defaults. */
  createWorker(options: WorkerOptions): Worker {
    let connections = 4;
    const worker = new Worker(this, options, () => {
      this.handlerDatabase ??= this.openHandlerDb(connections);
      return this.handlerDatabase;
    });
    connections = worker.settings.handlerConnections;
    return worker;
  }

  override async close(): Promise<void> {
    const handlerDb = this.handlerDatabase;
    this.handlerDatabase = undefined;
    if (handlerDb && handlerDb !== this.db) await handlerDb.close();
    await super.close();
  }
}

/** An optional integer setting from the environment; a bad value names the variable. */
function integerFromEnv(variable: string, min: number, max: number): number | undefined {
  const text = process.env[variable];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting ${variable}=${JSON.stringify(text)}: expected an integer from ${min} to ${max}`,
    );
  }
  return value;
}

/**
 * Connects to PostgreSQL.
 *
 * @example
 * const baton = createBaton({ connectionString: process.env.DATABASE_URL, kinds: [sendEmail] });
 * await baton.migrate();
 * await baton.enqueue(sendEmail, { to: 'a@example.com' });
 */
export function createBaton(options: BatonOptions = {}): BatonClient {
  const connectionString = options.connectionString ?? process.env.DATABASE_URL;
  if (!connectionString) {
    throw new BatonError(
      'CONFIG_INVALID',
      'no database: give connectionString or set DATABASE_URL (or use createEmbeddedBaton)',
    );
  }
  try {
    new URL(connectionString);
  } catch {
    throw new BatonError(
      'CONFIG_INVALID',
      'DATABASE_URL / connectionString is not a valid URL (expected postgres://user@host:port/database)',
    );
  }
  const maxConnections = options.maxConnections ?? integerFromEnv('BATON_MAX_CONNECTIONS', 1, 1000);
  const maxPayloadBytes = options.maxPayloadBytes ?? integerFromEnv('BATON_MAX_PAYLOAD_BYTES', 1, 1024 ** 3);
  const db = openPostgres({ connectionString, maxConnections });
  // Handlers' transactional completions use their own pool, so a handler that holds or leaks
  // connections cannot starve the worker's heartbeats and completions.
  return new BatonClient(db, { ...options, maxPayloadBytes }, (connections) =>
    openPostgres({ connectionString, maxConnections: connections }),
  );
}

/**
 * Opens the embedded database (PGlite) in `dataDir` (in memory when omitted). PGlite is loaded on
 * first use: importing it costs every process that imports Baton ~50 ms of CPU otherwise.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  return (await import('./db/pglite.js')).openPglite(dataDir);
}

/** Opens the embedded database (PGlite) kept in `dataDir` (in memory when omitted): one process, no server. */
export async function createEmbeddedBaton(
  options: BatonCoreOptions & { dataDir?: string } = {},
): Promise<BatonClient> {
  const db = await openPglite(options.dataDir);
  return new BatonClient(db, options, () => db);
}
