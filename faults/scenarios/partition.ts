/**
 * A worker cut off from PostgreSQL for twice its lease (a proxy stops forwarding, then delivers
 * everything late, as TCP does once a partition heals). It must abort its handlers within one lease
 * of its last renewal, others must run its jobs, and its results must be refused when it comes back.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, feed, type Scenario, sleep } from '../lib/harness.js';
import { startFaultProxy } from '../lib/proxy.js';

const LEASE_MS = 2000;

export const partition: Scenario = {
  name: 'partition',
  summary:
    'one of 3 workers partitioned from PostgreSQL for 2x its 2 s lease, 4 times (quick: 2); jobs of 1.5 to 4 s',
  async run(run, size) {
    const rounds = size.quick ? 2 : 4;
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: run.cluster.port });
    try {
      const url = `postgres://postgres@127.0.0.1:${proxy.port}/${run.database}`;
      const cutOff = await run.startWorker({ databaseUrl: url, env: FAST_LEASE, keep: ['job.lease_lost'] });
      for (let index = 0; index < 2; index++) await run.startWorker({ env: FAST_LEASE });
      const stop = feed(run, work, 8, () => ({
        ms: Math.round(between(1500, 4000)),
        ignoreAbort: Math.random() < 0.3,
      }));
      const cuts: { at: number; held: string[] }[] = [];
      const affected: string[] = [];
      for (let round = 0; round < rounds; round++) {
        await sleep(3000);
        const held = await run.runningOn(cutOff);
        affected.push(...held);
        const at = await run.fault('partition', held);
        proxy.pause();
        await sleep(2 * LEASE_MS);
        proxy.resume();
        await sleep(2000);
        cuts.push({ at, held });
      }
      await stop();
      await run.drain(60_000);
      await sleep(1000);
      // How long after each cut its handlers were aborted (lease_lost), on database time.
      const late: number[] = [];
      for (const { at, held } of cuts) {
        const aborts = await run.rows(
          `select ended_ms - $1 as after_ms from faults.ledger where worker_pid = $2 and job_id = any($3) and outcome = 'aborted'`,
          [at, cutOff.pid, held],
        );
        late.push(...aborts.map((row) => Number(row.after_ms)));
      }
      const worst = Math.max(0, ...late);
      // The abort is recorded by the cut-off worker in its own transaction, which may never reach
      // the database while it is cut off; with no abort recorded there is nothing to time. That is
      // reported, not failed (seen once in a quick CI run); a recorded abort past one lease fails.
      // Judged in every run. Quick runs on 2026-12-01 showed aborts 2.1 to 2.7 s after the cut (3
      // of 10) until the worker stopped starting buffered jobs past their lease and armed the
      // deadline timer when a job starts; a fresh-clone CI run on 2026-12-02 still saw 2.4 s once:
      // Node fires a timer up to ~1 ms early, and the deadline check then left the abort to the next
      // heartbeat tick, up to a third of a lease later. Since the timer re-checks at once (e142f9b),
      // 12 quick runs beside a CPU burner aborted 1.06 to 1.76 s after the cut (the deadline is at
      // most 1.8 s after it).
      const within = `worst ${Math.round(worst)} ms, ${late.length} handlers`;
      if (late.length === 0)
        run.note('no abort of a held handler was recorded, so abort time is not measured');
      else run.check('handlers aborted within one lease of the cut', worst <= LEASE_MS, within);
      const [elsewhere] = await run.rows(
        `select count(distinct job_id)::int as n from faults.ledger where job_id = any($1) and worker_pid <> $2 and outcome = 'completed'`,
        [affected, cutOff.pid],
      );
      run.check(
        'other workers ran its jobs',
        affected.length === 0 || elsewhere.n > 0,
        `${elsewhere.n} of ${affected.length}`,
      );
      const [refused] = await run.rows(
        `select count(*)::int as n from faults.ledger where worker_pid = $1 and job_id = any($2) and outcome in ('rejected', 'aborted')`,
        [cutOff.pid, affected],
      );
      run.check(
        'its results refused when it came back',
        affected.length === 0 || refused.n > 0,
        `${refused.n} executions`,
      );
      run.check('the cut-off worker is still running', cutOff.alive);
    } finally {
      await proxy.close();
    }
  },
};
