/**
 * Handlers isolated in a child process (`isolation: 'process'`): a handler that ends its own process
 * (`process.abort()`, the fault suite's poison pill) costs only its attempt, not the worker. Each
 * such attempt fails as a retryable EXECUTION_FAILED naming the signal, so the job is dead-lettered
 * after exactly maxAttempts while the same worker process goes on running other jobs. A CPU loop is
 * killed by its timeout; a normal handler's result, progress and logs come back. Run both from
 * source (tsx) and from a build of src/ (plain JavaScript, no tsx anywhere).
 */
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { BatonClient } from '../src/index.js';
import { defineKind } from '../src/index.js';
import {
  crash,
  quick,
  processSpin as spin,
  processSquare as square,
  transactional,
} from './fixtures/isolated-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, WorkerProcess } from './helpers/processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

let database: TestDatabase;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase('isolated_process');
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  database.pool.on('error', () => {});
  await database.drop();
});

/** Waits until the job is in `state` (a bounded poll of the database) and returns it. */
async function jobIn(baton: BatonClient, id: string, state: string, timeoutMs = 30_000) {
  return pollUntil(
    `job ${id} to be ${state}`,
    async () => {
      const job = await baton.getJob(id);
      return job?.state === state && job;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/**
 * Live (not zombie) isolated handlers' processes that `pid` started, from /proc. Only those: a worker
 * run from source also has tsx's esbuild service as a child.
 */
function isolatesOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [state, ppid] = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (Number(ppid) === pid && state !== 'Z' && command.includes('isolated-entry'))
        children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

describe('from source', () => {
  let worker: WorkerProcess;
  beforeAll(async () => {
    worker = await startWorker(database.url, {
      fixture: 'isolated-kinds.ts',
      env: { BATON_CONCURRENCY: '4', BATON_LEASE_MS: '2000', BATON_RECOVERY_INTERVAL_MS: '500' },
    });
    workers.push(worker);
  });

  test('a handler that calls process.abort() is dead-lettered after exactly maxAttempts; the worker keeps running other jobs', {
    timeout: 90_000,
  }, async () => {
    const baton = connectBaton(database);
    const pill = await baton.enqueue(crash, {});
    const during = await baton.enqueueMany(
      quick,
      Array.from({ length: 20 }, () => ({ payload: {} })),
    );
    const dead = await jobIn(baton, pill.id, 'failed', 60_000);
    expect(dead.attempts).toBe(3);
    expect(dead.attemptHistory.map((attempt) => attempt.outcome)).toEqual(['failed', 'failed', 'failed']);
    for (const attempt of dead.attemptHistory) {
      expect(attempt.errorCode).toBe('EXECUTION_FAILED');
      expect(attempt.errorMessage).toBe(
        "the isolated handler's process was killed by SIGABRT without a result",
      );
    }
    expect(dead.deadLetter?.reason).toBe('max_attempts_exceeded');
    // Failed through the handler's own outcome, never through an expired lease: the worker lived.
    expect(worker.lines.filter((line) => line.event === 'recovery.requeued')).toEqual([]);
    expect(worker.child.exitCode).toBeNull();
    expect(worker.child.signalCode).toBeNull();
    // The same worker process ran the other jobs, during the pill's attempts and after them.
    const after = await baton.enqueueMany(
      quick,
      Array.from({ length: 20 }, () => ({ payload: {} })),
    );
    const done = await pollUntil('the other jobs to complete', async () => {
      const jobs = await Promise.all([...during, ...after].map((job) => baton.getJob(job.id)));
      return jobs.every((job) => job?.state === 'completed') && jobs;
    });
    expect(new Set(done.map((job) => (job!.result as { pid: number }).pid))).toEqual(new Set([worker.pid]));
    await baton.close();
  });

  test('a handler stuck in a CPU loop in its child process is killed by its timeout', {
    timeout: 90_000,
  }, async () => {
    const baton = connectBaton(database);
    const stuck = await baton.enqueue(spin, {});
    // The loop really runs in a child process of the worker...
    await pollUntil('the spinning child process to appear', async () => isolatesOf(worker.pid).length > 0, {
      timeoutMs: 30_000,
    });
    const dead = await jobIn(baton, stuck.id, 'failed');
    expect(dead.attemptHistory.map((attempt) => attempt.outcome)).toEqual(['timed_out', 'timed_out']);
    expect(dead.deadLetter?.reason).toBe('max_attempts_exceeded');
    // ...and is gone once its attempts are spent: the timeout killed it.
    await pollUntil(
      'the spinning child process to be gone',
      async () => isolatesOf(worker.pid).length === 0,
      {
        timeoutMs: 5_000,
      },
    );
    expect(worker.lines.filter((line) => line.event === 'job.lease_lost')).toEqual([]);
    await baton.close();
  });

  test('a handler in a child process returns its result, reports progress and logs through the worker', {
    timeout: 60_000,
  }, async () => {
    const baton = connectBaton(database);
    const job = await baton.enqueue(square, { n: 7 });
    const done = await jobIn(baton, job.id, 'completed');
    expect(done).toMatchObject({
      result: { square: 49, held: true, createdAtIsDate: true },
      progress: { half: true },
    });
    const { pid } = done.result as { pid: number };
    expect(pid).not.toBe(worker.pid); // it ran in a process of its own, not in a thread of the worker
    await worker.waitForLog((line) => line.event === 'isolated.note' && line.jobId === job.id);
    await baton.close();
  });

  test('completeInTransaction is refused in a child process with a clear error', async () => {
    const baton = connectBaton(database);
    const job = await baton.enqueue(transactional, {});
    const failed = await jobIn(baton, job.id, 'failed');
    expect(failed.errorMessage).toBe(
      "kind process.transactional: completeInTransaction is not available to isolated handlers (isolation: 'process')",
    );
    await baton.close();
  });
});

describe('from a build of src/ (no tsx)', () => {
  let build: string;
  let worker: WorkerProcess;
  beforeAll(async () => {
    // A private build, so that a stale dist/ cannot pass or fail this test; dependencies resolve
    // through a link to the checkout's node_modules.
    build = await mkdtemp(join(tmpdir(), 'baton-dist-'));
    await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsc'), [
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      join(build, 'dist'),
    ]);
    await writeFile(join(build, 'package.json'), '{"type":"module"}');
    await symlink(join(ROOT, 'node_modules'), join(build, 'node_modules'));
    await writeFile(
      join(build, 'jobs.js'),
      `import { z } from 'zod';
import { defineKind } from './dist/index.js';
const isolated = { isolation: 'process', moduleUrl: import.meta.url };
export const crash = defineKind({ kind: 'dist.crash', payload: z.object({}), maxAttempts: 2,
  backoff: { baseMs: 50, maxMs: 50 }, ...isolated, handler: async () => process.abort() });
export const square = defineKind({ kind: 'dist.square', payload: z.object({ n: z.number() }), ...isolated,
  handler: async ({ n }) => ({ square: n * n, pid: process.pid, execArgv: process.execArgv }) });
`,
    );
    const child = spawn(
      process.execPath,
      [join(build, 'dist/cli/main.js'), 'worker', '--jobs', join(build, 'jobs.js')],
      {
        cwd: build,
        env: { ...process.env, DATABASE_URL: database.url, BATON_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    worker = new WorkerProcess(child);
    workers.push(worker);
    await worker.waitForEvent('worker.started', 30_000);
  }, 180_000);

  afterAll(async () => {
    await worker?.stop();
    if (build) await rm(build, { recursive: true, force: true });
  });

  test('a poison pill is dead-lettered and a normal handler returns its result, run from JavaScript', {
    timeout: 60_000,
  }, async () => {
    const baton = connectBaton(database);
    // The kinds as a producer knows them: no handler, same names.
    const pill = await baton.enqueue(
      defineKind({ kind: 'dist.crash', payload: z.object({}), maxAttempts: 2 }),
      {},
    );
    const job = await baton.enqueue(
      defineKind({ kind: 'dist.square', payload: z.object({ n: z.number() }) }),
      {
        n: 5,
      },
    );
    const [dead, done] = await pollUntil('both jobs to finish', async () => {
      const [a, b] = await Promise.all([baton.getJob(pill.id), baton.getJob(job.id)]);
      return a?.state === 'failed' && b?.state === 'completed' && [a, b];
    });
    expect(dead.attempts).toBe(2);
    expect(dead.errorMessage).toMatch(/killed by SIGABRT/);
    expect(dead.deadLetter?.reason).toBe('max_attempts_exceeded');
    expect(done.result).toMatchObject({ square: 25, execArgv: [] }); // no tsx loader in the child
    expect((done.result as { pid: number }).pid).not.toBe(worker.pid);
    expect(worker.child.exitCode).toBeNull();
    await baton.close();
  });
});

test('isolation process without moduleUrl, or an unknown isolation, is refused when the kind is defined', () => {
  expect(() =>
    defineKind({ kind: 'x.y', payload: z.object({}), isolation: 'process', handler: async () => null }),
  ).toThrow(/isolation 'process' needs moduleUrl/);
  expect(() =>
    defineKind({
      kind: 'x.y',
      payload: z.object({}),
      // biome-ignore lint/suspicious/noExplicitAny: an invalid value on purpose.
      isolation: 'fork' as any,
      moduleUrl: import.meta.url,
      handler: async () => null,
    }),
  ).toThrow(/isolation/);
});
