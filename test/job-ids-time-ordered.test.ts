/**
 * Job ids are UUIDv7: time-ordered, so jobs made together sit together in the primary key (which
 * the job list pages on), and jobs due at the same moment are claimed in the order they were
 * enqueued (the claim's last tie-breaker is the id).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { newJobId } from '../src/core/job-id.js';
import { defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('job_ids');
});
afterAll(async () => {
  await database.drop();
});

test('ids are version 7 UUIDs carrying the time, strictly ascending within a process', () => {
  const before = Date.now();
  const ids = Array.from({ length: 10_000 }, () => newJobId()); // far more than one per ms
  const after = Date.now();
  for (const id of ids)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(ids);
  const ms = Number.parseInt(ids[0]!.replaceAll('-', '').slice(0, 12), 16);
  expect(ms).toBeGreaterThanOrEqual(before);
  expect(ms).toBeLessThanOrEqual(after);
});

test('jobs enqueued together are claimed in the order they were enqueued', async () => {
  const seen: number[] = [];
  const times = new Map<string, [number, number]>();
  const ordered = defineKind({
    kind: 'ids.ordered',
    payload: z.object({ n: z.number() }),
    handler: async ({ n }, { job }) => {
      seen.push(n);
      times.set(job.id, [job.runAt.getTime(), job.createdAt.getTime()]);
    },
  });
  const baton = connectBaton(database, { kinds: [ordered] });
  // One statement: every job gets the same run_at (now() of its transaction), so only the id
  // orders them; random ids would run them in any order.
  await baton.enqueueMany(
    ordered,
    Array.from({ length: 50 }, (_, n) => ({ payload: { n } })),
  );
  for (let n = 50; n < 60; n++) await baton.enqueue(ordered, { n });
  const worker = baton.createWorker({ kinds: [ordered], concurrency: 1, logLevel: 'silent' });
  await worker.start();
  await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(60);
  await worker.stop();
  expect(seen).toEqual(Array.from({ length: 60 }, (_, n) => n));
  // The claim sends run_at and created_at as epoch milliseconds: the handler sees the database's.
  const rows = await database.rows(
    `select id, floor(extract(epoch from run_at) * 1000)::float8 as run_at,
            floor(extract(epoch from created_at) * 1000)::float8 as created_at
     from baton.jobs where kind = 'ids.ordered'`,
  );
  expect(rows).toHaveLength(60);
  for (const row of rows) expect(times.get(row.id)).toEqual([row.run_at, row.created_at]);
  await baton.close();
});
