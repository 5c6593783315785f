/**
 * What a handler gets as its second argument. The context is a class whose methods are made when
 * a handler first reads them (src/worker/execution.ts, HandlerContext): a handler that destructures
 * them, as handlers written against a plain object may, must still get working, bound methods.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('handler_context');
});
afterAll(async () => {
  await database.drop();
});

test('a handler that destructures its context records progress and completes in its own transaction', async () => {
  const seen: { jobId: string; aborted: boolean; progressed: boolean }[] = [];
  const kind = defineKind({
    kind: 'context.destructured',
    payload: z.object({ n: z.number() }),
    handler: async ({ n }, { job, signal, log, progress, completeInTransaction }) => {
      log.info({ n }, 'destructured context');
      const progressed = await progress({ step: n });
      seen.push({ jobId: job.id, aborted: signal.aborted, progressed });
      return completeInTransaction(async (tx) => {
        const { rows } = await tx.query('select $1::int * 2 as doubled', [n]);
        return { doubled: rows[0].doubled };
      });
    },
  });
  const baton = connectBaton(database, { kinds: [kind] });
  const { id } = await baton.enqueue(kind, { n: 21 });
  const worker = baton.createWorker({ kinds: [kind], concurrency: 2, logLevel: 'silent' });
  await worker.start();
  try {
    await expect
      .poll(async () => (await database.rows(`select state from baton.jobs where id = $1`, [id]))[0]?.state, {
        timeout: 10_000,
      })
      .toBe('completed');
  } finally {
    await worker.stop();
    await baton.close();
  }
  expect(seen).toEqual([{ jobId: id, aborted: false, progressed: true }]);
  const [row] = await database.rows(`select progress, result, attempts from baton.jobs where id = $1`, [id]);
  expect(row).toEqual({ progress: { step: 21 }, result: { doubled: 42 }, attempts: 1 });
});
