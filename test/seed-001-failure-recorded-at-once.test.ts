/**
 * Seed 001: a worker's thrown error was only noticed by a sweeper minutes later, and some attempts
 * were recorded twice (or not at all). In Baton the failed attempt and the job's next state (a
 * retry with a future run_at, or failed with a dead letter) are written in one statement in the
 * same tick as the throw: within a second of it, exactly once per attempt.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { record, slowRetry } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

/** Ledger times (epoch ms, worker clock) and database times are on one machine's clock; allow for rounding. */
const CLOCK_SLACK_MS = 100;
const AT_ONCE_MS = 1000;

const failing = { sleepMs: 0, ignoreAbort: false, failAttempts: 1000 };

beforeAll(async () => {
  database = await createTestDatabase('seed001');
  await createLedger(database);
  // The default lease is 10 minutes and the sweep runs every 5 s: any next state seen within a
  // second of the throw was written by the failing worker, not by a sweeper.
  workers.push(
    ...(await Promise.all([
      startWorker(database.url, { env: { BATON_CONCURRENCY: '4' } }),
      startWorker(database.url, { env: { BATON_CONCURRENCY: '4' } }),
    ])),
  );
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  // pool.end() resolves before its clients have closed; the forced drop may then terminate one,
  // and its FATAL would be an unhandled pool error (test/helpers/database.ts has no listener).
  database.pool.on('error', () => {});
  await database.drop();
});

/** The job row as the test reads it, with times as epoch ms (sub-ms precision). */
async function jobNow(id: string) {
  const [row] = await database.rows(
    `select state, attempts, (extract(epoch from updated_at) * 1000)::float8 as updated_ms,
            (extract(epoch from run_at) * 1000)::float8 as run_ms, (extract(epoch from finished_at) * 1000)::float8 as finished_ms,
            (select count(*)::int from baton.job_attempts a where a.job_id = j.id) as recorded,
            (select reason from baton.dead_letters d where d.job_id = j.id) as dead_reason
     from baton.jobs j where id = $1`,
    [id],
  );
  return row as {
    state: string;
    attempts: number;
    updated_ms: number;
    run_ms: number;
    finished_ms: number | null;
    recorded: number;
    dead_reason: string | null;
  };
}

test('each throw puts the job in its next state within a second: pending with a future run_at, then failed with a dead letter', {
  timeout: 60_000,
}, async () => {
  const baton = connectBaton(database);
  const { id } = await baton.enqueue(slowRetry, failing, { maxAttempts: 3 });
  await baton.close();

  for (let attempt = 1; attempt <= 3; attempt++) {
    // The handler writes its ledger row, then throws.
    const [thrown] = await pollUntil(`ledger row of attempt ${attempt}`, () =>
      database
        .rows(`select finished_ms from ledger where job_id = $1 and attempt = $2`, [id, attempt])
        .then((rows) => rows.length > 0 && rows),
    );
    const job = await pollUntil(`the state after attempt ${attempt}`, async () => {
      const row = await jobNow(id);
      return row.state !== 'running' && row;
    });
    expect(job.attempts).toBe(attempt);
    expect(job.recorded).toBe(attempt); // this attempt's failure record, written with the state
    const lagMs = job.updated_ms - thrown.finished_ms;
    expect(lagMs).toBeGreaterThan(-CLOCK_SLACK_MS);
    expect(lagMs).toBeLessThan(AT_ONCE_MS);
    if (attempt < 3) {
      expect(job.state).toBe('pending');
      // Backoff of ledger.slow_retry: 2000 ms nominal, equal jitter, so 1000 to 2000 ms after the failure.
      expect(job.run_ms - job.updated_ms).toBeGreaterThanOrEqual(1000 - 1);
      expect(job.run_ms - job.updated_ms).toBeLessThanOrEqual(2000 + 1);
      expect(job.finished_ms).toBeNull();
      expect(job.dead_reason).toBeNull();
    } else {
      expect(job.state).toBe('failed');
      expect(job.finished_ms).toBeCloseTo(job.updated_ms, 3);
      expect(job.dead_reason).toBe('max_attempts_exceeded');
    }
  }
});

test('across many failing jobs on two workers, every attempt has exactly one failure record, written at once', {
  timeout: 90_000,
}, async () => {
  const baton = connectBaton(database);
  const jobs = await baton.enqueueMany(
    record,
    Array.from({ length: 24 }, () => ({ payload: failing, maxAttempts: 3 })),
  );
  await baton.close();
  const ids = jobs.map((job) => job.id);

  await pollUntil(
    'every job to fail for good',
    async () => {
      const [open] = await database.rows(
        `select count(*)::int as n from baton.jobs where id = any($1) and state <> 'failed'`,
        [ids],
      );
      return open.n === 0;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );

  const attempts = await database.rows(
    `select job_id, attempt, outcome, error_code, lease_token, worker_id,
            (extract(epoch from started_at) * 1000)::float8 as started_ms, (extract(epoch from finished_at) * 1000)::float8 as finished_ms
     from baton.job_attempts where job_id = any($1) order by job_id, attempt`,
    [ids],
  );
  const ledger = await database.rows(
    `select job_id, attempt, lease_token, finished_ms from ledger where job_id = any($1)`,
    [ids],
  );
  const ledgerByAttempt = new Map(ledger.map((row) => [`${row.job_id}/${row.attempt}`, row]));

  // Exactly one record per (job, attempt), attempts 1..3, none missing, none twice.
  expect(attempts.length).toBe(ids.length * 3);
  expect(ledger.length).toBe(ids.length * 3);
  expect(new Set(attempts.map((row) => `${row.job_id}/${row.attempt}`)).size).toBe(ids.length * 3);
  for (const id of ids) {
    expect(attempts.filter((row) => row.job_id === id).map((row) => row.attempt)).toEqual([1, 2, 3]);
  }

  for (const row of attempts) {
    expect(row.outcome).toBe('failed');
    expect(row.error_code).toBe('EXECUTION_FAILED');
    const run = ledgerByAttempt.get(`${row.job_id}/${row.attempt}`);
    expect(run, `ledger row of ${row.job_id} attempt ${row.attempt}`).toBeDefined();
    expect(row.lease_token).toBe(run!.lease_token); // the record is of the run that threw
    const lagMs = row.finished_ms - run!.finished_ms;
    expect(lagMs).toBeGreaterThan(-CLOCK_SLACK_MS);
    expect(lagMs).toBeLessThan(AT_ONCE_MS);
  }

  // A retry waited for its backoff (ledger.record: 200 ms nominal after attempt 1, 400 after
  // attempt 2, half of it at least): the job sat pending with a future run_at, on database time.
  for (const id of ids) {
    const [first, second, third] = attempts.filter((row) => row.job_id === id);
    expect(second.started_ms - first.finished_ms).toBeGreaterThanOrEqual(100 - 1);
    expect(third.started_ms - second.finished_ms).toBeGreaterThanOrEqual(200 - 1);
  }

  const jobRows = await database.rows(
    `select j.state, j.attempts, d.reason, d.attempts as dead_attempts,
            (extract(epoch from j.updated_at) * 1000)::float8 as updated_ms
     from baton.jobs j left join baton.dead_letters d on d.job_id = j.id where j.id = any($1)`,
    [ids],
  );
  for (const row of jobRows) {
    expect(row).toMatchObject({
      state: 'failed',
      attempts: 3,
      reason: 'max_attempts_exceeded',
      dead_attempts: 3,
    });
  }
  // The last throw of each job and its failed state: within a second.
  const lastThrows = await database.rows(
    `select l.finished_ms, (extract(epoch from j.updated_at) * 1000)::float8 as updated_ms
     from ledger l join baton.jobs j on j.id = l.job_id where l.attempt = 3 and j.id = any($1)`,
    [ids],
  );
  expect(lastThrows.length).toBe(ids.length);
  for (const row of lastThrows) expect(row.updated_ms - row.finished_ms).toBeLessThan(AT_ONCE_MS);

  // No job was ever left to a sweeper.
  const swept = workers.flatMap((worker) =>
    worker.lines.filter((line) => line.event === 'recovery.requeued'),
  );
  expect(swept).toEqual([]);
});
