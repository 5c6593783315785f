import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type BatonClient, createBaton } from '../../src/index.js';

/** The server the tests use; each test file makes its own database on it. */
export const SERVER_URL = process.env.BATON_TEST_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';

export interface TestDatabase {
  name: string;
  url: string;
  /** A plain pg pool on the test database, for reading what the system wrote. */
  pool: pg.Pool;
  /** Runs a query on the test database and returns its rows. */
  // biome-ignore lint/suspicious/noExplicitAny: rows of ad hoc test queries.
  rows<Row = any>(text: string, params?: unknown[]): Promise<Row[]>;
  drop(): Promise<void>;
}

async function onAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh database (migrated unless `migrated: false`) for one test file. */
export async function createTestDatabase(
  label: string,
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const name = `baton_t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomUUID().slice(0, 8)}`;
  await onAdmin((client) => client.query(`create database ${name}`));
  const url = `${SERVER_URL}/${name}`;
  if (options.migrated !== false) {
    const baton = createBaton({ connectionString: url });
    await baton.migrate();
    await baton.close();
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // drop() forces the database away while pool.end() may still be closing a connection; that
  // connection's FATAL must not surface as an unhandled error.
  pool.on('error', () => {});
  return {
    name,
    url,
    pool,
    rows: async (text, params) => (await pool.query(text, params as unknown[])).rows,
    async drop() {
      await pool.end();
      await onAdmin((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** A Baton client on a test database; remember to close it. */
export function connectBaton(
  database: TestDatabase,
  options: Parameters<typeof createBaton>[0] = {},
): BatonClient {
  return createBaton({ connectionString: database.url, ...options });
}
