import { type JobType, Queue, Worker } from 'bullmq';
import { installedVersion } from '../lib/pkg.js';
import {
  REDIS_DB,
  REDIS_HOST,
  REDIS_PORT,
  redisDescription,
  redisOptions,
  resetRedisDb,
} from '../lib/redis.js';
import type { Payload, SystemAdapter } from './types.js';

/**
 * BullMQ on the bench's own Redis logical database (lib/redis.ts), which run.ts flushes before
 * every (workload, repetition), so each run starts from an empty queue. The PostgreSQL URL the
 * harness passes is not used.
 *
 * Settings: BullMQ's documentation gives no throughput tuning beyond the worker's `concurrency`
 * (docs.bullmq.io guide: Workers > Concurrency, Going to production), so everything else is
 * default. Completed and failed jobs are kept (removeOnComplete/removeOnFail unset, BullMQ's
 * default), as Baton keeps finished jobs; the docs suggest removal to bound Redis memory, not as a
 * throughput setting. Stalled-job checks stay on (default stalledInterval 30 s): they are part of
 * BullMQ's at-least-once guarantee.
 */
const QUEUE = 'bench_noop';
const JOB = 'noop';
const PREFIX = 'bench';

function queue(): Queue<Payload> {
  const q = new Queue<Payload>(QUEUE, { connection: redisOptions(), prefix: PREFIX });
  q.on('error', (err: unknown) => console.error('[bullmq queue]', err));
  return q;
}

/** Job states that are not terminal (BullMQ's terminal states are completed and failed). */
const UNFINISHED: JobType[] = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'];

export const bullmq: SystemAdapter = {
  id: 'bullmq',
  label: 'BullMQ',
  store: 'redis',
  async version() {
    // The store's durability goes into the column header, next to every BullMQ figure.
    return `${await installedVersion('bullmq')} (${await redisDescription()})`;
  },
  settings:
    `Redis at ${REDIS_HOST}:${REDIS_PORT} db ${REDIS_DB} (FLUSHDB before each run), ioredis, prefix "${PREFIX}"; ` +
    'new Worker(queue, handler, { concurrency: 32 }) (W3x4: 8 per process), other worker options default (stalled checks on, ' +
    'stalledInterval 30 s, lockDuration 30 s, drainDelay 5 s); completed and failed jobs kept ' +
    '(removeOnComplete/removeOnFail unset, the default; Baton keeps finished jobs too); ' +
    'one Queue (one connection) per producer process: add() for singles, addBulk() for batches',
  reset: resetRedisDb,
  async setup() {
    const q = queue();
    await q.waitUntilReady();
    await q.close();
  },
  async producer() {
    const q = queue();
    await q.waitUntilReady();
    return {
      async enqueue(payload) {
        await q.add(JOB, payload);
      },
      async enqueueMany(payloads) {
        await q.addBulk(payloads.map((data) => ({ name: JOB, data })));
      },
      close: () => q.close(),
    };
  },
  async startWorker(_url, opts) {
    const worker = new Worker<Payload>(
      QUEUE,
      async (job) => {
        opts.onJob(job.data);
      },
      { connection: redisOptions(), prefix: PREFIX, concurrency: opts.concurrency },
    );
    worker.on('error', (err: unknown) => console.error('[bullmq worker]', err));
    await worker.waitUntilReady();
    return { stop: () => worker.close() };
  },
  async jobCounter() {
    const q = queue();
    await q.waitUntilReady();
    const sum = async (...types: JobType[]) =>
      Object.values(await q.getJobCounts(...types)).reduce((a, b) => a + b, 0);
    return {
      unfinished: () => sum(...UNFINISHED),
      terminal: () => sum('completed', 'failed'),
      close: () => q.close(),
    };
  },
};
