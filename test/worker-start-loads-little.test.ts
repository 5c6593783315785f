/**
 * `baton worker` loads what a worker needs and nothing else: not the HTTP server and its metrics
 * (hono, prom-client) and not the embedded database (PGlite). Each cost every worker start CPU
 * (~0.25 CPU-seconds together on the 2-core VM), and a crashed worker's replacement waits for it
 * (the poison-pill fault scenario). Every module the process resolves is recorded by a resolve hook.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { startWorker } from './helpers/processes.js';

const RECORDER = new URL('./fixtures/record-imports.mjs', import.meta.url).href;
/** Packages a worker must not load, by the path of their files. */
const NOT_FOR_WORKERS = /node_modules\/(hono|@hono\/node-server|prom-client|@electric-sql\/pglite)\//;

let database: TestDatabase;
let folder: string;

beforeAll(async () => {
  database = await createTestDatabase('worker_start_loads');
  folder = await mkdtemp(join(tmpdir(), 'baton-imports-'));
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
  await database.drop();
});

const recorded = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean);

test('a started worker has not loaded the HTTP server, its metrics or PGlite', {
  timeout: 60_000,
}, async () => {
  const file = join(folder, 'worker.txt');
  const worker = await startWorker(database.url, {
    env: { NODE_OPTIONS: `--import ${RECORDER}`, RECORD_IMPORTS: file },
  });
  worker.child.kill('SIGTERM');
  expect((await worker.exited).code).toBe(0);
  const urls = await recorded(file);
  expect(urls.some((url) => url.includes('/node_modules/pg/'))).toBe(true); // the recorder saw it start
  expect(urls.some((url) => url.endsWith('/src/worker/worker.ts'))).toBe(true);
  expect(urls.filter((url) => NOT_FOR_WORKERS.test(url))).toEqual([]);
});

test('control: the recorder sees them where they are loaded (serve, the embedded database)', {
  timeout: 60_000,
}, async () => {
  const file = join(folder, 'control.txt');
  const script = `await import('./src/http/server.ts'); await import('./src/db/pglite.ts');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, NODE_OPTIONS: `--import ${RECORDER}`, RECORD_IMPORTS: file },
    stdio: 'inherit',
  });
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  const loaded = new Set(
    (await recorded(file)).map((url) => NOT_FOR_WORKERS.exec(url)?.[1]).filter((name) => name !== undefined),
  );
  expect([...loaded].sort()).toEqual(['@electric-sql/pglite', '@hono/node-server', 'hono', 'prom-client']);
});
