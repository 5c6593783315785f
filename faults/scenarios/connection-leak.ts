/**
 * A handler that leaks database connections (opens its own and never closes them, each idle in an
 * open transaction). The worker's own heartbeats and completions use Baton's pools and still get
 * through: every other job completes, no lease is lost, no heartbeat fails.
 */
import { leak, work } from '../kinds.js';
import { FAST_LEASE, type Scenario } from '../lib/harness.js';

export const connectionLeak: Scenario = {
  name: 'connection-leak',
  summary:
    'a kind that leaks 2 connections per job (idle in transaction), 40 (quick: 20) of them amid 0.02 s jobs on 2 workers',
  async run(run, size) {
    const env = { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn' };
    for (let index = 0; index < 2; index++) await run.startWorker({ env });
    const leaks = size.quick ? 20 : 40;
    for (let index = 0; index < leaks; index++) {
      await run.enqueue(leak, { connections: 2 });
      await run.enqueueMany(
        work,
        Array.from({ length: 10 }, () => ({ ms: 20 })),
      );
    }
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000);
    const [idle] = await run.rows(
      `select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'idle in transaction'`,
      [run.database],
    );
    run.check('the connections really leaked', idle.n >= leaks * 2, `${idle.n} idle in transaction`);
    const trouble = run.workers.reduce(
      (sum, worker) =>
        sum +
        worker.count('job.lease_lost') +
        worker.count('heartbeat.failed') +
        worker.count('job.outcome_write_retry'),
      0,
    );
    run.check(
      'heartbeats and completions got through',
      trouble === 0,
      `${trouble} lease_lost/heartbeat.failed/outcome retries`,
    );
  },
};
