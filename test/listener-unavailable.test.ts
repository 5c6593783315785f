/**
 * SPEC §9: behind a transaction-pooling proxy LISTEN is accepted but nothing is delivered. Baton
 * notices (a notification it sends itself never comes back), says so once, and runs on polling.
 * The proxy here forwards everything but NotificationResponse messages.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { type PgProxy, startPgProxy } from './helpers/pg-proxy.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let proxy: PgProxy;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase('listen_unavailable');
  await createLedger(database);
  proxy = await startPgProxy({ dropFromServer: (type) => type === 'A' });
});

afterAll(async () => {
  await worker?.stop();
  await proxy.close();
  await database.drop();
});

test('notifications that never arrive: the worker says so once and jobs still run by polling', async () => {
  const url = new URL(database.url);
  url.port = String(proxy.port);
  worker = await startWorker(url.toString(), { env: { BATON_POLL_INTERVAL_MS: '300' } });
  const unavailable = await worker.waitForEvent('listener.unavailable', 20_000);
  expect(unavailable.reason).toMatch(/did not come back/);

  const baton = connectBaton(database);
  const { id } = await baton.enqueue(record, {});
  await pollUntil('the job to complete by polling', async () => {
    const [job] = await database.rows('select state from baton.jobs where id = $1', [id]);
    return job.state === 'completed';
  });
  await baton.close();

  const events = worker.lines.map((line) => line.event);
  expect(events.filter((event) => event === 'listener.unavailable')).toHaveLength(1);
  expect(events).not.toContain('listener.connected');
  expect(events).not.toContain('listener.lost');
});
