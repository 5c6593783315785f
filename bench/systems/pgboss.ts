import { PgBoss } from 'pg-boss';
import { installedVersion } from '../lib/pkg.js';
import type { Payload, SystemAdapter } from './types.js';

const QUEUE = 'bench_noop';

/**
 * Concurrency is split as localConcurrency x batchSize. pg-boss runs a batch handler once per
 * fetched batch and completes the batch in one statement. Measured on the 2-core dev box (W3,
 * 50k jobs, concurrency 32): 8x4 was fastest (median ~2,050 jobs/s), 1x32 ~1,600, 2x16 ~2,000,
 * 4x8 ~900-1,300, 32x1 under 100 (each of 32 single-job workers waits out the poll interval).
 * Batches of 4 are kept at other concurrencies: W3x4's processes at concurrency 8 run 2x4, so the
 * fleet fetches in the same 8 loops of 4 as one process at 32. Override with
 * BENCH_PGBOSS_SHAPE="LCxBS" (e.g. "1x32", per process) to try other splits.
 */
function shape(concurrency: number): { localConcurrency: number; batchSize: number } {
  const m = /^(\d+)x(\d+)$/.exec(process.env.BENCH_PGBOSS_SHAPE ?? '');
  if (m) return { localConcurrency: Number(m[1]), batchSize: Number(m[2]) };
  const batchSize = Math.min(4, concurrency);
  return { localConcurrency: Math.ceil(concurrency / batchSize), batchSize };
}

function boss(url: string): PgBoss {
  const b = new PgBoss({ connectionString: url, max: 17, schedule: false, useListenNotify: true });
  b.on('error', (err: unknown) => console.error('[pg-boss]', err));
  return b;
}

const { localConcurrency, batchSize } = shape(32);
const perProcess = shape(8);

export const pgboss: SystemAdapter = {
  id: 'pgboss',
  label: 'pg-boss',
  version: () => installedVersion('pg-boss'),
  settings:
    `new PgBoss({ max: 17, schedule: false, useListenNotify: true }); createQueue(notify: true); ` +
    `work({ localConcurrency: ${localConcurrency}, batchSize: ${batchSize}, burstWhenBatchFull: true, ` +
    'pollingIntervalSeconds: 0.5 }) with a batch handler; insert() for batches, send() for singles; ' +
    `W3x4 (concurrency 8 per process): localConcurrency ${perProcess.localConcurrency}, batchSize ${perProcess.batchSize}`,
  async setup(url) {
    const b = boss(url);
    await b.start();
    await b.createQueue(QUEUE, { notify: true });
    await b.stop({ graceful: false });
  },
  async producer(url) {
    const b = boss(url);
    await b.start();
    return {
      async enqueue(payload) {
        await b.send(QUEUE, payload);
      },
      async enqueueMany(payloads) {
        await b.insert(
          QUEUE,
          payloads.map((data) => ({ data })),
        );
      },
      close: () => b.stop({ graceful: false }),
    };
  },
  async startWorker(url, opts) {
    const b = boss(url);
    await b.start();
    const s = shape(opts.concurrency);
    await b.work<Payload>(
      QUEUE,
      { ...s, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        for (const job of jobs) opts.onJob(job.data);
      },
    );
    return { stop: () => b.stop({ graceful: true, timeout: 5000 }) };
  },
  unfinishedSql: "select count(*)::int as n from pgboss.job where state in ('created', 'retry', 'active')",
};
