/**
 * What one single enqueue's statement costs at W4's pace, step by step, against PostgreSQL's own
 * floor: one connection sends one statement every `--interval-ms` (5, as W4's 200 jobs/s),
 * cycling through the variants below, each committed on its own (autocommit), while a Baton worker
 * (concurrency 32, bench/child.ts's `w4-worker` role) runs in another process and offers its slots
 * for hand-off, as in W4. Prints each variant's round trip (sent until answered) p50, p90 and p99.
 *
 *   node --import tsx bench/probes/statements.ts [--rounds 300] [--interval-ms 5]
 *
 * - `floor`: a one-row insert into a bare table (bigserial key, one number) with a NOTIFY that a
 *   second connection listens to: W4's floor statement (bench/roles/floor.ts).
 * - `job row`: one row into `baton.jobs` with typed parameters and the NOTIFY a plain enqueue sends:
 *   what the job row itself costs over the floor's.
 * - `plain insert`: Baton's `jobInsertManyUnkeyed` with a one-job batch, as an enqueue with no worker
 *   to hand to sends it.
 * - `hand-off`: Baton's `jobInsertHandingOff` with a one-job batch of the worker's kind: what W4's
 *   enqueues send. The report counts how many of them found a slot (the rest fell back to pending).
 *
 * The jobs of `job row` and `plain insert` are of a kind no worker serves, so they stay pending and
 * wake the worker only as a plain enqueue's NOTIFY does. Uses its own database (`bench_statements`,
 * dropped and created afresh). docs/performance.md ("W4 decomposed") has what it showed.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { rowsJson } from '../../src/core/enqueue.js';
import { newJobId } from '../../src/core/job-id.js';
import { jobInsertHandingOff } from '../../src/sql/handoff.js';
import { jobInsertManyUnkeyed } from '../../src/sql/jobs-write.js';
import { positiveInt } from '../lib/args.js';
import { dbUrl, resetDatabase } from '../lib/db.js';
import { startChild } from '../lib/proc.js';
import { quantile } from '../lib/quantile.js';
import { BENCH_KIND, baton } from '../systems/baton.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '300' },
    'interval-ms': { type: 'string', default: '5' },
  },
});
const rounds = positiveInt(opts.rounds, 'rounds', 100_000);
const intervalMs = positiveInt(opts['interval-ms'], 'interval-ms', 1000);

const DB = 'bench_statements';
const UNSERVED = 'probe.unserved';
const url = dbUrl(DB);
await resetDatabase(DB);
await baton.setup(url);

const row = (kind: string) =>
  rowsJson([
    { id: newJobId(), kind, payload: JSON.stringify({ t: Date.now() }), priority: 0, max_attempts: 5 },
  ]);
type Variant = { name: string; run: (c: pg.Client) => Promise<unknown> };
const variants: Variant[] = [
  {
    name: 'floor',
    run: (c) =>
      c.query({
        name: 'floor',
        text: "with i as (insert into probe_floor (sent) values ($1) returning id) select pg_notify('probe_floor', id::text) from i",
        values: [Date.now()],
      }),
  },
  {
    name: 'job row',
    run: (c) =>
      c.query({
        name: 'job_row',
        text: `with i as (insert into baton.jobs (id, kind, payload, priority, max_attempts)
                          values ($1, $2, $3, $4, $5) returning 1)
               select pg_notify('baton_jobs', '0') from i`,
        values: [newJobId(), UNSERVED, JSON.stringify({ t: Date.now() }), 0, 5],
      }),
  },
  {
    name: 'plain insert',
    run: (c) => c.query({ name: 'plain', text: jobInsertManyUnkeyed, values: [row(UNSERVED)] }),
  },
  {
    name: 'hand-off',
    run: (c) => c.query({ name: 'handoff', text: jobInsertHandingOff, values: [row(BENCH_KIND)] }),
  },
];

const worker = startChild({ role: 'w4-worker', system: 'baton', db: DB, jobs: 1e9, timeoutMs: 3_600_000 });
worker.result.catch(() => {}); // it is killed at the end
const sender = new pg.Client({ connectionString: url });
const listener = new pg.Client({ connectionString: url });
try {
  await worker.ready;
  await sender.connect();
  await listener.connect();
  await sender.query('create table probe_floor (id bigserial primary key, sent double precision not null)');
  await listener.query('listen probe_floor');

  for (let i = 0; i < 10; i++) for (const v of variants) await v.run(sender); // plans, caches
  const handedBefore = await handedCount(sender);
  const lat = new Map(variants.map((v) => [v.name, [] as number[]]));
  const start = performance.now();
  for (let i = 0; i < rounds * variants.length; i++) {
    const wait = start + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const v = variants[i % variants.length]!;
    const t0 = performance.now();
    await v.run(sender);
    lat.get(v.name)!.push(performance.now() - t0);
  }
  const handed = (await handedCount(sender)) - handedBefore;

  console.log(
    `One statement every ${intervalMs} ms, ${rounds} of each variant, in turn; round trip in ms.\n`,
  );
  console.log('| statement | p50 | p90 | p99 |\n|---|---:|---:|---:|');
  for (const [name, xs] of lat) {
    xs.sort((a, b) => a - b);
    const f = (q: number) => quantile(xs, q).toFixed(2);
    console.log(`| ${name} | ${f(0.5)} | ${f(0.9)} | ${f(0.99)} |`);
  }
  console.log(
    `\nhand-off: ${handed} of ${rounds} jobs handed to the worker (the rest were inserted pending).`,
  );
} finally {
  worker.proc.kill('SIGKILL');
  await sender.end().catch(() => {});
  await listener.end().catch(() => {});
}

/** Jobs of the worker's kind created already leased (a hand-off; a claim sets last_attempt_at later). */
async function handedCount(c: pg.Client): Promise<number> {
  const { rows } = await c.query(
    `select count(*)::int as n from baton.jobs where kind = $1 and last_attempt_at = created_at`,
    [BENCH_KIND],
  );
  return rows[0].n;
}
