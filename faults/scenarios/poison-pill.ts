/**
 * A poison pill: a handler that kills its whole process (process.abort()) at every attempt. Each
 * attempt costs a worker (a supervisor starts a new one); the job is dead-lettered after exactly
 * maxAttempts (3), and the other kinds' throughput drops by at most 10%.
 */
import { poison, work } from '../kinds.js';
import { FAST_LEASE, type Run, type Scenario, sleep } from '../lib/harness.js';

/** Seconds to run `count` 20 ms jobs from the moment they are enqueued. */
async function timeBatch(run: Run, count: number): Promise<number> {
  const started = Date.now();
  const ids: string[] = [];
  for (let done = 0; done < count; done += 5000) {
    const size = Math.min(5000, count - done);
    const batch = await run.enqueueMany(
      work,
      Array.from({ length: size }, () => ({ ms: 20 })),
    );
    if (batch.length !== size) throw new Error('an enqueue of the batch failed');
    ids.push(...batch);
  }
  for (;;) {
    const [row] = await run.rows(
      `select count(*)::int as n from baton.jobs where id = any($1) and state = 'completed'`,
      [ids],
    );
    if (row.n === ids.length) return (Date.now() - started) / 1000;
    if (Date.now() - started > 180_000) throw new Error('the batch did not complete in 180 s');
    await sleep(100);
  }
}

export const poisonPill: Scenario = {
  name: 'poison-pill',
  summary:
    'a handler that calls process.abort() at every attempt (maxAttempts 3) amid 20 ms jobs on 4 supervised workers',
  async run(run, size) {
    const env = { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn', BATON_CONCURRENCY: '8' };
    for (let index = 0; index < 4; index++) await run.startWorker({ env }, { restart: true });
    const count = size.quick ? 8000 : 30_000;
    await timeBatch(run, 200); // warm-up
    const alone = await timeBatch(run, count);
    const pills: string[] = [];
    for (let index = 0; index < (size.quick ? 1 : 2); index++) {
      const id = await run.enqueue(poison, {}, { expect: 'dead' });
      if (id) pills.push(id);
    }
    const withPills = await timeBatch(run, count);
    await run.drain(60_000);
    const jobs = await run.rows(
      `select j.state, j.attempts, d.reason, (select count(*)::int from baton.job_attempts a where a.job_id = j.id) as recorded
       from baton.jobs j left join baton.dead_letters d on d.job_id = j.id where j.id = any($1)`,
      [pills],
    );
    run.check(
      'dead-lettered after exactly 3 attempts',
      jobs.length === pills.length &&
        jobs.every(
          (job) =>
            job.state === 'failed' &&
            job.attempts === 3 &&
            job.recorded === 3 &&
            job.reason === 'max_attempts_exceeded',
        ),
      jobs.map((job) => `${job.state}/${job.attempts}/${job.reason}`).join(', '),
    );
    const slowdown = withPills / alone - 1;
    const figures = `${alone.toFixed(1)} s alone, ${withPills.toFixed(1)} s with pills: +${(slowdown * 100).toFixed(0)}%`;
    // Asserted in the full suite only: the quick batches last seconds, and on 2 cores every worker
    // restart (one per attempt) takes CPU from the others, so the quick figure is shown, not judged.
    if (size.quick) run.note(`other kinds ${figures}`);
    else run.check('other kinds slowed by at most 10%', slowdown <= 0.1, figures);
    run.note(`${run.workers.length - 4} workers replaced`);
  },
};
