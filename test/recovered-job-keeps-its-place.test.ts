/**
 * Found by the fault suite (faults/scenarios/sigkill.ts): a job recovered from a dead worker went
 * back to pending with run_at = now(), behind every job that had become due while it was held, so
 * with a backlog it waited far longer than its lease (13.6 s for a 2 s lease). A recovered job keeps
 * its run_at and is claimed before the jobs that were enqueued after it.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { jobClaim, leaseRecoverExpired } from '../src/sql/jobs-lease.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('recovered_place');
});

afterAll(async () => {
  database.pool.on('error', () => {});
  await database.drop();
});

test('a job whose lease expired is claimed again before jobs that became due after it', async () => {
  const baton = connectBaton(database);
  const quick = { sleepMs: 0, ignoreAbort: false, failAttempts: 0 };
  const { id: first } = await baton.enqueue(record, quick);
  const claimed = await database.pool.query(jobClaim, [['ledger.record'], 1, 1, 'dead-worker']);
  expect(claimed.rows.map((row) => row.id)).toEqual([first]);
  // A backlog arrives while the dead worker's lease runs out.
  const backlog = await baton.enqueueMany(
    record,
    Array.from({ length: 20 }, () => ({ payload: quick })),
  );
  await pollUntil('the lease to expire', async () => {
    const { rows } = await database.pool.query(leaseRecoverExpired, [10]);
    return rows.length > 0 && rows;
  });
  const [job] = await database.rows(`select state, run_at, created_at from baton.jobs where id = $1`, [
    first,
  ]);
  expect(job.state).toBe('pending');
  expect(job.run_at.getTime()).toBeLessThanOrEqual(job.created_at.getTime() + 1000);
  const next = await database.pool.query(jobClaim, [['ledger.record'], 1, 60_000, 'live-worker']);
  expect(next.rows.map((row) => row.id)).toEqual([first]);
  expect(backlog).toHaveLength(20);
  await baton.close();
});
