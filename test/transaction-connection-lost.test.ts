/**
 * Found by the fault suite (faults/scenarios/immediate-stop.ts): a worker process crashed when
 * PostgreSQL went away while one of Baton's transactions held a pooled connection (a transactional
 * completion, a limited claim). node-postgres emits 'error' on the checked-out client, and the pool
 * listens only on idle clients, so the event was unhandled. The transaction must fail like any
 * statement does, the connection be discarded, and the next statement get a fresh one.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openPostgres } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('tx_lost', { migrated: false });
});

afterAll(async () => {
  database.pool.on('error', () => {});
  await database.drop();
});

test('a transaction whose connection is terminated fails without an unhandled error, and the pool recovers', async () => {
  const db = openPostgres({ connectionString: database.url, maxConnections: 2 });
  const unhandled: unknown[] = [];
  const onUncaught = (error: unknown) => unhandled.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const attempt = db.transaction(async (tx) => {
      const [{ pid }] = (await tx.query('select pg_backend_pid() as pid')).rows;
      await database.pool.query('select pg_terminate_backend($1)', [pid]);
      // The termination arrives while the transaction is between statements, as when the server restarts.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await tx.query('select 1');
    });
    await expect(attempt).rejects.toThrow(/terminat|connection/i);
    expect(unhandled).toEqual([]);
    // The broken connection was discarded: the pool answers with a new one.
    const { rows } = await db.query('select 1 as one');
    expect(rows).toEqual([{ one: 1 }]);
    const after = await db.transaction(async (tx) => (await tx.query('select 2 as two')).rows);
    expect(after).toEqual([{ two: 2 }]);
  } finally {
    process.off('uncaughtException', onUncaught);
    await db.close();
  }
});

test('pg itself: a checked-out client with no listener would throw its error event (why the fix is needed)', async () => {
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  const client = await pool.connect();
  expect(client.listenerCount('error')).toBe(0);
  client.release();
  await pool.end();
});
