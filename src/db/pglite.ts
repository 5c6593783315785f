import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { BatonError } from '../errors.js';
import { isRunning } from '../process-alive.js';
import type { Database, ListenHandlers, Subscription } from './database.js';

/**
 * PGlite keeps the whole database in its process and writes the folder as it likes: two processes
 * (or two instances in one) opened on one folder each run alone and overwrite each other's files.
 * A lock file beside the folder (`<dataDir>.lock`, holding the owner's pid) refuses the second
 * opener with a clear error; a lock left by a process that no longer runs is taken over.
 * Returns the release function.
 */
function lockDataDir(dataDir: string): () => void {
  const lockPath = `${resolve(dataDir)}.lock`;
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const holder = Number(readFileSync(lockPath, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && (holder === process.pid || isRunning(holder))) {
      throw new BatonError(
        'CONFIG_INVALID',
        `the embedded database in ${dataDir} is in use by process ${holder}${holder === process.pid ? ' (this one)' : ''}: ` +
          'PGlite serves one process at a time; stop that one, or use another folder (baton dev --data-dir)',
      );
    }
    unlinkSync(lockPath); // left by a process that is gone
  }
}

/**
 * The embedded database: PostgreSQL compiled to WebAssembly, kept in a local folder (or in
 * memory when `dataDir` is omitted). One process, one connection: PGlite queues statements
 * and holds other statements back while a transaction runs. A folder is locked to the process
 * that opened it until `close()`.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  const release = dataDir ? lockDataDir(dataDir) : () => {};
  let pg: PGlite;
  try {
    pg = dataDir ? new PGlite(dataDir) : new PGlite();
    await pg.waitReady;
  } catch (error) {
    release();
    throw error;
  }
  return {
    engine: 'pglite',
    query: (text, params) => pg.query(text, params),
    transaction: (fn) =>
      pg.transaction((tx) =>
        fn({
          query: (text, params) => tx.query(text, params),
          execScript: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
    async listen(channels: string[], handlers: ListenHandlers): Promise<Subscription> {
      const unsubscribers = await Promise.all(
        channels.map((channel) => pg.listen(channel, (payload) => handlers.onNotification(channel, payload))),
      );
      handlers.onConnected({});
      return {
        async close() {
          await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe()));
        },
      };
    },
    close: async () => {
      try {
        await pg.close();
      } finally {
        release();
      }
    },
  };
}
