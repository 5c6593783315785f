import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { z } from 'zod';
import { createBaton, defineKind } from '../../src/index.js';
import type { Payload, SystemAdapter } from './types.js';

/** The one kind the bench's Baton producers and workers use. */
export const BENCH_KIND = 'bench.noop';
const HISTORY_WORKER = 'bench-history';
const DAY_MS = 86_400_000;

/**
 * Jobs $1..$2 of $3 that finished as a no-op worker leaves them (completed after one attempt, no
 * result, no lease), of the kind the drain runs, so they share its indexes. finished_at is spread
 * evenly from 23 h 1 min to 1 min ago, oldest first in the heap as in a real table; each was
 * created 5 ms to 2 s before it finished. Ids are made as enqueue makes them, which placement in
 * the primary key depends on: UUIDv7 from created_at when $4 is 7, else random (v4).
 */
const historyInsert = `
insert into baton.jobs (id, kind, payload, state, attempts, max_attempts, last_attempt_at, worker_id,
                        run_at, created_at, updated_at, finished_at)
select case when $4::integer = 7
            then (lpad(to_hex(floor(extract(epoch from h.created_at) * 1000)::bigint), 12, '0') || '7'
                  || substr(md5(random()::text), 1, 3) || substr('89ab', 1 + floor(random() * 4)::integer, 1)
                  || substr(md5(random()::text), 1, 15))::uuid
            else gen_random_uuid() end,
       '${BENCH_KIND}', jsonb_build_object('t', floor(extract(epoch from h.created_at) * 1000)), 'completed', 1, 5,
       h.finished_at - interval '2 milliseconds', '${HISTORY_WORKER}',
       h.created_at, h.created_at, h.finished_at, h.finished_at
from (
  select f.finished_at, f.finished_at - (0.005 + random() * 2) * interval '1 second' as created_at
  from (
    select now() - interval '1 minute' - ($3::bigint - i)::float8 / $3::bigint * interval '23 hours' as finished_at
    from generate_series($1::bigint, $2::bigint) as i
  ) f
) h`;
const HISTORY_CHUNK = 250_000;
const schema = z.object({ t: z.number() });

function kind(onJob: (p: Payload) => void) {
  return defineKind({
    kind: BENCH_KIND,
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
    'createWorker({ concurrency: 32, logLevel: "warn" }) (W3x4: concurrency 8 per process), other worker settings ' +
    'default; producer maxConnections: 17; ' +
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
  // Each count reads its own partial index (jobs_pending_kind, jobs_running). Written as
  // `state in ('pending', 'running')` it was a parallel sequential scan of the whole table: ~270 ms
  // with the retained run's 1,000,000 finished jobs, timed in that drain (polled every 10 ms at its
  // end) and counted in its PostgreSQL CPU, which made the retained table look 18% slower to drain
  // and 24-38% costlier per job than the empty one on 2026-12-02.
  unfinishedSql: `select ((select count(*) from baton.jobs where state = 'pending')
                        + (select count(*) from baton.jobs where state = 'running'))::int as n`,
  async seedHistory(url, n, timeoutMs) {
    // Which UUID version does enqueue make? Enqueue one job, read its id, delete it.
    const b = createBaton({ connectionString: url });
    await b
      .enqueue(
        kind(() => {}),
        { t: 0 },
      )
      .finally(() => b.close());
    const c = new pg.Client({ connectionString: url, statement_timeout: timeoutMs });
    await c.connect();
    try {
      const probe = await c.query('delete from baton.jobs returning substr(id::text, 15, 1) as v');
      const version = Number(probe.rows[0].v);
      for (let first = 1; first <= n; first += HISTORY_CHUNK) {
        await c.query(historyInsert, [first, Math.min(n, first + HISTORY_CHUNK - 1), n, version]);
      }
      await c.query('vacuum analyze baton.jobs');
    } finally {
      await c.end();
    }
  },
  historyCountSql: `select count(*)::int as n from baton.jobs where worker_id = '${HISTORY_WORKER}'`,
  // The history spans the last 23 h; 2 days of retention keeps all of it however long the run takes.
  historyWorkerEnv: { BATON_RETAIN_COMPLETED_MS: String(2 * DAY_MS) },
};
