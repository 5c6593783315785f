/**
 * A soak: a steady feed for --soak-minutes (default 30) with retention on. Worker memory stays flat,
 * the jobs table's size stays bounded, and the time from enqueue to start (claiming) stays flat.
 */
import { work } from '../kinds.js';
import { between, FAST_LEASE, feed, type Scenario, sleep } from '../lib/harness.js';

export const soak: Scenario = {
  name: 'soak',
  summary: 'steady 100 jobs/s of 0 to 20 ms on 4 workers for --soak-minutes (30), completed jobs kept 60 s',
  fullOnly: true,
  async run(run, size) {
    const env = {
      ...FAST_LEASE,
      BATON_LOG_LEVEL: 'warn',
      BATON_RETAIN_COMPLETED_MS: '60000',
      BATON_RETENTION_INTERVAL_MS: '10000',
    };
    for (let index = 0; index < 4; index++) await run.startWorker({ env });
    const stop = feed(run, work, 100, () => ({ ms: Math.round(between(0, 20)) }));
    const samples: { rssMb: number; tableMb: number; pickupMs: number }[] = [];
    const minutes = Math.max(2, size.soakMinutes);
    for (let minute = 1; minute <= minutes; minute++) {
      await sleep(60_000);
      const [table] = await run.rows(`select pg_total_relation_size('baton.jobs') / 1048576.0 as mb`);
      const [pickup] = await run.rows(
        `select percentile_cont(0.5) within group (order by l.started_ms - extract(epoch from j.created_at) * 1000) as p50
         from faults.ledger l join baton.jobs j on j.id = l.job_id
         where l.started_ms > extract(epoch from clock_timestamp()) * 1000 - 60000`,
      );
      const rss = run.workers.map((worker) => worker.rssKb() / 1024);
      samples.push({ rssMb: Math.max(...rss), tableMb: Number(table.mb), pickupMs: Number(pickup.p50) });
    }
    await stop();
    await run.drain(60_000);
    const settled = samples[Math.min(4, samples.length - 2)]!; // after the first retention cycles
    const last = samples.at(-1)!;
    const show = (pick: (sample: (typeof samples)[number]) => number) =>
      `${pick(settled).toFixed(0)} → ${pick(last).toFixed(0)}`;
    run.check('worker memory flat', last.rssMb <= settled.rssMb * 1.3, `max RSS MB ${show((s) => s.rssMb)}`);
    run.check('jobs table bounded', last.tableMb <= settled.tableMb * 2 + 5, `MB ${show((s) => s.tableMb)}`);
    run.check(
      'claim time flat',
      last.pickupMs <= settled.pickupMs * 2 + 20,
      `p50 enqueue→start ms ${show((s) => s.pickupMs)}`,
    );
  },
};
