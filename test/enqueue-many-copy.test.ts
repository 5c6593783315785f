/**
 * On PostgreSQL a large `enqueueMany` of jobs that are due at once and have no idempotency key is
 * written with COPY (docs/performance.md). It must write exactly what the statement writes (on
 * PGlite, which has no COPY, the statement does), all or nothing, and wake workers as one NOTIFY.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, createEmbeddedBaton, defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';

const note = defineKind({
  kind: 'copy.note',
  payload: z.object({ n: z.number(), text: z.string() }),
  handler: async () => {
    onHandled?.();
  },
});
let onHandled: (() => void) | undefined;
const BATCH = 250; // at least COPY_MIN_ROWS (src/core/enqueue.ts)

/** Text that COPY's format escapes, and more: backslashes, tabs, newlines, quotes, non-ASCII. */
const awkward = (n: number) => `a\\b\tc\nd\re "q" 'q' \\N \\\\ é ✓ ${n}`;

function items(count: number) {
  return Array.from({ length: count }, (_, n) => ({
    payload: { n, text: awkward(n) },
    priority: n % 3,
    maxAttempts: 1 + (n % 7),
    ...(n % 2 === 0 ? { traceId: `trace\t${n}\\x\n` } : {}),
    ...(n % 5 === 0 ? { group: `group\\${n}\r` } : {}),
  }));
}

/** Records the text of every query and COPY that any pg client sends while `fn` runs. */
async function recordingQueries<T>(fn: () => Promise<T>): Promise<{ result: T; texts: string[] }> {
  const texts: string[] = [];
  const original = pg.Client.prototype.query;
  // biome-ignore lint/suspicious/noExplicitAny: pg's query overloads; only the text is read.
  pg.Client.prototype.query = function (this: pg.Client, config: any, ...rest: any[]) {
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text === 'string') texts.push(text);
    return (original as (...args: unknown[]) => unknown).call(this, config, ...rest);
  } as typeof original;
  try {
    return { result: await fn(), texts };
  } finally {
    pg.Client.prototype.query = original;
  }
}

const usedCopy = (texts: string[]) => texts.some((text) => /\bcopy baton\.jobs\b/i.test(text));

async function expectWrittenAsGiven(baton: BatonClient, ids: string[], given: ReturnType<typeof items>) {
  expect(ids).toHaveLength(given.length);
  for (const [index, id] of ids.entries()) {
    const job = await baton.getJob(id);
    const item = given[index]!;
    expect(job).toMatchObject({
      id,
      kind: 'copy.note',
      state: 'pending',
      payload: item.payload,
      priority: item.priority,
      maxAttempts: item.maxAttempts,
      attempts: 0,
      traceId: item.traceId ?? null,
      group: item.group ?? null,
    });
    // Due at once: run_at is the insert's now(), as created_at is.
    expect(job!.runAt.getTime()).toBe(job!.createdAt.getTime());
  }
}

describe('on PostgreSQL', () => {
  let database: TestDatabase;
  let baton: BatonClient;

  beforeAll(async () => {
    database = await createTestDatabase('enqueue_copy');
    baton = connectBaton(database);
  });
  afterEach(async () => {
    await database.rows('delete from baton.jobs');
  });
  afterAll(async () => {
    await baton.close();
    await database.drop();
  });

  test('a large batch of jobs due at once is written by COPY, every field exactly as given', async () => {
    const given = items(BATCH);
    const { result, texts } = await recordingQueries(() => baton.enqueueMany(note, given));
    expect(usedCopy(texts)).toBe(true);
    expect(result.every((job) => job.created)).toBe(true);
    await expectWrittenAsGiven(
      baton,
      result.map((job) => job.id),
      given,
    );
  });

  test('a batch PostgreSQL refuses one row of leaves nothing written, and the next batch goes in', async () => {
    const given = items(BATCH);
    // jsonb refuses \u0000, so row 200 fails inside the COPY after 199 rows have been sent.
    given[200]!.payload.text = 'nul \u0000 here';
    const { texts } = await recordingQueries(() =>
      expect(baton.enqueueMany(note, given)).rejects.toThrow(/unicode|\\u0000/i),
    );
    expect(usedCopy(texts)).toBe(true);
    expect(await database.rows('select id from baton.jobs')).toEqual([]);

    const again = await baton.enqueueMany(note, items(BATCH));
    const [count] = await database.rows('select count(*)::int as n from baton.jobs');
    expect(count.n).toBe(again.length);
  });

  test('a worker is woken by the batch, not by its poll', async () => {
    const worker = baton.createWorker({
      kinds: [note],
      concurrency: 32,
      pollIntervalMs: 600_000,
      logLevel: 'silent',
    });
    await worker.start();
    try {
      let handled = 0;
      const allHandled = new Promise<void>((resolve) => {
        onHandled = () => {
          if (++handled === BATCH) resolve();
        };
      });
      const { texts } = await recordingQueries(() => baton.enqueueMany(note, items(BATCH)));
      expect(usedCopy(texts)).toBe(true);
      // The poll is 10 minutes away: only the batch's NOTIFY can start these in time.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`only ${handled} of ${BATCH} jobs ran within 30 s`)),
          30_000,
        );
      });
      await Promise.race([allHandled, late]).finally(() => clearTimeout(timer));
    } finally {
      onHandled = undefined;
      await worker.stop();
    }
  });

  test('batches COPY cannot write as they are go through the statement: small, delayed, keyed', async () => {
    const small = items(10);
    const delayed = items(BATCH).map((item, n) => (n === 7 ? { ...item, delayMs: 60_000 } : item));
    const keyed = items(BATCH).map((item, n) => ({ ...item, idempotencyKey: `key-${n}` }));
    for (const batch of [small, delayed, keyed]) {
      const { result, texts } = await recordingQueries(() => baton.enqueueMany(note, batch));
      expect(usedCopy(texts)).toBe(false);
      expect(result).toHaveLength(batch.length);
    }
    const [late] = await database.rows(
      "select count(*)::int as n from baton.jobs where run_at > now() + interval '50 seconds'",
    );
    expect(late.n).toBe(1);
  });
});

describe('on PGlite (no COPY: the statement writes the same batch)', () => {
  test('every field exactly as given', async () => {
    const baton = await createEmbeddedBaton();
    try {
      await baton.migrate();
      const given = items(BATCH);
      const jobs = await baton.enqueueMany(note, given);
      await expectWrittenAsGiven(
        baton,
        jobs.map((job) => job.id),
        given,
      );
    } finally {
      await baton.close();
    }
  });
});
