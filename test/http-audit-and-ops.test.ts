/**
 * The audit log and ops snapshot routes over real HTTP on PostgreSQL: the audit list with each
 * filter and keyset paging (every entry once, newest first); export as JSON and as RFC 4180 CSV
 * that parses back field for field (formulas neutralised) with the same filters; prune (dry run
 * changes nothing, a real one deletes only old matching entries and audits itself, never deleting
 * its own entry); the periodic prune of a server (two at once delete each entry once); roles and
 * bad input; and /api/ops (counts per kind and state, kinds nobody serves, live workers, recent
 * failures and dead letters, audit filters and paging, completions and failures per minute).
 */
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { startHttpServer } from '../src/http/server.js';
import { resolveHttpSettings } from '../src/http/settings.js';
import { type BatonClient, defineKind, JobError } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, type ApiResponse, serveApi, TEST_TOKENS, VIEWER_TOKEN } from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

const done = defineKind({
  kind: 'ops.done',
  payload: z.object({ n: z.number() }),
  handler: async () => 'ok',
});
const broken = defineKind({
  kind: 'ops.broken',
  payload: z.object({ n: z.number() }),
  handler: async ({ n }: { n: number }) => {
    throw new JobError('ENTITY_NOT_FOUND', `thing ${n} does not exist`);
  },
});
const flaky = defineKind({
  kind: 'ops.flaky',
  payload: z.object({}),
  maxAttempts: 2,
  backoff: { baseMs: 1, maxMs: 1 },
  handler: async () => {
    throw new Error('upstream timed out');
  },
});
const idle = defineKind({ kind: 'ops.idle', payload: z.object({}) });

let database: TestDatabase;
let baton: BatonClient;
let call: ApiCall;
let closeServer: () => Promise<void>;

beforeAll(async () => {
  database = await createTestDatabase('http_audit_ops');
  baton = connectBaton(database, { kinds: [done, broken, flaky, idle] });
  // No periodic prune on this server: the prune tests make old entries and count them.
  const served = await serveApi(baton, { auditTtlDays: 0 });
  call = served.call;
  closeServer = () => served.server.close();
});

afterAll(async () => {
  await closeServer?.();
  await baton?.close();
  await database?.drop();
});

interface EntryInput {
  action: string;
  actor: string;
  batchId?: string | null;
  jobId?: string | null;
  kind?: string | null;
  group?: string | null;
  traceId?: string | null;
  details?: Record<string, unknown>;
  /** How long ago it was written. Default 0 (now). */
  ageMs?: number;
}

/** Writes audit entries as an action would (in order, one statement each); returns their ids. */
async function insertEntries(entries: EntryInput[]): Promise<string[]> {
  const ids: string[] = [];
  for (const entry of entries) {
    const [row] = await database.rows(
      `insert into baton.audit_log (action, actor, batch_id, job_id, kind, group_key, trace_id, details, created_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, now() - $9::double precision * interval '1 millisecond')
       returning id::text as id`,
      [
        entry.action,
        entry.actor,
        entry.batchId ?? null,
        entry.jobId ?? null,
        entry.kind ?? null,
        entry.group ?? null,
        entry.traceId ?? null,
        JSON.stringify(entry.details ?? {}),
        entry.ageMs ?? 0,
      ],
    );
    ids.push(row.id);
  }
  return ids;
}

const DAY_MS = 24 * 3600 * 1000;
const auditCount = async (where = 'true', params: unknown[] = []) =>
  (await database.rows(`select count(*)::int as n from baton.audit_log where ${where}`, params))[0]
    .n as number;

/** Every page of /api/audit-logs for `query`, following nextCursor; fails on a page over `limit`. */
async function listAll(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const path: string = `/api/audit-logs?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const response = await call('GET', path, { token: VIEWER_TOKEN });
    expect(response.status).toBe(200);
    expect(response.body.entries.length).toBeLessThanOrEqual(limit);
    ids.push(...response.body.entries.map((entry: { id: string }) => entry.id));
    cursor = response.body.nextCursor;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (cursor);
  return { ids, pages };
}

/** A strict RFC 4180 reader: quoted fields with doubled quotes, CRLF after every record, nothing else. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char !== '"') field += char;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (char === '"') {
      if (field !== '' || wasQuoted) throw new Error(`a quote inside an unquoted field at ${i}`);
      quoted = true;
      wasQuoted = true;
    } else if (char === ',') {
      row.push(field);
      field = '';
      wasQuoted = false;
    } else if (char === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      wasQuoted = false;
      i++;
    } else if (char === '\r' || char === '\n') {
      throw new Error(`a line break outside quotes that is not CRLF at ${i}`);
    } else {
      if (wasQuoted) throw new Error(`text after a closing quote at ${i}`);
      field += char;
    }
  }
  if (quoted || field !== '' || row.length > 0) throw new Error('the last record does not end with CRLF');
  return rows;
}

describe('GET /api/audit-logs', () => {
  test('filters by action, actor, batch, kind, group, trace id, job id and created range; a viewer reads', async () => {
    const tag = randomUUID().slice(0, 8);
    const [batch1, batch2, job1, job2] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const t = (name: string) => `${name}-${tag}`;
    const [e1, e2, e3, e4] = await insertEntries([
      {
        action: t('act.a'),
        actor: t('x'),
        batchId: batch1,
        jobId: job1,
        kind: t('k1'),
        group: t('g1'),
        traceId: t('t1'),
        details: { n: 1 },
        ageMs: 3 * 3600_000,
      },
      {
        action: t('act.a'),
        actor: t('y'),
        batchId: batch1,
        jobId: job2,
        kind: t('k2'),
        group: t('g2'),
        traceId: t('t2'),
        ageMs: 2 * 3600_000,
      },
      { action: t('act.c'), actor: t('x'), kind: t('k1'), group: t('g1'), traceId: t('t1'), ageMs: 3600_000 },
      { action: t('act.c'), actor: t('y'), batchId: batch2, jobId: job1, kind: t('k2'), group: t('g2') },
    ]);
    const ids = async (query: string) => {
      const response = await call('GET', `/api/audit-logs?${query}`, { token: VIEWER_TOKEN });
      expect({ query, status: response.status }).toEqual({ query, status: 200 });
      return response.body.entries.map((entry: { id: string }) => entry.id);
    };
    expect(await ids(`action=${t('act.a')}`)).toEqual([e2, e1]);
    expect(await ids(`actor=${t('x')}`)).toEqual([e3, e1]);
    expect(await ids(`batchId=${batch1}`)).toEqual([e2, e1]);
    expect(await ids(`kind=${t('k1')}`)).toEqual([e3, e1]);
    expect(await ids(`group=${t('g2')}`)).toEqual([e4, e2]);
    expect(await ids(`traceId=${t('t1')}`)).toEqual([e3, e1]);
    expect(await ids(`jobId=${job1}`)).toEqual([e4, e1]);
    expect(await ids(`action=${t('act.a')}&actor=${t('y')}`)).toEqual([e2]);
    expect(await ids(`jobId=${job1}&action=${t('act.c')}`)).toEqual([e4]);

    const createdAt = async (id: string) =>
      encodeURIComponent(
        (
          (await database.rows(`select created_at from baton.audit_log where id = $1`, [id]))[0]
            .created_at as Date
        ).toISOString(),
      );
    expect(await ids(`actor=${t('y')}&createdFrom=${await createdAt(e2!)}`)).toEqual([e4, e2]);
    expect(await ids(`kind=${t('k2')}&createdBefore=${await createdAt(e4!)}`)).toEqual([e2]);
    expect(await ids(`group=${t('g1')}&createdFrom=${await createdAt(e3!)}`)).toEqual([e3]);

    // The whole shape of an entry.
    const one = await call('GET', `/api/audit-logs?jobId=${job2}`, { token: VIEWER_TOKEN });
    expect(one.body).toEqual({
      entries: [
        {
          id: e2,
          action: t('act.a'),
          actor: t('y'),
          batchId: batch1,
          jobId: job2,
          kind: t('k2'),
          group: t('g2'),
          traceId: t('t2'),
          details: {},
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
        },
      ],
      nextCursor: null,
    });
  });

  test("an operator's cancel shows up with its action, actor, job and kind", async () => {
    const { id } = await baton.enqueue(idle, {}, { group: 'audited', traceId: 'audited-trace' });
    expect((await call('POST', `/api/jobs/${id}/cancel`)).status).toBe(200);
    const response = await call('GET', `/api/audit-logs?jobId=${id}`, { token: VIEWER_TOKEN });
    expect(response.body.entries).toEqual([
      expect.objectContaining({
        action: 'job.cancel',
        actor: 'alice',
        jobId: id,
        kind: 'ops.idle',
        group: 'audited',
        traceId: 'audited-trace',
        details: { previousState: 'pending' },
      }),
    ]);
  });

  test('cursor paging returns every entry once, newest first, with ties on created_at, on every index', async () => {
    const tag = randomUUID().slice(0, 8);
    const actor = `pager-${tag}`;
    const kind = `pager-kind-${tag}`;
    // Three timestamps, nine entries each: one statement per timestamp, so each nine share created_at.
    for (const ageMs of [2000, 1000, 0]) {
      await database.rows(
        `insert into baton.audit_log (action, actor, kind, created_at)
         select 'pager.' || (n % 2), $1, $2, now() - $3::double precision * interval '1 millisecond'
         from generate_series(1, 9) as n`,
        [actor, kind, ageMs],
      );
    }
    const expected = (
      await database.rows(
        `select id::text as id from baton.audit_log where actor = $1 order by created_at desc, audit_log.id desc`,
        [actor],
      )
    ).map((row) => row.id as string);
    expect(expected).toHaveLength(27);

    for (const query of [`actor=${actor}`, `kind=${kind}`, `action=pager.1&actor=${actor}`]) {
      const wanted = query.startsWith('action')
        ? (
            await database.rows(
              `select id::text as id from baton.audit_log where actor = $1 and action = 'pager.1' order by created_at desc, audit_log.id desc`,
              [actor],
            )
          ).map((row) => row.id as string)
        : expected;
      const { ids, pages } = await listAll(query, 4);
      expect({ query, ids }).toEqual({ query, ids: wanted });
      expect(pages).toBe(Math.ceil(wanted.length / 4));
    }

    // An entry written while paging is newer than the cursor: it neither repeats nor shifts later pages.
    const first = await call('GET', `/api/audit-logs?actor=${actor}&limit=10`, { token: VIEWER_TOKEN });
    await insertEntries([{ action: 'pager.late', actor }]);
    const second = await call(
      'GET',
      `/api/audit-logs?actor=${actor}&limit=10&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      { token: VIEWER_TOKEN },
    );
    expect([...first.body.entries, ...second.body.entries].map((entry: { id: string }) => entry.id)).toEqual(
      expected.slice(0, 20),
    );
  });

  test('bad filters, limits and cursors get 400', async () => {
    const forged = Buffer.from(JSON.stringify(['yesterday', '12'])).toString('base64url');
    for (const [query, code] of [
      ['cursor=abc', 'OPTIONS_INVALID'],
      [`cursor=${forged}`, 'OPTIONS_INVALID'],
      ['limit=0', 'BAD_REQUEST'],
      ['limit=501', 'BAD_REQUEST'],
      ['batchId=not-a-uuid', 'BAD_REQUEST'],
      ['jobId=42', 'BAD_REQUEST'],
      ['createdFrom=yesterday', 'BAD_REQUEST'],
      ['colour=red', 'BAD_REQUEST'],
    ]) {
      const response = await call('GET', `/api/audit-logs?${query}`);
      expect({ query, status: response.status, code: response.body.error?.code }).toEqual({
        query,
        status: 400,
        code,
      });
    }
  });
});

describe('GET /api/audit-logs/export', () => {
  const tricky = {
    kind: '=HYPERLINK("http://evil.example","click")',
    group: 'a,b "quoted"\r\nsecond line',
    traceId: '+1+2',
    actor: '@SUM(A1)',
    action: '-2+3',
  };

  test('CSV is RFC 4180 that parses back field for field, with formulas neutralised, as an attachment', async () => {
    const batchId = randomUUID();
    const jobId = randomUUID();
    const [plain, nasty] = await insertEntries([
      { action: 'export.plain', actor: 'carol', batchId, details: { note: 'nothing odd' }, ageMs: 1000 },
      { ...tricky, batchId, jobId, details: { note: 'x, "y"\r\nz', n: 2 } },
    ]);
    const response = await call('GET', `/api/audit-logs/export?format=csv&batchId=${batchId}`, {
      token: VIEWER_TOKEN,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(response.headers.get('content-disposition')).toMatch(
      /^attachment; filename="baton-audit-log-[0-9TZ-]+\.csv"$/,
    );
    const rows = parseCsv(response.body as string);
    expect(rows[0]).toEqual([
      'id',
      'createdAt',
      'action',
      'actor',
      'batchId',
      'jobId',
      'kind',
      'group',
      'traceId',
      'details',
    ]);
    expect(rows).toHaveLength(3);
    const [, nastyRow, plainRow] = rows as [string[], string[], string[]];
    const created = await database.rows(
      `select id::text as id, created_at from baton.audit_log where batch_id = $1 order by audit_log.id`,
      [batchId],
    );
    expect(nastyRow).toEqual([
      nasty,
      (created[1].created_at as Date).toISOString(),
      `'${tricky.action}`,
      `'${tricky.actor}`,
      batchId,
      jobId,
      `'${tricky.kind}`,
      tricky.group,
      `'${tricky.traceId}`,
      // details as JSON text (jsonb keeps its own key order), compared parsed below
      expect.stringMatching(/^\{.*\}$/s),
    ]);
    expect(JSON.parse(nastyRow[9]!)).toEqual({ note: 'x, "y"\r\nz', n: 2 });
    expect(plainRow).toEqual([
      plain,
      (created[0].created_at as Date).toISOString(),
      'export.plain',
      'carol',
      batchId,
      '',
      '',
      '',
      '',
      '{"note":"nothing odd"}',
    ]);

    const openApi = await call('GET', '/api/openapi.json', { token: VIEWER_TOKEN });
    expect(openApi.body.paths['/api/audit-logs/export'].get.responses['200'].content).toHaveProperty(
      'text/csv',
    );
  });

  test('JSON export has the same filters as the list and holds every matching entry across pages', async () => {
    const batchId = randomUUID();
    const [nasty, other] = await insertEntries([
      { ...tricky, batchId, details: { note: 'x, "y"' } },
      { action: 'export.other', actor: 'dave', batchId },
    ]);
    const filtered = await call('GET', `/api/audit-logs/export?format=json&batchId=${batchId}&actor=dave`);
    expect(filtered.status).toBe(200);
    expect(filtered.headers.get('content-disposition')).toMatch(/^attachment; filename=".*\.json"$/);
    expect(filtered.body.map((entry: { id: string }) => entry.id)).toEqual([other]);
    const both = await call('GET', `/api/audit-logs/export?batchId=${batchId}`);
    expect(both.body).toEqual([
      expect.objectContaining({ id: other }),
      {
        id: nasty,
        ...tricky,
        batchId,
        jobId: null,
        details: { note: 'x, "y"' },
        createdAt: expect.any(String),
      },
    ]);
    const none = await call('GET', `/api/audit-logs/export?format=csv&batchId=${randomUUID()}`);
    expect(parseCsv(none.body as string)).toHaveLength(1);
    expect((await call('GET', `/api/audit-logs/export?batchId=${randomUUID()}`)).body).toEqual([]);

    // More entries than one page of the export (500): each exactly once, newest first.
    const actor = `bulk-${randomUUID().slice(0, 8)}`;
    await database.rows(
      `insert into baton.audit_log (action, actor, created_at)
       select 'export.bulk', $1, now() - (n % 7) * interval '1 second' from generate_series(1, 1203) as n`,
      [actor],
    );
    const expected = await database.rows(
      `select id::text as id from baton.audit_log where actor = $1 order by created_at desc, audit_log.id desc`,
      [actor],
    );
    const bulk = await call('GET', `/api/audit-logs/export?format=json&actor=${actor}`);
    expect(bulk.body.map((entry: { id: string }) => entry.id)).toEqual(expected.map((row) => row.id));
    const bulkCsv = await call('GET', `/api/audit-logs/export?format=csv&actor=${actor}`);
    expect(
      parseCsv(bulkCsv.body as string)
        .slice(1)
        .map((row) => row[0]),
    ).toEqual(expected.map((row) => row.id));
  });

  test('format xml, an unknown parameter or a bad filter gets 400', async () => {
    for (const query of ['format=xml', 'colour=red', 'batchId=nope', 'createdBefore=soon']) {
      const response = await call('GET', `/api/audit-logs/export?${query}`);
      expect({ query, status: response.status, code: response.body.error?.code }).toEqual({
        query,
        status: 400,
        code: 'BAD_REQUEST',
      });
    }
  });
});

describe('POST /api/audit-logs/prune', () => {
  test('a dry run counts and changes nothing; a real prune deletes only old matching entries and audits itself', async () => {
    const group = `prune-${randomUUID().slice(0, 8)}`;
    const [oldA1, oldA2, oldA3, oldB1, oldB2, recentA, nowA] = await insertEntries([
      { action: 'prune.a', actor: 'x', group, ageMs: 40 * DAY_MS },
      { action: 'prune.a', actor: 'x', group, ageMs: 31 * DAY_MS },
      { action: 'prune.a', actor: 'x', group, ageMs: 400 * DAY_MS },
      { action: 'prune.b', actor: 'x', group, ageMs: 40 * DAY_MS },
      { action: 'prune.b', actor: 'x', group, ageMs: 50 * DAY_MS },
      { action: 'prune.a', actor: 'x', group, ageMs: 29 * DAY_MS },
      { action: 'prune.a', actor: 'x', group },
    ]);
    const total = await auditCount();

    const dry = await call('POST', '/api/audit-logs/prune', {
      json: { olderThanDays: 30, filters: { group }, dryRun: true },
    });
    expect(dry.status).toBe(200);
    expect(dry.body).toEqual({ dryRun: true, matched: 5, cutoff: expect.any(String) });
    expect(await auditCount()).toBe(total);
    const narrower = await call('POST', '/api/audit-logs/prune', {
      json: { olderThanDays: 35, filters: { group, action: 'prune.a' }, dryRun: true },
    });
    expect(narrower.body.matched).toBe(2);
    expect(await auditCount()).toBe(total);

    const real = await call('POST', '/api/audit-logs/prune', {
      json: { olderThanDays: 30, filters: { group, action: 'prune.a' } },
    });
    expect(real.status).toBe(200);
    expect(real.body).toEqual({ dryRun: false, deleted: 3, cutoff: expect.any(String) });
    expect(Date.now() - Date.parse(real.body.cutoff)).toBeGreaterThanOrEqual(30 * DAY_MS - 60_000);
    const left = await database.rows(
      `select id::text as id from baton.audit_log where group_key = $1 order by audit_log.id`,
      [group],
    );
    expect(left.map((row) => row.id)).toEqual([oldB1, oldB2, recentA, nowA]);
    expect([oldA1, oldA2, oldA3].some((id) => left.some((row) => row.id === id))).toBe(false);

    const [record] = await database.rows(
      `select actor, details from baton.audit_log where action = 'audit_log.prune' and details->'filters'->>'group' = $1`,
      [group],
    );
    expect(record).toEqual({
      actor: 'alice',
      details: {
        olderThanDays: 30,
        filters: { group, action: 'prune.a' },
        deleted: 3,
        cutoff: real.body.cutoff,
      },
    });
    // The entry is found by the list route too.
    const listed = await call('GET', '/api/audit-logs?action=audit_log.prune&actor=alice', {
      token: VIEWER_TOKEN,
    });
    expect(
      listed.body.entries.some(
        (entry: { details: { filters: { group?: string } } }) => entry.details.filters.group === group,
      ),
    ).toBe(true);
  });

  test('a prune of everything up to now never deletes its own entry', async () => {
    const before = await auditCount(`action = 'audit_log.prune'`);
    expect(before).toBeGreaterThan(0);
    const response = await call('POST', '/api/audit-logs/prune', {
      json: { olderThanDays: 0, filters: { action: 'audit_log.prune' } },
    });
    expect(response.body).toEqual({ dryRun: false, deleted: before, cutoff: expect.any(String) });
    const left = await database.rows(
      `select actor, details from baton.audit_log where action = 'audit_log.prune'`,
    );
    expect(left).toEqual([
      {
        actor: 'alice',
        details: {
          olderThanDays: 0,
          filters: { action: 'audit_log.prune' },
          deleted: before,
          cutoff: response.body.cutoff,
        },
      },
    ]);
  });

  test('the library prunes in batches of batchSize until nothing old is left', async () => {
    const group = `batches-${randomUUID().slice(0, 8)}`;
    await insertEntries(
      Array.from({ length: 7 }, () => ({ action: 'batch.x', actor: 'x', group, ageMs: 3 * DAY_MS })),
    );
    await insertEntries([{ action: 'batch.x', actor: 'x', group, ageMs: DAY_MS / 2 }]);
    // A client that records each statement: the prune goes through it.
    const statements: string[] = [];
    const client = {
      query: (text: string, params?: unknown[]) => {
        statements.push(text);
        return baton.db.query(text, params);
      },
    };
    const result = await baton.audit.prune({
      olderThanDays: 1,
      filters: { group },
      batchSize: 2,
      actor: 'tester',
      client,
    });
    expect(result).toMatchObject({ dryRun: false, deleted: 7 });
    // 2 + 2 + 2 + 1: four delete statements, none of more than two entries.
    expect(statements.filter((text) => text.includes('delete from baton.audit_log'))).toHaveLength(4);
    expect(await auditCount('group_key = $1', [group])).toBe(1);
    await expect(baton.audit.prune({ olderThanDays: 1, batchSize: 0 })).rejects.toMatchObject({
      code: 'OPTIONS_INVALID',
    });
  });

  test('a viewer gets 403 and bad input gets 400, and neither deletes anything', async () => {
    await insertEntries([{ action: 'guarded', actor: 'x', ageMs: 90 * DAY_MS }]);
    const total = await auditCount();
    const forbidden = await call('POST', '/api/audit-logs/prune', {
      token: VIEWER_TOKEN,
      json: { olderThanDays: 0 },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
    for (const json of [
      { olderThanDays: -1 },
      { olderThanDays: 36_501 },
      { olderThanDays: 1.5 },
      { olderThanDays: '30' },
      {},
      { olderThanDays: 30, colour: 'red' },
      { olderThanDays: 30, filters: { batchId: 'nope' } },
      { olderThanDays: 30, filters: { createdFrom: new Date().toISOString() } },
      { olderThanDays: 30, dryRun: 'yes' },
    ]) {
      const response = await call('POST', '/api/audit-logs/prune', { json });
      expect({ json, status: response.status, code: response.body.error?.code }).toEqual({
        json,
        status: 400,
        code: 'BAD_REQUEST',
      });
    }
    const badJson = await call('POST', '/api/audit-logs/prune', { rawBody: '{"olderThanDays":' });
    expect(badJson.status).toBe(400);
    expect(await auditCount()).toBe(total);
  });
});

describe('periodic prune', () => {
  test('two servers with a short interval delete every old entry once, as actor baton, and log it', async () => {
    const group = `periodic-${randomUUID().slice(0, 8)}`;
    await insertEntries(
      Array.from({ length: 9 }, (_, n) => ({
        action: 'periodic.old',
        actor: 'x',
        group,
        ageMs: (11 + n) * DAY_MS,
      })),
    );
    const [young] = await insertEntries([{ action: 'periodic.young', actor: 'x', group, ageMs: 9 * DAY_MS }]);
    await database.rows(`delete from baton.audit_log where action = 'audit_log.prune'`);
    // Every entry older than 10 days, this test's and any earlier test left.
    const old = await auditCount(`created_at < now() - interval '10 days'`);
    expect(old).toBeGreaterThanOrEqual(9);

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const settings = resolveHttpSettings(
      {
        port: 0,
        tokens: TEST_TOKENS,
        auditTtlDays: 10,
        auditPruneIntervalMs: 1000,
        auditPruneBatchSize: 2,
      },
      {},
    );
    const servers = await Promise.all([
      startHttpServer(baton, settings, { logger }),
      startHttpServer(baton, settings, { logger }),
    ]);
    try {
      await pollUntil(
        'the periodic prune to delete the old entries',
        async () => (await auditCount(`created_at < now() - interval '10 days'`)) === 0,
      );
    } finally {
      await Promise.all(servers.map((server) => server.close()));
    }
    expect(await auditCount('group_key = $1', [group])).toBe(1);
    expect(
      (await database.rows(`select id::text as id from baton.audit_log where group_key = $1`, [group]))[0].id,
    ).toBe(young);
    const records = await database.rows(
      `select actor, details from baton.audit_log where action = 'audit_log.prune'`,
    );
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) {
      expect(record).toMatchObject({ actor: 'baton', details: { olderThanDays: 10, filters: {} } });
      expect(record.details.deleted).toBeGreaterThan(0);
    }
    // Two servers at once: each entry was deleted (and counted) by exactly one of them.
    const recorded = records.reduce((sum, record) => sum + (record.details.deleted as number), 0);
    expect(recorded).toBe(old);
    const logged = lines.filter((line) => line.event === 'audit.pruned');
    expect(logged.reduce((sum, line) => sum + (line.deleted as number), 0)).toBe(old);
    expect(lines.filter((line) => line.event === 'audit.prune_failed')).toEqual([]);
  });

  test('a failing prune is logged as audit.prune_failed and the timer keeps going', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const failing = connectBaton(database, { kinds: [] });
    await failing.close(); // its pool is closed, so every prune fails
    const server = await startHttpServer(
      failing,
      resolveHttpSettings({ port: 0, tokens: TEST_TOKENS, auditTtlDays: 1, auditPruneIntervalMs: 1000 }, {}),
      { logger },
    );
    try {
      await pollUntil(
        'two failed prunes to be logged',
        async () => lines.filter((line) => line.event === 'audit.prune_failed').length >= 2,
      );
    } finally {
      await server.close();
    }
    expect(lines.find((line) => line.event === 'audit.prune_failed')).toMatchObject({
      level: 50,
      olderThanDays: 1,
      err: expect.objectContaining({ message: expect.any(String) }),
    });
  });
});

describe('GET /api/ops', () => {
  test('counts per kind and state, kinds nobody serves, live workers, recent failures and dead letters, per-minute counts', async () => {
    const doneJobs = await baton.enqueueMany(
      done,
      [0, 1, 2].map((n) => ({ payload: { n } })),
    );
    const brokenJobs = await baton.enqueueMany(
      broken,
      [0, 1].map((n) => ({ payload: { n }, group: 'ops-group', traceId: `ops-trace-${n}` })),
    );
    const [flakyJob] = await baton.enqueueMany(flaky, [{ payload: {} }]);
    await baton.enqueueMany(idle, [{ payload: {} }, { payload: {} }, { payload: {}, delayMs: 3_600_000 }]);

    const worker = baton.createWorker({
      kinds: [done, broken, flaky],
      shutdownSignals: [],
      logLevel: 'silent',
    });
    await worker.start();
    let snapshot: ApiResponse['body'];
    try {
      await pollUntil('the jobs to finish', async () => {
        const rows = await database.rows(
          `select count(*)::int as n from baton.jobs where kind in ('ops.done', 'ops.broken', 'ops.flaky') and state in ('completed', 'failed')`,
        );
        return rows[0].n === 6;
      });
      const response = await call('GET', '/api/ops', { token: VIEWER_TOKEN });
      expect(response.status).toBe(200);
      snapshot = response.body;
    } finally {
      await worker.stop();
    }

    const kind = (name: string) => snapshot.kinds.find((entry: { kind: string }) => entry.kind === name);
    const zero = { pending: 0, due: 0, running: 0, completed: 0, failed: 0, cancelled: 0, deadLettered: 0 };
    expect(kind('ops.done')).toEqual({ ...zero, kind: 'ops.done', completed: 3, liveWorkers: 1 });
    expect(kind('ops.broken')).toEqual({
      ...zero,
      kind: 'ops.broken',
      failed: 2,
      deadLettered: 2,
      liveWorkers: 1,
    });
    expect(kind('ops.flaky')).toEqual({
      ...zero,
      kind: 'ops.flaky',
      failed: 1,
      deadLettered: 1,
      liveWorkers: 1,
    });
    // The earlier cancel test left one cancelled ops.idle job.
    expect(kind('ops.idle')).toEqual({
      ...zero,
      kind: 'ops.idle',
      pending: 3,
      due: 2,
      cancelled: 1,
      liveWorkers: 0,
    });
    expect(snapshot.kindsWithoutWorker).toEqual(['ops.idle']);

    expect(snapshot.workers).toEqual([
      expect.objectContaining({
        pid: process.pid,
        host: expect.any(String),
        kinds: expect.arrayContaining(['ops.done', 'ops.broken', 'ops.flaky']),
        concurrency: expect.any(Number),
        running: expect.any(Number),
        lastHeartbeatAt: expect.any(String),
      }),
    ]);

    // Failed attempts: two of ops.broken (terminal) and two of ops.flaky (retried once, then dead).
    const attempts = await database.rows(
      `select a.job_id, a.finished_at from baton.job_attempts a order by a.finished_at desc, a.id desc`,
    );
    expect(attempts).toHaveLength(4);
    expect(snapshot.recentFailures.map((failure: { jobId: string }) => failure.jobId)).toEqual(
      attempts.map((row) => row.job_id),
    );
    const brokenFailure = snapshot.recentFailures.find(
      (failure: { jobId: string }) => failure.jobId === brokenJobs[1]!.id,
    );
    expect(brokenFailure).toEqual({
      jobId: brokenJobs[1]!.id,
      kind: 'ops.broken',
      group: 'ops-group',
      traceId: 'ops-trace-1',
      attempt: 1,
      outcome: 'failed',
      errorCode: 'ENTITY_NOT_FOUND',
      errorMessage: 'thing 1 does not exist',
      failedAt: expect.any(String),
    });
    expect(
      snapshot.recentFailures.filter((failure: { jobId: string }) => failure.jobId === flakyJob!.id),
    ).toEqual([
      expect.objectContaining({
        attempt: 2,
        errorCode: 'EXECUTION_FAILED',
        errorMessage: 'upstream timed out',
      }),
      expect.objectContaining({ attempt: 1, errorCode: 'EXECUTION_FAILED' }),
    ]);

    const deadLetters = await database.rows(
      `select d.job_id, d.reason, j.state from baton.dead_letters d join baton.jobs j on j.id = d.job_id
       order by d.created_at desc, d.job_id desc`,
    );
    expect(
      snapshot.recentDeadLetters.map((letter: { jobId: string; reason: string; state: string }) => [
        letter.jobId,
        letter.reason,
        letter.state,
      ]),
    ).toEqual(deadLetters.map((row) => [row.job_id, row.reason, row.state]));
    expect(new Set(deadLetters.map((row) => row.reason))).toEqual(
      new Set(['non_retryable', 'max_attempts_exceeded']),
    );

    const limited = await call('GET', '/api/ops?recentLimit=1');
    expect(limited.body.recentFailures.map((failure: { jobId: string }) => failure.jobId)).toEqual([
      attempts[0].job_id,
    ]);
    expect(limited.body.recentDeadLetters.map((letter: { jobId: string }) => letter.jobId)).toEqual([
      deadLetters[0].job_id,
    ]);

    // Per minute: 60 minutes oldest first, the current one last, each completion and failure in its minute.
    const perMinute: { minute: string; completed: number; failed: number }[] = snapshot.perMinute;
    expect(perMinute).toHaveLength(60);
    const minutes = perMinute.map((entry) => Date.parse(entry.minute));
    for (let i = 1; i < 60; i++) expect(minutes[i]! - minutes[i - 1]!).toBe(60_000);
    expect(minutes[59]).toBe(Math.floor(Date.parse(snapshot.generatedAt) / 60_000) * 60_000);
    const finished = await database.rows(`select finished_at from baton.jobs where id = any($1)`, [
      doneJobs.map((job) => job.id),
    ]);
    const expectedCompleted = new Map<number, number>();
    for (const row of finished) {
      const minute = Math.floor((row.finished_at as Date).getTime() / 60_000) * 60_000;
      expectedCompleted.set(minute, (expectedCompleted.get(minute) ?? 0) + 1);
    }
    const expectedFailed = new Map<number, number>();
    for (const row of attempts) {
      const minute = Math.floor((row.finished_at as Date).getTime() / 60_000) * 60_000;
      expectedFailed.set(minute, (expectedFailed.get(minute) ?? 0) + 1);
    }
    expect(perMinute.map((entry) => [entry.minute, entry.completed, entry.failed])).toEqual(
      minutes.map((minute) => [
        new Date(minute).toISOString(),
        expectedCompleted.get(minute) ?? 0,
        expectedFailed.get(minute) ?? 0,
      ]),
    );
    expect(perMinute.reduce((sum, entry) => sum + entry.completed, 0)).toBe(3);
    expect(perMinute.reduce((sum, entry) => sum + entry.failed, 0)).toBe(4);
  });

  test('audit entries filtered by action and actor, paged with auditCursor and auditLimit', async () => {
    const tag = randomUUID().slice(0, 8);
    const action = `ops.audit.${tag}`;
    const mine = await insertEntries(
      Array.from({ length: 5 }, (_, n) => ({ action, actor: `ops-actor-${tag}`, ageMs: (5 - n) * 1000 })),
    );
    const [otherActor] = await insertEntries([{ action, actor: `someone-${tag}` }]);
    const [otherAction] = await insertEntries([{ action: `${action}.other`, actor: `ops-actor-${tag}` }]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `auditAction=${action}&auditActor=ops-actor-${tag}&auditLimit=2${cursor ? `&auditCursor=${encodeURIComponent(cursor)}` : ''}`;
      const response = await call('GET', `/api/ops?${query}`, { token: VIEWER_TOKEN });
      expect(response.status).toBe(200);
      expect(response.body.audit.entries.length).toBeLessThanOrEqual(2);
      seen.push(...response.body.audit.entries.map((entry: { id: string }) => entry.id));
      cursor = response.body.audit.nextCursor;
      pages++;
      expect(pages).toBeLessThan(10);
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...mine].reverse());

    const byAction = await call('GET', `/api/ops?auditAction=${action}&auditLimit=10`);
    expect(byAction.body.audit.entries.map((entry: { id: string }) => entry.id)).toEqual([
      otherActor,
      ...[...mine].reverse(),
    ]);
    const byActor = await call('GET', `/api/ops?auditActor=ops-actor-${tag}&auditLimit=10`);
    expect(byActor.body.audit.entries.map((entry: { id: string }) => entry.id)).toEqual([
      otherAction,
      ...[...mine].reverse(),
    ]);
    const unfiltered = await call('GET', '/api/ops?auditLimit=3');
    expect(unfiltered.body.audit.entries).toHaveLength(3);
    expect(unfiltered.body.audit.nextCursor).toEqual(expect.any(String));
  });

  test('bad ops parameters get 400', async () => {
    for (const [query, code] of [
      ['recentLimit=0', 'BAD_REQUEST'],
      ['recentLimit=201', 'BAD_REQUEST'],
      ['auditLimit=501', 'BAD_REQUEST'],
      ['auditCursor=abc', 'OPTIONS_INVALID'],
      ['colour=red', 'BAD_REQUEST'],
    ]) {
      const response = await call('GET', `/api/ops?${query}`, { token: VIEWER_TOKEN });
      expect({ query, status: response.status, code: response.body.error?.code }).toEqual({
        query,
        status: 400,
        code,
      });
    }
  });
});
