/**
 * Dead letters over real HTTP and PostgreSQL: the list with each filter and keyset paging (every
 * dead letter once, also while new ones arrive), the side-effect-free preview that counts and
 * pages exactly what a batch retry touches, batch retry by filters and by job ids (dry run
 * changes nothing; skipped jobs audited; one batch id and the token's actor on every audit entry;
 * one statement, so a failure midway writes nothing; concurrent batches retry each job once), and
 * the 400/403 cases.
 *
 * Dead letters are made by the statements a worker runs (jobClaim, then jobFail with a terminal
 * code or on the last attempt), which is fast; one test makes one with a real worker.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { queryRows } from '../src/db/database.js';
import type { HttpServer } from '../src/http/server.js';
import { type BatonClient, defineKind, JobError, type KindDefinition } from '../src/index.js';
import { jobClaim, jobFail } from '../src/sql/jobs-lease.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, serveApi, VIEWER_TOKEN, WORKER_TOKEN } from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

const emptyPayload = z.object({});
const kinds = new Map<string, KindDefinition<z.infer<typeof emptyPayload>>>();
/** A kind without a handler, made on first use; each test uses kinds of its own. */
const kindNamed = (kind: string) => {
  if (!kinds.has(kind)) kinds.set(kind, defineKind({ kind, payload: emptyPayload }));
  return kinds.get(kind)!;
};

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;

beforeAll(async () => {
  database = await createTestDatabase('http_dead_letters');
  baton = connectBaton(database);
  ({ server, call } = await serveApi(baton));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

interface DeadLetterInput {
  group?: string;
  traceId?: string;
}

/**
 * Enqueues one job per item of `kind`, claims them and fails each through the worker's own
 * statements: a terminal code dead-letters `non_retryable`, a retryable one on the only attempt
 * `max_attempts_exceeded`. With `together`, all the failures commit in one transaction, so the
 * dead letters share one created_at (ties the keyset must break by job id). Returns the job ids.
 */
async function deadLetter(
  kind: string,
  items: DeadLetterInput[],
  how: { terminal?: boolean; code?: string; together?: boolean } = {},
): Promise<string[]> {
  const terminal = how.terminal ?? true;
  const code = how.code ?? (terminal ? 'PAYLOAD_UNSUPPORTED' : 'EXECUTION_FAILED');
  const jobs = await baton.enqueueMany(
    kindNamed(kind),
    items.map((item) => ({ payload: {}, maxAttempts: 1, ...item })),
  );
  const claimed = await queryRows<{ id: string; lease_token: string }>(baton.db, jobClaim, [
    [kind],
    items.length,
    60_000,
    'test-worker',
  ]);
  expect(claimed).toHaveLength(items.length);
  const failAll = async (db: { query: typeof baton.db.query }) => {
    for (const job of claimed) {
      const [failed] = await queryRows(db, jobFail, [
        job.id,
        job.lease_token,
        terminal,
        0,
        code,
        `${kind} failed with ${code}`,
        null,
        'failed',
      ]);
      expect(failed.state).toBe('failed');
    }
  };
  if (how.together) await baton.db.transaction(failAll);
  else await failAll(baton.db);
  return jobs.map((job) => job.id);
}

/** Every row of the three tables a retry could write, to prove that something wrote nothing. */
async function snapshot() {
  return {
    jobs: await database.rows(`select * from baton.jobs order by id`),
    deadLetters: await database.rows(`select * from baton.dead_letters order by job_id`),
    audit: await database.rows(`select * from baton.audit_log order by id`),
  };
}

/** Job ids of the dead letters matching `query`, in the database's own newest-first order. */
async function expectedOrder(where: string, params: unknown[]): Promise<string[]> {
  const rows = await database.rows(
    `select job_id from baton.dead_letters where ${where} order by created_at desc, job_id desc`,
    params,
  );
  return rows.map((row) => row.job_id);
}

/** Pages through a GET route (list or preview) with `limit`, returning every page's body. */
async function allPages(
  path: string,
  query: Record<string, string>,
  limit: number,
  between?: () => Promise<void>,
) {
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  const pages: any[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    const response = await call('GET', `${path}?${params}`, { token: VIEWER_TOKEN });
    expect(response.status).toBe(200);
    pages.push(response.body);
    cursor = response.body.nextCursor;
    if (between) await between();
  } while (cursor && pages.length < 100);
  return pages;
}

const ids = (items: { jobId: string }[]) => items.map((item) => item.jobId);

describe('GET /api/dead-letters', () => {
  test('lists dead letters newest first, with every field and the job state, under each filter', async () => {
    const unsupported = await deadLetter('dl.list.a', [
      { group: 'g-list-1', traceId: 'trace-list-1' },
      { group: 'g-list-1', traceId: 'trace-list-2' },
    ]);
    const exhausted = await deadLetter('dl.list.a', [{ group: 'g-list-2', traceId: 'trace-list-1' }], {
      terminal: false,
    });
    const missing = await deadLetter('dl.list.b', [{ group: 'g-list-1' }], { code: 'ENTITY_NOT_FOUND' });
    const all = [...unsupported, ...exhausted, ...missing];

    const listed = async (query: Record<string, string>) => {
      const response = await call('GET', `/api/dead-letters?${new URLSearchParams(query)}`, {
        token: VIEWER_TOKEN,
      });
      expect(response.status).toBe(200);
      expect(response.body.nextCursor).toBeNull();
      return ids(response.body.deadLetters).filter((id) => all.includes(id));
    };
    const sorted = (list: string[]) => [...list].sort();

    expect(sorted(await listed({ kind: 'dl.list.a' }))).toEqual(sorted([...unsupported, ...exhausted]));
    expect(sorted(await listed({ group: 'g-list-1' }))).toEqual(sorted([...unsupported, ...missing]));
    expect(sorted(await listed({ traceId: 'trace-list-1' }))).toEqual(
      sorted([unsupported[0]!, exhausted[0]!]),
    );
    expect(await listed({ reason: 'max_attempts_exceeded' })).toEqual(exhausted);
    expect(sorted(await listed({ reason: 'non_retryable', group: 'g-list-1' }))).toEqual(
      sorted([...unsupported, ...missing]),
    );
    expect(await listed({ errorCode: 'ENTITY_NOT_FOUND' })).toEqual(missing);
    expect(await listed({ kind: 'dl.list.a', errorCode: 'ENTITY_NOT_FOUND' })).toEqual([]);
    // Without filters, newest first in the database's own order.
    expect(await listed({})).toEqual(
      (await expectedOrder('job_id = any($1)', [all])).filter((id) => all.includes(id)),
    );

    const one = await call('GET', '/api/dead-letters?errorCode=ENTITY_NOT_FOUND', { token: VIEWER_TOKEN });
    expect(one.body.deadLetters).toEqual([
      {
        jobId: missing[0],
        kind: 'dl.list.b',
        reason: 'non_retryable',
        errorCode: 'ENTITY_NOT_FOUND',
        errorMessage: 'dl.list.b failed with ENTITY_NOT_FOUND',
        group: 'g-list-1',
        traceId: null,
        attempts: 1,
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        state: 'failed',
      },
    ]);
  });

  test('lists a dead letter a real worker wrote when its handler threw a terminal JobError', async () => {
    const failing = defineKind({
      kind: 'dl.worker',
      payload: z.object({}),
      handler: async () => {
        throw new JobError('PRECONDITION_FAILED', 'the book is locked');
      },
    });
    const { id } = await baton.enqueue(failing, {}, { group: 'g-worker', traceId: 'trace-worker' });
    const worker = baton.createWorker({ kinds: [failing], shutdownSignals: [], logLevel: 'silent' });
    await worker.start();
    try {
      await pollUntil('the job to fail', async () => (await baton.getJob(id))?.state === 'failed');
    } finally {
      await worker.stop();
    }
    const response = await call('GET', '/api/dead-letters?group=g-worker', { token: VIEWER_TOKEN });
    expect(response.body.deadLetters).toMatchObject([
      {
        jobId: id,
        kind: 'dl.worker',
        reason: 'non_retryable',
        errorCode: 'PRECONDITION_FAILED',
        errorMessage: 'the book is locked',
        traceId: 'trace-worker',
        attempts: 1,
        state: 'failed',
      },
    ]);
  });

  test('pages every dead letter once, in order, ties broken by job id, while new ones arrive', async () => {
    // Three batches whose failures each commit together: 8 dead letters share each created_at.
    const existing: string[] = [];
    for (let batch = 0; batch < 3; batch++) {
      existing.push(
        ...(await deadLetter(
          'dl.page',
          Array.from({ length: 8 }, () => ({ group: 'g-page' })),
          { together: true },
        )),
      );
    }
    const order = await expectedOrder('group_key = $1', ['g-page']);
    let arrived = 0;
    const pages = await allPages('/api/dead-letters', { group: 'g-page' }, 5, async () => {
      // A new dead letter after every page: newer than anything paged, so on no later page.
      await deadLetter('dl.page', [{ group: 'g-page' }]);
      arrived++;
    });
    expect(pages).toHaveLength(5);
    expect(arrived).toBe(5);
    const seen = pages.flatMap((page) => ids(page.deadLetters));
    expect(seen).toHaveLength(24);
    expect(new Set(seen).size).toBe(24);
    expect(seen).toEqual(order);
    expect([...seen].sort()).toEqual([...existing].sort());
    expect(pages.slice(0, 4).every((page) => page.deadLetters.length === 5)).toBe(true);
    expect(pages[4].nextCursor).toBeNull();
    // The ones that arrived meanwhile are there on a fresh first page.
    const fresh = await call('GET', '/api/dead-letters?group=g-page&limit=500', { token: VIEWER_TOKEN });
    expect(fresh.body.deadLetters).toHaveLength(29);
  });

  test('refuses a forged cursor, a limit over 500, a bad reason and unknown parameters with 400', async () => {
    const forged = await call('GET', '/api/dead-letters?cursor=bm90LWEtY3Vyc29y', { token: VIEWER_TOKEN });
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe('OPTIONS_INVALID');
    for (const query of ['limit=501', 'limit=0', 'reason=tired', 'state=failed', 'kind=']) {
      const response = await call('GET', `/api/dead-letters?${query}`, { token: VIEWER_TOKEN });
      expect(response.status, query).toBe(400);
      expect(response.body.error.code, query).toBe('BAD_REQUEST');
    }
    const preview = await call('GET', '/api/dead-letters/preview?limit=501', { token: VIEWER_TOKEN });
    expect(preview.status).toBe(400);
  });
});

describe('GET /api/dead-letters/preview', () => {
  test('pages all matches once with total and retryable counts, changes nothing, and is what the retry then touches', async () => {
    const matching = await deadLetter(
      'dl.preview',
      Array.from({ length: 12 }, () => ({ group: 'g-preview' })),
    );
    await deadLetter('dl.preview', [{ group: 'g-preview' }], { code: 'ENTITY_NOT_FOUND' }); // another code
    await deadLetter('dl.preview.other', [{ group: 'g-preview' }]); // another kind
    // A job that left `failed` while its dead letter stayed (the window a batch retry must survive):
    // it matches, but it is not retryable.
    await database.rows(
      `update baton.jobs set state = 'completed', finished_at = now(), error_code = null where id = $1`,
      [matching[4]],
    );
    const filters = { kind: 'dl.preview', errorCode: 'PAYLOAD_UNSUPPORTED', group: 'g-preview' };

    const before = await snapshot();
    const pages = await allPages('/api/dead-letters/preview', filters, 5);
    expect(await snapshot()).toEqual(before);

    expect(pages).toHaveLength(3);
    for (const page of pages) {
      expect(page.total).toBe(12);
      expect(page.retryable).toBe(11);
    }
    const previewed = pages.flatMap((page) => ids(page.deadLetters));
    expect(previewed).toEqual(await expectedOrder('job_id = any($1)', [matching]));
    const completed = pages.flatMap((page) => page.deadLetters).find((item) => item.jobId === matching[4]);
    expect(completed.state).toBe('completed');

    // The retry by the same filters touches exactly what the preview showed, in the same order.
    const retry = await call('POST', '/api/dead-letters/retry', { json: { filters } });
    expect(retry.status).toBe(200);
    expect(retry.body.matched).toBe(12);
    expect(retry.body.retried).toEqual(previewed.filter((id) => id !== matching[4]));
    expect(retry.body.skipped).toEqual([{ jobId: matching[4], reason: 'job_completed' }]);

    const after = await call('GET', `/api/dead-letters/preview?${new URLSearchParams(filters)}`, {
      token: VIEWER_TOKEN,
    });
    expect(after.body).toMatchObject({ total: 1, retryable: 0, nextCursor: null });
  });
});

describe('POST /api/dead-letters/retry', () => {
  test('dryRun changes nothing, writes no audit entry, and answers what the real retry then does', async () => {
    const dead = await deadLetter(
      'dl.dry',
      Array.from({ length: 4 }, () => ({ group: 'g-dry' })),
    );
    const { id: pending } = await baton.enqueue(kindNamed('dl.dry.idle'), {});
    const missing = randomUUID();
    const jobIds = [...dead, pending, missing];

    const before = await snapshot();
    const byIds = await call('POST', '/api/dead-letters/retry', { json: { jobIds, dryRun: true } });
    const byFilters = await call('POST', '/api/dead-letters/retry', {
      json: { filters: { group: 'g-dry' }, dryRun: true, limit: 3 },
    });
    expect(await snapshot()).toEqual(before);

    expect(byIds.status).toBe(200);
    expect(byIds.body).toEqual({
      batchId: null,
      dryRun: true,
      retried: dead,
      skipped: [
        { jobId: pending, reason: 'job_pending' },
        { jobId: missing, reason: 'job_missing' },
      ],
      matched: 6,
    });
    const newestThree = (await expectedOrder('group_key = $1', ['g-dry'])).slice(0, 3);
    expect(byFilters.body).toEqual({
      batchId: null,
      dryRun: true,
      retried: newestThree,
      skipped: [],
      matched: 3,
    });

    const real = await call('POST', '/api/dead-letters/retry', { json: { jobIds } });
    expect(real.status).toBe(200);
    expect(real.body).toEqual({ ...byIds.body, batchId: expect.any(String), dryRun: false });
  });

  test('retries by ids: failed and cancelled jobs go back to pending with fresh attempts, the rest are skipped, all audited under one batch id with the actor', async () => {
    const [failedId] = await deadLetter('dl.ids', [{ group: 'g-ids', traceId: 'trace-ids' }]);
    const { id: cancelledId } = await baton.enqueue(kindNamed('dl.ids.idle'), {}, { group: 'g-ids' });
    await baton.cancel(cancelledId);
    const { id: pendingId } = await baton.enqueue(kindNamed('dl.ids.idle'), {});
    const [completedId] = await deadLetter('dl.ids', [{}]);
    await database.rows(`delete from baton.dead_letters where job_id = $1`, [completedId]);
    await database.rows(`update baton.jobs set state = 'completed' where id = $1`, [completedId]);
    const missingId = randomUUID();

    // Workers hear of the batch on baton_jobs.
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query('listen baton_jobs');
    try {
      const response = await call('POST', '/api/dead-letters/retry', {
        json: { jobIds: [failedId, cancelledId, pendingId, completedId, missingId, failedId] },
      });
      expect(response.status).toBe(200);
      const { batchId } = response.body;
      expect(response.body).toEqual({
        batchId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        dryRun: false,
        retried: [failedId, cancelledId],
        skipped: [
          { jobId: pendingId, reason: 'job_pending' },
          { jobId: completedId, reason: 'job_completed' },
          { jobId: missingId, reason: 'job_missing' },
        ],
        matched: 5,
      });
      await pollUntil('the notification', async () => heard.length > 0);
      expect(heard).toEqual(['0']);

      const jobs = await database.rows(
        `select id, state, attempts, finished_at, error_code from baton.jobs where id = any($1)`,
        [[failedId, cancelledId]],
      );
      for (const job of jobs) {
        expect(job).toMatchObject({ state: 'pending', attempts: 0, finished_at: null, error_code: null });
      }
      expect(await database.rows(`select * from baton.dead_letters where job_id = $1`, [failedId])).toEqual(
        [],
      );

      const audit = await database.rows(
        `select action, actor, batch_id, job_id, kind, group_key, trace_id, details
         from baton.audit_log where batch_id = $1
         order by job_id is null, array_position($2::uuid[], job_id)`,
        [batchId, [failedId, cancelledId, pendingId, completedId, missingId]],
      );
      expect(audit).toEqual([
        {
          action: 'job.retry',
          actor: 'alice',
          batch_id: batchId,
          job_id: failedId,
          kind: 'dl.ids',
          group_key: 'g-ids',
          trace_id: 'trace-ids',
          details: { previousState: 'failed' },
        },
        expect.objectContaining({
          action: 'job.retry',
          job_id: cancelledId,
          details: { previousState: 'cancelled' },
        }),
        expect.objectContaining({
          action: 'job.retry_skipped',
          job_id: pendingId,
          details: { reason: 'job_pending', state: 'pending' },
        }),
        expect.objectContaining({
          action: 'job.retry_skipped',
          job_id: completedId,
          details: { reason: 'job_completed', state: 'completed' },
        }),
        expect.objectContaining({
          action: 'job.retry_skipped',
          job_id: missingId,
          kind: null,
          details: { reason: 'job_missing', state: null },
        }),
        {
          action: 'dead_letters.retry_batch',
          actor: 'alice',
          batch_id: batchId,
          job_id: null,
          kind: null,
          group_key: null,
          trace_id: null,
          details: {
            by: 'jobIds',
            jobIds: [failedId, cancelledId, pendingId, completedId, missingId],
            limit: 5,
            matched: 5,
            retried: 2,
            skipped: 3,
          },
        },
      ]);
      expect(audit.every((entry) => entry.actor === 'alice' && entry.batch_id === batchId)).toBe(true);
    } finally {
      await listener.end();
    }
  });

  test('retries by filters the newest `limit` matches; the summary records the filters', async () => {
    const dead = await deadLetter(
      'dl.filters',
      Array.from({ length: 5 }, () => ({ group: 'g-filters' })),
    );
    const order = await expectedOrder('job_id = any($1)', [dead]);
    const response = await call('POST', '/api/dead-letters/retry', {
      json: { filters: { kind: 'dl.filters', reason: 'non_retryable' }, limit: 2 },
    });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      dryRun: false,
      retried: order.slice(0, 2),
      skipped: [],
      matched: 2,
    });
    const left = await call('GET', '/api/dead-letters?kind=dl.filters', { token: VIEWER_TOKEN });
    expect(ids(left.body.deadLetters)).toEqual(order.slice(2));
    const [summary] = await database.rows(
      `select actor, details from baton.audit_log where batch_id = $1 and action = 'dead_letters.retry_batch'`,
      [response.body.batchId],
    );
    expect(summary).toEqual({
      actor: 'alice',
      details: {
        by: 'filters',
        filters: { kind: 'dl.filters', reason: 'non_retryable' },
        limit: 2,
        matched: 2,
        retried: 2,
        skipped: 0,
      },
    });
  });

  test('a job retried on its own after the preview is skipped by the batch and audited as skipped', async () => {
    await deadLetter(
      'dl.meanwhile',
      Array.from({ length: 3 }, () => ({ group: 'g-meanwhile' })),
    );
    const preview = await call('GET', '/api/dead-letters/preview?group=g-meanwhile', { token: VIEWER_TOKEN });
    const previewed = ids(preview.body.deadLetters);
    expect(previewed).toHaveLength(3);
    const single = await call('POST', `/api/jobs/${previewed[1]}/retry`);
    expect(single.status).toBe(200);

    const response = await call('POST', '/api/dead-letters/retry', { json: { jobIds: previewed } });
    expect(response.body.retried).toEqual([previewed[0], previewed[2]]);
    expect(response.body.skipped).toEqual([{ jobId: previewed[1], reason: 'job_pending' }]);
    const skipped = await database.rows(
      `select actor, batch_id, details from baton.audit_log where action = 'job.retry_skipped' and job_id = $1`,
      [previewed[1]],
    );
    expect(skipped).toEqual([
      {
        actor: 'alice',
        batch_id: response.body.batchId,
        details: { reason: 'job_pending', state: 'pending' },
      },
    ]);
    // Retried once by the single retry, not again by the batch.
    const retries = await database.rows(
      `select count(*)::int as n from baton.audit_log where action = 'job.retry' and job_id = $1`,
      [previewed[1]],
    );
    expect(retries[0].n).toBe(1);
  });

  test('refuses bad bodies with 400 and writes nothing', async () => {
    const dead = await deadLetter('dl.bad', [{ group: 'g-bad' }]);
    const tooMany = Array.from({ length: 501 }, () => randomUUID());
    const cases: [string, unknown, string][] = [
      ['limit over 500', { filters: { group: 'g-bad' }, limit: 501 }, 'OPTIONS_INVALID'],
      ['limit 0', { filters: { group: 'g-bad' }, limit: 0 }, 'OPTIONS_INVALID'],
      ['limit not an integer', { jobIds: dead, limit: 1.5 }, 'OPTIONS_INVALID'],
      ['501 job ids', { jobIds: tooMany }, 'OPTIONS_INVALID'],
      ['no job ids', { jobIds: [] }, 'OPTIONS_INVALID'],
      ['more job ids than limit', { jobIds: [...dead, randomUUID()], limit: 1 }, 'OPTIONS_INVALID'],
      ['a job id that is not a uuid', { jobIds: [...dead, 'job-1'] }, 'OPTIONS_INVALID'],
      ['filters and jobIds', { filters: { group: 'g-bad' }, jobIds: dead }, 'OPTIONS_INVALID'],
      ['neither filters nor jobIds', { limit: 10 }, 'OPTIONS_INVALID'],
      ['a bad reason', { filters: { reason: 'tired' } }, 'BAD_REQUEST'],
      ['an unknown filter', { filters: { state: 'failed' } }, 'BAD_REQUEST'],
      ['an unknown field', { jobIds: dead, actor: 'mallory' }, 'BAD_REQUEST'],
      ['dryRun not a boolean', { jobIds: dead, dryRun: 'yes' }, 'BAD_REQUEST'],
    ];
    const before = await snapshot();
    for (const [name, json, code] of cases) {
      const response = await call('POST', '/api/dead-letters/retry', { json });
      expect(response.status, name).toBe(400);
      expect(response.body.error.code, name).toBe(code);
    }
    const notJson = await call('POST', '/api/dead-letters/retry', { rawBody: '{"jobIds": [' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('BAD_REQUEST');
    // The messages name the field.
    const named = await call('POST', '/api/dead-letters/retry', { json: { jobIds: [dead[0], 'job-1'] } });
    expect(named.body.error.message).toMatch(/jobIds\.1/);
    const limitNamed = await call('POST', '/api/dead-letters/retry', { json: { filters: {}, limit: 501 } });
    expect(limitNamed.body.error.message).toMatch(/limit/);
    expect(await snapshot()).toEqual(before);
  });

  test('a viewer reads dead letters but gets 403 on retry, with nothing changed; a worker token may not read', async () => {
    const dead = await deadLetter('dl.roles', [{ group: 'g-roles' }]);
    const before = await snapshot();
    const retry = await call('POST', '/api/dead-letters/retry', {
      token: VIEWER_TOKEN,
      json: { jobIds: dead },
    });
    expect(retry.status).toBe(403);
    expect(retry.body.error.code).toBe('FORBIDDEN');
    expect(await snapshot()).toEqual(before);
    expect((await call('GET', '/api/dead-letters?group=g-roles', { token: VIEWER_TOKEN })).status).toBe(200);
    expect((await call('GET', '/api/dead-letters/preview', { token: VIEWER_TOKEN })).status).toBe(200);
    expect((await call('GET', '/api/dead-letters', { token: WORKER_TOKEN })).status).toBe(403);
    expect((await call('GET', '/api/dead-letters/preview', { token: WORKER_TOKEN })).status).toBe(403);
    expect((await call('GET', '/api/dead-letters', { token: null })).status).toBe(401);
  });

  test('concurrent batch retries over the same jobs retry each job once in total', async () => {
    const dead = await deadLetter(
      'dl.race',
      Array.from({ length: 40 }, () => ({ group: 'g-race' })),
    );
    // Hold one of the jobs so that every batch has matched its jobs and is waiting for locks
    // before any of them can finish: the batches truly overlap.
    const holder = await database.pool.connect();
    try {
      await holder.query('begin');
      await holder.query(`select id from baton.jobs where id = $1 for update`, [[...dead].sort().at(-1)]);
      const batches = [
        call('POST', '/api/dead-letters/retry', { json: { filters: { group: 'g-race' } } }),
        call('POST', '/api/dead-letters/retry', { json: { jobIds: dead } }),
        call('POST', '/api/dead-letters/retry', { json: { filters: { kind: 'dl.race' }, limit: 40 } }),
      ];
      // (pg_stat_activity keeps the first 1 KiB of a statement: the batch is known by its start.)
      await pollUntil('three batches waiting for locks', async () => {
        const [row] = await database.rows(
          `select count(*)::int as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock'
             and query like '%unnest($1::uuid[]) with ordinality as wanted%'`,
        );
        return row.n === 3;
      });
      await holder.query('commit');
      const results = await Promise.all(batches);
      for (const result of results) {
        expect(result.status).toBe(200);
        expect(result.body.matched).toBe(40);
      }
      const retried = results.flatMap((result) => result.body.retried as string[]);
      expect(retried).toHaveLength(40);
      expect([...retried].sort()).toEqual([...dead].sort());
      const skipped = results.flatMap((result) => result.body.skipped as { reason: string }[]);
      expect(skipped).toHaveLength(80);
      expect(new Set(skipped.map((skip) => skip.reason))).toEqual(new Set(['job_pending']));
    } finally {
      holder.release();
    }
    const audit = await database.rows(
      `select action, count(*)::int as n, count(distinct job_id)::int as jobs from baton.audit_log
       where job_id = any($1) group by action order by action`,
      [dead],
    );
    expect(audit).toEqual([
      { action: 'job.retry', n: 40, jobs: 40 },
      { action: 'job.retry_skipped', n: 80, jobs: 40 },
    ]);
    const pendingJobs = await database.rows(
      `select count(*)::int as n from baton.jobs where id = any($1) and state = 'pending' and attempts = 0`,
      [dead],
    );
    expect(pendingJobs[0].n).toBe(40);
  });
});

describe('baton.deadLetters (the library core)', () => {
  test('a batch that fails midway writes nothing: jobs, dead letters and audit log stay as they were', async () => {
    const dead = await deadLetter(
      'dl.atomic',
      Array.from({ length: 10 }, () => ({ group: 'g-atomic' })),
    );
    const last = [...dead].sort().at(-1);
    const before = await snapshot();
    const holder = await database.pool.connect();
    const client = await database.pool.connect();
    try {
      await holder.query('begin');
      await holder.query(`select id from baton.jobs where id = $1 for update`, [last]);
      // The batch locks and updates jobs in id order, reaches the held one last and times out there.
      await client.query('begin');
      await client.query(`set local statement_timeout = 300`);
      await expect(baton.deadLetters.retry({ jobIds: dead, actor: 'carol', client })).rejects.toThrow(
        /statement timeout/,
      );
      await client.query('rollback');
      await holder.query('rollback');
    } finally {
      holder.release();
      client.release();
    }
    expect(await snapshot()).toEqual(before);
    // The same batch goes through once nothing holds its jobs.
    const result = await baton.deadLetters.retry({ jobIds: dead, actor: 'carol' });
    expect(result.retried).toHaveLength(10);
  });

  test('refuses bad options with OPTIONS_INVALID naming the field', async () => {
    const refused = async (run: () => Promise<unknown>, field: RegExp) => {
      const error = await run().then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(error).toMatchObject({ name: 'BatonError', code: 'OPTIONS_INVALID' });
      expect((error as Error).message).toMatch(field);
    };
    const { deadLetters } = baton;
    await refused(() => deadLetters.list({ reason: 'tired' as never }), /filters\.reason/);
    await refused(() => deadLetters.list({ colour: 'red' } as never), /filters/);
    await refused(() => deadLetters.preview({}, { limit: 501 }), /limit/);
    await refused(() => deadLetters.list({}, { cursor: 'forged' }), /cursor/);
    await refused(() => deadLetters.retry({ filters: {}, limit: 501 }), /limit/);
    await refused(() => deadLetters.retry({ jobIds: ['nope'] }), /jobIds\.0/);
    await refused(() => deadLetters.retry({ filters: {}, actor: '' }), /actor/);
    await refused(() => deadLetters.retry({}), /filters or jobIds/);
  });
});
