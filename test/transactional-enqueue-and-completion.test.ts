/**
 * G7, transactional enqueue: a job enqueued with the caller's client exists if and only if the
 * caller's transaction commits (on PostgreSQL and on the embedded PGlite). G8, transactional
 * completion: `ledger.transactional` writes its side effect in the transaction that completes the
 * job, fenced by the lease, so the side effect is there exactly once when the job completed and not
 * at all when the lease was lost before the completion.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEmbeddedBaton } from '../src/index.js';
import { record, transactional } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let worker: WorkerProcess;

beforeAll(async () => {
  database = await createTestDatabase('transactional');
  await createLedger(database);
  // Heartbeats every 20 s: a lease moved away under a sleeping handler is found only by the fence
  // of its completing transaction, not by a heartbeat.
  worker = await startWorker(database.url, {
    env: { BATON_CONCURRENCY: '4', BATON_POLL_INTERVAL_MS: '200', BATON_LEASE_MS: '60000' },
  });
});

afterAll(async () => {
  await worker?.stop();
  await database.drop();
});

const jobRow = async (id: string) => (await database.rows(`select * from baton.jobs where id = $1`, [id]))[0];
const jobCount = async () => (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n;
const sideEffects = (id: string) => database.rows(`select * from side_effects where job_id = $1`, [id]);
const completed = (id: string) =>
  worker.waitForLog((line) => line.event === 'job.completed' && line.jobId === id, 30_000);

describe('G7: enqueue in the caller transaction (PostgreSQL)', () => {
  test('rolled back: no job, and no worker ever runs it; committed: the job exists and runs', async () => {
    const baton = connectBaton(database);
    const before = await jobCount();
    const client = await database.pool.connect();
    let rolledBack: string;
    let committed: string;
    try {
      await client.query('begin');
      rolledBack = (await baton.enqueue(record, {}, { client })).id;
      // Inside the transaction the job is visible to the caller only.
      expect((await client.query(`select 1 from baton.jobs where id = $1`, [rolledBack])).rowCount).toBe(1);
      expect(await jobRow(rolledBack)).toBeUndefined();
      await client.query('rollback');

      await client.query('begin');
      committed = (await baton.enqueue(record, {}, { client })).id;
      expect(await jobRow(committed)).toBeUndefined(); // not before the commit
      await client.query('commit');
    } finally {
      client.release();
    }
    expect(await jobRow(rolledBack)).toBeUndefined();
    expect(await jobCount()).toBe(before + 1);

    // The committed job runs; the rolled-back one never does (the worker ran everything it saw).
    await completed(committed);
    expect((await jobRow(committed)).state).toBe('completed');
    const ran = await database.rows(`select job_id from ledger`);
    expect(ran.map((row) => row.job_id)).toContain(committed);
    expect(ran.map((row) => row.job_id)).not.toContain(rolledBack);
    expect(worker.lines.filter((line) => line.jobId === rolledBack)).toEqual([]);
    await baton.close();
  });
});

describe('G8: completion in the handler transaction', () => {
  test('committed: the side effect is there exactly once and the job is completed with its result', async () => {
    const baton = connectBaton(database);
    const { id } = await baton.enqueue(transactional, {});
    await completed(id);
    const job = await pollUntil('the job to be completed', async () => {
      const row = await jobRow(id);
      return row.state === 'completed' && row;
    });
    expect(job).toMatchObject({ attempts: 1, result: { sideEffect: true }, lease_token: null });
    expect(await sideEffects(id)).toEqual([{ job_id: id, note: 'attempt 1' }]);
    await baton.close();
  });

  test('lease moved away while the handler sleeps: the completing transaction commits nothing', async () => {
    const baton = connectBaton(database);
    const { id } = await baton.enqueue(transactional, { sleepMs: 1500 });
    await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
    // As if the lease had expired and another worker had claimed the job: a new token.
    const [{ lease_token: newToken }] = await database.rows(
      `update baton.jobs set lease_token = gen_random_uuid() where id = $1 and state = 'running'
       returning lease_token`,
      [id],
    );
    const lost = await worker.waitForLog((line) => line.event === 'job.lease_lost' && line.jobId === id);
    expect(lost.write).toBe('complete');
    expect(await sideEffects(id)).toEqual([]);
    // The handler did run to its completion (its ledger row) but changed nothing of the job.
    expect(await database.rows(`select outcome from ledger where job_id = $1`, [id])).toEqual([
      { outcome: 'ran' },
    ]);
    expect(await jobRow(id)).toMatchObject({ state: 'running', lease_token: newToken, result: null });
    expect(worker.lines.filter((line) => line.event === 'job.completed' && line.jobId === id)).toEqual([]);
    await baton.cancel(id); // leave nothing running for the next test
    await baton.close();
  });

  test('cancelled while the handler sleeps (ignoring its signal): no side effect is ever written', async () => {
    const baton = connectBaton(database);
    const { id } = await baton.enqueue(transactional, { sleepMs: 1500, ignoreAbort: true });
    await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === id);
    await baton.cancel(id);
    await worker.waitForLog((line) => line.event === 'job.cancelled' && line.jobId === id);
    // The handler sleeps on, writes its ledger row, then tries to complete in a transaction.
    await pollUntil('the handler to finish its work', async () =>
      (await database.rows(`select 1 from ledger where job_id = $1`, [id])).length > 0 ? true : null,
    );
    // A job enqueued after that and completed by the same process orders the check after the
    // abandoned handler's attempt to complete.
    const { id: next } = await baton.enqueue(transactional, {});
    await completed(next);
    expect(await sideEffects(next)).toHaveLength(1);
    expect(await sideEffects(id)).toEqual([]);
    expect(await jobRow(id)).toMatchObject({ state: 'cancelled', result: null, lease_token: null });
    await baton.close();
  });
});

describe('G7 on the embedded database (PGlite)', () => {
  test('a rolled-back transaction leaves no job; a committed one leaves exactly one', async () => {
    const baton = await createEmbeddedBaton({ kinds: [record] });
    try {
      await baton.migrate();
      const count = async () =>
        Number((await baton.db.query(`select count(*)::int as n from baton.jobs`)).rows[0].n);
      let rolledBack: string | undefined;
      await expect(
        baton.db.transaction(async (tx) => {
          rolledBack = (await baton.enqueue(record, {}, { client: tx })).id;
          const inside = await tx.query(`select count(*)::int as n from baton.jobs`);
          expect(Number(inside.rows[0].n)).toBe(1);
          throw new Error('the caller gives up');
        }),
      ).rejects.toThrow('the caller gives up');
      expect(rolledBack).toBeDefined();
      expect(await count()).toBe(0);
      expect(await baton.getJob(rolledBack!)).toBeNull();

      const committed = await baton.db.transaction(
        async (tx) => (await baton.enqueue('ledger.record', {}, { client: tx })).id,
      );
      expect(await count()).toBe(1);
      expect((await baton.getJob(committed))?.state).toBe('pending');
    } finally {
      await baton.close();
    }
  });
});
