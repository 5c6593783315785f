/**
 * A handler's child process (`isolation: 'process'`) ends itself when its worker is killed with
 * SIGKILL, even while the handler is stuck in a CPU loop and its event loop never turns: the child's
 * parent watch (a thread of its own, src/worker/isolated-entry.ts) notices within about a second.
 * Before it, such a child ran on until its timeout or forever, reparented to init.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { orphan } from './fixtures/isolated-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
let worker: WorkerProcess | undefined;
let child: number | undefined;

beforeAll(async () => {
  database = await createTestDatabase('isolated_process_ends');
});

afterAll(async () => {
  await worker?.stop();
  // Should this test fail, do not leave its CPU loop running.
  if (child && isRunning(child)) process.kill(child, 'SIGKILL');
  database.pool.on('error', () => {});
  await database.drop();
});

/**
 * Whether `pid` still runs, from /proc. A zombie does not: it has ended, and waits only for its new
 * parent (init, here a slow reaper) to collect it.
 */
function isRunning(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
}

test('a child process stuck in a CPU loop ends itself within seconds of its worker being killed with SIGKILL', {
  timeout: 90_000,
}, async () => {
  worker = await startWorker(database.url, { fixture: 'isolated-kinds.ts' });
  const baton = connectBaton(database);
  const job = await baton.enqueue(orphan, {});
  // The handler reports its pid before it starts spinning.
  const pid = await pollUntil(
    'the handler to report its pid',
    async () => ((await baton.getJob(job.id))?.progress as { pid?: number } | null)?.pid,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  child = pid;
  expect(pid).not.toBe(worker.pid);
  expect(parentOf(pid)).toBe(worker.pid);
  expect(isRunning(pid)).toBe(true);

  worker.kill('SIGKILL');
  await worker.exited;
  const killedAt = Date.now();
  await pollUntil('the orphaned child process to end', async () => !isRunning(pid), {
    timeoutMs: 5_000,
    intervalMs: 20,
  });
  const endedAfterMs = Date.now() - killedAt;
  expect(endedAfterMs).toBeLessThan(5_000);
  // It ended itself (the child writes to its worker's stderr, which this test still reads).
  await pollUntil('the child to say why it ended', async () =>
    worker!.stderr.join('').includes(`process ${pid} ends itself: its worker (pid ${worker!.pid}) is gone`),
  );
  await baton.close();
});
