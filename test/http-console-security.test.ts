/**
 * Security of the ops console over real HTTP: login opens an HttpOnly, SameSite=Strict session
 * cookie (a wrong token opens none), the cookie authenticates the API with the token's actor and
 * role, cookie requests that change state need the CSRF header and our own origin (bearer requests
 * do not), logout ends the session, console pages carry the CSP and other headers, and the static
 * file route serves nothing outside console/assets.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { CONSOLE_SECURITY_HEADERS } from '../src/http/console.js';
import type { HttpServer } from '../src/http/server.js';
import { SessionStore } from '../src/http/sessions.js';
import { type BatonClient, defineKind } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, OPERATOR_TOKEN, serveApi, VIEWER_TOKEN, WORKER_TOKEN } from './helpers/http.js';

const note = defineKind({ kind: 'note.write', payload: z.object({ text: z.string() }) });
const EVIL = 'https://evil.example';

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;

beforeAll(async () => {
  database = await createTestDatabase('http_console_security');
  baton = connectBaton(database, { kinds: [note] });
  ({ server, call } = await serveApi(baton));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

async function login(token: string, headers: Record<string, string> = {}) {
  return fetch(`${server.url}/ops/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
}

/** Logs in and returns the `baton_session=...` pair to send back as a Cookie header. */
async function sessionCookie(token: string): Promise<string> {
  const response = await login(token);
  expect(response.status).toBe(303);
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith('baton_session='));
  return cookie!.split(';')[0]!;
}

const stateOf = async (id: string) =>
  (await database.rows(`select state from baton.jobs where id = $1`, [id]))[0].state as string;

describe('login', () => {
  test('a good token sets an HttpOnly, SameSite=Strict session cookie and redirects to the queue page', async () => {
    const response = await login(OPERATOR_TOKEN);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/ops/queue');
    const cookies = response.headers.getSetCookie();
    expect(cookies).toHaveLength(1);
    const cookie = cookies[0]!;
    expect(cookie).toMatch(/^baton_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie).not.toContain(OPERATOR_TOKEN);
    // Behind a TLS-terminating proxy the cookie is Secure.
    const https = await login(OPERATOR_TOKEN, { 'x-forwarded-proto': 'https' });
    expect(https.headers.getSetCookie()[0]).toMatch(/; Secure/);
  });

  test('a wrong token gets the login page with an error, 401 and no cookie; the token is not echoed', async () => {
    const wrong = 'not-a-token-<b>-0123456789';
    const response = await login(wrong);
    expect(response.status).toBe(401);
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await response.text();
    expect(page).toContain('That token is not valid');
    expect(page).not.toContain(wrong);
    expect(page).not.toContain('<b>');
    const empty = await login('');
    expect(empty.status).toBe(401);
    expect(empty.headers.getSetCookie()).toEqual([]);
  });

  test('a worker token cannot open the console', async () => {
    const response = await login(WORKER_TOKEN);
    expect(response.status).toBe(403);
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  test('a login posted from another origin is refused', async () => {
    for (const headers of [{ origin: EVIL }, { 'sec-fetch-site': 'cross-site' }] as Record<
      string,
      string
    >[]) {
      const response = await login(OPERATOR_TOKEN, headers);
      expect(response.status).toBe(403);
      expect((await response.json()).error.code).toBe('CSRF_REJECTED');
      expect(response.headers.getSetCookie()).toEqual([]);
    }
    const same = await login(OPERATOR_TOKEN, { origin: server.url, 'sec-fetch-site': 'same-origin' });
    expect(same.status).toBe(303);
    // What a browser sends from our own page under Referrer-Policy: no-referrer.
    const nullOrigin = await login(OPERATOR_TOKEN, { origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect(nullOrigin.status).toBe(303);
    for (const headers of [{ origin: 'null' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }]) {
      expect((await login(OPERATOR_TOKEN, headers as Record<string, string>)).status).toBe(403);
    }
  });

  test('/ops/session names the actor and role of the session', async () => {
    const cookie = await sessionCookie(VIEWER_TOKEN);
    const response = await call('GET', '/ops/session', { token: null, headers: { cookie } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ actor: 'bob', role: 'viewer' });
    expect((await call('GET', '/ops/session', { token: null })).status).toBe(401);
  });
});

describe('the session cookie on the API', () => {
  test('authenticates GETs with the token’s role: a viewer session reads but cannot retry', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    await baton.cancel(id);
    const cookie = await sessionCookie(VIEWER_TOKEN);
    const list = await call('GET', '/api/jobs', { token: null, headers: { cookie } });
    expect(list.status).toBe(200);
    expect(list.body.jobs.map((job: { id: string }) => job.id)).toContain(id);
    const retry = await call('POST', `/api/jobs/${id}/retry`, {
      token: null,
      headers: { cookie, 'x-baton-csrf': '1', origin: server.url },
    });
    expect(retry.status).toBe(403);
    expect(retry.body.error.code).toBe('FORBIDDEN');
    expect(await stateOf(id)).toBe('cancelled');
  });

  test('a cookie POST without the CSRF header is refused and changes nothing', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    const cookie = await sessionCookie(OPERATOR_TOKEN);
    const cancel = await call('POST', `/api/jobs/${id}/cancel`, { token: null, headers: { cookie } });
    expect(cancel.status).toBe(403);
    expect(cancel.body.error.code).toBe('CSRF_REJECTED');
    expect(await stateOf(id)).toBe('pending');
    const before = (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n;
    const enqueue = await call('POST', '/api/jobs', {
      token: null,
      headers: { cookie, 'content-type': 'text/plain' },
      rawBody: JSON.stringify({ kind: 'note.write', payload: { text: 'forged' } }),
    });
    expect(enqueue.status).toBe(403);
    expect((await database.rows(`select count(*)::int as n from baton.jobs`))[0].n).toBe(before);
  });

  test('a cookie POST from another origin or site is refused even with the CSRF header', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    const cookie = await sessionCookie(OPERATOR_TOKEN);
    for (const extra of [{ origin: EVIL }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }] as Record<
      string,
      string
    >[]) {
      const response = await call('POST', `/api/jobs/${id}/cancel`, {
        token: null,
        headers: { cookie, 'x-baton-csrf': '1', ...extra },
      });
      expect({ extra, status: response.status, code: response.body.error.code }).toEqual({
        extra,
        status: 403,
        code: 'CSRF_REJECTED',
      });
    }
    expect(await stateOf(id)).toBe('pending');
  });

  test('a same-origin cookie POST with the header acts, and the audit entry names the logged-in actor', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    const cookie = await sessionCookie(OPERATOR_TOKEN);
    const response = await call('POST', `/api/jobs/${id}/cancel`, {
      token: null,
      headers: { cookie, 'x-baton-csrf': '1', origin: server.url, 'sec-fetch-site': 'same-origin' },
    });
    expect(response.status).toBe(200);
    expect(await stateOf(id)).toBe('cancelled');
    const [entry] = await database.rows(`select actor from baton.audit_log where job_id = $1`, [id]);
    expect(entry.actor).toBe('alice');
  });

  test('a bearer POST needs no CSRF header', async () => {
    const { id } = await baton.enqueue(note, { text: 'x' });
    const response = await call('POST', `/api/jobs/${id}/cancel`, { token: OPERATOR_TOKEN });
    expect(response.status).toBe(200);
    expect(await stateOf(id)).toBe('cancelled');
  });

  test('an unknown cookie gets 401', async () => {
    const response = await call('GET', '/api/jobs', {
      token: null,
      headers: { cookie: 'baton_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    expect(response.status).toBe(401);
  });

  test('logout (with the CSRF header) ends the session', async () => {
    const cookie = await sessionCookie(OPERATOR_TOKEN);
    const forged = await call('POST', '/ops/logout', { token: null, headers: { cookie } });
    expect(forged.status).toBe(403);
    expect((await call('GET', '/api/jobs', { token: null, headers: { cookie } })).status).toBe(200);
    const logout = await call('POST', '/ops/logout', {
      token: null,
      headers: { cookie, 'x-baton-csrf': '1', origin: server.url },
    });
    expect(logout.status).toBe(200);
    expect(logout.headers.getSetCookie()[0]).toMatch(/^baton_session=;.*Max-Age=0/);
    expect((await call('GET', '/api/jobs', { token: null, headers: { cookie } })).status).toBe(401);
  });
});

describe('console responses', () => {
  test('pages and files carry the CSP, nosniff, no-referrer and DENY framing, with their content types', async () => {
    for (const [path, type] of [
      ['/ops/queue', /^text\/html; charset=utf-8/],
      ['/ops/login', /^text\/html; charset=utf-8/],
      ['/ops/assets/main.js', /^text\/javascript/],
      ['/ops/assets/console.css', /^text\/css/],
    ] as const) {
      const response = await fetch(`${server.url}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      expect(response.headers.get('content-type')).toMatch(type);
      for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) {
        expect({ path, name, value: response.headers.get(name) }).toEqual({ path, name, value });
      }
    }
    expect(CONSOLE_SECURITY_HEADERS['Content-Security-Policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
  });

  test('the console pages have no inline script or style', async () => {
    for (const path of ['/ops/queue', '/ops/login']) {
      const page = await (await fetch(`${server.url}${path}`)).text();
      expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    }
  });

  test('API responses are nosniff too', async () => {
    const response = await call('GET', '/api/jobs');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  test('the file route serves nothing outside console/assets, however the path is written', async () => {
    const paths = [
      '/ops/assets/../../package.json',
      '/ops/assets/..%2f..%2fpackage.json',
      '/ops/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/ops/assets/%2e%2e/%2e%2e/package.json',
      '/ops/assets/.%2e/.%2e/package.json',
      '/ops/assets/..%5c..%5cpackage.json',
      '/ops/assets/%252e%252e%252fpackage.json',
      '/ops/assets/..%00/package.json',
      '/ops/assets/',
      '/ops/assets/queue.html',
      '/ops/assets/main.js%00.css',
      '/ops/assets/.main.js',
    ];
    for (const path of paths) {
      const { status, body } = await rawGet(path);
      expect({ path, status }).toEqual({ path, status: 404 });
      expect(body).not.toContain('"name": "baton"');
    }
  });
});

describe('SessionStore', () => {
  test('sessions expire after their lifetime, are not extended by use, and the oldest go first', () => {
    let now = 1_000_000;
    const store = new SessionStore({ ttlMs: 10_000, maxSessions: 2, now: () => now });
    const first = store.create({ actor: 'alice', role: 'operator' });
    now += 6000;
    expect(store.get(first.id)?.actor).toBe('alice');
    now += 6000;
    expect(store.get(first.id)).toBeNull();
    const a = store.create({ actor: 'a', role: 'viewer' });
    const b = store.create({ actor: 'b', role: 'viewer' });
    const c = store.create({ actor: 'c', role: 'viewer' });
    expect(store.get(a.id)).toBeNull();
    expect(store.get(b.id)?.actor).toBe('b');
    expect(store.get(c.id)?.actor).toBe('c');
    store.delete(c.id);
    expect(store.get(c.id)).toBeNull();
    expect(store.get(undefined)).toBeNull();
  });
});

/** A GET with the path sent exactly as written (fetch would normalise the dots away). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
