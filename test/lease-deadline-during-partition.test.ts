/**
 * Found by the fault suite (faults/scenarios/partition.ts): a worker cut off from PostgreSQL never
 * aborted its handlers. The "not renewed for a whole lease time" check ran only after the renewal
 * statement answered, and during a partition it never answers: the handlers kept working on jobs
 * that other workers had meanwhile recovered. Now the deadline is watched on every tick and by a
 * timer at the deadline itself, so the handler is aborted within one lease of the last renewal,
 * before the database lets anyone else claim the job.
 *
 * The second test, on the same proxy:
 * a worker must never start a claimed job after its lease may have run out, but it must not give
 * up jobs the database still holds for it either. A claim whose answer comes back later than a
 * lease after it was sent (a stalled link, a loaded machine) leaves the worker unable to vouch for
 * the lease on its own clock, although the database granted it only when the statement arrived.
 * The worker now asks the database (a renewal) before starting such a job, and it runs on its
 * first attempt. Before, the worker started it and aborted it at the next heartbeat tick (its
 * deadline counted from the claim's sending); a change of 2026-12-01 gave it up at once instead,
 * which showed as the fencing tests failing in CI. Either way the job waited a lease for recovery
 * and spent an attempt.
 */
import { afterAll, beforeAll, expect, onTestFinished, test } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../faults/lib/proxy.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, SERVER_URL, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let proxy: FaultProxy;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase('partition');
  await createLedger(database);
  const server = new URL(SERVER_URL);
  proxy = await startFaultProxy({ host: server.hostname, port: Number(server.port || 5432) });
});

/** A worker whose every connection goes through the proxy. */
async function startProxiedWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const url = new URL(database.url);
  url.port = String(proxy.port);
  url.hostname = '127.0.0.1';
  const worker = await startWorker(url.toString(), { env });
  workers.push(worker);
  return worker;
}

afterAll(async () => {
  proxy.resume();
  await Promise.all(workers.map((worker) => worker.stop()));
  await proxy.close();
  database.pool.on('error', () => {});
  await database.drop();
});

test('a worker whose database stops answering aborts its handler within one lease of its last renewal', {
  timeout: 60_000,
}, async () => {
  const leaseMs = 2000;
  const worker = await startProxiedWorker({ BATON_LEASE_MS: String(leaseMs) });
  const baton = connectBaton(database);
  const { id } = await baton.enqueue(record, { sleepMs: 30_000, ignoreAbort: false, failAttempts: 0 });
  await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
  // Let one renewal land, then cut: nothing the worker sends gets an answer any more.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  proxy.pause();
  // Resumed at the end of this test whatever happens: the next test's worker connects through it.
  onTestFinished(() => proxy.resume());
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
  await worker.stop(); // so that it claims nothing of the next test
});

test('jobs a claim brought back more than a lease after it was sent are renewed and run on their first attempt', {
  timeout: 60_000,
}, async () => {
  const leaseMs = 2000;
  // Claims only: a job handed to a worker whose link is stalled is leased from the hand-off, like a
  // job it claimed just before the stall, and its lease can run out before the worker hears of it.
  const worker = await startProxiedWorker({
    BATON_LEASE_MS: String(leaseMs),
    BATON_POLL_INTERVAL_MS: '100',
    BATON_HANDOFF: 'false',
  });
  // Stall the link, then enqueue directly: the worker's next poll sends its claim into the stall.
  proxy.pause();
  const baton = connectBaton(database);
  // It runs across a heartbeat tick, which would abort it if its deadline still counted from the claim.
  const { id } = await baton.enqueue(record, { sleepMs: 1500, ignoreAbort: false, failAttempts: 0 });
  await baton.close();
  await new Promise((resolve) => setTimeout(resolve, 500 + leaseMs));
  // The claim reaches the database only now: the lease it grants is fresh, the worker's is stale.
  proxy.resume();
  await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id, 10_000);
  const done = await pollUntil('the job to finish', async () => {
    const [row] = await database.rows(`select state, attempts from baton.jobs where id = $1`, [id]);
    return row.state !== 'running' && row.state !== 'pending' && row;
  });
  expect(done).toEqual({ state: 'completed', attempts: 1 });
  expect(
    await database.rows(`select attempt, worker_pid, outcome from ledger where job_id = $1`, [id]),
  ).toEqual([{ attempt: 1, worker_pid: worker.pid, outcome: 'ran' }]);
  expect(worker.lines.filter((line) => line.jobId === id && line.event === 'job.lease_lost')).toEqual([]);
});
