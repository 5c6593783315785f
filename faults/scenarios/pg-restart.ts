/**
 * PostgreSQL restarted (`pg_ctl restart -m fast`) several times mid-run. Workers reconnect by
 * themselves (no process restart), LISTEN comes back, and jobs enqueued after each restart run.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, feed, type Scenario, sleep } from '../lib/harness.js';
import { recoveryTimelines } from '../lib/timeline.js';

export const pgRestart: Scenario = {
  name: 'pg-restart',
  summary:
    'PostgreSQL restarted with -m fast 4 times (quick: 2) under a steady feed of 0.05 to 0.5 s jobs, 3 workers',
  async run(run, size) {
    const restarts = size.quick ? 2 : 4;
    for (let index = 0; index < 3; index++)
      await run.startWorker({ env: { ...FAST_LEASE }, keep: ['listener.connected', 'listener.lost'] });
    const pids = run.workers.map((worker) => worker.pid);
    const stop = feed(run, work, 20, () => ({ ms: Math.round(between(50, 500)) }));
    for (let round = 0; round < restarts; round++) {
      await sleep(3000);
      await run.fault('restart -m fast', await run.runningJobs());
      await run.cluster.restart('fast');
      // A job enqueued right after the restart: how soon it runs shows the workers are back.
      const at = await run.clock.now();
      const probe = await run.enqueue(work, { ms: 0 });
      run.faults.push({ what: 'enqueued after restart', atMs: at, jobIds: probe ? [probe] : [] });
    }
    await sleep(3000);
    await stop();
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000);
    const { timelines } = await recoveryTimelines(run, 4, 10);
    if (timelines) process.stdout.write(`pg-restart: the slowest recoveries\n${timelines}\n`);
    run.check(
      'same worker processes throughout',
      run.workers.every((worker) => worker.alive) && run.workers.length === pids.length,
    );
    const relistened = run.workers.map((worker) => worker.count('listener.connected'));
    run.check(
      'LISTEN came back after every restart',
      relistened.every((count) => count >= restarts + 1),
      `listener.connected ${relistened.join('/')}`,
    );
    const lost = run.workers.map((worker) => worker.count('listener.lost'));
    run.check(
      'log stays calm',
      lost.every((count) => count <= restarts),
      `listener.lost ${lost.join('/')}`,
    );
  },
};
