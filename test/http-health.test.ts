/**
 * Health and readiness: /healthz answers without a database call; /readyz is 503 until the
 * database answers and its schema is migrated, then 200. Neither needs a token. `baton serve`
 * prints its address, serves, and stops on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { HttpServer } from '../src/http/server.js';
import { type BatonClient, createBaton } from '../src/index.js';
import { connectBaton, createTestDatabase, SERVER_URL, type TestDatabase } from './helpers/database.js';
import { type ApiCall, OPERATOR_TOKEN, serveApi } from './helpers/http.js';
import { cliCommand } from './helpers/processes.js';

let database: TestDatabase;
let baton: BatonClient;
let server: HttpServer;
let call: ApiCall;

beforeAll(async () => {
  database = await createTestDatabase('http_health', { migrated: false });
  baton = connectBaton(database);
  ({ server, call } = await serveApi(baton));
});

afterAll(async () => {
  await server?.close();
  await baton?.close();
  await database?.drop();
});

test('/readyz is 503 NOT_READY on an unmigrated database and 200 once it is migrated; /healthz is 200 throughout', async () => {
  const before = await call('GET', '/readyz', { token: null });
  expect(before.status).toBe(503);
  expect(before.body.error.code).toBe('NOT_READY');
  expect(before.body.error.message).toMatch(/schema is at version 0.*baton migrate/);
  expect((await call('GET', '/healthz', { token: null })).status).toBe(200);

  await baton.migrate();

  const after = await call('GET', '/readyz', { token: null });
  expect(after).toMatchObject({ status: 200, body: { status: 'ready' } });
  expect((await call('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
});

test('/readyz is 503 when the database does not answer, while /healthz stays 200', async () => {
  const unreachable = createBaton({ connectionString: `${SERVER_URL}/baton_no_such_database_for_readyz` });
  const { server: other, call: callOther } = await serveApi(unreachable);
  try {
    const ready = await callOther('GET', '/readyz', { token: null });
    expect(ready.status).toBe(503);
    expect(ready.body.error).toMatchObject({ code: 'NOT_READY' });
    expect(ready.body.error.message).toMatch(/does not answer/);
    expect((await callOther('GET', '/healthz', { token: null })).status).toBe(200);
  } finally {
    await other.close();
    await unreachable.close();
  }
});

test('`baton serve --jobs <module>` prints its address, serves the API, and exits 0 on SIGTERM', {
  timeout: 60_000,
}, async () => {
  await baton.migrate(); // whatever the tests above did: this one needs a migrated database
  const [command, args] = cliCommand(['serve', '--jobs', 'test/fixtures/ledger-kinds.ts']);
  const child = spawn(command, args, {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      BATON_HTTP_PORT: '0',
      BATON_API_TOKENS: `alice:operator:${OPERATOR_TOKEN}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (match) resolve(match[1]!);
      });
      child.once('exit', () => reject(new Error(`baton serve exited before listening: ${stderr}`)));
    });
    expect(stdout).toContain('ledger.record');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const created = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'ledger.record', payload: { sleepMs: 1 } }),
    });
    expect(created.status).toBe(201);
    const { job } = (await created.json()) as { job: { id: string } };
    expect(await database.rows(`select kind from baton.jobs where id = $1`, [job.id])).toEqual([
      { kind: 'ledger.record' },
    ]);
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(stdout).toContain('baton serve: stopped');
    const events = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line).event);
    expect(events).toEqual(['http.listening', 'http.stopped']);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
