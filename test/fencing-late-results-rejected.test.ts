/**
 * G3, fenced outcomes: a worker that was frozen (SIGSTOP: a long GC pause, a suspended VM) past its
 * lease comes back after another worker has recovered and completed the job. Its late result must
 * change nothing; it must notice the lost lease, log `job.lease_lost` and abort its handler. The
 * SQL fence itself is checked directly too: a stale lease token matches no row.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  jobClaim,
  jobCompleteMany,
  jobFail,
  jobHandBack,
  jobProgress,
  leaseRecoverExpired,
  leaseRenew,
} from '../src/sql/jobs-lease.js';
import { record, slowFirst } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase('fencing');
  await createLedger(database);
});

async function stopAll(): Promise<void> {
  for (const worker of workers) worker.kill('SIGCONT');
  await Promise.all(workers.map((worker) => worker.stop()));
}

afterAll(async () => {
  await stopAll();
  // pool.end() resolves before its clients have closed; the forced drop may then terminate one,
  // and its FATAL would be an unhandled pool error (test/helpers/database.ts has no listener).
  database.pool.on('error', () => {});
  await database.drop();
});

const jobRow = async (id: string) => (await database.rows(`select * from baton.jobs where id = $1`, [id]))[0];

/**
 * Worker A claims a job whose first attempt sleeps `sleepMs` ignoring its signal, and is frozen;
 * worker B recovers the job once A's lease expired and completes it (attempt 2 runs at once).
 * Returns A, the job id and the job row as B left it.
 */
async function frozenWhileRecovered(sleepMs: number, leaseMs: number) {
  const a = await startWorker(database.url, { env: { BATON_LEASE_MS: String(leaseMs) } });
  workers.push(a);
  const baton = connectBaton(database);
  const { id } = await baton.enqueue(slowFirst, {
    sleepMs,
    ignoreAbort: true,
    failAttempts: 0,
    slowAttempts: 1,
  });
  await baton.close();
  // Freeze A only once its handler runs: frozen between job.claimed and the start, A would rightly
  // never start the job (its lease is gone by the time it resumes), and there would be no late
  // result to fence (seen in CI once the worker stopped starting jobs past their lease).
  await a.waitForLog((line) => line.event === 'fixture.handler_started' && line.jobId === id);
  a.kill('SIGSTOP');
  const claimed = await jobRow(id);
  expect(claimed).toMatchObject({ state: 'running', attempts: 1, worker_id: a.lines[0]!.workerId });
  // The frozen handler has not finished: no ledger row yet.
  expect(await database.rows(`select 1 from ledger where job_id = $1`, [id])).toEqual([]);

  const b = await startWorker(database.url, {
    env: { BATON_LEASE_MS: String(leaseMs), BATON_RECOVERY_INTERVAL_MS: '500' },
  });
  workers.push(b);
  await b.waitForLog((line) => line.event === 'recovery.requeued' && line.jobId === id, 30_000);
  await b.waitForLog((line) => line.event === 'job.completed' && line.jobId === id, 30_000);
  const completed = await pollUntil('B to complete the job', async () => {
    const row = await jobRow(id);
    return row.state === 'completed' && row;
  });
  expect(completed).toMatchObject({ attempts: 2, lease_token: null, lease_expires_at: null });
  expect(completed.worker_id).toBe(b.lines[0]!.workerId);
  // B is done; stop it so that nothing else could touch the job from here on.
  b.kill('SIGTERM');
  expect((await b.exited).code).toBe(0);
  return { a, id, completed };
}

test('a frozen worker resumed after its lease moved on aborts its handler (lease_lost) and its late result changes nothing', {
  timeout: 90_000,
}, async () => {
  // A's handler sleeps 20 s, much longer than it takes B to recover and complete the job: when A
  // resumes, its overdue heartbeat finds the lease gone while the handler still runs.
  const { a, id, completed } = await frozenWhileRecovered(20_000, 3000);
  a.kill('SIGCONT');

  const lost = await a.waitForLog((line) => line.event === 'job.lease_lost' && line.jobId === id, 15_000);
  expect(lost.write).toBe('heartbeat');
  const [abort] = await pollUntil('the handler to see its abort', () =>
    database
      .rows(`select worker_pid, reason from ledger_aborts where job_id = $1`, [id])
      .then((rows) => rows.length > 0 && rows),
  );
  expect(abort).toEqual({ worker_pid: a.pid, reason: 'lease_lost' });

  // The handler ignores its signal and finishes its first attempt late, with a result.
  const late = await pollUntil(
    "A's handler to finish late",
    () =>
      database
        .rows(
          `select attempt, worker_pid, lease_token, outcome from ledger where job_id = $1 and worker_pid = $2`,
          [id, a.pid],
        )
        .then((rows) => rows.length > 0 && rows),
    { timeoutMs: 40_000, intervalMs: 200 },
  );
  expect(late).toEqual([{ attempt: 1, worker_pid: a.pid, lease_token: expect.any(String), outcome: 'ran' }]);
  expect(late[0].lease_token).not.toBe(completed.lease_token);

  // Whatever A did with it, the job row is exactly as B left it.
  expect(await jobRow(id)).toEqual(completed);
  expect(
    await database.rows(`select attempt, outcome from baton.job_attempts where job_id = $1`, [id]),
  ).toEqual([{ attempt: 1, outcome: 'lease_expired' }]);
  expect(await database.rows(`select 1 from baton.dead_letters where job_id = $1`, [id])).toEqual([]);
  // A never logged a completion or failure of it.
  const written = a.lines.filter(
    (line) =>
      line.jobId === id && ['job.completed', 'job.retry_scheduled', 'job.failed'].includes(line.event),
  );
  expect(written).toEqual([]);
  await a.stop();
});

test('a late result that arrives while the worker was frozen is fenced out: the job is unchanged and job.lease_lost is logged', {
  timeout: 90_000,
}, async () => {
  // The handler's 2 s sleep ends while A is frozen (B completes only after A's 4 s lease expired),
  // so on SIGCONT the result and the overdue heartbeat race; whichever wins, nothing is written.
  const { a, id, completed } = await frozenWhileRecovered(2000, 4000);
  a.kill('SIGCONT');
  const lost = await a.waitForLog((line) => line.event === 'job.lease_lost' && line.jobId === id, 15_000);
  expect(['heartbeat', 'complete']).toContain(lost.write);
  await pollUntil('A to record its late run', () =>
    database
      .rows(`select 1 from ledger where job_id = $1 and worker_pid = $2`, [id, a.pid])
      .then((rows) => rows.length > 0),
  );
  // job.lease_lost came after A's fenced write (write: complete) or instead of it (heartbeat): A is done with the job.
  expect(await jobRow(id)).toEqual(completed);
  expect(a.lines.filter((line) => line.jobId === id && line.event === 'job.completed')).toEqual([]);
  await a.stop();
  expect(await jobRow(id)).toEqual(completed);
});

test('the SQL fence: complete, fail, progress, renew and hand-back with a stale lease token change no row', async () => {
  await stopAll(); // only this test touches the job
  const baton = connectBaton(database);
  const { id } = await baton.enqueue(
    record,
    { sleepMs: 0, ignoreAbort: false, failAttempts: 0 },
    { maxAttempts: 5 },
  );
  await baton.close();
  const claim = async (leaseMs: number) => {
    const { rows } = await database.pool.query(jobClaim, [['ledger.record'], 10, leaseMs, 'fence-test']);
    expect(rows.map((row) => row.id)).toEqual([id]);
    return rows[0].lease_token as string;
  };

  // Claim with a 1 ms lease, let the sweep requeue it once expired, and claim again: a new token.
  const stale = await claim(1);
  await pollUntil('the lease to expire', async () => {
    const [row] = await database.rows(
      `select lease_expires_at < now() as expired from baton.jobs where id = $1`,
      [id],
    );
    return row.expired;
  });
  const { rows: swept } = await database.pool.query(leaseRecoverExpired, [10]);
  expect(swept.map((row) => row.id)).toEqual([id]);
  const current = await claim(60_000);
  expect(current).not.toBe(stale);
  const before = await jobRow(id);
  const attemptsBefore = await database.rows(`select * from baton.job_attempts where job_id = $1`, [id]);

  const stalePairs = [
    [jobCompleteMany, [JSON.stringify([{ id, token: stale, result: { late: true } }])]],
    [jobFail, [id, stale, false, 1000, 'EXECUTION_FAILED', 'late failure', null, 'failed']],
    [jobFail, [id, stale, true, 0, 'ENTITY_NOT_FOUND', 'late terminal failure', null, 'failed']],
    [jobProgress, [id, stale, JSON.stringify({ late: true })]],
    [leaseRenew, [[id], [stale], 60_000, 'fence-test', 1, 60_000]],
    [jobHandBack, [[id], [stale]]],
  ] as const;
  for (const [statement, params] of stalePairs) {
    const { rows } = await database.pool.query(statement, params as unknown as unknown[]);
    expect(rows).toEqual([]);
  }
  expect(await jobRow(id)).toEqual(before);
  expect(await database.rows(`select * from baton.job_attempts where job_id = $1`, [id])).toEqual(
    attemptsBefore,
  );
  expect(await database.rows(`select 1 from baton.dead_letters where job_id = $1`, [id])).toEqual([]);

  // The same statements with the current token do write: the fence, not the statement, refused.
  const { rows: progressed } = await database.pool.query(jobProgress, [
    id,
    current,
    JSON.stringify({ step: 1 }),
  ]);
  expect(progressed).toEqual([{ id }]);
  const { rows: done } = await database.pool.query(jobCompleteMany, [
    JSON.stringify([{ id, token: current, result: { ok: true } }]),
  ]);
  expect(done).toEqual([{ id }]);
  expect(await jobRow(id)).toMatchObject({ state: 'completed', result: { ok: true }, progress: { step: 1 } });
  // Once completed, even the token that completed it cannot fail it.
  const { rows: failedAfter } = await database.pool.query(jobFail, [
    id,
    current,
    false,
    0,
    'EXECUTION_FAILED',
    'x',
    null,
    'failed',
  ]);
  expect(failedAfter).toEqual([]);
  expect(await jobRow(id)).toMatchObject({ state: 'completed', result: { ok: true } });
});
