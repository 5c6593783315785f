/**
 * The one narrow door to the database. node-postgres (pool, client, transaction client) and
 * PGlite both satisfy `Queryable`; everything in Baton talks through it.
 */
export interface QueryResult<Row> {
  rows: Row[];
}

/** Anything that runs a parameterised statement: a `pg` Pool, PoolClient or Client, a PGlite instance or transaction. */
export interface Queryable {
  // biome-ignore lint/suspicious/noExplicitAny: pg and PGlite type their results differently; rows are typed by callers.
  query(text: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/** A notification subscription; `close()` stops it. */
export interface Subscription {
  close(): Promise<void>;
}

export interface ListenHandlers {
  onNotification(channel: string, payload: string): void;
  /** The listening connection was lost; notifications may be missed until `onConnected` fires again. */
  onLost(error: Error): void;
  /** Listening (again); `backendPid` is the listening connection's server process (PostgreSQL only). */
  onConnected(info: { backendPid?: number }): void;
  /** LISTEN connects but does not deliver (a transaction-pooling proxy): listening has stopped for good. */
  onUnavailable?(reason: string): void;
}

/** One connection inside an open transaction. */
export interface Transaction extends Queryable {
  /** Runs a script of several statements without parameters (migrations). */
  execScript(sql: string): Promise<void>;
}

/** Baton's own connection to a database: statements, transactions and LISTEN. */
export interface Database extends Queryable {
  readonly engine: 'postgres' | 'pglite';
  /** Runs `fn` in a transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * Writes rows with `COPY ... FROM STDIN` (`copySql`; `data` in COPY's text format) and then runs
   * `after` (one or more statements without parameters), in one transaction on one connection:
   * all of it commits or none. PostgreSQL only: PGlite has no COPY from a client's stream.
   */
  copyIn?(copySql: string, data: string, after: string): Promise<void>;
  /** Listens on channels, re-establishing the connection when it is lost. */
  listen(channels: string[], handlers: ListenHandlers): Promise<Subscription>;
  close(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: rows are untyped until a caller maps them.
export async function queryRows<Row = any>(db: Queryable, text: string, params?: unknown[]): Promise<Row[]> {
  const result = await db.query(text, params);
  return result.rows as Row[];
}
