/**
 * The embedded database (PGlite) is the same product as PostgreSQL for a first run (SPEC §8, §9):
 * the same test body runs against a real PostgreSQL database and an in-memory PGlite, each with an
 * in-process worker: jobs complete, idempotency keys dedupe, failures retry then dead-letter with
 * their attempt history, cancel and retry work, statistics count, and delayed jobs wait.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, createEmbeddedBaton, defineKind, JobError, type Worker } from '../src/index.js';
import { connectBaton, createTestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';

const echo = defineKind({
  kind: 'parity.echo',
  payload: z.object({ text: z.string() }),
  handler: async ({ text }) => ({ echoed: text }),
});

const failing = defineKind({
  kind: 'parity.failing',
  payload: z.object({}),
  maxAttempts: 3,
  backoff: { baseMs: 50, maxMs: 100 },
  handler: async (_input, { job }) => {
    throw new Error(`attempt ${job.attempts} fails`);
  },
});

const counted = defineKind({
  kind: 'parity.counted',
  payload: z.object({ fail: z.boolean().default(false) }),
  handler: async ({ fail }) => {
    if (fail) throw new JobError('PRECONDITION_FAILED', 'told to fail');
    return { ok: true };
  },
});

/** A limited kind: claimed under its kind lock, one at a time. */
let limitedRunning = 0;
let limitedMax = 0;
const limitedOne = defineKind({
  kind: 'parity.limited',
  payload: z.object({}),
  concurrency: 1,
  handler: async () => {
    limitedMax = Math.max(limitedMax, ++limitedRunning);
    await new Promise((resolve) => setTimeout(resolve, 20));
    limitedRunning--;
  },
});

/** Enqueued only: no worker has a handler for it. */
const unserved = defineKind({ kind: 'parity.unserved', payload: z.object({}) });

interface Target {
  engine: string;
  open(): Promise<{ baton: BatonClient; close(): Promise<void> }>;
}

const targets: Target[] = [
  {
    engine: 'PostgreSQL',
    async open() {
      const database = await createTestDatabase('parity');
      const baton = connectBaton(database);
      return {
        baton,
        async close() {
          await baton.close();
          await database.drop();
        },
      };
    },
  },
  {
    engine: 'PGlite (in memory)',
    async open() {
      const baton = await createEmbeddedBaton();
      await baton.migrate();
      return { baton, close: () => baton.close() };
    },
  },
];

describe.each(targets)('on $engine', ({ open }) => {
  let baton: BatonClient;
  let worker: Worker;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ baton, close } = await open());
    worker = baton.createWorker({
      kinds: [echo, failing, counted, limitedOne],
      pollIntervalMs: 100,
      logLevel: 'silent',
      shutdownSignals: [],
    });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await close?.();
  });

  const stateOf = (id: string, ...states: string[]) =>
    pollUntil(`job ${id} to be ${states.join(' or ')}`, async () => {
      const job = await baton.getJob(id);
      return job && states.includes(job.state) ? job : null;
    });
  const count = async (sql: string, params?: unknown[]) =>
    Number((await baton.db.query(sql, params)).rows[0].n);

  test('enqueued jobs are run by the worker and completed with their results', async () => {
    const jobs = await baton.enqueueMany(
      echo,
      ['a', 'b', 'c', 'd', 'e'].map((text) => ({ payload: { text } })),
    );
    for (const [index, { id }] of jobs.entries()) {
      const job = await stateOf(id, 'completed', 'failed');
      expect(job).toMatchObject({ state: 'completed', attempts: 1, result: { echoed: 'abcde'[index] } });
      expect(job.attemptHistory.map((attempt) => attempt.outcome)).toEqual(['completed']);
    }
  });

  test('a kind limited to 1 runs its jobs one at a time (claims under the kind lock)', async () => {
    limitedMax = 0;
    const jobs = await baton.enqueueMany(
      limitedOne,
      Array.from({ length: 6 }, () => ({ payload: {} })),
    );
    for (const { id } of jobs) expect((await stateOf(id, 'completed', 'failed')).state).toBe('completed');
    expect(limitedMax).toBe(1);
  });

  test('an idempotency key gives one job', async () => {
    const first = await baton.enqueue(echo, { text: 'once' }, { idempotencyKey: 'parity-key' });
    const second = await baton.enqueue(echo, { text: 'twice' }, { idempotencyKey: 'parity-key' });
    expect(first.created).toBe(true);
    expect(second).toEqual({ id: first.id, created: false });
    const [many] = await baton.enqueueMany(echo, [
      { payload: { text: 'thrice' }, idempotencyKey: 'parity-key' },
    ]);
    expect(many).toEqual({ id: first.id, created: false });
    expect(
      await count(`select count(*)::int as n from baton.jobs where idempotency_key = 'parity-key'`),
    ).toBe(1);
    expect((await stateOf(first.id, 'completed')).result).toEqual({ echoed: 'once' });
  });

  test('a throwing handler is retried, then dead-lettered, with one attempt row per attempt', async () => {
    const { id } = await baton.enqueue(failing, {});
    const job = await stateOf(id, 'failed');
    expect(job).toMatchObject({
      attempts: 3,
      errorCode: 'EXECUTION_FAILED',
      errorMessage: 'attempt 3 fails',
    });
    expect(await count(`select count(*)::int as n from baton.job_attempts where job_id = $1`, [id])).toBe(3);
    expect(job.attemptHistory.map((attempt) => [attempt.attempt, attempt.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
    ]);
    expect(job.deadLetter).toMatchObject({ reason: 'max_attempts_exceeded', attempts: 3 });
  });

  test('cancel stops a pending job; retry puts it back and it runs', async () => {
    const { id } = await baton.enqueue(echo, { text: 'later' }, { delayMs: 60_000 });
    expect(await baton.cancel(id)).toEqual({ previousState: 'pending' });
    expect((await baton.getJob(id))?.state).toBe('cancelled');
    await expect(baton.cancel(id)).rejects.toMatchObject({ code: 'JOB_STATE_CONFLICT' });

    expect(await baton.retry(id)).toEqual({ previousState: 'cancelled' });
    const job = await stateOf(id, 'completed'); // retry makes it due now
    expect(job).toMatchObject({ attempts: 1, result: { echoed: 'later' } });
    await expect(baton.retry(id)).rejects.toMatchObject({ code: 'JOB_STATE_CONFLICT' });
    const audit = await baton.db.query(`select action from baton.audit_log where job_id = $1 order by id`, [
      id,
    ]);
    expect(audit.rows.map((row: { action: string }) => row.action)).toEqual(['job.cancel', 'job.retry']);
  });

  test('stats count jobs per kind and state and name kinds without a live worker', async () => {
    const done = await baton.enqueueMany(counted, [
      { payload: {} },
      { payload: {} },
      { payload: {} },
      { payload: { fail: true } },
    ]);
    await baton.enqueue(counted, {}, { delayMs: 60_000 });
    const toCancel = await baton.enqueue(counted, {}, { delayMs: 60_000 });
    await baton.cancel(toCancel.id);
    await baton.enqueueMany(unserved, [{ payload: {} }, { payload: {} }]);
    for (const { id } of done) await stateOf(id, 'completed', 'failed');

    const stats = await baton.stats();
    expect(stats.kinds.find((kind) => kind.kind === 'parity.counted')).toEqual({
      kind: 'parity.counted',
      pending: 1,
      due: 0,
      running: 0,
      completed: 3,
      failed: 1,
      cancelled: 1,
      deadLettered: 1,
      liveWorkers: 1,
    });
    expect(stats.kinds.find((kind) => kind.kind === 'parity.unserved')).toMatchObject({
      pending: 2,
      due: 2,
      liveWorkers: 0,
    });
    expect(stats.kindsWithoutWorker).toEqual(['parity.unserved']);
    expect(stats.liveWorkers).toBe(1);
  });

  test('a delayed job does not run before its run_at', async () => {
    const delayed = await baton.enqueue(echo, { text: 'delayed' }, { delayMs: 3000 });
    const now = await baton.enqueue(echo, { text: 'now' });
    await stateOf(now.id, 'completed');
    // Observed while its run time (database time) has not come: it must not have started.
    const { rows } = await baton.db.query(
      `select state, attempts, clock_timestamp() < run_at as early from baton.jobs where id = $1`,
      [delayed.id],
    );
    const seen = rows[0] as { state: string; attempts: number; early: boolean };
    const startedEarly = seen.early && (seen.state !== 'pending' || seen.attempts > 0);
    expect(startedEarly).toBe(false);
    const job = await stateOf(delayed.id, 'completed');
    expect(job.lastAttemptAt!.getTime()).toBeGreaterThanOrEqual(job.runAt.getTime());
    expect(job.runAt.getTime() - job.createdAt.getTime()).toBeGreaterThanOrEqual(2990);
  });
});
