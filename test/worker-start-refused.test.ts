/**
 * A worker that cannot start leaves nothing behind: it says why, ends `stopped`, and writes no
 * registry row.
 */

import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { BatonError, createBaton, defineKind } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

const noop = defineKind({ kind: 'start.noop', payload: z.object({}), handler: async () => {} });
let unmigrated: TestDatabase;
let migrated: TestDatabase;

beforeAll(async () => {
  [unmigrated, migrated] = await Promise.all([
    createTestDatabase('start_unmigrated', { migrated: false }),
    createTestDatabase('start_migrated'),
  ]);
});
afterAll(async () => {
  await Promise.all([unmigrated.drop(), migrated.drop()]);
});

test('on an unmigrated database start() refuses with SCHEMA_OUTDATED and the worker ends stopped', async () => {
  const baton = createBaton({ connectionString: unmigrated.url });
  const worker = baton.createWorker({ kinds: [noop], shutdownSignals: [], logLevel: 'silent' });
  const error = await worker.start().catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(BatonError);
  expect((error as BatonError).code).toBe('SCHEMA_OUTDATED');
  expect((error as Error).message).toMatch(/baton migrate/);
  expect(worker.inspect().state).toBe('stopped');
  await baton.close();
});

test('when the database cannot be reached start() rejects, the worker ends stopped, and a later start is refused', async () => {
  const baton = createBaton({ connectionString: 'postgres://postgres@127.0.0.1:1/nowhere' });
  const worker = baton.createWorker({ kinds: [noop], shutdownSignals: [], logLevel: 'silent' });
  await expect(worker.start()).rejects.toThrow(/ECONNREFUSED|connect/);
  expect(worker.inspect().state).toBe('stopped');
  await expect(worker.start()).rejects.toThrow(/already started/);
  await baton.close();
});

test('a running worker inspects as running and registered; once stopped it leaves no registry row', async () => {
  const baton = createBaton({ connectionString: migrated.url });
  const worker = baton.createWorker({
    kinds: [noop],
    concurrency: 3,
    shutdownSignals: [],
    logLevel: 'silent',
  });
  expect(worker.inspect().state).toBe('idle');
  await worker.start();
  const live = worker.inspect();
  expect(live).toMatchObject({
    id: worker.id,
    state: 'running',
    concurrency: 3,
    kinds: ['start.noop'],
    running: [],
  });
  expect(await migrated.rows('select id, kinds, concurrency from baton.workers')).toEqual([
    { id: worker.id, kinds: ['start.noop'], concurrency: 3 },
  ]);
  expect((await baton.listWorkers()).map((info) => info.id)).toEqual([worker.id]);
  await worker.stop();
  expect(worker.inspect().state).toBe('stopped');
  expect(await migrated.rows('select id from baton.workers')).toEqual([]);
  await baton.close();
});
