/**
 * Baton.listJobs on PostgreSQL and on the embedded PGlite: keyset pages over jobs that share a
 * creation time return each job once, newest first; filters combine; a cursor Baton did not
 * return and bad filters are refused as OPTIONS_INVALID.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, createEmbeddedBaton, defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';

const item = defineKind({ kind: 'list.item', payload: z.object({ n: z.number() }) });
const other = defineKind({ kind: 'list.other', payload: z.object({}) });

// Each test opens its own database; all of them are dropped at the end.
const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((database) => database.drop()));
});

const engines: [string, () => Promise<BatonClient>][] = [
  [
    'postgres',
    async () => {
      const database = await createTestDatabase('jobs_list');
      databases.push(database);
      return connectBaton(database, { kinds: [item, other] });
    },
  ],
  [
    'pglite',
    async () => {
      const baton = await createEmbeddedBaton({ kinds: [item, other] });
      await baton.migrate();
      return baton;
    },
  ],
];

describe.each(engines)('listJobs on %s', (_engine, open) => {
  test('pages every job once, newest first by id (time-ordered)', async () => {
    const baton = await open();
    try {
      const ids: string[] = [];
      for (let batch = 0; batch < 4; batch++) {
        const jobs = await baton.enqueueMany(
          item,
          Array.from({ length: 6 }, (_, n) => ({ payload: { n }, group: 'list' })),
        );
        ids.push(...jobs.map((job) => job.id));
        await baton.enqueue(other, {}, { group: 'list' });
      }
      const seen: { id: string; createdAt: Date }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<BatonClient['listJobs']>> = await baton.listJobs(
          { kind: 'list.item', group: 'list' },
          { cursor, limit: 5 },
        );
        seen.push(...page.jobs);
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 20);
      expect(pages).toBe(5);
      expect(seen.map((job) => job.id).sort()).toEqual([...ids].sort());
      // JS Dates drop microseconds, so the expected order comes from the database itself.
      const { rows } = await baton.db.query(
        `select id from baton.jobs where kind = 'list.item' order by id desc`,
      );
      expect(seen.map((job) => job.id)).toEqual(rows.map((row: { id: string }) => row.id));
      // Exactly one page when the limit covers everything, and no cursor after it.
      const all = await baton.listJobs({ group: 'list' }, { limit: 500 });
      expect(all.jobs).toHaveLength(28);
      expect(all.nextCursor).toBeNull();
    } finally {
      await baton.close();
    }
  });

  test('refuses a forged cursor and bad filters with OPTIONS_INVALID', async () => {
    const baton = await open();
    try {
      const refusals = [
        baton.listJobs({}, { cursor: 'abc' }),
        baton.listJobs({}, { cursor: Buffer.from('["yesterday","x"]').toString('base64url') }),
        baton.listJobs({}, { limit: 0 }),
        baton.listJobs({ state: 'sleeping' as never }),
        baton.listJobs({ colour: 'red' } as never),
      ];
      for (const refusal of refusals)
        await expect(refusal).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    } finally {
      await baton.close();
    }
  });
});
