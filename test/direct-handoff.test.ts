/**
 * Direct hand-off (sql/handoff.ts): a worker with free slots and nothing to claim offers them, and
 * a single enqueue creates its job already running, leased to that worker, which hears of it on its
 * own channel. Real worker processes; the ledger records every execution.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { handedToWorker, UNHEARD_AFTER_MS } from '../src/sql/handoff.js';
import { record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger, type LedgerRow, maxOverlap } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase('handoff');
  await createLedger(database);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await database.drop();
});

async function start(env: Record<string, string>): Promise<{ worker: WorkerProcess; id: string }> {
  const worker = await startWorker(database.url, { env });
  workers.push(worker);
  const started = await worker.waitForEvent('worker.started');
  return { worker, id: started.workerId };
}

/** How many of the worker's slots are on offer, and the LISTEN backend they name. */
async function offerOf(workerId: string): Promise<{ free: number; listener_pid: number | null }> {
  const [row] = await database.rows(
    'select count(*)::int as free, min(listener_pid) as listener_pid from baton.worker_offers where worker_id = $1 and offered',
    [workerId],
  );
  return row;
}

test('an idle worker offers its free slots, and a single enqueue hands it the job already leased', {
  timeout: 60_000,
}, async () => {
  const { worker, id } = await start({ BATON_CONCURRENCY: '3', BATON_WORKER_ID: 'handoff-a' });
  expect(id).toBe('handoff-a');
  const offer = await pollUntil('the offer', async () => (await offerOf(id)).free > 0 && offerOf(id));
  expect(offer.free).toBe(3);

  const baton = connectBaton(database);
  const job = await baton.enqueue(record, { sleepMs: 0 });
  const claimed = await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === job.id);
  expect(claimed.via).toBe('handoff');
  const ran = await pollUntil('the ledger row', () =>
    database.rows<LedgerRow>('select * from ledger where job_id = $1', [job.id]).then((rows) => rows[0]),
  );
  expect(ran.attempt).toBe(1);
  await worker.waitForLog((line) => line.event === 'job.completed' && line.jobId === job.id);
  const [row] = await database.rows('select state, attempts, worker_id from baton.jobs where id = $1', [
    job.id,
  ]);
  expect(row).toEqual({ state: 'completed', attempts: 1, worker_id: 'handoff-a' });
  // The taken slot left the offer; the two others are still there.
  expect((await offerOf(id)).free).toBe(2);

  // A delayed job is not handed over, and takes no slot with it.
  const later = await baton.enqueue(record, { sleepMs: 0 }, { delayMs: 60_000 });
  const [delayed] = await database.rows('select state, worker_id from baton.jobs where id = $1', [later.id]);
  expect(delayed).toEqual({ state: 'pending', worker_id: null });
  expect((await offerOf(id)).free).toBe(2);

  // A job too long for a notification is handed over by id, and read by the worker.
  const large = await baton.enqueue(record, { sleepMs: 0, note: 'x'.repeat(9000) });
  const largeClaimed = await worker.waitForLog(
    (line) => line.event === 'job.claimed' && line.jobId === large.id,
  );
  expect(largeClaimed.via).toBe('handoff');
  await worker.waitForLog((line) => line.event === 'job.completed' && line.jobId === large.id);

  // Stopping withdraws the offer.
  worker.kill('SIGTERM');
  expect((await worker.exited).code).toBe(0);
  expect((await offerOf(id)).free).toBe(0);
  await baton.close();
});

test('with handoff off a worker offers nothing and claims the job', { timeout: 60_000 }, async () => {
  const { worker, id } = await start({ BATON_HANDOFF: 'false', BATON_WORKER_ID: 'handoff-off' });
  const baton = connectBaton(database);
  // A first job claimed and done: the worker has come back idle from a short claim.
  const first = await baton.enqueue(record, { sleepMs: 0 });
  await worker.waitForLog((line) => line.event === 'job.completed' && line.jobId === first.id);
  const job = await baton.enqueue(record, { sleepMs: 0 });
  const claimed = await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === job.id);
  expect(claimed.via).toBe('claim');
  expect((await offerOf(id)).free).toBe(0);
  await worker.stop();
  await baton.close();
});

test("the poll's unheard check leaves a job handed moments ago to its notification", {
  timeout: 60_000,
}, async () => {
  // Its poll is 10 minutes away: the check is run here, with the database's clock beside it.
  const { worker, id } = await start({ BATON_WORKER_ID: 'handoff-grace', BATON_POLL_INTERVAL_MS: '600000' });
  await pollUntil('the offer', async () => (await offerOf(id)).free > 0);
  const baton = connectBaton(database);
  const unheardNow = async (jobId: string) => {
    const [row] = await database.rows(
      `with h as (${handedToWorker})
       select coalesce((select array_agg(id::text) from h), '{}') as unheard,
              (extract(epoch from now() - j.last_attempt_at) * 1000)::float8 as age_ms
       from baton.jobs j where j.id = $2`,
      [id, jobId],
    );
    return row as { unheard: string[]; age_ms: number };
  };
  const job = await baton.enqueue(record, { sleepMs: 5000 });
  // Handed over (running, leased to the worker) and still running when both checks are made.
  const soon = await unheardNow(job.id);
  expect(soon.age_ms).toBeLessThan(UNHEARD_AFTER_MS);
  expect(soon.unheard).toEqual([]);
  const later = await pollUntil('the grace to pass', async () => {
    const check = await unheardNow(job.id);
    return check.age_ms >= UNHEARD_AFTER_MS && check;
  });
  expect(later.unheard).toEqual([job.id]);
  // It was heard of all the same: the notification started it.
  const claimed = await worker.waitForLog((line) => line.event === 'job.claimed' && line.jobId === job.id);
  expect(claimed.via).toBe('handoff');
  await worker.stop();
  await baton.close();
});

test('more jobs than offered slots: never more than the concurrency at once, each job runs once', {
  timeout: 60_000,
}, async () => {
  const a = await start({ BATON_CONCURRENCY: '2', BATON_WORKER_ID: 'handoff-b1' });
  const b = await start({ BATON_CONCURRENCY: '2', BATON_WORKER_ID: 'handoff-b2' });
  await pollUntil(
    'both offers',
    async () => (await offerOf(a.id)).free === 2 && (await offerOf(b.id)).free === 2,
  );

  const baton = connectBaton(database);
  // Three waves of concurrent single enqueues (group commit puts each wave in few statements).
  const ids: string[] = [];
  for (let wave = 0; wave < 3; wave++) {
    const jobs = await Promise.all(Array.from({ length: 8 }, () => baton.enqueue(record, { sleepMs: 150 })));
    ids.push(...jobs.map((job) => job.id));
  }
  const rows = await pollUntil('every job run', async () => {
    const ran = await database.rows<LedgerRow>('select * from ledger where job_id = any($1::uuid[])', [ids]);
    return ran.length === ids.length && ran;
  });
  expect(new Set(rows.map((row) => row.job_id)).size).toBe(ids.length);
  for (const { worker } of [a, b]) {
    expect(maxOverlap(rows.filter((row) => row.worker_pid === worker.pid))).toBeLessThanOrEqual(2);
  }
  const vias = [a, b].flatMap(({ worker }) =>
    worker.lines
      .filter((line) => line.event === 'job.claimed' && ids.includes(line.jobId))
      .map((line) => line.via),
  );
  expect(vias.length).toBe(ids.length);
  expect(vias).toContain('handoff');
  const [states] = await database.rows(
    `select count(*) filter (where state = 'completed')::int as completed from baton.jobs where id = any($1::uuid[])`,
    [ids],
  );
  expect(states.completed).toBe(ids.length);
  // Slots on offer again, within the concurrency: none leaked to a hand-off never heard of, none doubled.
  for (const { id } of [a, b]) {
    const { free } = await pollUntil(
      'a slot on offer',
      async () => (await offerOf(id)).free > 0 && offerOf(id),
    );
    expect(free).toBeLessThanOrEqual(2);
  }
  await Promise.all([a.worker.stop(), b.worker.stop()]);
  await baton.close();
});

test("a killed worker's offer is not taken: the job waits pending for another worker", {
  timeout: 60_000,
}, async () => {
  const { worker, id } = await start({ BATON_WORKER_ID: 'handoff-killed' });
  const offer = await pollUntil('the offer', async () => (await offerOf(id)).free > 0 && offerOf(id));
  worker.kill('SIGKILL');
  await worker.exited;
  // Its row stays, but the LISTEN backend it names goes with the process's connections.
  await pollUntil('the listener backend gone', async () => {
    const rows = await database.rows('select 1 from pg_stat_activity where pid = $1', [offer.listener_pid]);
    return rows.length === 0;
  });
  expect((await offerOf(id)).free).toBeGreaterThan(0);

  const baton = connectBaton(database);
  const job = await baton.enqueue(record, { sleepMs: 0 });
  const [row] = await database.rows('select state, worker_id from baton.jobs where id = $1', [job.id]);
  expect(row).toEqual({ state: 'pending', worker_id: null });

  const next = await start({ BATON_WORKER_ID: 'handoff-next' });
  const claimed = await next.worker.waitForLog(
    (line) => line.event === 'job.completed' && line.jobId === job.id,
  );
  expect(claimed.jobId).toBe(job.id);
  await next.worker.stop();
  await baton.close();
});
