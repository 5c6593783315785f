/**
 * The jobs routes over real HTTP: enqueue one and many (refused whole, with nothing written, on an
 * invalid payload or unknown kind), get a job with its attempts, list with filters and cursor
 * paging (every job once, in order), retry and cancel audited with the token's actor, and the
 * 404/409 cases.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { HttpServer } from '../src/http/server.js';
import { type BatonClient, defineKind, JobError } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, serveApi, VIEWER_TOKEN } from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

const mail = defineKind({ kind: 'mail.send', payload: z.object({ to: z.email() }) });
const report = defineKind({
  kind: 'report.build',
  payload: z.object({ name: z.string() }),
  maxAttempts: 2,
  handler: async (payload: { name: string }) => {
    throw new JobError('ENTITY_NOT_FOUND', `report ${payload.name} does not exist`);
  },
});

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;

beforeAll(async () => {
  database = await createTestDatabase('http_jobs');
  baton = connectBaton(database, { kinds: [mail, report] });
  ({ server, call } = await serveApi(baton));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

const jobCount = async () =>
  (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n as number;

describe('POST /api/jobs', () => {
  test('enqueues one job with every option and answers 201 with its id', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const response = await call('POST', '/api/jobs', {
      json: {
        kind: 'mail.send',
        payload: { to: 'a@example.com' },
        runAt,
        priority: 7,
        maxAttempts: 3,
        idempotencyKey: 'welcome-a',
        traceId: 'trace-one',
        group: 'tenant-1',
      },
    });
    expect(response.status).toBe(201);
    expect(response.body.job).toEqual({ id: expect.any(String), created: true });
    const [row] = await database.rows(`select * from baton.jobs where id = $1`, [response.body.job.id]);
    expect(row).toMatchObject({
      kind: 'mail.send',
      payload: { to: 'a@example.com' },
      priority: 7,
      max_attempts: 3,
      idempotency_key: 'welcome-a',
      trace_id: 'trace-one',
      group_key: 'tenant-1',
      state: 'pending',
    });
    expect((row.run_at as Date).toISOString()).toBe(runAt);

    const again = await call('POST', '/api/jobs', {
      json: { kind: 'mail.send', payload: { to: 'a@example.com' }, idempotencyKey: 'welcome-a' },
    });
    expect(again.body.job).toEqual({ id: response.body.job.id, created: false });
  });

  test('enqueues many jobs of one kind, in order, with per-job options', async () => {
    const response = await call('POST', '/api/jobs', {
      json: {
        kind: 'mail.send',
        jobs: [
          { payload: { to: 'm1@example.com' }, group: 'many' },
          { payload: { to: 'm2@example.com' }, delayMs: 60_000, group: 'many' },
          { payload: { to: 'm3@example.com' }, priority: -1, group: 'many' },
        ],
      },
    });
    expect(response.status).toBe(201);
    expect(response.body.jobs).toHaveLength(3);
    const ids = response.body.jobs.map((job: { id: string }) => job.id);
    const rows = await database.rows(`select id, payload, priority from baton.jobs where id = any($1)`, [
      ids,
    ]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(ids.map((id: string) => byId.get(id)?.payload.to)).toEqual([
      'm1@example.com',
      'm2@example.com',
      'm3@example.com',
    ]);
    expect(byId.get(ids[2])!.priority).toBe(-1);
  });

  test('an invalid payload, bad option, unknown kind or bad JSON gets 400 with a code, and nothing is written', async () => {
    const before = await jobCount();
    const cases: [unknown, string, RegExp][] = [
      [{ kind: 'mail.send', payload: { to: 'not an email' } }, 'PAYLOAD_INVALID', /payload to/],
      [{ kind: 'mail.send' }, 'PAYLOAD_INVALID', /payload is missing/],
      [
        {
          kind: 'mail.send',
          jobs: [{ payload: { to: 'ok@example.com' } }, { payload: { to: 'bad' } }],
        },
        'PAYLOAD_INVALID',
        /item 1/,
      ],
      [{ kind: 'nope.unknown', payload: {} }, 'KIND_UNKNOWN', /nope\.unknown/],
      [{ kind: 'mail.send', payload: { to: 'a@example.com' }, priority: 1.5 }, 'OPTIONS_INVALID', /priority/],
      [{ kind: 'mail.send', payload: { to: 'a@example.com' }, runAt: 'tomorrow' }, 'BAD_REQUEST', /runAt/],
      [
        { kind: 'mail.send', payload: { to: 'a@example.com' }, delayMs: 5, runAt: new Date().toISOString() },
        'OPTIONS_INVALID',
        /not both/,
      ],
      [{ kind: 'mail.send', payload: { to: 'a@example.com' }, colour: 'red' }, 'BAD_REQUEST', /colour/],
      [{ kind: 'mail.send', jobs: [] }, 'BAD_REQUEST', /jobs/],
    ];
    for (const [json, code, message] of cases) {
      const response = await call('POST', '/api/jobs', { json });
      expect({ json, status: response.status, code: response.body.error?.code }).toEqual({
        json,
        status: 400,
        code,
      });
      expect(response.body.error.message).toMatch(message);
    }
    const badJson = await call('POST', '/api/jobs', { rawBody: '{"kind": "mail.send", ' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('BAD_REQUEST');
    expect(await jobCount()).toBe(before);
  });

  test('each API enqueue writes one job.enqueue audit entry naming the actor; invalid ones and library enqueues write none', async () => {
    const enqueueEntries = () =>
      database.rows(`select * from baton.audit_log where action = 'job.enqueue' order by id`);
    const before = (await enqueueEntries()).length;
    const one = await call('POST', '/api/jobs', {
      json: { kind: 'mail.send', payload: { to: 'audit@example.com' }, group: 'g-audit', traceId: 't-audit' },
    });
    expect(one.status).toBe(201);
    const many = await call('POST', '/api/jobs', {
      json: {
        kind: 'mail.send',
        jobs: [{ payload: { to: 'a1@example.com' } }, { payload: { to: 'a2@example.com' } }],
      },
    });
    expect(many.status).toBe(201);
    expect(
      (await call('POST', '/api/jobs', { json: { kind: 'mail.send', payload: { to: 'bad' } } })).status,
    ).toBe(400);
    await baton.enqueue(mail, { to: 'library@example.com' });
    const entries = (await enqueueEntries()).slice(before);
    expect(entries.map((entry) => [entry.actor, entry.kind, entry.details.count])).toEqual([
      ['alice', 'mail.send', 1],
      ['alice', 'mail.send', 2],
    ]);
    expect(entries[0]).toMatchObject({ job_id: one.body.job.id, group_key: 'g-audit', trace_id: 't-audit' });
    expect(entries[1].details.jobIds).toEqual(many.body.jobs.map((job: { id: string }) => job.id));
  });
});

describe('GET /api/jobs/:id, retry and cancel', () => {
  test('a failed job is shown with its attempts and error; an operator retries it and the audit log names the actor', async () => {
    const { id } = await baton.enqueue(report, { name: 'q3' }, { traceId: 'trace-report' });
    const worker = baton.createWorker({ kinds: [report], shutdownSignals: [], logLevel: 'silent' });
    await worker.start();
    try {
      await pollUntil('the report job to fail', async () => (await baton.getJob(id))?.state === 'failed');
    } finally {
      await worker.stop();
    }

    const shown = await call('GET', `/api/jobs/${id}`, { token: VIEWER_TOKEN });
    expect(shown.status).toBe(200);
    expect(shown.body.job).toMatchObject({
      id,
      kind: 'report.build',
      state: 'failed',
      errorCode: 'ENTITY_NOT_FOUND',
      traceId: 'trace-report',
      result: null,
      progress: null,
      deadLetter: { reason: 'non_retryable', errorCode: 'ENTITY_NOT_FOUND' },
    });
    expect(shown.body.job.attemptHistory).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'failed', errorCode: 'ENTITY_NOT_FOUND' }),
    ]);
    expect(shown.body.job).not.toHaveProperty('leaseToken');

    const retried = await call('POST', `/api/jobs/${id}/retry`);
    expect(retried).toMatchObject({
      status: 200,
      body: { job: { id, previousState: 'failed', state: 'pending' } },
    });
    expect((await baton.getJob(id))!.state).toBe('pending');
    const audit = await database.rows(`select action, actor from baton.audit_log where job_id = $1`, [id]);
    expect(audit).toEqual([{ action: 'job.retry', actor: 'alice' }]);

    // A pending job cannot be retried.
    const conflict = await call('POST', `/api/jobs/${id}/retry`);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('JOB_STATE_CONFLICT');
  });

  test('cancel is audited with the actor; cancelling twice is 409 and writes no second entry', async () => {
    const { id } = await baton.enqueue(mail, { to: 'cancel@example.com' });
    const cancelled = await call('POST', `/api/jobs/${id}/cancel`);
    expect(cancelled).toMatchObject({
      status: 200,
      body: { job: { id, previousState: 'pending', state: 'cancelled' } },
    });
    expect((await baton.getJob(id))!.state).toBe('cancelled');
    const again = await call('POST', `/api/jobs/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('JOB_STATE_CONFLICT');
    const audit = await database.rows(`select action, actor from baton.audit_log where job_id = $1`, [id]);
    expect(audit).toEqual([{ action: 'job.cancel', actor: 'alice' }]);
  });

  test('an unknown job id, or one that is not a uuid, is 404 JOB_NOT_FOUND on get, retry and cancel', async () => {
    for (const id of [randomUUID(), 'not-a-uuid']) {
      for (const [method, path] of [
        ['GET', `/api/jobs/${id}`],
        ['POST', `/api/jobs/${id}/retry`],
        ['POST', `/api/jobs/${id}/cancel`],
      ] as const) {
        const response = await call(method, path);
        expect({ path, status: response.status, code: response.body.error?.code }).toEqual({
          path,
          status: 404,
          code: 'JOB_NOT_FOUND',
        });
      }
    }
  });
});

describe('GET /api/jobs', () => {
  test('filters by kind, state, group, trace id, error code and created range', async () => {
    const first = await call('POST', '/api/jobs', {
      json: {
        kind: 'mail.send',
        jobs: [{ payload: { to: 'f1@example.com' }, group: 'filter-g', traceId: 'filter-t' }],
      },
    });
    const second = await call('POST', '/api/jobs', {
      json: { kind: 'mail.send', jobs: [{ payload: { to: 'f2@example.com' }, group: 'filter-g' }] },
    });
    const third = await call('POST', '/api/jobs', {
      json: { kind: 'report.build', payload: { name: 'f3' }, group: 'filter-g' },
    });
    const firstId = first.body.jobs[0].id;
    const secondId = second.body.jobs[0].id;
    const thirdId = third.body.job.id;
    await baton.cancel(secondId);
    await database.rows(`update baton.jobs set error_code = 'FILTER_CODE' where id = $1`, [thirdId]);

    const ids = async (query: string) => {
      const response = await call('GET', `/api/jobs?${query}`, { token: VIEWER_TOKEN });
      expect(response.status).toBe(200);
      return response.body.jobs.map((job: { id: string }) => job.id);
    };
    expect(await ids('group=filter-g')).toEqual([thirdId, secondId, firstId]);
    expect(await ids('group=filter-g&kind=mail.send')).toEqual([secondId, firstId]);
    expect(await ids('group=filter-g&state=cancelled')).toEqual([secondId]);
    expect(await ids('traceId=filter-t')).toEqual([firstId]);
    expect(await ids('errorCode=FILTER_CODE')).toEqual([thirdId]);

    const created = async (id: string) => (await baton.getJob(id))!.createdAt.toISOString();
    const from = encodeURIComponent(await created(secondId));
    const before = encodeURIComponent(await created(thirdId));
    expect(await ids(`group=filter-g&createdFrom=${from}`)).toEqual([thirdId, secondId]);
    expect(await ids(`group=filter-g&createdFrom=${from}&createdBefore=${before}`)).toEqual([secondId]);

    for (const query of [
      'state=sleeping',
      'limit=0',
      'limit=501',
      'createdFrom=yesterday',
      'cursor=abc',
      'colour=red',
    ]) {
      const response = await call('GET', `/api/jobs?${query}`);
      expect({ query, status: response.status }).toEqual({ query, status: 400 });
      expect(response.body.error.code).toMatch(/BAD_REQUEST|OPTIONS_INVALID/);
    }
  });

  test('cursor paging returns every job once, newest first, even when many share a creation time', async () => {
    // Jobs of one request share created_at (the transaction's time), so the keyset's id breaks ties.
    const group = `paging-${randomUUID().slice(0, 8)}`;
    const expected: string[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const response = await call('POST', '/api/jobs', {
        json: {
          kind: 'mail.send',
          jobs: Array.from({ length: 10 }, (_, index) => ({
            payload: { to: `p${batch}-${index}@example.com` },
            group,
          })),
        },
      });
      expect(response.status).toBe(201);
      expected.push(...response.body.jobs.map((job: { id: string }) => job.id));
    }
    const seen: { id: string; createdAt: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `group=${group}&limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const response = await call('GET', `/api/jobs?${query}`, { token: VIEWER_TOKEN });
      expect(response.status).toBe(200);
      expect(response.body.jobs.length).toBeLessThanOrEqual(7);
      seen.push(...response.body.jobs);
      cursor = response.body.nextCursor;
      pages++;
      expect(pages).toBeLessThan(10);
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen.map((job) => job.id).sort()).toEqual([...expected].sort());
    expect(new Set(seen.map((job) => job.id)).size).toBe(30);
    // Newest first: batches in reverse order, and within a batch by id descending.
    const order = await database.rows(
      `select id from baton.jobs where group_key = $1 order by created_at desc, id desc`,
      [group],
    );
    expect(seen.map((job) => job.id)).toEqual(order.map((row) => row.id));
    expect(new Set(seen.map((job) => job.createdAt)).size).toBe(3);
  });
});
