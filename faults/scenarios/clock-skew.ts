/**
 * Workers whose clocks are hours off (libfaketime: one +3 h, one −3 h) beside one with the right
 * time. Every decision uses database time, so no delayed job or retry runs before it is due, and
 * no live lease is taken away early, even though the fast worker sweeps every 200 ms.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, type Scenario, sleep } from '../lib/harness.js';

export const clockSkew: Scenario = {
  name: 'clock-skew',
  summary:
    'workers at +3 h and −3 h (faketime) beside a correct one: delayed jobs, retries, and 3 s jobs on a 2 s lease',
  async run(run, size) {
    const env = { ...FAST_LEASE, BATON_RECOVERY_INTERVAL_MS: '200', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    await run.startWorker({ env, prefix: ['faketime', '-f', '+3h'] });
    await run.startWorker({ env, prefix: ['faketime', '-f', '-3h'] });
    const right = await run.startWorker({ env: FAST_LEASE });
    const count = size.quick ? 30 : 150;
    // Delayed jobs, jobs that fail once (their retry waits a backoff), and jobs longer than a lease.
    for (let index = 0; index < count; index++)
      await run.enqueue(work, { ms: 0 }, { delayMs: Math.round(between(1000, 4000)) });
    for (let index = 0; index < count; index++) await run.enqueue(work, { ms: 0, failAttempts: 1 });
    for (let index = 0; index < 6; index++) await run.enqueue(work, { ms: 3000 });
    await sleep(500);
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000);
    // A completed job's run_at is when its last attempt became due: the start must not precede it.
    const [early] = await run.rows(
      `select count(*)::int as n, min(l.started_ms - extract(epoch from j.run_at) * 1000) as margin
       from faults.ledger l join baton.jobs j on j.id = l.job_id
       where l.outcome = 'completed' and l.started_ms < extract(epoch from j.run_at) * 1000 - 5`,
    );
    run.check('nothing ran before it was due', early.n === 0, `${early.n} early`);
    const [rescued] = await run.rows(
      `select count(*)::int as n from baton.job_attempts where outcome = 'lease_expired'`,
    );
    run.check('no live lease was rescued', rescued.n === 0, `${rescued.n} recovered`);
    const [skewed] = await run.rows(
      // (faketime runs node as its child: the skewed workers' pids are not the ones spawned.)
      `select count(*)::int as n from faults.ledger where worker_pid <> $1 and outcome = 'completed'`,
      [right.pid],
    );
    run.check('the skewed workers ran jobs', skewed.n > 0, `${skewed.n} of ${run.acknowledged.size}`);
  },
};
