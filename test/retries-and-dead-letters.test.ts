/**
 * Errors and retries (SPEC §3) and the operator's retry and cancel (§4): backoff on database time
 * within the policy, dead letters for spent attempts and terminal codes, handler timeouts as
 * retryable failures, retry of a dead-lettered job, and cancel of a pending or running job.
 * An in-process worker runs the kinds below; processes would add nothing here.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, defineKind, JobError, type Worker } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';

let database: TestDatabase;
let baton: BatonClient;
let worker: Worker;

const calls = new Map<string, number>();
const aborts = new Map<string, string>();
const started = new Set<string>();
const existing = new Set<string>();
const count = (id: string) => calls.set(id, (calls.get(id) ?? 0) + 1);
const reasonOf = (signal: AbortSignal) => String((signal.reason as { reason?: string })?.reason);

const backoff = defineKind({
  kind: 'test.backoff',
  payload: z.object({}),
  maxAttempts: 5,
  backoff: { baseMs: 400, maxMs: 1000 },
  handler: async (_input, { job }) => {
    // The run_at this attempt was due at, as the previous failure set it (a claim leaves run_at alone).
    await database.pool.query(
      `insert into seen_runs select id, attempts, run_at from baton.jobs where id = $1`,
      [job.id],
    );
    throw new Error(`attempt ${job.attempts} fails`);
  },
});

const coded = defineKind({
  kind: 'test.coded',
  payload: z.object({
    code: z.enum(['ENTITY_NOT_FOUND', 'PAYLOAD_UNSUPPORTED', 'PRECONDITION_FAILED', 'EXECUTION_FAILED']),
  }),
  maxAttempts: 5,
  backoff: { baseMs: 50, maxMs: 50 },
  handler: async ({ code }, { job }) => {
    count(job.id);
    throw new JobError(code, `fails with ${code}`);
  },
});

const slow = defineKind({
  kind: 'test.timeout',
  payload: z.object({ ignoreSignal: z.boolean() }),
  maxAttempts: 3,
  timeoutMs: 300,
  backoff: { baseMs: 50, maxMs: 50 },
  handler: async ({ ignoreSignal }, { job, signal }) => {
    count(job.id);
    signal.addEventListener('abort', () => aborts.set(job.id, reasonOf(signal)));
    if (job.attempts > 1) return { finished: job.attempts };
    // Attempt 1 never finishes in time: it waits for its signal, or (not cooperating) sleeps 10 s.
    await new Promise((resolve, reject) => {
      if (ignoreSignal) setTimeout(resolve, 10_000);
      else signal.addEventListener('abort', () => reject(signal.reason));
    });
    return { finished: job.attempts };
  },
});

const lookup = defineKind({
  kind: 'test.lookup',
  payload: z.object({ entity: z.string() }),
  handler: async ({ entity }, { job }) => {
    count(job.id);
    if (!existing.has(entity)) throw new JobError('ENTITY_NOT_FOUND', `no entity ${entity}`);
    return { found: entity };
  },
});

const cancellable = defineKind({
  kind: 'test.cancellable',
  payload: z.object({ waitForAbort: z.boolean() }),
  handler: async ({ waitForAbort }, { job, signal }) => {
    count(job.id);
    started.add(job.id);
    if (!waitForAbort) return { ran: true };
    await new Promise((_, reject) =>
      signal.addEventListener('abort', () => {
        aborts.set(job.id, reasonOf(signal));
        reject(signal.reason);
      }),
    );
  },
});

beforeAll(async () => {
  database = await createTestDatabase('retries');
  await database.pool.query(`create table seen_runs (job_id uuid, attempt integer, run_at timestamptz)`);
  baton = connectBaton(database);
  worker = baton.createWorker({
    kinds: [backoff, coded, slow, lookup, cancellable],
    shutdownSignals: [],
    logLevel: 'silent',
    pollIntervalMs: 200,
    shutdownTimeoutMs: 1000,
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await baton?.close();
  // pool.end() resolves before its clients have closed; the forced drop may then terminate one,
  // and its FATAL would be an unhandled pool error (test/helpers/database.ts has no listener).
  database.pool.on('error', () => {});
  await database.drop();
});

const stateIs = (id: string, state: string) =>
  pollUntil(`job ${id} to be ${state}`, async () => (await baton.getJob(id))?.state === state);

test('retry delays follow the backoff policy on database time; spent attempts end in a dead letter', async () => {
  const ids = (await baton.enqueueMany(backoff, [{ payload: {} }, { payload: {} }, { payload: {} }])).map(
    (j) => j.id,
  );
  for (const id of ids) await stateIs(id, 'failed');

  const delays = await database.rows(
    `select a.job_id, a.attempt, (extract(epoch from s.run_at - a.finished_at) * 1000)::float8 as delay_ms,
            (extract(epoch from next.started_at - s.run_at) * 1000)::float8 as claimed_after_due_ms
     from baton.job_attempts a
     join seen_runs s on s.job_id = a.job_id and s.attempt = a.attempt + 1
     join baton.job_attempts next on next.job_id = a.job_id and next.attempt = a.attempt + 1
     where a.job_id = any($1) order by a.job_id, a.attempt`,
    [ids],
  );
  expect(delays.length).toBe(ids.length * 4); // after failures 1 to 4; the 5th dead-letters
  for (const row of delays) {
    const nominal = Math.min(1000, 400 * 2 ** (row.attempt - 1)); // 400, 800, 1000 (capped), 1000
    expect(row.delay_ms, `delay after attempt ${row.attempt}`).toBeGreaterThanOrEqual(nominal / 2 - 1);
    expect(row.delay_ms, `delay after attempt ${row.attempt}`).toBeLessThanOrEqual(nominal + 1);
    expect(row.claimed_after_due_ms).toBeGreaterThanOrEqual(0); // never run before it was due
  }
  for (const id of ids) {
    const job = await baton.getJob(id);
    expect(job).toMatchObject({ state: 'failed', attempts: 5, errorCode: 'EXECUTION_FAILED' });
    expect(job!.attemptHistory.map((attempt) => [attempt.attempt, attempt.outcome])).toEqual(
      [1, 2, 3, 4, 5].map((attempt) => [attempt, 'failed']),
    );
    expect(job!.deadLetter).toMatchObject({ reason: 'max_attempts_exceeded', attempts: 5 });
  }
});

test('a terminal code dead-letters at once (non_retryable) after exactly one attempt; EXECUTION_FAILED is retried', async () => {
  const codes = ['ENTITY_NOT_FOUND', 'PAYLOAD_UNSUPPORTED', 'PRECONDITION_FAILED'] as const;
  const terminal = await Promise.all(codes.map((code) => baton.enqueue(coded, { code })));
  const retried = await baton.enqueue(coded, { code: 'EXECUTION_FAILED' }, { maxAttempts: 2 });
  for (const { id } of [...terminal, retried]) await stateIs(id, 'failed');

  for (const [index, { id }] of terminal.entries()) {
    const job = await baton.getJob(id);
    expect(job).toMatchObject({ attempts: 1, maxAttempts: 5, errorCode: codes[index] });
    expect(job!.deadLetter).toMatchObject({ reason: 'non_retryable', errorCode: codes[index], attempts: 1 });
    expect(job!.attemptHistory).toMatchObject([{ attempt: 1, outcome: 'failed', errorCode: codes[index] }]);
    expect(calls.get(id)).toBe(1);
  }
  const job = await baton.getJob(retried.id);
  expect(job!.deadLetter).toMatchObject({ reason: 'max_attempts_exceeded', errorCode: 'EXECUTION_FAILED' });
  expect(job!.attemptHistory.map((attempt) => attempt.attempt)).toEqual([1, 2]);
  expect(calls.get(retried.id)).toBe(2);
});

test('a handler timeout is a retryable failure with outcome timed_out, cooperating or not', async () => {
  const cooperating = await baton.enqueue(slow, { ignoreSignal: false });
  const stubborn = await baton.enqueue(slow, { ignoreSignal: true });
  for (const { id } of [cooperating, stubborn]) await stateIs(id, 'completed');

  for (const { id } of [cooperating, stubborn]) {
    const job = await baton.getJob(id);
    expect(job).toMatchObject({ attempts: 2, result: { finished: 2 }, deadLetter: null });
    const [timedOut, completed] = job!.attemptHistory;
    expect(timedOut).toMatchObject({ attempt: 1, outcome: 'timed_out', errorCode: 'EXECUTION_FAILED' });
    expect(timedOut!.errorMessage).toMatch(/timeoutMs/);
    expect(completed).toMatchObject({ attempt: 2, outcome: 'completed' });
    expect(aborts.get(id)).toBe('timeout');
    // Cut at the timeout, not when the (10 s) handler would have finished.
    const [took] = await database.rows(
      `select (extract(epoch from finished_at - started_at) * 1000)::float8 as ms from baton.job_attempts where job_id = $1`,
      [id],
    );
    expect(took.ms).toBeGreaterThanOrEqual(300 - 5);
    expect(took.ms).toBeLessThan(5000);
  }
});

test("an operator's retry of a dead-lettered job removes the dead letter and runs it again", async () => {
  const { id } = await baton.enqueue(lookup, { entity: 'book-7' });
  await stateIs(id, 'failed');
  expect((await baton.getJob(id))!.deadLetter).toMatchObject({ reason: 'non_retryable' });
  // Retried before its cause is fixed, it runs and fails again.
  await expect(baton.retry(id)).resolves.toEqual({ previousState: 'failed' });
  await stateIs(id, 'failed');
  expect(calls.get(id)).toBe(2);

  existing.add('book-7'); // the operator fixes the cause, then retries
  await baton.retry(id);
  const [dead] = await database.rows(`select count(*)::int as n from baton.dead_letters where job_id = $1`, [
    id,
  ]);
  expect(dead.n).toBe(0);
  await stateIs(id, 'completed');
  const job = await baton.getJob(id);
  expect(job).toMatchObject({ result: { found: 'book-7' }, attempts: 1, deadLetter: null, errorCode: null });
  expect(calls.get(id)).toBe(3);
  await expect(baton.retry(id)).rejects.toMatchObject({ code: 'JOB_STATE_CONFLICT' });
  // The history keeps every round; the completing attempt of the last round is in it too.
  expect(job!.attemptHistory.map((attempt) => [attempt.attempt, attempt.outcome])).toEqual([
    [1, 'failed'],
    [1, 'failed'],
    [1, 'completed'],
  ]);
});

test('cancel: a pending job is cancelled at once and never runs; a running job has its handler aborted', async () => {
  const pending = await baton.enqueue(cancellable, { waitForAbort: false }, { delayMs: 60_000 });
  await expect(baton.cancel(pending.id)).resolves.toEqual({ previousState: 'pending' });
  expect(await baton.getJob(pending.id)).toMatchObject({ state: 'cancelled', attempts: 0, leaseToken: null });
  expect((await baton.getJob(pending.id))!.finishedAt).not.toBeNull();
  await expect(baton.cancel(pending.id)).rejects.toMatchObject({ code: 'JOB_STATE_CONFLICT' });

  const running = await baton.enqueue(cancellable, { waitForAbort: true });
  await pollUntil('the handler to start', async () => started.has(running.id));
  await expect(baton.cancel(running.id)).resolves.toEqual({ previousState: 'running' });
  await pollUntil('the handler to see its abort', async () => aborts.get(running.id));
  expect(aborts.get(running.id)).toBe('cancelled');
  // The worker lets go of the job and writes nothing over the cancel.
  await pollUntil('the worker to free the slot', async () =>
    worker.inspect().running.every((execution) => execution.jobId !== running.id),
  );
  expect(await baton.getJob(running.id)).toMatchObject({
    state: 'cancelled',
    attempts: 1,
    leaseToken: null,
    result: null,
    deadLetter: null,
  });
  expect(calls.get(running.id)).toBe(1);

  // A cancelled job can be retried: the one cancelled while pending now runs.
  await expect(baton.retry(pending.id)).resolves.toEqual({ previousState: 'cancelled' });
  await stateIs(pending.id, 'completed');
  expect(calls.get(pending.id)).toBe(1);
});
