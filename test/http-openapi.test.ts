/**
 * The OpenAPI document (/api/openapi.json): it is valid OpenAPI 3.0 (checked by an OpenAPI schema
 * validator), it documents exactly the routes the app serves (found by walking the Hono app, so
 * routes added later are held to it too), it requires a bearer token where the app does, and the
 * request schemas it shows are the ones the routes validate with: every bound and enum it states
 * is enforced by a 400, and every value it allows gets through validation.
 */
import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { JobOptions } from '../src/core/enqueue.js';
import { createApp } from '../src/http/app.js';
import { createHttpLogger } from '../src/http/logger.js';
import { openApiPath } from '../src/http/openapi.js';
import { MAX_JOBS_PER_REQUEST } from '../src/http/routes/jobs.js';
import { type BatonClient, defineKind, JOB_STATES } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { OPERATOR_TOKEN, TEST_TOKENS, VIEWER_TOKEN, WORKER_TOKEN } from './helpers/http.js';

/** Every option of an enqueued job; the compiler fails this file if JobOptions gains one that is not listed. */
const JOB_OPTION_NAMES = [
  'runAt',
  'delayMs',
  'priority',
  'maxAttempts',
  'idempotencyKey',
  'traceId',
  'group',
] as const satisfies readonly (keyof JobOptions)[];
const everyOptionListed: Exclude<keyof JobOptions, (typeof JOB_OPTION_NAMES)[number]> extends never
  ? true
  : false = true;

const note = defineKind({ kind: 'note.write', payload: z.object({ text: z.string() }) });

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON.
type Json = any;
type Method = 'get' | 'post' | 'delete' | 'put' | 'patch';

interface DocumentedOperation {
  method: Method;
  path: string;
  operation: Json;
}

let database: TestDatabase;
let baton: BatonClient;
let app: ReturnType<typeof createApp>;
let document: Json;

/** One request to the app (no network): a fresh uuid stands in for every path parameter. */
async function request(
  method: string,
  path: string,
  options: { token?: string | null; query?: Record<string, string>; json?: unknown } = {},
): Promise<Response> {
  const url = new URL(`http://localhost${path.replace(/\{\w+\}/g, () => randomUUID())}`);
  for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? OPERATOR_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  return app.request(url.toString(), {
    method: method.toUpperCase(),
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
}

function documentedOperations(): DocumentedOperation[] {
  return Object.entries<Json>(document.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).map(([method, operation]) => ({ method: method as Method, path, operation })),
  );
}

const queryParameters = (operation: Json): Json[] =>
  (operation.parameters ?? []).filter((parameter: Json) => parameter.in === 'query');

const nameOf = ({ method, path }: { method: string; path: string }) => `${method.toUpperCase()} ${path}`;

beforeAll(async () => {
  database = await createTestDatabase('http_openapi');
  baton = connectBaton(database, { kinds: [note] });
  app = createApp(
    baton,
    { tokens: TEST_TOKENS, bodyLimitBytes: 1024 * 1024 },
    { logger: createHttpLogger('silent') },
  );
  const response = await request('get', '/api/openapi.json', { token: VIEWER_TOKEN });
  expect(response.status).toBe(200);
  document = await response.json();
});

afterAll(async () => {
  await baton?.close();
  await database?.drop();
});

describe('/api/openapi.json', () => {
  test('is a valid OpenAPI 3.0 document', async () => {
    expect(everyOptionListed).toBe(true);
    expect(document.openapi).toMatch(/^3\.0\.\d+$/);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.0');
    // Operation ids are unique, as the specification requires (the validator does not check it).
    const ids = documentedOperations().map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('documents every route the app serves, and serves every route it documents', () => {
    const served = new Set(
      app.routes
        // 'ALL' entries are middleware (authentication, body limits); the console (/ops) is HTML, not the API.
        .filter((route) => route.method !== 'ALL' && route.path !== '/ops' && !route.path.startsWith('/ops/'))
        .map((route) => `${route.method} ${openApiPath(route.path)}`),
    );
    const documented = new Set(documentedOperations().map(nameOf));
    expect(served.size).toBeGreaterThan(5);
    expect([...served].filter((route) => !documented.has(route)).sort()).toEqual([]);
    expect([...documented].filter((route) => !served.has(route)).sort()).toEqual([]);
  });

  test('requires a bearer token wherever the app does', async () => {
    expect(document.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(document.security).toEqual([{ bearer: [] }]);
    for (const entry of documentedOperations()) {
      const { method, path, operation } = entry;
      const open = operation['x-baton-access'] === 'open';
      // Only an open operation overrides the document's requirement, and only to "none".
      expect(operation.security, nameOf(entry)).toEqual(open ? [] : undefined);
      const response = await request(method, path, { token: null, json: method === 'get' ? undefined : {} });
      if (open) {
        expect(response.status, nameOf(entry)).not.toBe(401);
      } else {
        expect(response.status, nameOf(entry)).toBe(401);
        expect(response.headers.get('www-authenticate'), nameOf(entry)).toMatch(/^Bearer/);
        expect(operation.responses['401'], nameOf(entry)).toBeDefined();
      }
    }
    expect((await request('get', '/api/openapi.json', { token: null })).status).toBe(401);
  });

  test('refuses the roles the document says may not call an operation (403)', async () => {
    for (const entry of documentedOperations()) {
      const access = entry.operation['x-baton-access'];
      // A viewer may not act or claim; a worker token may not read.
      const refused =
        access === 'operator' || access === 'worker'
          ? VIEWER_TOKEN
          : access === 'viewer'
            ? WORKER_TOKEN
            : null;
      if (!refused) continue;
      const response = await request(entry.method, entry.path, {
        token: refused,
        json: entry.method === 'get' ? undefined : {},
      });
      expect(response.status, `${nameOf(entry)} as ${refused === VIEWER_TOKEN ? 'viewer' : 'worker'}`).toBe(
        403,
      );
      expect(entry.operation.responses['403'], nameOf(entry)).toBeDefined();
    }
  });

  test('POST /api/jobs documents the enqueue options and GET /api/jobs the job states', () => {
    const post = document.paths['/api/jobs'].post;
    const [one, many] = post.requestBody.content['application/json'].schema.anyOf;
    expect(Object.keys(one.properties).sort()).toEqual(['kind', 'payload', ...JOB_OPTION_NAMES].sort());
    expect(one.required).toEqual(['kind']);
    expect(one.additionalProperties).toBe(false);
    expect(Object.keys(many.properties).sort()).toEqual(['jobs', 'kind']);
    expect(many.properties.jobs.maxItems).toBe(MAX_JOBS_PER_REQUEST);
    expect(Object.keys(many.properties.jobs.items.properties).sort()).toEqual(
      ['payload', ...JOB_OPTION_NAMES].sort(),
    );
    expect(post.responses['201']).toBeDefined();

    const state = queryParameters(document.paths['/api/jobs'].get).find(
      (parameter) => parameter.name === 'state',
    );
    expect(state.schema.enum).toEqual([...JOB_STATES]);
    expect(state.required).toBe(false);
  });

  test('every bound and enum of a documented query is what the route enforces', async () => {
    let probes = 0;
    for (const entry of documentedOperations()) {
      for (const parameter of queryParameters(entry.operation)) {
        const { schema } = parameter;
        const where = `${nameOf(entry)} ?${parameter.name}`;
        const refusedValues: string[] = [];
        const allowedValues: string[] = [];
        if (schema.enum) {
          refusedValues.push('not-one-of-them');
          allowedValues.push(...schema.enum.map(String));
        }
        if (schema.type === 'integer' || schema.type === 'number') {
          refusedValues.push('not-a-number');
          if (schema.maximum !== undefined) {
            refusedValues.push(String(schema.maximum + 1));
            allowedValues.push(String(schema.maximum));
          }
          if (schema.minimum !== undefined) {
            refusedValues.push(String(schema.minimum - 1));
            allowedValues.push(String(schema.minimum));
          }
        }
        if (schema.format === 'date-time') {
          refusedValues.push('yesterday');
          allowedValues.push('2026-01-31T12:00:00Z');
        }
        for (const value of refusedValues) {
          probes++;
          const response = await request(entry.method, entry.path, { query: { [parameter.name]: value } });
          expect(response.status, `${where}=${value}`).toBe(400);
        }
        // Values the document allows pass validation. Only reads are sent them (a GET changes nothing),
        // and only where no other parameter is required.
        const required = queryParameters(entry.operation).some((other) => other.required);
        if (entry.method !== 'get' || required) continue;
        for (const value of allowedValues) {
          probes++;
          const response = await request(entry.method, entry.path, { query: { [parameter.name]: value } });
          expect(response.status, `${where}=${value}: ${await response.clone().text()}`).toBe(200);
        }
      }
    }
    expect(probes).toBeGreaterThan(10);
  });

  test('a body with a field the document does not list is refused (400), and nothing is written', async () => {
    for (const entry of documentedOperations()) {
      const schema = entry.operation.requestBody?.content['application/json']?.schema;
      if (!schema) continue;
      const variants: Json[] = schema.anyOf ?? schema.oneOf ?? [schema];
      if (!variants.every((variant) => variant.additionalProperties === false)) continue;
      const response = await request(entry.method, entry.path, { json: { notDocumented: true } });
      expect(response.status, nameOf(entry)).toBe(400);
    }
    const [written] = await database.rows(
      `select (select count(*) from baton.jobs)::int as jobs, (select count(*) from baton.audit_log)::int as audit`,
    );
    expect(written).toEqual({ jobs: 0, audit: 0 });
  });
});
