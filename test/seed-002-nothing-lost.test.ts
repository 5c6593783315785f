/**
 * Seed 002: jobs were lost when a worker died mid-job, when they were enqueued while no worker ran,
 * and duplicated when a producer retried its enqueue. In Baton a dead worker's lease expires and
 * another worker runs the job; pending jobs wait in the database for any worker; and an
 * idempotency key makes a repeated enqueue return the first job.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record, slowFirst } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

const quick = { sleepMs: 0, ignoreAbort: false, failAttempts: 0 };

beforeAll(async () => {
  database = await createTestDatabase('seed002');
  await createLedger(database);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  // pool.end() resolves before its clients have closed; the forced drop may then terminate one,
  // and its FATAL would be an unhandled pool error (test/helpers/database.ts has no listener).
  database.pool.on('error', () => {});
  await database.drop();
});

async function stateOf(id: string): Promise<string> {
  const [row] = await database.rows(`select state from baton.jobs where id = $1`, [id]);
  return row.state;
}

test('a worker killed with SIGKILL mid-job: another worker runs the job after the lease expires', {
  timeout: 90_000,
}, async () => {
  const lease = { BATON_LEASE_MS: '3000', BATON_RECOVERY_INTERVAL_MS: '500' };
  const first = await startWorker(database.url, { env: lease });
  workers.push(first);
  const baton = connectBaton(database);
  // Attempt 1 sleeps a minute; a later attempt runs at once.
  const { id } = await baton.enqueue(slowFirst, { ...quick, sleepMs: 60_000, slowAttempts: 1 });
  await first.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
  expect(await stateOf(id)).toBe('running');

  first.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');
  // The dead worker's lease as it left it: nothing renews it any more.
  const [held] = await database.rows(
    `select lease_expires_at, worker_id, attempts from baton.jobs where id = $1`,
    [id],
  );
  expect(held.attempts).toBe(1);

  const second = await startWorker(database.url, { env: lease });
  workers.push(second);
  const requeued = await second.waitForLog(
    (line) => line.event === 'recovery.requeued' && line.jobId === id,
    30_000,
  );
  expect(requeued.lostWorkerId).toBe(held.worker_id);
  await second.waitForLog((line) => line.event === 'job.completed' && line.jobId === id, 30_000);
  await pollUntil('the job to be completed', async () => (await stateOf(id)) === 'completed');

  const job = await baton.getJob(id);
  expect(job!.attempts).toBe(2);
  expect(job!.attemptHistory.map((attempt) => [attempt.attempt, attempt.outcome])).toEqual([
    [1, 'lease_expired'],
    [2, 'completed'],
  ]);
  expect(job!.attemptHistory[0]!.workerId).toBe(held.worker_id);
  expect(job!.attemptHistory[1]!.workerId).not.toBe(held.worker_id);
  expect(job!.deadLetter).toBeNull();

  // Requeued only once the lease had expired, on database time.
  const [recovered] = await database.rows(
    `select finished_at >= $2::timestamptz as after_expiry from baton.job_attempts where job_id = $1`,
    [id, held.lease_expires_at],
  );
  expect(recovered.after_expiry).toBe(true);

  // The killed worker never finished its run; the second worker's run is the one that counted.
  const runs = await database.rows(`select attempt, worker_pid, outcome from ledger where job_id = $1`, [id]);
  expect(runs).toEqual([{ attempt: 2, worker_pid: second.pid, outcome: 'ran' }]);

  second.kill('SIGTERM');
  expect((await second.exited).code).toBe(0);
  await baton.close();
});

test('jobs enqueued while no worker runs all run once a worker starts', { timeout: 90_000 }, async () => {
  await Promise.all(workers.map((worker) => worker.stop())); // no worker runs

  const baton = connectBaton(database);
  const many = await baton.enqueueMany(
    record,
    Array.from({ length: 200 }, () => ({ payload: quick })),
  );
  const single = await baton.enqueue(record, quick);
  const delayed = await baton.enqueue(record, quick, { delayMs: 1500 });
  const ids = [...many.map((job) => job.id), single.id, delayed.id];
  expect(new Set(ids).size).toBe(202);

  // Nothing runs them yet: they wait in the database.
  const [waiting] = await database.rows(
    `select count(*)::int as n from baton.jobs where id = any($1) and state = 'pending' and attempts = 0`,
    [ids],
  );
  expect(waiting.n).toBe(202);

  const worker = await startWorker(database.url, { env: { BATON_CONCURRENCY: '8' } });
  workers.push(worker);
  await pollUntil(
    'every job to complete',
    async () => {
      const [open] = await database.rows(
        `select count(*)::int as n from baton.jobs where id = any($1) and state <> 'completed'`,
        [ids],
      );
      return open.n === 0;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const runs = await database.rows(
    `select job_id, count(*)::int as runs from ledger where job_id = any($1) group by job_id`,
    [ids],
  );
  expect(runs.length).toBe(202);
  expect(runs.filter((row) => row.runs !== 1)).toEqual([]);
  await baton.close();
});

test('two enqueues with one idempotency key give one job, also concurrently from two clients', async () => {
  const one = connectBaton(database);
  const two = connectBaton(database);

  const first = await one.enqueue(record, quick, { idempotencyKey: 'order-1' });
  const again = await one.enqueue(record, quick, { idempotencyKey: 'order-1' });
  expect(first.created).toBe(true);
  expect(again).toEqual({ id: first.id, created: false });

  // Racing pairs from two clients (each its own pool): each pair yields one job, created once.
  const keys = Array.from({ length: 25 }, (_, index) => `race-${index}`);
  const pairs = await Promise.all(
    keys.map((key) =>
      Promise.all([
        one.enqueue(record, quick, { idempotencyKey: key }),
        two.enqueue(record, quick, { idempotencyKey: key }),
      ]),
    ),
  );
  for (const [a, b] of pairs) {
    expect(a.id).toBe(b.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
  }
  // A batch that repeats a key within itself, and a key shared with an earlier enqueue.
  const batch = await two.enqueueMany(record, [
    { payload: quick, idempotencyKey: 'batch-1' },
    { payload: quick, idempotencyKey: 'batch-1' },
    { payload: quick, idempotencyKey: 'order-1' },
  ]);
  expect(batch[1]!.id).toBe(batch[0]!.id);
  expect(batch[2]).toEqual({ id: first.id, created: false });
  // Keys are per kind: the same key on another kind is another job.
  const otherKind = await one.enqueue(
    slowFirst,
    { ...quick, slowAttempts: 0 },
    { idempotencyKey: 'order-1' },
  );
  expect(otherKind.created).toBe(true);
  expect(otherKind.id).not.toBe(first.id);

  const counts = await database.rows(
    `select kind, idempotency_key, count(*)::int as n from baton.jobs
     where idempotency_key is not null group by kind, idempotency_key`,
  );
  expect(counts.length).toBe(1 + keys.length + 1 + 1);
  expect(counts.filter((row) => row.n !== 1)).toEqual([]);
  await Promise.all([one.close(), two.close()]);
});
