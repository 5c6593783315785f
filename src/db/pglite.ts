import { PGlite } from '@electric-sql/pglite';
import type { Database, ListenHandlers, Subscription } from './database.js';

/**
 * The embedded database: PostgreSQL compiled to WebAssembly, kept in a local folder (or in
 * memory when `dataDir` is omitted). One process, one connection: PGlite queues statements
 * and holds other statements back while a transaction runs.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  const pg = dataDir ? new PGlite(dataDir) : new PGlite();
  await pg.waitReady;
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
      handlers.onConnected();
      return {
        async close() {
          await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe()));
        },
      };
    },
    close: () => pg.close(),
  };
}
