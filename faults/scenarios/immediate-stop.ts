/**
 * PostgreSQL stopped with `-m immediate` (a crash: no checkpoint, no clean shutdown) right after
 * enqueues were acknowledged, while more are in flight. Every acknowledged job survives and runs.
 */
import { work } from '../kinds.js';
import { FAST_LEASE, type Scenario, sleep } from '../lib/harness.js';
import { recoveryTimelines } from '../lib/timeline.js';

export const immediateStop: Scenario = {
  name: 'immediate-stop',
  summary:
    'pg_ctl stop -m immediate right after enqueues are acknowledged, 4 times (quick: 2), enqueues in flight',
  async run(run, size) {
    const rounds = size.quick ? 2 : 4;
    for (let index = 0; index < 2; index++)
      await run.startWorker({ env: { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn' } });
    for (let round = 0; round < rounds; round++) {
      // Single enqueues (group commit), a batch, and more singles that are still in flight at the crash.
      const acknowledged = Promise.all([
        ...Array.from({ length: 100 }, () => run.enqueue(work, { ms: 100 })),
        run.enqueueMany(
          work,
          Array.from({ length: 200 }, () => ({ ms: 0 })),
        ),
      ]);
      await acknowledged;
      const inFlight = Array.from({ length: 50 }, () => run.enqueue(work, { ms: 0 }));
      await run.fault('stop -m immediate', await run.runningJobs().catch(() => []));
      await run.cluster.stop('immediate');
      await Promise.all(inFlight);
      await sleep(500);
      await run.cluster.start();
      // When the server took connections again, for the recovery timelines (no job: not a fault).
      run.faults.push({ what: 'server back after the crash', atMs: await run.clock.now(), jobIds: [] });
      await sleep(1500);
    }
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000);
    const { timelines } = await recoveryTimelines(run, 4, 10);
    if (timelines) process.stdout.write(`immediate-stop: the slowest recoveries\n${timelines}\n`);
    run.check(
      'workers reconnected without a restart',
      run.workers.every((worker) => worker.alive),
    );
    run.note(`${run.indeterminate.size} enqueues in flight at a crash (may or may not exist)`);
  },
};
