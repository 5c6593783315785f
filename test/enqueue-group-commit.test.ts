/**
 * Concurrent single enqueues share statements and commits (group commit in the client), and none is
 * acknowledged before its commit: the moment an enqueue resolves, another connection sees its job.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';

const note = defineKind({ kind: 'group_commit.note', payload: z.object({ n: z.number() }) });
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('group_commit');
});
afterAll(async () => {
  await database.drop();
});

test('200 concurrent enqueues: every one is visible elsewhere when it resolves, in far fewer statements', async () => {
  // One NOTIFY per statement: counting them counts the statements that carried the jobs.
  const listener = new pg.Client({ connectionString: database.url });
  await listener.connect();
  let notifications = 0;
  listener.on('notification', () => {
    notifications++;
  });
  await listener.query('listen baton_jobs');

  const baton = connectBaton(database);
  const seenAtAck = await Promise.all(
    Array.from({ length: 200 }, (_, n) =>
      baton.enqueue(note, { n }).then(async (job) => {
        const rows = await database.rows('select 1 from baton.jobs where id = $1', [job.id]);
        return { id: job.id, visible: rows.length === 1 };
      }),
    ),
  );
  expect(seenAtAck.filter((entry) => !entry.visible)).toEqual([]);
  expect(new Set(seenAtAck.map((entry) => entry.id)).size).toBe(200);
  const [count] = await database.rows('select count(*)::int as n from baton.jobs');
  expect(count.n).toBe(200);

  // Every statement's notification has arrived once a later one does.
  const fenced = new Promise<void>((resolve) => {
    listener.on('notification', (message) => {
      if (message.payload === 'fence') resolve();
    });
  });
  await listener.query(`notify baton_jobs, 'fence'`);
  await fenced;
  const statements = notifications - 1;
  expect(statements).toBeGreaterThanOrEqual(1);
  expect(statements).toBeLessThan(100);
  await listener.end();
  await baton.close();
});

test('callers that enqueue again as soon as they are answered keep sharing whole statements', async () => {
  // 16 callers, each enqueueing 25 jobs one after another (bench W1's shape). Answered callers come
  // back in microtasks; if the first of them went out alone, the callers would split into two
  // cohorts alternating in statements of ~8 (50+ statements). Whole batches take ~25.
  const listener = new pg.Client({ connectionString: database.url });
  await listener.connect();
  const payloads: string[] = [];
  listener.on('notification', (message) => {
    payloads.push(message.payload ?? '');
  });
  await listener.query('listen baton_jobs');
  const baton = connectBaton(database);
  await baton.enqueue(note, { n: -1 }); // connect first, so the callers start together
  const lane = async (laneIndex: number) => {
    for (let i = 0; i < 25; i++) await baton.enqueue(note, { n: laneIndex * 100 + i });
  };
  await Promise.all(Array.from({ length: 16 }, (_, laneIndex) => lane(laneIndex)));
  await listener.query(`notify baton_jobs, 'fence'`);
  await expect.poll(() => payloads.includes('fence')).toBe(true);
  const statements = payloads.length - 2; // without the warm-up and the fence
  expect(statements).toBeGreaterThanOrEqual(25);
  expect(statements).toBeLessThanOrEqual(35);
  await listener.end();
  await baton.close();
});

test('concurrent enqueues with one idempotency key give one job, and every caller gets its id', async () => {
  const baton = connectBaton(database);
  const jobs = await Promise.all(
    Array.from({ length: 10 }, (_, n) => baton.enqueue(note, { n }, { idempotencyKey: 'same-key' })),
  );
  expect(new Set(jobs.map((job) => job.id)).size).toBe(1);
  expect(jobs.filter((job) => job.created)).toHaveLength(1);
  const rows = await database.rows(`select id from baton.jobs where idempotency_key = 'same-key'`);
  expect(rows).toEqual([{ id: jobs[0]!.id }]);
  await baton.close();
});
