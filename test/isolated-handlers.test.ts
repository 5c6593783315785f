/**
 * Isolated handlers (`isolation: 'thread'`): a handler stuck in a CPU loop cannot block the worker.
 * Its thread is terminated when the timeout aborts the attempt, so the slot is freed, the attempt
 * fails as `timed_out` and the thread stops burning CPU; other jobs keep running on the same worker.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { defineKind } from '../src/index.js';
import { quick, refuse, spin, square } from './fixtures/isolated-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase('isolated');
});

afterAll(async () => {
  await worker?.stop();
  database.pool.on('error', () => {});
  await database.drop();
});

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test('a handler stuck in a CPU loop in its thread times out, frees its slot and stops using CPU', {
  timeout: 90_000,
}, async () => {
  // One slot and a short lease: a blocked event loop would lose the lease and never free the slot.
  worker = await startWorker(database.url, {
    fixture: 'isolated-kinds.ts',
    env: { BATON_CONCURRENCY: '1', BATON_LEASE_MS: '2000', BATON_PREFETCH: '0' },
  });
  const baton = connectBaton(database);
  const stuck = await baton.enqueue(spin, {});
  const others = await baton.enqueueMany(
    quick,
    Array.from({ length: 10 }, () => ({ payload: {} })),
  );
  const dead = await pollUntil(
    'the spinning job to be dead-lettered',
    async () => {
      const job = await baton.getJob(stuck.id);
      return job?.state === 'failed' && job;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  expect(dead.attempts).toBe(2);
  expect(dead.attemptHistory.map((attempt) => attempt.outcome)).toEqual(['timed_out', 'timed_out']);
  expect(dead.deadLetter?.reason).toBe('max_attempts_exceeded');
  await pollUntil('the other jobs to complete on the same one-slot worker', async () => {
    const jobs = await Promise.all(others.map((job) => baton.getJob(job.id)));
    return jobs.every((job) => job?.state === 'completed');
  });
  // The thread was terminated: the worker idles again (a live CPU loop would use ~1 s per second).
  const before = cpuSeconds(worker.pid);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(cpuSeconds(worker.pid) - before).toBeLessThan(0.5);
  // Its heartbeats went on while the thread spun: no lease was lost.
  expect(worker.lines.filter((line) => line.event === 'job.lease_lost')).toEqual([]);
  await baton.close();
});

test('an isolated handler returns its result, reports progress and logs through the worker; a JobError keeps its code', {
  timeout: 60_000,
}, async () => {
  worker ??= await startWorker(database.url, { fixture: 'isolated-kinds.ts' });
  const baton = connectBaton(database);
  const squared = await baton.enqueue(square, { n: 7 });
  const refused = await baton.enqueue(refuse, {});
  const done = await pollUntil('both isolated jobs to finish', async () => {
    const [a, b] = await Promise.all([baton.getJob(squared.id), baton.getJob(refused.id)]);
    return a?.state === 'completed' && b?.state === 'failed' && [a, b];
  });
  expect(done[0]).toMatchObject({ result: { square: 49, held: true }, progress: { half: true } });
  expect(done[1]).toMatchObject({ errorCode: 'PAYLOAD_UNSUPPORTED', attempts: 1 });
  expect(done[1]!.deadLetter?.reason).toBe('non_retryable');
  await worker.waitForLog((line) => line.event === 'isolated.note' && line.jobId === squared.id);
  await baton.close();
});

test('isolation thread without moduleUrl is refused when the kind is defined', () => {
  expect(() =>
    defineKind({ kind: 'x.y', payload: z.object({}), isolation: 'thread', handler: async () => null }),
  ).toThrow(/isolation 'thread' needs moduleUrl/);
});
