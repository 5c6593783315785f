import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { createBaton, defineKind } from '../../src/index.js';
import type { Payload, SystemAdapter } from './types.js';

const KIND = 'bench.noop';
const schema = z.object({ t: z.number() });

function kind(onJob: (p: Payload) => void) {
  return defineKind({
    kind: KIND,
    payload: schema,
    handler: async (payload: Payload) => {
      onJob(payload);
    },
  });
}

export const baton: SystemAdapter = {
  id: 'baton',
  label: 'Baton',
  async version() {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    return `${pkg.version} (working tree)`;
  },
  settings:
    'createWorker({ concurrency: 32, logLevel: "warn" }), other worker settings default; producer maxConnections: 17; ' +
    'enqueueMany() for batches (one statement), enqueue() for singles',
  async setup(url) {
    const b = createBaton({ connectionString: url });
    try {
      await b.migrate();
    } finally {
      await b.close();
    }
  },
  async producer(url) {
    // Pool of 17 (default 10): room for W1's 16 enqueues in flight, as for the peers.
    const b = createBaton({ connectionString: url, maxConnections: 17 });
    const k = kind(() => {});
    return {
      async enqueue(payload) {
        await b.enqueue(k, payload);
      },
      async enqueueMany(payloads) {
        await b.enqueueMany(
          k,
          payloads.map((payload) => ({ payload })),
        );
      },
      close: () => b.close(),
    };
  },
  async startWorker(url, opts) {
    const b = createBaton({ connectionString: url });
    const worker = b.createWorker({
      kinds: [kind(opts.onJob)],
      concurrency: opts.concurrency,
      logLevel: 'warn',
    });
    await worker.start();
    return {
      async stop() {
        await worker.stop();
        await b.close();
      },
    };
  },
  unfinishedSql: "select count(*)::int as n from baton.jobs where state in ('pending', 'running')",
};
