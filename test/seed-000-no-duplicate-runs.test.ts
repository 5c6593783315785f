/**
 * Seed 000: a job fetched as `pending` stayed `pending` and was run again by the next poll.
 * In Baton the claim moves a job to `running` with a fresh lease in one statement, so across
 * 8 worker processes every one of 5,000 jobs runs exactly once.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase('seed000');
  await createLedger(database);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await database.drop();
});

test('8 worker processes share 5,000 jobs and every job runs exactly once', {
  timeout: 180_000,
}, async () => {
  const baton = connectBaton(database);
  const ids: string[] = [];
  for (let batch = 0; batch < 5; batch++) {
    const jobs = await baton.enqueueMany(
      record,
      Array.from({ length: 1000 }, () => ({ payload: {} })),
    );
    ids.push(...jobs.map((job) => job.id));
  }
  expect(new Set(ids).size).toBe(5000);

  workers.push(
    ...(await Promise.all(
      Array.from({ length: 8 }, () =>
        startWorker(database.url, { env: { BATON_CONCURRENCY: '8', BATON_POLL_INTERVAL_MS: '200' } }),
      ),
    )),
  );

  // Wait until nothing is pending or running, by watching the database.
  for (;;) {
    const [open] = await database.rows(
      `select count(*)::int as n from baton.jobs where state in ('pending', 'running')`,
    );
    if (open.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const runs = await database.rows(`select job_id, count(*)::int as runs from ledger group by job_id`);
  expect(runs.length).toBe(5000);
  expect(runs.filter((row) => row.runs !== 1)).toEqual([]);
  const [states] = await database.rows(
    `select count(*) filter (where state = 'completed')::int as completed, count(*)::int as total from baton.jobs`,
  );
  expect(states).toEqual({ completed: 5000, total: 5000 });
  const ranIn = await database.rows(`select count(distinct worker_pid)::int as n from ledger`);
  expect(ranIn[0].n).toBeGreaterThan(1); // the work was really shared
  await baton.close();
});
