/**
 * Retention (SPEC §9): finished jobs past their retention are deleted on database time, with their
 * attempts and dead letters, by every worker without conflict; pending and running jobs, and
 * finished ones still inside their retention, are never touched. 0 keeps a state forever.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pruneFinishedJobs } from '../src/core/retention.js';
import { resolveWorkerSettings } from '../src/worker/options.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker } from './helpers/processes.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('retention');
  await createLedger(database);
});

afterAll(async () => {
  await database.drop();
});

/** Jobs in `state`, finished `agoMs` before the database's now (a failed one with a dead letter and an attempt). */
async function jobsFinished(state: 'completed' | 'failed' | 'cancelled', agoMs: number, count = 1) {
  const baton = connectBaton(database);
  const jobs = await baton.enqueueMany(
    record,
    Array.from({ length: count }, () => ({ payload: {} })),
  );
  const ids = jobs.map((job) => job.id);
  await database.rows(
    `update baton.jobs set state = $2, attempts = 1, finished_at = now() - $3 * interval '1 millisecond'
     where id = any($1::uuid[])`,
    [ids, state, agoMs],
  );
  if (state === 'failed') {
    await database.rows(
      `insert into baton.dead_letters (job_id, kind, reason, attempts) select id, kind, 'non_retryable', 1
       from baton.jobs where id = any($1::uuid[])`,
      [ids],
    );
    await database.rows(
      `insert into baton.job_attempts (job_id, attempt, outcome) select id, 1, 'failed'
       from baton.jobs where id = any($1::uuid[])`,
      [ids],
    );
  }
  return ids;
}

const existing = async (ids: string[]) =>
  (await database.rows(`select id from baton.jobs where id = any($1::uuid[])`, [ids])).map((row) => row.id);

describe('pruneFinishedJobs', () => {
  test('deletes only finished jobs past their state’s retention, with their attempts and dead letters', async () => {
    const oldCompleted = await jobsFinished('completed', 2 * 3_600_000, 5);
    const recentCompleted = await jobsFinished('completed', 60_000, 3);
    const oldFailed = await jobsFinished('failed', 3 * 86_400_000, 2);
    const recentFailed = await jobsFinished('failed', 2 * 3_600_000, 2);
    const oldCancelled = await jobsFinished('cancelled', 3 * 86_400_000, 1);
    const pending = (await connectBaton(database).enqueueMany(record, [{ payload: {} }])).map(
      (job) => job.id,
    );

    const deleted = await pruneFinishedJobs(database.pool, {
      retainCompletedMs: 3_600_000,
      retainFailedMs: 86_400_000,
      batchSize: 2,
    });
    expect(deleted).toEqual({ completed: 5, failed: 3 });
    expect(await existing([...oldCompleted, ...oldFailed, ...oldCancelled])).toEqual([]);
    expect((await existing([...recentCompleted, ...recentFailed, ...pending])).length).toBe(3 + 2 + 1);
    const orphans = await database.rows(
      `select (select count(*) from baton.dead_letters where job_id = any($1::uuid[]))::int as letters,
              (select count(*) from baton.job_attempts where job_id = any($1::uuid[]))::int as attempts`,
      [oldFailed],
    );
    expect(orphans[0]).toEqual({ letters: 0, attempts: 0 });
    // A second run finds nothing more.
    expect(
      await pruneFinishedJobs(database.pool, {
        retainCompletedMs: 3_600_000,
        retainFailedMs: 86_400_000,
        batchSize: 2,
      }),
    ).toEqual({ completed: 0, failed: 0 });
  });

  test('0 keeps a state forever', async () => {
    const oldCompleted = await jobsFinished('completed', 30 * 86_400_000, 2);
    const oldFailed = await jobsFinished('failed', 30 * 86_400_000, 2);
    expect(
      await pruneFinishedJobs(database.pool, {
        retainCompletedMs: 0,
        retainFailedMs: 86_400_000,
        batchSize: 100,
      }),
    ).toEqual({ completed: 0, failed: 2 });
    expect((await existing(oldCompleted)).length).toBe(2);
    expect(await existing(oldFailed)).toEqual([]);
    expect(
      await pruneFinishedJobs(database.pool, { retainCompletedMs: 0, retainFailedMs: 0, batchSize: 100 }),
    ).toEqual({ completed: 0, failed: 0 });
    expect((await existing(oldCompleted)).length).toBe(2);
  });

  test('three concurrent prunes delete each job once and together delete them all', async () => {
    await database.rows('delete from baton.jobs');
    const old = await jobsFinished('completed', 10 * 86_400_000, 300);
    const options = { retainCompletedMs: 86_400_000, retainFailedMs: 0, batchSize: 25 };
    const runs = await Promise.all([1, 2, 3].map(() => pruneFinishedJobs(database.pool, options)));
    expect(runs.reduce((sum, run) => sum + run.completed, 0)).toBe(300);
    expect(await existing(old)).toEqual([]);
  });
});

describe('in a worker', () => {
  test('a worker process deletes completed jobs past BATON_RETAIN_COMPLETED_MS and logs retention.deleted', {
    timeout: 60_000,
  }, async () => {
    const old = await jobsFinished('completed', 10 * 60_000, 4);
    const kept = await jobsFinished('completed', 0, 2);
    const worker = await startWorker(database.url, {
      env: { BATON_RETAIN_COMPLETED_MS: '300000', BATON_RETENTION_INTERVAL_MS: '200' },
    });
    try {
      const line = await worker.waitForEvent('retention.deleted');
      expect(line.completed).toBeGreaterThanOrEqual(4);
      await pollUntil('the old jobs to be deleted', async () => (await existing(old)).length === 0, {
        timeoutMs: 10_000,
      });
      expect((await existing(kept)).length).toBe(2);
    } finally {
      await worker.stop();
    }
  });

  test('retention settings are validated naming the variable', () => {
    expect(() => resolveWorkerSettings({}, { BATON_RETAIN_COMPLETED_MS: '-1' })).toThrow(
      /BATON_RETAIN_COMPLETED_MS="-1"/,
    );
    expect(() => resolveWorkerSettings({}, { BATON_RETENTION_BATCH_SIZE: '0' })).toThrow(
      /BATON_RETENTION_BATCH_SIZE="0"/,
    );
    const settings = resolveWorkerSettings({}, {});
    expect(settings).toMatchObject({
      retainCompletedMs: 86_400_000,
      retainFailedMs: 1_209_600_000,
      retentionIntervalMs: 60_000,
      retentionBatchSize: 1000,
    });
  });
});
