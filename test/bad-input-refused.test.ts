/**
 * Bad input is refused where it enters, with a code and a message, and nothing is partly written:
 * payloads are validated against the kind's schema at enqueue (SPEC §3), a batch with one bad item
 * writes no job, oversized payloads and bad options are refused; a bad worker setting stops
 * start-up with a message naming the variable and its value (SPEC §5), before the worker registers.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, BatonError, defineKind } from '../src/index.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCli, startWorker } from './helpers/processes.js';

let database: TestDatabase;
let baton: BatonClient;

const note = defineKind({
  kind: 'test.note',
  payload: z.object({ text: z.string() }),
});

beforeAll(async () => {
  database = await createTestDatabase('bad_input');
  baton = connectBaton(database);
});

afterAll(async () => {
  await baton?.close();
  await database.drop();
});

const jobCount = async () => (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n;

/** Runs `attempt`, expects it to throw a BatonError with `code`, and returns the error. */
async function refused(code: string, attempt: () => Promise<unknown>): Promise<BatonError> {
  const error = await attempt().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BatonError);
  expect((error as BatonError).code).toBe(code);
  return error as BatonError;
}

describe('enqueue', () => {
  test('a payload that does not match the schema is refused with PAYLOAD_INVALID and nothing is written', async () => {
    const before = await jobCount();
    const error = await refused('PAYLOAD_INVALID', () => baton.enqueue(record, { sleepMs: -5 }));
    expect(error.message).toContain('sleepMs');
    await refused('PAYLOAD_INVALID', () => baton.enqueue(note, { text: 42 } as never));
    await refused('PAYLOAD_INVALID', () => baton.enqueue(note, undefined as never));
    expect(await jobCount()).toBe(before);
  });

  test('enqueueMany with one bad item writes no job at all', async () => {
    const before = await jobCount();
    const items = [{ payload: { text: 'a' } }, { payload: { text: 'b' } }, { payload: { text: 3 } }];
    const error = await refused('PAYLOAD_INVALID', () => baton.enqueueMany(note, items as never));
    expect(error.message).toContain('item 2');
    // Bad options in one item refuse the whole batch too.
    await refused('OPTIONS_INVALID', () =>
      baton.enqueueMany(note, [{ payload: { text: 'a' } }, { payload: { text: 'b' }, delayMs: -1 }]),
    );
    // An item that is not an object at all is named, not a TypeError.
    for (const bad of [null, 'text', [{ text: 'a' }]]) {
      const notObject = await refused('OPTIONS_INVALID', () =>
        baton.enqueueMany(note, [{ payload: { text: 'a' } }, bad] as never),
      );
      expect(notObject.message).toContain('item 1: expected an object with a payload');
    }
    expect(await jobCount()).toBe(before);
  });

  test('a payload larger than the limit is refused with PAYLOAD_TOO_LARGE and nothing is written', async () => {
    const before = await jobCount();
    const big = 'x'.repeat(1024 * 1024 + 1); // the default limit is 1 MiB of JSON
    const error = await refused('PAYLOAD_TOO_LARGE', () => baton.enqueue(note, { text: big }));
    expect(error.message).toMatch(/\d+ bytes/);
    const small = connectBaton(database, { maxPayloadBytes: 100 });
    try {
      await refused('PAYLOAD_TOO_LARGE', () => small.enqueue(note, { text: 'y'.repeat(200) }));
      await refused('PAYLOAD_TOO_LARGE', () =>
        small.enqueueMany(note, [{ payload: { text: 'ok' } }, { payload: { text: 'y'.repeat(200) } }]),
      );
    } finally {
      await small.close();
    }
    expect(await jobCount()).toBe(before);
  });

  test('bad options are refused with OPTIONS_INVALID and nothing is written', async () => {
    const before = await jobCount();
    const payload = { text: 'hello' };
    await refused('OPTIONS_INVALID', () => baton.enqueue(note, payload, { delayMs: -1 }));
    const both = await refused('OPTIONS_INVALID', () =>
      baton.enqueue(note, payload, { runAt: new Date(Date.now() + 60_000), delayMs: 1000 }),
    );
    expect(both.message).toMatch(/runAt/);
    await refused('OPTIONS_INVALID', () => baton.enqueue(note, payload, { runAt: new Date('nonsense') }));
    await refused('OPTIONS_INVALID', () => baton.enqueue(note, payload, { maxAttempts: 0 }));
    await refused('OPTIONS_INVALID', () => baton.enqueue(note, payload, { priority: 1.5 }));
    await refused('OPTIONS_INVALID', () => baton.enqueue(note, payload, { idempotencyKey: '' }));
    await refused('OPTIONS_INVALID', () =>
      baton.enqueue(note, payload, { delayms: 5 } as unknown as { delayMs: number }),
    );
    expect(await jobCount()).toBe(before);
    // The same payload with good options is accepted: the refusals were about the options.
    await baton.enqueue(note, payload, { delayMs: 60_000 });
    expect(await jobCount()).toBe(before + 1);
  });
});

describe('worker start-up', () => {
  const workerRows = async () => (await database.rows(`select count(*)::int as n from baton.workers`))[0].n;

  test.each([
    ['BATON_CONCURRENCY', 'abc'],
    ['BATON_LEASE_MS', '10'],
    ['BATON_KIND_CONCURRENCY', '{bad json'],
    ['BATON_GROUP_CONCURRENCY', '{"ledger.grouped":0}'],
    ['BATON_PREFETCH', '-1'],
    ['BATON_MAX_CONNECTIONS', '0'],
    ['BATON_MAX_PAYLOAD_BYTES', 'lots'],
  ])('%s=%s stops start-up with a message naming it, and registers no worker', async (variable, value) => {
    const worker = await startWorker(database.url, { env: { [variable]: value }, waitStarted: false });
    const { code } = await worker.exited;
    const stderr = worker.stderr.join('');
    expect(code).not.toBe(0);
    expect(code).not.toBeNull(); // it exited by itself, not by a signal
    expect(stderr).toContain('CONFIG_INVALID');
    expect(stderr).toContain(variable);
    expect(stderr).toContain(`${variable}=${JSON.stringify(value)}`); // the value, quoted as JSON
    expect(stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(worker.lines.filter((line) => line.event === 'worker.started')).toEqual([]);
    expect(await workerRows()).toBe(0);
  });

  test('without DATABASE_URL the CLI says so clearly and exits non-zero', async () => {
    const fixture = 'test/fixtures/ledger-kinds.ts';
    for (const args of [['migrate'], ['stats'], ['worker', '--jobs', fixture]]) {
      const { code, stderr } = await runCli(args, { DATABASE_URL: undefined });
      expect({ args, code }).toEqual({ args, code: 1 });
      expect(stderr).toContain('CONFIG_INVALID');
      expect(stderr).toContain('DATABASE_URL is not set');
    }
    expect(await workerRows()).toBe(0);
  });

  test('a connection string that is not a URL is refused with a clear message', async () => {
    const { code, stderr } = await runCli(['migrate'], { DATABASE_URL: 'not a url' });
    expect(code).toBe(1);
    expect(stderr).toContain('CONFIG_INVALID');
    expect(stderr).toContain('not a valid URL');
  });
});
