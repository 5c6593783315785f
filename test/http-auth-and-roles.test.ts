/**
 * Authentication and roles of the HTTP API: /api routes need a valid bearer token (401 otherwise),
 * a viewer reads but may not act (403, nothing changes), health routes need no token, malformed
 * BATON_API_TOKENS is refused at start naming the variable, and bodies over the limit get 413.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { HttpServer } from '../src/http/server.js';
import { resolveHttpSettings } from '../src/http/settings.js';
import { type BatonClient, defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, OPERATOR_TOKEN, serveApi, VIEWER_TOKEN } from './helpers/http.js';
import { runCli } from './helpers/processes.js';

const note = defineKind({ kind: 'note.write', payload: z.object({ text: z.string() }) });
const BODY_LIMIT = 2048;

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;

beforeAll(async () => {
  database = await createTestDatabase('http_auth');
  baton = connectBaton(database, { kinds: [note] });
  ({ server, call } = await serveApi(baton, { bodyLimitBytes: BODY_LIMIT }));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

const jobCount = async () =>
  (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n as number;

describe('tokens', () => {
  test('a missing, malformed or wrong token gets 401 UNAUTHORIZED on every /api route', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    const attempts: [string | null, Record<string, string>?][] = [
      [null],
      ['not-a-configured-token-at-all'],
      [`${OPERATOR_TOKEN}x`],
      [null, { authorization: `Basic ${Buffer.from(`alice:${OPERATOR_TOKEN}`).toString('base64')}` }],
      [null, { authorization: OPERATOR_TOKEN }],
    ];
    for (const [token, headers] of attempts) {
      for (const [method, path] of [
        ['GET', '/api/jobs'],
        ['GET', `/api/jobs/${id}`],
        ['POST', `/api/jobs/${id}/cancel`],
      ] as const) {
        const response = await call(method, path, { token, headers });
        expect({ method, path, token, status: response.status }).toEqual({
          method,
          path,
          token,
          status: 401,
        });
        expect(response.body.error.code).toBe('UNAUTHORIZED');
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    expect((await baton.getJob(id))!.state).toBe('pending');
  });

  test('a valid token, in either role, reads', async () => {
    for (const token of [OPERATOR_TOKEN, VIEWER_TOKEN]) {
      const response = await call('GET', '/api/jobs', { token });
      expect(response.status).toBe(200);
      expect(Array.isArray(response.body.jobs)).toBe(true);
    }
  });

  test('health routes need no token', async () => {
    expect((await call('GET', '/healthz', { token: null })).status).toBe(200);
    expect((await call('GET', '/readyz', { token: null })).status).toBe(200);
  });
});

describe('routes', () => {
  test('an unknown route is 404 NOT_FOUND in the error shape; under /api a token is checked first', async () => {
    const outside = await call('GET', '/nope', { token: null });
    expect(outside).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect((await call('GET', '/api/nope', { token: null })).status).toBe(401);
    expect(await call('GET', '/api/nope', { token: VIEWER_TOKEN })).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND' } },
    });
  });
});

describe('roles', () => {
  test('a viewer who enqueues, cancels or retries gets 403 FORBIDDEN and nothing changes', async () => {
    const pending = await baton.enqueue(note, { text: 'keep me pending' });
    const cancelled = await baton.enqueue(note, { text: 'keep me cancelled' });
    await baton.cancel(cancelled.id);
    const before = await jobCount();

    const enqueue = await call('POST', '/api/jobs', {
      token: VIEWER_TOKEN,
      json: { kind: 'note.write', payload: { text: 'from a viewer' } },
    });
    expect(enqueue.status).toBe(403);
    expect(enqueue.body.error).toMatchObject({ code: 'FORBIDDEN' });
    expect(enqueue.body.error.message).toContain('bob');

    expect((await call('POST', `/api/jobs/${pending.id}/cancel`, { token: VIEWER_TOKEN })).status).toBe(403);
    expect((await call('POST', `/api/jobs/${cancelled.id}/retry`, { token: VIEWER_TOKEN })).status).toBe(403);

    expect(await jobCount()).toBe(before);
    expect((await baton.getJob(pending.id))!.state).toBe('pending');
    expect((await baton.getJob(cancelled.id))!.state).toBe('cancelled');
    const audited = await database.rows(`select actor from baton.audit_log where actor = 'bob'`);
    expect(audited).toEqual([]);
  });

  test('an operator acts', async () => {
    const enqueue = await call('POST', '/api/jobs', {
      token: OPERATOR_TOKEN,
      json: { kind: 'note.write', payload: { text: 'from an operator' } },
    });
    expect(enqueue.status).toBe(201);
    expect((await call('POST', `/api/jobs/${enqueue.body.job.id}/cancel`)).status).toBe(200);
  });
});

describe('body limit', () => {
  test(`a body over BATON_HTTP_BODY_LIMIT_BYTES (${BODY_LIMIT}) gets 413 BODY_TOO_LARGE and writes nothing`, async () => {
    const before = await jobCount();
    const big = await call('POST', '/api/jobs', {
      json: { kind: 'note.write', payload: { text: 'x'.repeat(BODY_LIMIT) } },
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('BODY_TOO_LARGE');
    expect(await jobCount()).toBe(before);

    // Just under the limit is accepted, so the limit is the setting and not something smaller.
    const fits = await call('POST', '/api/jobs', {
      json: { kind: 'note.write', payload: { text: 'x'.repeat(BODY_LIMIT - 100) } },
    });
    expect(fits.status).toBe(201);
  });
});

describe('settings', () => {
  test('malformed BATON_API_TOKENS entries are refused with a message naming the variable and never the token', () => {
    const secret = 'a-secret-token-long-enough';
    const cases: [string, RegExp][] = [
      [`alice:operator`, /BATON_API_TOKENS: entry 1: expected actor:role:token/],
      [
        `alice:operator:${secret},bob:admin:${secret}2`,
        /BATON_API_TOKENS: entry 2 \(actor bob\): role "admin"/,
      ],
      [`alice:viewer:short`, /BATON_API_TOKENS: entry 1 \(actor alice\).*at least 16/],
      [`alice:viewer:${secret},,`, /BATON_API_TOKENS: entry 2/],
      [`alice:viewer:${secret},bob:operator:${secret}`, /BATON_API_TOKENS: entry 2.*twice/],
    ];
    for (const [value, message] of cases) {
      let error: Error | undefined;
      try {
        resolveHttpSettings({}, { BATON_API_TOKENS: value });
      } catch (caught) {
        error = caught as Error;
      }
      expect({ value, message: error?.message }).toEqual({ value, message: expect.stringMatching(message) });
      expect(error!.message).not.toContain(secret);
    }
    expect(
      resolveHttpSettings({}, { BATON_API_TOKENS: `alice:operator:${secret}, bob:viewer:${secret}2` }).tokens,
    ).toEqual([
      { actor: 'alice', role: 'operator', token: secret },
      { actor: 'bob', role: 'viewer', token: `${secret}2` },
    ]);
  });

  test('every setting is validated naming the variable; defaults are 127.0.0.1:8080, 1 MiB, audit kept 30 days', () => {
    expect(resolveHttpSettings({}, {})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      tokens: [],
      bodyLimitBytes: 1024 * 1024,
      auditTtlDays: 30,
      auditPruneIntervalMs: 3_600_000,
      auditPruneBatchSize: 1000,
    });
    expect(resolveHttpSettings({}, { BATON_AUDIT_TTL_DAYS: '0' }).auditTtlDays).toBe(0);
    expect(() => resolveHttpSettings({}, { BATON_AUDIT_TTL_DAYS: '-1' })).toThrow(
      /BATON_AUDIT_TTL_DAYS="-1"/,
    );
    expect(() => resolveHttpSettings({}, { BATON_AUDIT_PRUNE_INTERVAL_MS: 'hourly' })).toThrow(
      /BATON_AUDIT_PRUNE_INTERVAL_MS="hourly"/,
    );
    expect(() => resolveHttpSettings({}, { BATON_AUDIT_PRUNE_BATCH_SIZE: '0' })).toThrow(
      /BATON_AUDIT_PRUNE_BATCH_SIZE="0"/,
    );
    expect(() => resolveHttpSettings({ auditPruneBatchSize: 2.5 }, {})).toThrow(/auditPruneBatchSize=2.5/);
    expect(() => resolveHttpSettings({}, { BATON_HTTP_PORT: '70000' })).toThrow(/BATON_HTTP_PORT="70000"/);
    expect(() => resolveHttpSettings({}, { BATON_HTTP_BODY_LIMIT_BYTES: '1kb' })).toThrow(
      /BATON_HTTP_BODY_LIMIT_BYTES="1kb"/,
    );
  });

  test('`baton serve` with a bad BATON_API_TOKENS exits 1 naming the variable', {
    timeout: 60_000,
  }, async () => {
    const run = await runCli(['serve', '--jobs', 'test/fixtures/ledger-kinds.ts'], {
      DATABASE_URL: database.url,
      BATON_HTTP_PORT: '0',
      BATON_API_TOKENS: 'alice:root:0123456789abcdefghij',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /CONFIG_INVALID: invalid setting BATON_API_TOKENS: entry 1 \(actor alice\): role "root"/,
    );
  });
});
