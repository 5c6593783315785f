/**
 * Workers in other languages over real HTTP and real PostgreSQL: claim (kinds, batch size, run_at,
 * priority, fleet-wide limits, no job handed out twice), heartbeat (renews the lease on database
 * time, records progress), report (completion; failure retried with the kind's or the default
 * backoff, dead-lettered when attempts are spent or the code is terminal), fencing (a stale token
 * or a cancelled job gets 409 and nothing changes), roles and bad bodies, and the recovery sweep
 * that `serve` runs on its own when no library worker does.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createHttpLogger } from '../src/http/logger.js';
import { type HttpServer, startHttpServer } from '../src/http/server.js';
import { resolveHttpSettings } from '../src/http/settings.js';
import { type BatonClient, defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import {
  type ApiCall,
  captureLogs,
  OPERATOR_TOKEN,
  serveApi,
  TEST_TOKENS,
  VIEWER_TOKEN,
  WORKER_TOKEN,
} from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

const payload = z.object({ n: z.number() });
const kindNamed = (kind: string, options: Partial<Parameters<typeof defineKind>[0]> = {}) =>
  defineKind({ kind, payload, ...options });

const basic = kindNamed('ext.basic');
const ordered = kindNamed('ext.ordered');
const other = kindNamed('ext.other');
const race = kindNamed('ext.race');
const limited = kindNamed('ext.limited', { concurrency: 2 });
const beating = kindNamed('ext.beating');
const completing = kindNamed('ext.completing');
const retried = kindNamed('ext.retried', { maxAttempts: 2, backoff: { baseMs: 400, maxMs: 400 } });
const terminal = kindNamed('ext.terminal', { maxAttempts: 5 });
const stale = kindNamed('ext.stale');
const cancelled = kindNamed('ext.cancelled');
const guarded = kindNamed('ext.guarded');
/** Not given to the server: its failures get the default backoff (2 s base). */
const unknownToServer = kindNamed('ext.unknown-to-server', { maxAttempts: 3 });

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;
const logs = captureLogs();

beforeAll(async () => {
  database = await createTestDatabase('http_external_workers');
  baton = connectBaton(database, {
    kinds: [
      basic,
      ordered,
      other,
      race,
      limited,
      beating,
      completing,
      retried,
      terminal,
      stale,
      cancelled,
      guarded,
    ],
  });
  ({ server, call } = await serveApi(baton, {}, { logger: logs.logger }));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

const claim = (json: unknown, token: string | null = WORKER_TOKEN) =>
  call('POST', '/api/jobs/claim', { json, token });
const heartbeat = (id: string, json: unknown, token: string | null = WORKER_TOKEN) =>
  call('POST', `/api/jobs/${id}/heartbeat`, { json, token });
const report = (id: string, json: unknown, token: string | null = WORKER_TOKEN) =>
  call('POST', `/api/jobs/${id}/report`, { json, token });

/** Everything a write could change about a job: its row, its attempt records, its dead letter. */
async function snapshot(id: string) {
  const [job] = await database.rows(`select * from baton.jobs where id = $1`, [id]);
  const attempts = await database.rows(`select * from baton.job_attempts where job_id = $1 order by id`, [
    id,
  ]);
  const deadLetters = await database.rows(`select * from baton.dead_letters where job_id = $1`, [id]);
  return { job, attempts, deadLetters };
}

/** Database-time milliseconds between two timestamp columns of a job. */
async function msBetween(id: string, later: string, earlier: string): Promise<number> {
  const [row] = await database.rows(
    `select extract(epoch from ${later} - ${earlier}) * 1000 as ms from baton.jobs where id = $1`,
    [id],
  );
  return Number(row.ms);
}

describe('POST /api/jobs/claim', () => {
  test('returns each job with its payload and a lease, recorded on the row under the caller as worker', async () => {
    const { id } = await baton.enqueue(basic, { n: 1 }, { traceId: 'trace-1', group: 'g-1', priority: 3 });
    const response = await claim({ kinds: ['ext.basic'], workerId: 'py-1', leaseMs: 30_000 });
    expect(response.status).toBe(200);
    expect(response.body.jobs).toHaveLength(1);
    const [job] = response.body.jobs;
    expect(job).toEqual({
      id,
      kind: 'ext.basic',
      payload: { n: 1 },
      attempt: 1,
      maxAttempts: 5,
      leaseToken: expect.any(String),
      leaseExpiresAt: expect.any(String),
      traceId: 'trace-1',
      group: 'g-1',
      priority: 3,
      createdAt: expect.any(String),
    });
    const [row] = await database.rows(`select * from baton.jobs where id = $1`, [id]);
    expect(row).toMatchObject({
      state: 'running',
      attempts: 1,
      lease_token: job.leaseToken,
      worker_id: 'http:robot:py-1',
    });
    expect((row.lease_expires_at as Date).toISOString()).toBe(job.leaseExpiresAt);
    expect(await msBetween(id, 'lease_expires_at', 'last_attempt_at')).toBe(30_000);

    // Claimed once: nothing more is due.
    expect((await claim({ kinds: ['ext.basic'] })).body.jobs).toEqual([]);

    // An operator may claim too; without a workerId the job records the actor alone.
    const second = await baton.enqueue(basic, { n: 2 });
    const byOperator = await claim({ kinds: ['ext.basic'] }, OPERATOR_TOKEN);
    expect(byOperator.body.jobs.map((j: { id: string }) => j.id)).toEqual([second.id]);
    expect((await snapshot(second.id)).job.worker_id).toBe('http:alice');
  });

  test('takes only the kinds asked for, at most batchSize, due ones only, in priority then run_at order', async () => {
    const past = (ms: number) => new Date(Date.now() - ms);
    const lowOldest = await baton.enqueue(ordered, { n: 1 }, { runAt: past(3000) });
    const lowMiddle = await baton.enqueue(ordered, { n: 2 }, { runAt: past(2000) });
    const lowNewest = await baton.enqueue(ordered, { n: 3 }, { runAt: past(1000) });
    const high = await baton.enqueue(ordered, { n: 4 }, { priority: 5 });
    const future = await baton.enqueue(ordered, { n: 5 }, { priority: 10, delayMs: 3_600_000 });
    const elsewhere = await baton.enqueue(other, { n: 6 }, { priority: 100 });

    const ids = (response: { body: { jobs: { id: string }[] } }) => response.body.jobs.map((job) => job.id);
    expect(ids(await claim({ kinds: ['ext.ordered'] }))).toEqual([high.id]); // default batchSize 1
    expect(ids(await claim({ kinds: ['ext.ordered'], batchSize: 2 }))).toEqual([lowOldest.id, lowMiddle.id]);
    expect(ids(await claim({ kinds: ['ext.ordered'], batchSize: 100 }))).toEqual([lowNewest.id]);

    expect((await snapshot(future.id)).job.state).toBe('pending');
    expect((await snapshot(elsewhere.id)).job.state).toBe('pending');
  });

  test('concurrent claims never return the same job', async () => {
    const jobs = await baton.enqueueMany(
      race,
      Array.from({ length: 60 }, (_, n) => ({ payload: { n } })),
    );
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        claim(
          { kinds: ['ext.race'], batchSize: 20, workerId: `racer-${index}` },
          index % 2 ? OPERATOR_TOKEN : WORKER_TOKEN,
        ),
      ),
    );
    const claimed = responses.flatMap((response) => {
      expect(response.status).toBe(200);
      return response.body.jobs as { id: string; leaseToken: string }[];
    });
    expect(new Set(claimed.map((job) => job.id)).size).toBe(claimed.length);
    // Each job's row holds the lease of the one caller it was handed to.
    const rows = await database.rows(
      `select id, lease_token from baton.jobs where kind = 'ext.race' and state = 'running'`,
    );
    expect(new Map(rows.map((row) => [row.id, row.lease_token]))).toEqual(
      new Map(claimed.map((job) => [job.id, job.leaseToken])),
    );
    // The rest is still there for the next claims: every job is handed out exactly once.
    for (;;) {
      const more = (await claim({ kinds: ['ext.race'], batchSize: 100 })).body.jobs as { id: string }[];
      if (more.length === 0) break;
      claimed.push(...(more as { id: string; leaseToken: string }[]));
    }
    expect(claimed.map((job) => job.id).sort()).toEqual(jobs.map((job) => job.id).sort());
  });

  test('respects the fleet-wide concurrency of a kind across claims', async () => {
    await baton.enqueueMany(
      limited,
      Array.from({ length: 5 }, (_, n) => ({ payload: { n } })),
    );
    const first = await claim({ kinds: ['ext.limited'], batchSize: 5 });
    expect(first.body.jobs).toHaveLength(2);
    expect((await claim({ kinds: ['ext.limited'], batchSize: 5 })).body.jobs).toHaveLength(0);
    const [kindRow] = await database.rows(`select concurrency from baton.kinds where kind = 'ext.limited'`);
    expect(kindRow.concurrency).toBe(2);

    const [done] = first.body.jobs;
    expect((await report(done.id, { leaseToken: done.leaseToken, outcome: 'completed' })).status).toBe(200);
    expect((await claim({ kinds: ['ext.limited'], batchSize: 5 })).body.jobs).toHaveLength(1);
    const [running] = await database.rows(
      `select count(*)::int as n from baton.jobs where kind = 'ext.limited' and state = 'running'`,
    );
    expect(running.n).toBe(2);
  });
});

describe('POST /api/jobs/:id/heartbeat', () => {
  test('extends the lease on database time and records progress', async () => {
    const { id } = await baton.enqueue(beating, { n: 1 });
    const [job] = (await claim({ kinds: ['ext.beating'], leaseMs: 5000 })).body.jobs;
    const before = (await snapshot(id)).job.lease_expires_at as Date;

    const response = await heartbeat(id, {
      leaseToken: job.leaseToken,
      leaseMs: 120_000,
      progress: { page: 3 },
    });
    expect(response.status).toBe(200);
    const after = await snapshot(id);
    expect(response.body.job).toEqual({
      id,
      leaseExpiresAt: (after.job.lease_expires_at as Date).toISOString(),
    });
    expect((after.job.lease_expires_at as Date).getTime()).toBeGreaterThan(before.getTime() + 100_000);
    const [left] = await database.rows(
      `select extract(epoch from lease_expires_at - now()) * 1000 as ms from baton.jobs where id = $1`,
      [id],
    );
    expect(Number(left.ms)).toBeGreaterThan(110_000);
    expect(Number(left.ms)).toBeLessThanOrEqual(120_000);
    expect(after.job.progress).toEqual({ page: 3 });
    expect(after.job.lease_token).toBe(job.leaseToken);

    // Without progress the recorded progress stays.
    expect((await heartbeat(id, { leaseToken: job.leaseToken })).status).toBe(200);
    expect((await snapshot(id)).job.progress).toEqual({ page: 3 });
  });

  test('a lease that expired on database time is not renewed: 409 LEASE_LOST', async () => {
    const { id } = await baton.enqueue(beating, { n: 2 });
    const [job] = (await claim({ kinds: ['ext.beating'], leaseMs: 1000 })).body.jobs;
    await pollUntil('the lease to expire', async () => {
      const [row] = await database.rows(
        `select lease_expires_at is null or lease_expires_at < now() as expired from baton.jobs where id = $1`,
        [id],
      );
      return row.expired;
    });
    const response = await heartbeat(id, { leaseToken: job.leaseToken, leaseMs: 60_000 });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('LEASE_LOST');
    const [row] = await database.rows(
      `select lease_expires_at is null or lease_expires_at < now() as expired from baton.jobs where id = $1`,
      [id],
    );
    expect(row.expired).toBe(true);
  });
});

describe('POST /api/jobs/:id/report', () => {
  test('completed: writes the result and the state, and ends the lease', async () => {
    const { id } = await baton.enqueue(completing, { n: 1 });
    const [job] = (await claim({ kinds: ['ext.completing'] })).body.jobs;
    const response = await report(id, {
      leaseToken: job.leaseToken,
      outcome: 'completed',
      result: { pages: 12 },
    });
    expect(response.status).toBe(200);
    expect(response.body.job).toEqual({ id, state: 'completed', retryAt: null, deadLetterReason: null });
    const after = await snapshot(id);
    expect(after.job).toMatchObject({
      state: 'completed',
      result: { pages: 12 },
      lease_token: null,
      lease_expires_at: null,
    });
    expect(after.job.finished_at).toBeInstanceOf(Date);
    expect(after.attempts).toEqual([]);

    // A second report with the same token changes nothing.
    const again = await report(id, {
      leaseToken: job.leaseToken,
      outcome: 'completed',
      result: { pages: 0 },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('LEASE_LOST');
    expect(await snapshot(id)).toEqual(after);
  });

  test('failed: retried after the kind’s backoff, then dead-lettered when its attempts are spent', async () => {
    const { id } = await baton.enqueue(retried, { n: 1 });
    const [first] = (await claim({ kinds: ['ext.retried'], workerId: 'py' })).body.jobs;
    const response = await report(id, {
      leaseToken: first.leaseToken,
      outcome: 'failed',
      error: { message: 'upstream timed out', stack: 'at render (render.py:12)' },
    });
    expect(response.status).toBe(200);
    let after = await snapshot(id);
    expect(response.body.job).toEqual({
      id,
      state: 'pending',
      retryAt: (after.job.run_at as Date).toISOString(),
      deadLetterReason: null,
    });
    expect(after.job).toMatchObject({
      state: 'pending',
      attempts: 1,
      error_code: 'EXECUTION_FAILED',
      error_message: 'upstream timed out',
      lease_token: null,
    });
    // backoff { baseMs: 400 } with equal jitter: between 200 and 400 ms after the failure.
    const delayMs = await msBetween(id, 'run_at', 'updated_at');
    expect(delayMs).toBeGreaterThanOrEqual(200);
    expect(delayMs).toBeLessThanOrEqual(400);
    expect(after.attempts).toHaveLength(1);
    expect(after.attempts[0]).toMatchObject({
      attempt: 1,
      outcome: 'failed',
      worker_id: 'http:robot:py',
      lease_token: first.leaseToken,
      error_code: 'EXECUTION_FAILED',
      error_message: 'upstream timed out',
      error_stack: 'at render (render.py:12)',
    });
    expect(after.deadLetters).toEqual([]);

    const second = await pollUntil('the retry to be due and claimed', async () => {
      const [job] = (await claim({ kinds: ['ext.retried'] })).body.jobs;
      return job;
    });
    expect(second).toMatchObject({ id, attempt: 2, maxAttempts: 2 });
    const last = await report(id, {
      leaseToken: second.leaseToken,
      outcome: 'failed',
      error: { code: 'EXECUTION_FAILED', message: 'still down' },
    });
    expect(last.body.job).toEqual({
      id,
      state: 'failed',
      retryAt: null,
      deadLetterReason: 'max_attempts_exceeded',
    });
    after = await snapshot(id);
    expect(after.job).toMatchObject({ state: 'failed', attempts: 2, error_message: 'still down' });
    expect(after.attempts.map((attempt) => attempt.attempt)).toEqual([1, 2]);
    expect(after.deadLetters).toHaveLength(1);
    expect(after.deadLetters[0]).toMatchObject({
      reason: 'max_attempts_exceeded',
      error_code: 'EXECUTION_FAILED',
      attempts: 2,
    });
  });

  test('failed, for a kind the server does not define: the default backoff (2 s base)', async () => {
    const { id } = await baton.enqueue(unknownToServer, { n: 1 });
    const [job] = (await claim({ kinds: ['ext.unknown-to-server'] })).body.jobs;
    const response = await report(id, {
      leaseToken: job.leaseToken,
      outcome: 'failed',
      error: { message: 'no' },
    });
    expect(response.body.job.state).toBe('pending');
    const delayMs = await msBetween(id, 'run_at', 'updated_at');
    expect(delayMs).toBeGreaterThanOrEqual(1000);
    expect(delayMs).toBeLessThanOrEqual(2000);
  });

  test('failed with a terminal code: dead-lettered at once (non_retryable)', async () => {
    const { id } = await baton.enqueue(terminal, { n: 1 });
    const [job] = (await claim({ kinds: ['ext.terminal'] })).body.jobs;
    const response = await report(id, {
      leaseToken: job.leaseToken,
      outcome: 'failed',
      error: { code: 'ENTITY_NOT_FOUND', message: 'book 7 does not exist' },
    });
    expect(response.body.job).toEqual({
      id,
      state: 'failed',
      retryAt: null,
      deadLetterReason: 'non_retryable',
    });
    const after = await snapshot(id);
    expect(after.job).toMatchObject({ state: 'failed', attempts: 1, error_code: 'ENTITY_NOT_FOUND' });
    expect(after.attempts).toHaveLength(1);
    expect(after.deadLetters[0]).toMatchObject({ reason: 'non_retryable', error_code: 'ENTITY_NOT_FOUND' });
  });
});

describe('fencing', () => {
  test('a token whose lease expired and was reclaimed by another claim gets 409 and changes nothing', async () => {
    const { id } = await baton.enqueue(stale, { n: 1 });
    const [lost] = (await claim({ kinds: ['ext.stale'], workerId: 'slow', leaseMs: 1000 })).body.jobs;
    await pollUntil('the expired lease to be recovered', async () => {
      await baton.leases.recoverExpired();
      return (await snapshot(id)).job.state === 'pending';
    });
    const [holder] = (await claim({ kinds: ['ext.stale'], workerId: 'fast' })).body.jobs;
    expect(holder).toMatchObject({ id, attempt: 2 });
    expect(holder.leaseToken).not.toBe(lost.leaseToken);

    const before = await snapshot(id);
    expect(before.attempts.map((attempt) => attempt.outcome)).toEqual(['lease_expired']);
    const writes = [
      await heartbeat(id, { leaseToken: lost.leaseToken, leaseMs: 60_000, progress: { late: true } }),
      await report(id, { leaseToken: lost.leaseToken, outcome: 'completed', result: { late: true } }),
      await report(id, {
        leaseToken: lost.leaseToken,
        outcome: 'failed',
        error: { code: 'PAYLOAD_INVALID', message: 'late' },
      }),
    ];
    for (const response of writes) {
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('LEASE_LOST');
    }
    expect(await snapshot(id)).toEqual(before);
    // Each refused write is logged as the library worker logs it.
    const refusals = logs.lines.filter((line) => line.event === 'job.lease_lost' && line.jobId === id);
    expect(refusals.map((line) => line.via)).toEqual(['heartbeat', 'report', 'report']);

    // The holder's lease is untouched and works.
    expect((await heartbeat(id, { leaseToken: holder.leaseToken })).status).toBe(200);
    expect((await report(id, { leaseToken: holder.leaseToken, outcome: 'completed' })).status).toBe(200);
    expect((await snapshot(id)).job.state).toBe('completed');
  });

  test('a cancelled job: heartbeat and report get 409 JOB_CANCELLED and change nothing', async () => {
    const { id } = await baton.enqueue(cancelled, { n: 1 });
    const [job] = (await claim({ kinds: ['ext.cancelled'] })).body.jobs;
    expect((await call('POST', `/api/jobs/${id}/cancel`)).status).toBe(200);
    const before = await snapshot(id);
    const writes = [
      await heartbeat(id, { leaseToken: job.leaseToken, progress: { page: 1 } }),
      await report(id, { leaseToken: job.leaseToken, outcome: 'completed', result: 1 }),
      await report(id, { leaseToken: job.leaseToken, outcome: 'failed', error: { message: 'x' } }),
    ];
    for (const response of writes) {
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('JOB_CANCELLED');
    }
    expect(await snapshot(id)).toEqual(before);
    expect(before.job.state).toBe('cancelled');
    expect(before.attempts).toEqual([]);
    expect(before.deadLetters).toEqual([]);
  });

  test('a job that does not exist: 404 JOB_NOT_FOUND', async () => {
    const token = '00000000-0000-4000-8000-000000000000';
    for (const id of ['5f0c1f5e-2d7e-4a51-9d0b-6a3b8e1c2d3f', 'not-a-job']) {
      const beat = await heartbeat(id, { leaseToken: token });
      expect(beat.status).toBe(404);
      expect(beat.body.error.code).toBe('JOB_NOT_FOUND');
      const done = await report(id, { leaseToken: token, outcome: 'completed' });
      expect(done.status).toBe(404);
    }
  });
});

describe('roles and bad input', () => {
  test('a viewer gets 403 and no token 401, and nothing is claimed or written', async () => {
    const { id } = await baton.enqueue(guarded, { n: 1 });
    for (const token of [VIEWER_TOKEN, null]) {
      const status = token ? 403 : 401;
      expect((await claim({ kinds: ['ext.guarded'] }, token)).status).toBe(status);
    }
    expect((await snapshot(id)).job.state).toBe('pending');

    const [job] = (await claim({ kinds: ['ext.guarded'] })).body.jobs;
    const before = await snapshot(id);
    for (const token of [VIEWER_TOKEN, null]) {
      const status = token ? 403 : 401;
      const beat = await heartbeat(id, { leaseToken: job.leaseToken, progress: 1 }, token);
      expect(beat.status).toBe(status);
      expect(beat.body.error.code).toBe(token ? 'FORBIDDEN' : 'UNAUTHORIZED');
      expect((await report(id, { leaseToken: job.leaseToken, outcome: 'completed' }, token)).status).toBe(
        status,
      );
    }
    expect(await snapshot(id)).toEqual(before);
  });

  test('bad bodies get 400 BAD_REQUEST and change nothing', async () => {
    const { id } = await baton.enqueue(guarded, { n: 2 });
    const badClaims: unknown[] = [
      {},
      { kinds: [] },
      { kinds: Array.from({ length: 51 }, (_, n) => `k${n}`) },
      { kinds: ['ext guarded'] },
      { kinds: ['ext.guarded'], batchSize: 0 },
      { kinds: ['ext.guarded'], batchSize: 101 },
      { kinds: ['ext.guarded'], batchSize: 1.5 },
      { kinds: ['ext.guarded'], leaseMs: 999 },
      { kinds: ['ext.guarded'], leaseMs: 3_600_001 },
      { kinds: ['ext.guarded'], workerId: 'w'.repeat(129) },
      { kinds: ['ext.guarded'], workerId: '' },
      { kinds: ['ext.guarded'], queue: 'default' },
      [],
    ];
    for (const json of badClaims) {
      const response = await claim(json);
      expect(response.status, JSON.stringify(json)).toBe(400);
      expect(response.body.error.code).toBe('BAD_REQUEST');
    }
    const notJson = await call('POST', '/api/jobs/claim', { rawBody: '{kinds:', token: WORKER_TOKEN });
    expect(notJson.status).toBe(400);
    expect((await snapshot(id)).job.state).toBe('pending');

    const [job] = (await claim({ kinds: ['ext.guarded'] })).body.jobs;
    expect(job.id).toBe(id);
    const before = await snapshot(id);
    const badHeartbeats: unknown[] = [
      {},
      { leaseToken: 'not-a-token' },
      { leaseToken: job.leaseToken, leaseMs: 500 },
      { leaseToken: job.leaseToken, extra: true },
    ];
    for (const json of badHeartbeats) {
      const response = await heartbeat(id, json);
      expect(response.status, JSON.stringify(json)).toBe(400);
      expect(response.body.error.code).toBe('BAD_REQUEST');
    }
    const badReports: unknown[] = [
      { leaseToken: job.leaseToken },
      { leaseToken: job.leaseToken, outcome: 'maybe' },
      { leaseToken: job.leaseToken, outcome: 'failed' },
      { leaseToken: job.leaseToken, outcome: 'failed', error: { message: '' } },
      { leaseToken: job.leaseToken, outcome: 'failed', error: { code: 'OOPS', message: 'x' } },
      { leaseToken: job.leaseToken, outcome: 'completed', error: { message: 'x' } },
      { outcome: 'completed' },
    ];
    for (const json of badReports) {
      const response = await report(id, json);
      expect(response.status, JSON.stringify(json)).toBe(400);
      expect(response.body.error.code).toBe('BAD_REQUEST');
    }
    expect(await snapshot(id)).toEqual(before);
  });

  test('the OpenAPI document lists the three routes for workers', async () => {
    const { body } = await call('GET', '/api/openapi.json');
    expect(body.paths['/api/jobs/claim'].post['x-baton-access']).toBe('worker');
    expect(body.paths['/api/jobs/{id}/heartbeat'].post.requestBody).toBeDefined();
    expect(body.paths['/api/jobs/{id}/report'].post.requestBody).toBeDefined();
  });
});

describe('the recovery sweep of `baton serve`', () => {
  test('takes back an expired HTTP lease with no library worker running', async () => {
    // A database of its own, so no other server or worker sweeps it.
    const own = await createTestDatabase('http_external_sweep');
    const sweeping = connectBaton(own, { kinds: [basic] });
    const served = await startHttpServer(
      sweeping,
      resolveHttpSettings({ port: 0, host: '127.0.0.1', tokens: TEST_TOKENS }, {}),
      { logger: createHttpLogger('silent'), recoveryIntervalMs: 100 },
    );
    try {
      const requeued = await sweeping.enqueue(basic, { n: 1 });
      const spent = await sweeping.enqueue(basic, { n: 2 }, { maxAttempts: 1 });
      const response = await fetch(`${served.url}/api/jobs/claim`, {
        method: 'POST',
        headers: { authorization: `Bearer ${WORKER_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kinds: ['ext.basic'], batchSize: 2, workerId: 'gone', leaseMs: 1000 }),
      });
      expect(((await response.json()) as { jobs: unknown[] }).jobs).toHaveLength(2);
      const [worker] = await own.rows(`select count(*)::int as n from baton.workers`);
      expect(worker.n).toBe(0);

      const rowsOf = async () =>
        own.rows(
          `select j.id, j.state, a.outcome, a.worker_id, d.reason
           from baton.jobs j left join baton.job_attempts a on a.job_id = j.id
           left join baton.dead_letters d on d.job_id = j.id order by j.created_at`,
        );
      const rows = await pollUntil('the sweep to take both jobs back', async () => {
        const current = await rowsOf();
        return current.every((row) => row.state !== 'running') && current;
      });
      expect(rows).toEqual([
        {
          id: requeued.id,
          state: 'pending',
          outcome: 'lease_expired',
          worker_id: 'http:robot:gone',
          reason: null,
        },
        {
          id: spent.id,
          state: 'failed',
          outcome: 'lease_expired',
          worker_id: 'http:robot:gone',
          reason: 'max_attempts_exceeded',
        },
      ]);
    } finally {
      await served.close();
      await sweeping.close();
      await own.drop();
    }
  });
});
