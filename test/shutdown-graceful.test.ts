/**
 * Graceful shutdown (SPEC §4): on SIGTERM or SIGINT a worker stops claiming, lets running jobs
 * finish until BATON_SHUTDOWN_TIMEOUT_MS, then aborts the rest (reason `shutdown`) and hands them
 * back to pending without spending an attempt, and exits 0. No job is left `running`.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

const sleeping = (sleepMs: number) => ({ sleepMs, ignoreAbort: false, failAttempts: 0 });

beforeAll(async () => {
  database = await createTestDatabase('shutdown');
  await createLedger(database);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  // pool.end() resolves before its clients have closed; the forced drop may then terminate one,
  // and its FATAL would be an unhandled pool error (test/helpers/database.ts has no listener).
  database.pool.on('error', () => {});
  await database.drop();
});

const jobsOf = (ids: string[]) =>
  database.rows(
    `select id, state, attempts, lease_token, worker_id, run_at <= now() as due,
            (select count(*)::int from baton.job_attempts a where a.job_id = j.id) as recorded
     from baton.jobs j where id = any($1) order by array_position($1, id)`,
    [ids],
  );

async function waitClaimed(worker: WorkerProcess, ids: string[]): Promise<void> {
  for (const id of ids) await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
}

test('SIGTERM: jobs that finish within the deadline complete, the rest are aborted and handed back, exit 0', {
  timeout: 90_000,
}, async () => {
  const deadlineMs = 7000;
  const worker = await startWorker(database.url, {
    env: { BATON_CONCURRENCY: '4', BATON_PREFETCH: '4', BATON_SHUTDOWN_TIMEOUT_MS: String(deadlineMs) },
  });
  workers.push(worker);
  const baton = connectBaton(database);
  const short = await baton.enqueueMany(record, [{ payload: sleeping(4000) }, { payload: sleeping(4000) }]);
  const long = await baton.enqueueMany(record, [
    { payload: sleeping(60_000) },
    { payload: sleeping(60_000) },
  ]);
  const shortIds = short.map((job) => job.id);
  const longIds = long.map((job) => job.id);
  await waitClaimed(worker, [...shortIds, ...longIds]);
  // The four slots are full; two more jobs are claimed into the prefetch buffer and wait there.
  const buffered = (
    await baton.enqueueMany(record, [{ payload: sleeping(0) }, { payload: sleeping(0) }])
  ).map((job) => job.id);
  await waitClaimed(worker, buffered);
  expect((await jobsOf([...shortIds, ...longIds, ...buffered])).map((job) => job.state)).toEqual(
    Array(6).fill('running'),
  );
  expect(await database.rows(`select 1 from ledger`)).toEqual([]); // nothing finished yet

  const signalledAt = performance.now();
  worker.kill('SIGTERM');
  await worker.waitForEvent('worker.stopping');
  // Enqueued during the stop: never claimed by the stopping worker.
  const late = await baton.enqueue(record, sleeping(0));
  const { code, signal } = await worker.exited;
  const tookMs = performance.now() - signalledAt;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(tookMs).toBeGreaterThan(deadlineMs - 500); // the long jobs were given the whole deadline
  expect(tookMs).toBeLessThan(deadlineMs + 5000);

  const all = [...shortIds, ...longIds, ...buffered, late.id];
  expect((await jobsOf(all)).filter((job) => job.state === 'running')).toEqual([]);

  // Finished within the deadline: completed.
  for (const job of await jobsOf(shortIds)) expect(job).toMatchObject({ state: 'completed', attempts: 1 });
  // Past the deadline: back to pending, due now, the attempt not spent, no failure recorded.
  for (const job of await jobsOf(longIds)) {
    expect(job).toMatchObject({ state: 'pending', attempts: 0, lease_token: null, due: true, recorded: 0 });
  }
  // Buffered, never started: handed back the same way.
  for (const job of await jobsOf(buffered)) {
    expect(job).toMatchObject({ state: 'pending', attempts: 0, lease_token: null, recorded: 0 });
  }
  expect(await jobsOf([late.id])).toMatchObject([{ state: 'pending', attempts: 0, worker_id: null }]);

  const handedBack = worker.lines
    .filter((line) => line.event === 'job.handed_back')
    .map((line) => line.jobId);
  expect(handedBack.sort()).toEqual([...longIds, ...buffered].sort());
  expect(worker.lines.some((line) => line.event === 'worker.stopped')).toBe(true);

  // The handlers: short ones ran to the end, long ones saw an abort with reason shutdown.
  const runs = await database.rows(`select job_id, outcome from ledger`);
  expect(runs.filter((run) => shortIds.includes(run.job_id)).map((run) => run.outcome)).toEqual([
    'ran',
    'ran',
  ]);
  expect(runs.filter((run) => buffered.includes(run.job_id) || run.job_id === late.id)).toEqual([]);
  const aborts = await pollUntil(
    'the aborts of the long jobs',
    () =>
      database
        .rows(`select job_id, reason from ledger_aborts where job_id = any($1)`, [longIds])
        .then((rows) => rows.length === longIds.length && rows),
    { timeoutMs: 3000 },
  );
  expect(aborts.map((row) => row.reason)).toEqual(['shutdown', 'shutdown']);

  // The worker left the registry.
  expect(await database.rows(`select id from baton.workers where pid = $1`, [worker.pid])).toEqual([]);
  await baton.close();
});

test('SIGINT: a job past the deadline is aborted (shutdown), handed back and given time to clean up; the worker exits 0', {
  timeout: 60_000,
}, async () => {
  await database.pool.query(`delete from baton.jobs`); // the previous test's leftovers
  const deadlineMs = 1500;
  const worker = await startWorker(database.url, { env: { BATON_SHUTDOWN_TIMEOUT_MS: String(deadlineMs) } });
  workers.push(worker);
  const baton = connectBaton(database);
  // Its handler takes 300 ms after the abort to clean up, then records the abort: the worker waits
  // for aborted handlers to settle (up to a second) before it exits, so the record must be there.
  const { id } = await baton.enqueue(record, { ...sleeping(60_000), cleanupMs: 300 });
  await waitClaimed(worker, [id]);
  const [claimed] = await jobsOf([id]);
  expect(claimed).toMatchObject({ state: 'running', attempts: 1 });

  const signalledAt = performance.now();
  worker.kill('SIGINT');
  const { code, signal } = await worker.exited;
  const tookMs = performance.now() - signalledAt;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(tookMs).toBeGreaterThan(deadlineMs - 500);
  expect(tookMs).toBeLessThan(deadlineMs + 5000);
  expect(worker.lines.find((line) => line.event === 'worker.signal')?.signal).toBe('SIGINT');

  expect(await jobsOf([id])).toMatchObject([
    { state: 'pending', attempts: 0, lease_token: null, due: true, recorded: 0 },
  ]);
  // The process has exited: whatever the handler wrote is there now or never.
  const aborts = await database.rows(`select reason from ledger_aborts where job_id = $1`, [id]);
  expect(aborts.map((row) => row.reason)).toEqual(['shutdown']);
  await baton.close();
});

test('stop() while a claim is in flight: the jobs it brings back are handed back, not left running', {
  timeout: 60_000,
}, async () => {
  const baton = connectBaton(database);
  const jobs = await baton.enqueueMany(
    record,
    Array.from({ length: 5 }, () => ({ payload: sleeping(0) })),
  );
  const ids = jobs.map((job) => job.id);
  // Hold the jobs table so the worker's first claim waits inside the database.
  const blocker = await database.pool.connect();
  await blocker.query('begin');
  await blocker.query('lock table baton.jobs in access exclusive mode');
  const worker = baton.createWorker({ kinds: [record], concurrency: 2, logLevel: 'silent' });
  await worker.start();
  await pollUntil('the claim to wait for the lock', async () => {
    const { rows } = await database.pool.query(
      `select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%for update skip locked%'`,
    );
    return rows.length > 0;
  });
  const stopped = worker.stop();
  expect(worker.inspect().state).toBe('stopping');
  await blocker.query('commit'); // the claim now takes the jobs, after stop() began
  blocker.release();
  await stopped;
  const rows = await jobsOf(ids);
  expect(rows.map((row) => [row.state, row.attempts, row.lease_token])).toEqual(
    ids.map(() => ['pending', 0, null]),
  );
  await baton.close();
});
