import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database, ListenHandlers, Queryable, Subscription } from './database.js';

export interface PostgresOptions {
  connectionString: string;
  /** Connections in Baton's own pool (statements, transactions). Default 10. */
  maxConnections?: number;
  /** How often the LISTEN connection is probed with `select 1`; a probe that does not answer within the same time counts as a lost connection. Default 5000 ms. */
  listenHealthCheckMs?: number;
  /** Called when a pooled idle connection fails (for example when PostgreSQL restarts). */
  onPoolError?: (error: Error) => void;
}

export function openPostgres(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    keepAlive: true,
  });
  // An idle client that dies (server restart, cut connection) emits 'error' on the pool; without a
  // listener Node would crash the process. The pool drops the client and makes a new one on demand.
  pool.on('error', (error) => options.onPoolError?.(error));
  // Baton's parameterised statements are a fixed set of constants, so each is prepared once per
  // connection (a named statement) and PostgreSQL skips parsing and planning on every later call.
  const statementNames = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = statementNames.get(text);
    if (!name) {
      name = `baton_${statementNames.size + 1}`;
      statementNames.set(text, name);
    }
    return name;
  };
  return {
    engine: 'postgres',
    query: (text, params) =>
      params === undefined
        ? pool.query(text)
        : pool.query({ name: nameOf(text), text, values: params as unknown[] }),
    transaction: (fn) =>
      onClient(pool, async (client, discard) => {
        try {
          await client.query('begin');
          const result = await fn(
            Object.assign(client, {
              execScript: async (sql: string) => {
                await client.query(sql);
              },
            }),
          );
          await client.query('commit');
          return result;
        } catch (error) {
          try {
            await client.query('rollback');
          } catch (rollbackError) {
            discard(rollbackError as Error);
          }
          throw error;
        }
      }),
    copyIn: (copySql, data, after) =>
      onClient(pool, async (client, discard) => {
        try {
          // Two round trips: `begin` goes with the COPY, `commit` with what follows it.
          await new Promise<void>((resolve, reject) => {
            const stream = client.query(copyFrom(`begin; ${copySql}`));
            stream.on('finish', resolve);
            stream.on('error', reject);
            stream.end(data);
          });
          await client.query(`${after}; commit`);
        } catch (error) {
          // Whatever failed (a row PostgreSQL refused mid-COPY, a lost connection), the connection
          // is closed rather than rolled back in place: the server aborts the transaction when it
          // goes, and no client goes back to the pool in the middle of a COPY.
          discard(error as Error);
          throw error;
        }
      }),
    listen: (channels, handlers) =>
      listenWithReconnect(options.connectionString, channels, handlers, options.listenHealthCheckMs ?? 5000),
    close: () => pool.end(),
  };
}

/**
 * Runs `fn` on a client checked out of the pool and returns it afterwards, or closes it if it broke
 * or `fn` called `discard`. A checked-out client has no 'error' listener of the pool's: if the
 * server went away meanwhile (restart, crash, cut connection), its 'error' event would crash the
 * process. The statement in flight fails anyway; the error is kept so the client is discarded.
 */
async function onClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, discard: (error: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const discard = (error: Error) => {
    broken ??= error;
  };
  client.on('error', discard);
  try {
    return await fn(client, discard);
  } finally {
    client.off('error', discard);
    client.release(broken);
  }
}

/**
 * A dedicated LISTEN connection that notices when it is gone (error, end, or a health probe that
 * does not answer: a half-open TCP connection) and comes back by itself with capped backoff.
 * `onLost` fires once per loss and `onConnected` once per recovery, so logs stay calm.
 */
async function listenWithReconnect(
  connectionString: string,
  channels: string[],
  handlers: ListenHandlers,
  healthCheckMs: number,
): Promise<Subscription> {
  let closed = false;
  let client: pg.Client | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let retryDelayMs = 100;
  let lost = false;

  const dropClient = (error: Error) => {
    if (healthTimer) clearInterval(healthTimer);
    healthTimer = undefined;
    const current = client;
    client = undefined;
    if (current) {
      current.removeAllListeners();
      current.on('error', () => {});
      destroySocket(current);
      current.end().catch(() => {});
    }
    if (closed) return;
    if (!lost) {
      lost = true;
      handlers.onLost(error);
    }
    reconnectTimer = setTimeout(connect, retryDelayMs);
    retryDelayMs = Math.min(retryDelayMs * 2, 5000);
  };

  const connect = async () => {
    reconnectTimer = undefined;
    const next = new pg.Client({
      connectionString,
      keepAlive: true,
      connectionTimeoutMillis: healthCheckMs,
      // Operators (and tests) can tell the listener from pooled connections in pg_stat_activity.
      application_name: 'baton_listener',
    });
    next.on('error', (error) => client === next && dropClient(error));
    next.on('end', () => client === next && dropClient(new Error('LISTEN connection ended')));
    next.on('notification', (message) => {
      if (message.channel !== LISTEN_PROBE_CHANNEL)
        handlers.onNotification(message.channel, message.payload ?? '');
    });
    client = next;
    let delivers: boolean;
    try {
      await next.connect();
      for (const channel of channels) await next.query(`listen ${pg.escapeIdentifier(channel)}`);
      delivers = await notificationsArrive(next, healthCheckMs);
    } catch (error) {
      if (client === next) dropClient(error as Error);
      return;
    }
    if (closed || client !== next) return;
    if (!delivers) {
      // A transaction-pooling proxy (PgBouncer in transaction mode) accepts LISTEN but never
      // delivers: stop trying, say so once, and leave the work to polling.
      client = undefined;
      next.removeAllListeners();
      next.on('error', () => {});
      await next.end().catch(() => {});
      handlers.onUnavailable?.(
        `a notification sent on this connection did not come back within ${healthCheckMs} ms (a transaction-pooling proxy?)`,
      );
      return;
    }
    retryDelayMs = 100;
    lost = false;
    handlers.onConnected({
      backendPid: (next as unknown as { processID: number | null }).processID ?? undefined,
    });
    healthTimer = setInterval(() => probe(next), healthCheckMs);
    healthTimer.unref();
  };

  const probe = (probed: pg.Client) => {
    let answered = false;
    const timer = setTimeout(() => {
      if (!answered && client === probed)
        dropClient(new Error(`LISTEN connection did not answer within ${healthCheckMs} ms`));
    }, healthCheckMs);
    probed.query('select 1').then(
      () => {
        answered = true;
        clearTimeout(timer);
      },
      (error) => {
        answered = true;
        clearTimeout(timer);
        if (client === probed) dropClient(error as Error);
      },
    );
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      if (healthTimer) clearInterval(healthTimer);
      const current = client;
      client = undefined;
      if (current) {
        current.removeAllListeners();
        current.on('error', () => {});
        await current.end().catch(() => {});
      }
    },
  };
}

const LISTEN_PROBE_CHANNEL = 'baton_listen_probe';

/**
 * Whether this connection receives notifications: it listens on a probe channel and notifies
 * itself. Through a direct or session-pooled connection the probe comes back at once.
 */
async function notificationsArrive(client: pg.Client, timeoutMs: number): Promise<boolean> {
  const channel = LISTEN_PROBE_CHANNEL;
  const token = randomUUID();
  let onNotification!: (message: pg.Notification) => void;
  const arrived = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    onNotification = (message) => {
      if (message.channel === channel && message.payload === token) {
        clearTimeout(timer);
        resolve(true);
      }
    };
  });
  client.on('notification', onNotification);
  try {
    await client.query(`listen ${channel}`);
    await client.query('select pg_notify($1, $2)', [channel, token]);
    return await arrived;
  } finally {
    client.off('notification', onNotification);
    await client.query(`unlisten ${channel}`).catch(() => {});
  }
}

/** A half-open connection never finishes `end()`; destroying the socket frees it at once. */
function destroySocket(client: pg.Client): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  stream?.destroy();
}

export type { Queryable };
