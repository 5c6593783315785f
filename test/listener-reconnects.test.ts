/**
 * SPEC §5: workers wake by LISTEN/NOTIFY, with polling only as a fallback. When the LISTEN
 * connection is cut (a proxy, a failover, an operator's pg_terminate_backend) the worker notices,
 * says so (`listener.lost`), reconnects (`listener.connected`) and is woken by NOTIFY again: with a
 * 60 s poll interval, a job enqueued after the reconnect runs within seconds.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let worker: WorkerProcess;

const POLL_INTERVAL_MS = 60_000;
/** Well under the poll interval: only a notification can wake the worker this fast. */
const PROMPT_MS = 10_000;

beforeAll(async () => {
  database = await createTestDatabase('listener');
  await createLedger(database);
  worker = await startWorker(database.url, { env: { BATON_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS) } });
});

afterAll(async () => {
  await worker?.stop();
  await database.drop();
});

/** Enqueues a job and returns how long (ms) until the worker logged its completion. */
async function enqueueAndTime(): Promise<number> {
  const baton = connectBaton(database);
  try {
    const startedAt = performance.now();
    const { id } = await baton.enqueue(record, {});
    await worker.waitForLog((line) => line.event === 'job.completed' && line.jobId === id, POLL_INTERVAL_MS);
    return performance.now() - startedAt;
  } finally {
    await baton.close();
  }
}

/** Backends of the worker's LISTEN connection, which names itself `baton_listener`. */
const listenBackends = () =>
  database.rows<{ pid: number }>(
    `select pid from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and application_name = 'baton_listener'`,
  );

test('the worker reconnects its LISTEN connection after it is terminated, and NOTIFY wakes it again', {
  timeout: 120_000,
}, async () => {
  const firstConnected = await worker.waitForEvent('listener.connected');

  // Baseline: while listening, a job runs promptly.
  expect(await enqueueAndTime()).toBeLessThan(PROMPT_MS);

  const backends = await listenBackends();
  expect(backends.length).toBe(1);
  const [{ pid }] = backends as [{ pid: number }];
  const [terminated] = await database.rows(`select pg_terminate_backend($1) as done`, [pid]);
  expect(terminated.done).toBe(true);

  const lost = await worker.waitForEvent('listener.lost', 30_000);
  expect(lost.level).toBe(40); // a warning
  const reconnected = await worker.waitForLog(
    (line) => line.event === 'listener.connected' && line !== firstConnected,
    30_000,
  );
  expect(worker.lines.indexOf(reconnected)).toBeGreaterThan(worker.lines.indexOf(lost));

  // A new LISTEN backend replaced the terminated one.
  const replaced = await pollUntil('a new LISTEN backend', async () => {
    const rows = await listenBackends();
    return rows.length === 1 && rows[0]!.pid !== pid ? rows[0] : null;
  });
  expect(replaced.pid).not.toBe(pid);

  // Woken by NOTIFY, not by the 60 s poll.
  expect(await enqueueAndTime()).toBeLessThan(PROMPT_MS);
  // Lost once, reconnected once: the logs stay calm.
  expect(worker.lines.filter((line) => line.event === 'listener.lost')).toHaveLength(1);
  expect(worker.lines.filter((line) => line.event === 'listener.connected')).toHaveLength(2);
  // The worker process itself lived on.
  expect(worker.child.exitCode).toBeNull();
});
