/**
 * SIGKILL of a random worker every few seconds while jobs of 0.1 to 2 s run. A supervisor starts a
 * replacement, as systemd would. The killed worker's jobs come back when their leases expire.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, feed, type Scenario, sleep } from '../lib/harness.js';
import { recoveryTimelines } from '../lib/timeline.js';

export const sigkill: Scenario = {
  name: 'sigkill',
  summary:
    'SIGKILL of a random worker every 3 s, 30 times (quick: every 2 s, 6 times), jobs of 0.1 to 2 s (quick: to 1 s)',
  async run(run, size) {
    const kills = size.quick ? 6 : 30;
    const everyMs = size.quick ? 2000 : 3000;
    const longestMs = size.quick ? 1000 : 2000;
    const workers = size.quick ? 3 : 4;
    for (let index = 0; index < workers; index++)
      await run.startWorker({ env: { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn' } }, { restart: true });
    const stop = feed(run, work, size.quick ? 20 : 25, () => ({ ms: Math.round(between(100, longestMs)) }));
    let killed = 0;
    for (let index = 0; index < kills; index++) {
      await sleep(everyMs);
      const live = run.live().filter((worker) => worker.workerId);
      const victim = live[Math.floor(Math.random() * live.length)];
      if (!victim) continue;
      const before = await run.leasesOn(victim);
      const atMs = await run.clock.now();
      victim.kill('SIGKILL');
      await victim.exited;
      killed++;
      // What it held when it died: a job claimed, or a lease renewed, between the first read and the
      // kill shows only now (its lease cannot expire, nor be swept, within a read's time).
      const leases = { ...before, ...(await run.leasesOn(victim)) };
      run.faults.push({
        what: `SIGKILL ${victim.pid}`,
        atMs,
        jobIds: Object.keys(leases),
        victim: { pid: victim.pid, workerId: victim.workerId },
        leases,
      });
    }
    await stop();
    const drainedMs = await run.drain(60_000);
    run.check(`${killed} workers killed`, killed === kills);
    run.check('drained after the last kill', drainedMs < 60_000, `${(drainedMs / 1000).toFixed(1)} s`);
    // Where the slowest recoveries' time went (docs/reliability.md, "sigkill: where the longest recovery went").
    const { summary, timelines } = await recoveryTimelines(run, 5, 10); // 10: BATON_CONCURRENCY's default
    if (summary) run.note(summary);
    if (timelines) process.stdout.write(`sigkill: the slowest recoveries\n${timelines}\n`);
  },
};
