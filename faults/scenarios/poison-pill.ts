/**
 * A poison pill: a handler that ends its whole process (process.abort()) at every attempt, amid
 * 100 ms jobs on 4 supervised workers. Twice: isolated in a child process (`isolation: 'process'`),
 * where each attempt ends only its child and no worker is lost, then unisolated, where each attempt
 * costs a worker (a supervisor starts a new one) and its other claimed jobs wait for their leases. Either
 * way the pill is dead-lettered after exactly maxAttempts (3); the other kinds' slowdown is measured
 * against the batches without pills run just before and just after (at most 10%, asserted in the
 * full suite): batches alone bracket each batch with pills, so a drift of the machine's speed over
 * the run (warm-up, a growing table, a noisy neighbour) is not counted as the pills' cost.
 */
import { poison, poisonIsolated, work } from '../kinds.js';
import { FAST_LEASE, type Run, type Scenario, sleep } from '../lib/harness.js';

const JOB_MS = 100;

/**
 * Seconds to run `count` jobs of JOB_MS from the moment they are enqueued. The batch is bound by the
 * workers' slots, not by the machine's CPU: with 20 ms jobs the 2-core machine was saturated (about
 * 550 jobs/s, each with its ledger writes), and three identical batches took 47 to 60 s, a spread
 * wider than the 10% being judged; what the check is about is whether the pill takes the other
 * kinds' slots and time, which a CPU-bound batch cannot show.
 */
async function timeBatch(run: Run, count: number): Promise<number> {
  const started = Date.now();
  const ids: string[] = [];
  for (let done = 0; done < count; done += 5000) {
    const size = Math.min(5000, count - done);
    const batch = await run.enqueueMany(
      work,
      Array.from({ length: size }, () => ({ ms: JOB_MS })),
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

/** Enqueues the pills, times a batch beside them, and waits until the pills are finished. */
async function batchWithPills(
  run: Run,
  kind: typeof poison,
  pills: number,
  count: number,
): Promise<{ ids: string[]; seconds: number }> {
  const ids: string[] = [];
  for (let index = 0; index < pills; index++) {
    const id = await run.enqueue(kind, {}, { expect: 'dead' });
    if (id) ids.push(id);
  }
  const seconds = await timeBatch(run, count);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const [row] = await run.rows(
      `select count(*)::int as n from baton.jobs where id = any($1) and state in ('pending', 'running')`,
      [ids],
    );
    if (row.n === 0) break;
    await sleep(200);
  }
  return { ids, seconds };
}

/** Every pill failed for good after exactly 3 attempts, each recorded, dead-lettered max_attempts_exceeded. */
async function checkDeadLettered(run: Run, what: string, ids: string[]): Promise<void> {
  const jobs = await run.rows(
    `select j.state, j.attempts, d.reason, (select count(*)::int from baton.job_attempts a where a.job_id = j.id) as recorded
     from baton.jobs j left join baton.dead_letters d on d.job_id = j.id where j.id = any($1)`,
    [ids],
  );
  run.check(
    `${what}: dead-lettered after exactly 3 attempts`,
    jobs.length === ids.length &&
      jobs.every(
        (job) =>
          job.state === 'failed' &&
          job.attempts === 3 &&
          job.recorded === 3 &&
          job.reason === 'max_attempts_exceeded',
      ),
    jobs.map((job) => `${job.state}/${job.attempts}/${job.reason}`).join(', '),
  );
}

export const poisonPill: Scenario = {
  name: 'poison-pill',
  summary:
    "a handler that calls process.abort() at every attempt (maxAttempts 3) amid 100 ms jobs on 4 supervised workers, isolated (isolation: 'process') and not",
  async run(run, size) {
    const env = { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn', BATON_CONCURRENCY: '8' };
    for (let index = 0; index < 4; index++) await run.startWorker({ env }, { restart: true });
    const count = size.quick ? 2500 : 10_000; // 32 slots: ~8 s and ~31 s of work
    const pills = size.quick ? 1 : 2;
    await timeBatch(run, 200); // warm-up
    const before = await timeBatch(run, count);
    const slowdown = (what: string, seconds: number, alone: number[]) => {
      const baseline = alone.reduce((sum, value) => sum + value, 0) / alone.length;
      const ratio = seconds / baseline - 1;
      const figures = `${alone.map((value) => value.toFixed(1)).join(' and ')} s alone before and after, ${seconds.toFixed(1)} s with pills: ${ratio >= 0 ? '+' : ''}${(ratio * 100).toFixed(0)}%`;
      // Asserted in the full suite only: the quick batches last seconds, and on 2 cores every
      // process start (a worker's, or an isolated attempt's) takes CPU from the others, so the
      // quick figure is shown, not judged.
      if (size.quick) run.note(`${what}: other kinds ${figures}`);
      else run.check(`${what}: other kinds slowed by at most 10%`, ratio <= 0.1, figures);
    };

    // Isolated: each attempt ends its own child process; the workers live on.
    const workersBefore = run.workers.length;
    const isolated = await batchWithPills(run, poisonIsolated, pills, count);
    await checkDeadLettered(run, 'isolated', isolated.ids);
    const [signals] = await run.rows(
      `select count(*)::int as n from baton.job_attempts
       where job_id = any($1) and outcome = 'failed' and error_message like '%killed by SIGABRT%'`,
      [isolated.ids],
    );
    run.check(
      'isolated: every attempt failed naming SIGABRT',
      signals.n === 3 * isolated.ids.length,
      `${signals.n}`,
    );
    const replaced = run.workers.length - workersBefore;
    run.check(
      'isolated: no worker process was replaced',
      replaced === 0 && run.live().length === workersBefore,
      `${replaced} replaced`,
    );
    const between = await timeBatch(run, count);
    slowdown('isolated', isolated.seconds, [before, between]);

    // Unisolated: each attempt kills a worker; a supervisor replaces it.
    const unisolated = await batchWithPills(run, poison, pills, count);
    await run.drain(60_000);
    await checkDeadLettered(run, 'unisolated', unisolated.ids);
    const after = await timeBatch(run, count);
    slowdown('unisolated', unisolated.seconds, [between, after]);
    const replacements = run.workers
      .slice(workersBefore)
      .map((worker) => ((worker.readyAtMs ?? Number.NaN) - worker.spawnedAtMs) / 1000);
    run.note(
      `unisolated: ${replacements.length} workers replaced, each running ${replacements.map((seconds) => seconds.toFixed(1)).join(', ')} s after its start`,
    );
  },
};
