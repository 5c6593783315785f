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

test('a worker that started and stopped leaves no registry row', async () => {
  const baton = createBaton({ connectionString: migrated.url });
  const worker = baton.createWorker({ kinds: [noop], shutdownSignals: [], logLevel: 'silent' });
  await worker.start();
  expect(await migrated.rows('select id from baton.workers')).toEqual([{ id: worker.id }]);
  await worker.stop();
  expect(await migrated.rows('select id from baton.workers')).toEqual([]);
  await baton.close();
});
