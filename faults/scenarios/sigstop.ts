/**
 * SIGSTOP of a worker for twice its lease, then SIGCONT. Meanwhile the others recover and run its
 * jobs; when it resumes, its late results (half of its handlers ignore their signal and finish) are
 * refused by the lease fence and change nothing.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, feed, type Scenario, sleep } from '../lib/harness.js';

export const sigstop: Scenario = {
  name: 'sigstop',
  summary:
    'SIGSTOP of a busy worker for 2x its 2 s lease, then SIGCONT, 5 times (quick: 2); jobs of 1 to 2 s, half ignore their signal',
  async run(run, size) {
    const rounds = size.quick ? 2 : 5;
    for (let index = 0; index < 3; index++)
      await run.startWorker({ env: { ...FAST_LEASE }, keep: ['job.lease_lost'] });
    const stop = feed(run, work, 8, () => ({
      ms: Math.round(between(1000, 2000)),
      ignoreAbort: Math.random() < 0.5,
    }));
    let lostSeen = 0;
    for (let round = 0; round < rounds; round++) {
      await sleep(2500);
      const victim = run.live()[round % 3]!;
      const held = await run.runningOn(victim);
      await run.fault(`SIGSTOP ${victim.pid}`, held);
      victim.kill('SIGSTOP');
      await sleep(2 * 2000 + 500);
      const before = victim.count('job.lease_lost');
      victim.kill('SIGCONT');
      await sleep(2500);
      if (held.length > 0 && victim.count('job.lease_lost') > before) lostSeen++;
    }
    await stop();
    await run.drain(60_000);
    await sleep(1000); // late ledger rows of the resumed workers
    const [rejected] = await run.rows(
      `select count(*)::int as n from faults.ledger where outcome in ('rejected', 'aborted')`,
    );
    run.check(
      'resumed workers noticed their lost leases (job.lease_lost)',
      lostSeen > 0,
      `${lostSeen}/${rounds} rounds`,
    );
    run.check('late results refused or abandoned', rejected.n > 0, `${rejected.n} executions`);
    run.check(
      'no worker exited',
      run.workers.every((worker) => worker.alive),
    );
  },
};
