/**
 * Found by the fault suite (faults/scenarios/partition.ts): a worker cut off from PostgreSQL never
 * aborted its handlers. The "not renewed for a whole lease time" check ran only after the renewal
 * statement answered, and during a partition it never answers: the handlers kept working on jobs
 * that other workers had meanwhile recovered. Now the deadline is watched on every tick and by a
 * timer at the deadline itself, so the handler is aborted within one lease of the last renewal,
 * before the database lets anyone else claim the job.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../faults/lib/proxy.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, SERVER_URL, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let proxy: FaultProxy;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase('partition');
  await createLedger(database);
  const server = new URL(SERVER_URL);
  proxy = await startFaultProxy({ host: server.hostname, port: Number(server.port || 5432) });
});

afterAll(async () => {
  proxy.resume();
  await worker?.stop();
  await proxy.close();
  database.pool.on('error', () => {});
  await database.drop();
});

test('a worker whose database stops answering aborts its handler within one lease of its last renewal', {
  timeout: 60_000,
}, async () => {
  const leaseMs = 2000;
  const url = new URL(database.url);
  url.port = String(proxy.port);
  url.hostname = '127.0.0.1';
  worker = await startWorker(url.toString(), { env: { BATON_LEASE_MS: String(leaseMs) } });
  const baton = connectBaton(database);
  const { id } = await baton.enqueue(record, { sleepMs: 30_000, ignoreAbort: false, failAttempts: 0 });
  await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
  // Let one renewal land, then cut: nothing the worker sends gets an answer any more.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  proxy.pause();
  const cutAt = Date.now();
  // The lease as the database knows it (read directly, not through the proxy), once nothing more arrives.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const [{ expires_ms: expiresMs }] = await database.rows(
    `select extract(epoch from lease_expires_at) * 1000 as expires_ms from baton.jobs where id = $1`,
    [id],
  );
  const lost = await worker.waitForLog(
    (line) => line.event === 'job.lease_lost' && line.jobId === id,
    10_000,
  );
  const abortedAt = Date.parse(lost.time);
  expect(lost.write).toBe('heartbeat');
  expect(abortedAt - cutAt).toBeLessThanOrEqual(leaseMs);
  // Before the lease the database knows of expired: nobody else could have claimed the job yet.
  expect(abortedAt).toBeLessThan(Number(expiresMs));
  proxy.resume();
  await baton.close();
});
