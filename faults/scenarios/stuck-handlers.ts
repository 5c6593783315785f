/**
 * Handlers that never settle, and handlers stuck in a CPU loop (run isolated, in a thread). Their
 * timeouts free the slots: the stuck jobs are retried and dead-lettered, and the other jobs run on
 * the same two-slot workers meanwhile.
 */
import { hang, spin, work } from '../kinds.js';
import { FAST_LEASE, type Scenario } from '../lib/harness.js';

export const stuckHandlers: Scenario = {
  name: 'stuck-handlers',
  summary:
    'never-settling and CPU-looping (isolation: thread) handlers with a 1 s timeout, on 2 workers of 2 slots, amid 0.05 s jobs',
  async run(run, size) {
    const env = { ...FAST_LEASE, BATON_CONCURRENCY: '2', BATON_PREFETCH: '0', BATON_LOG_LEVEL: 'warn' };
    for (let index = 0; index < 2; index++) await run.startWorker({ env });
    const stuck: string[] = [];
    const pairs = size.quick ? 2 : 6;
    for (let index = 0; index < pairs; index++) {
      for (const kind of [hang, spin]) {
        const id = await run.enqueue(kind, {}, { expect: 'dead' });
        if (id) stuck.push(id);
      }
    }
    await run.enqueueMany(
      work,
      Array.from({ length: size.quick ? 60 : 300 }, () => ({ ms: 50 })),
    );
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000, `${(drainedMs / 1000).toFixed(1)} s`);
    const jobs = await run.rows(
      `select j.kind, j.state, array_agg(a.outcome order by a.attempt) as outcomes
       from baton.jobs j join baton.job_attempts a on a.job_id = j.id where j.id = any($1) group by j.id`,
      [stuck],
    );
    const timedOut = jobs.filter(
      (job) => job.state === 'failed' && job.outcomes.join() === 'timed_out,timed_out',
    );
    run.check(
      'every stuck handler timed out twice and was dead-lettered',
      timedOut.length === stuck.length,
      `${timedOut.length}/${stuck.length}`,
    );
    const lost = run.workers.reduce((sum, worker) => sum + worker.count('job.lease_lost'), 0);
    run.check('no lease lost (the event loop never blocked)', lost === 0, `${lost}`);
  },
};
