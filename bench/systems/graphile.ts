import { Logger, makeWorkerUtils, run, runMigrations, WorkerPreset } from 'graphile-worker';
import { installedVersion } from '../lib/pkg.js';
import type { Payload, SystemAdapter } from './types.js';

const TASK = 'bench_noop';

/** Only warnings and errors, to stderr (stdout carries the harness protocol). */
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`[graphile-worker] ${level}: ${message}`);
});

/**
 * The configuration of graphile-worker's documented performance test
 * (https://worker.graphile.org/docs/performance), scaled to concurrency 32.
 */
function preset(url: string, concurrency: number) {
  return {
    extends: [WorkerPreset],
    worker: {
      connectionString: url,
      concurrentJobs: concurrency,
      maxPoolSize: concurrency + 1,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
      pollInterval: 2000,
      useNodeTime: true,
      fileExtensions: ['.js', '.cjs', '.mjs'],
      logger,
    },
  };
}

export const graphile: SystemAdapter = {
  id: 'graphile',
  label: 'graphile-worker',
  version: () => installedVersion('graphile-worker'),
  settings:
    'preset: [WorkerPreset] + { concurrentJobs: 32, maxPoolSize: 33, localQueue: { size: 500 }, ' +
    'completeJobBatchDelay: 0, failJobBatchDelay: 0, pollInterval: 2000, useNodeTime: true } ' +
    '(W3x4: concurrentJobs: 8, maxPoolSize: 9 per process); ' +
    'addJobs() for batches, addJob() for singles',
  async setup(url) {
    await runMigrations({ preset: preset(url, 1) });
  },
  async producer(url) {
    // Pool of 17: room for W1's 16 enqueues in flight.
    const utils = await makeWorkerUtils({ preset: preset(url, 16) });
    return {
      async enqueue(payload) {
        await utils.addJob(TASK, payload);
      },
      async enqueueMany(payloads) {
        await utils.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
      },
      async close() {
        await utils.release();
      },
    };
  },
  async startWorker(url, opts) {
    const runner = await run({
      preset: preset(url, opts.concurrency),
      noHandleSignals: true,
      taskList: {
        [TASK]: async (payload) => {
          opts.onJob(payload as Payload);
        },
      },
    });
    return { stop: () => runner.stop() };
  },
  // Completed jobs are deleted; a permanently failed one stays unlocked with attempts = max_attempts.
  unfinishedSql:
    'select count(*)::int as n from graphile_worker._private_jobs where locked_at is not null or attempts < max_attempts',
};
