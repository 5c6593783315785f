/**
 * Benchmark harness: Baton vs pg-boss vs graphile-worker on the same PostgreSQL server, and BullMQ
 * on Redis. npm run bench -- --reps 3 [--systems baton,pgboss,graphile,bullmq] [--workloads w1,w2,w3,w4]
 * [--jobs 50000]
 * Prints a markdown table to stdout and writes bench/results/latest.md. Progress goes to stderr.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { checkpoint, resetDatabase, serverVersion } from './lib/db.js';
import { type ChildArgs, runChild, startChild } from './lib/proc.js';
import { type Metric, renderReport, type Samples, sampleKey } from './lib/report.js';
import { loadSystem, SYSTEM_IDS } from './systems/index.js';
import type { SystemAdapter } from './systems/types.js';

const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '1' },
    systems: { type: 'string', default: SYSTEM_IDS.join(',') },
    workloads: { type: 'string', default: 'w1,w2,w3,w4' },
    jobs: { type: 'string', default: '50000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
});

const reps = positiveInt(opts.reps, 'reps', 20);
const jobs = positiveInt(opts.jobs, 'jobs', 1_000_000);
const rate = positiveInt(opts.rate, 'rate', 5_000);
const seconds = positiveInt(opts.seconds, 'seconds', 120);
const workloads = opts.workloads.split(',').map((w) => w.trim().toLowerCase());
for (const w of workloads) if (!['w1', 'w2', 'w3', 'w4'].includes(w)) fail(`unknown workload ${w}`);
const systems: SystemAdapter[] = [];
for (const id of opts.systems.split(',').map((s) => s.trim())) systems.push(await loadSystem(id));

const METRICS: Metric[] = [
  {
    workload: 'W1',
    label: 'single enqueue, 16 in flight, jobs/s',
    key: 'jobsPerSec',
    digits: 0,
    better: 'higher',
  },
  { workload: 'W2', label: 'bulk enqueue, jobs/s', key: 'jobsPerSec', digits: 0, better: 'higher' },
  { workload: 'W3', label: 'drain, jobs/s', key: 'jobsPerSec', digits: 0, better: 'higher' },
  { workload: 'W3', label: 'worker CPU s / 10k jobs', key: 'workerCpuPer10k', digits: 2, better: 'lower' },
  {
    workload: 'W3',
    label: 'store CPU s / 10k jobs (PostgreSQL; redis-server for BullMQ)',
    key: 'storeCpuPer10k',
    digits: 2,
    better: 'lower',
  },
  { workload: 'W4', label: 'latency p50, ms', key: 'p50', digits: 1, better: 'lower' },
  { workload: 'W4', label: 'latency p99, ms', key: 'p99', digits: 1, better: 'lower' },
];

const samples: Samples = new Map();
const loadAtStart = os.loadavg()[0]!;
const notes: string[] = [];

function positiveInt(v: string, name: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) fail(`--${name} must be an integer in 1..${max}, got ${v}`);
  return n;
}

function fail(msg: string): never {
  console.error(msg);
  process.exit(2);
}

function record(workload: string, system: string, result: Record<string, number | null> | null): void {
  for (const m of METRICS.filter((x) => x.workload === workload.toUpperCase())) {
    const v = result ? result[m.key] : Number.NaN;
    if (v === null || v === undefined) continue; // metric not available (e.g. no /proc)
    const key = sampleKey(m, system);
    samples.set(key, [...(samples.get(key) ?? []), v]);
  }
}

async function runWorkload(
  w: string,
  sys: SystemAdapter,
  rep: number,
): Promise<Record<string, number | null>> {
  const db = `bench_${sys.id}`;
  const base = { system: sys.id, db };
  const child = (role: string, n: number, timeoutMs: number, extra: Partial<ChildArgs> = {}) =>
    runChild({ ...base, role, jobs: n, timeoutMs, ...extra });
  if (sys.reset) await sys.reset();
  else await resetDatabase(db);
  await child('setup', 0, 60_000);
  switch (w) {
    case 'w1':
      await checkpoint();
      return child('w1', Math.ceil(jobs / 5), 120_000 + jobs);
    case 'w2':
      await checkpoint();
      return child('w2', jobs, 120_000 + jobs * 2);
    case 'w3':
      await child('seed', jobs, 120_000 + jobs * 2);
      return child('w3', jobs, 180_000 + jobs * 4);
    default: {
      const n = rate * seconds;
      await checkpoint();
      const worker = startChild({
        ...base,
        role: 'w4-worker',
        jobs: n + 1,
        timeoutMs: seconds * 1000 + 60_000,
      });
      await worker.ready;
      let expected = n + 1; // the enqueuer's untimed warm-up job is counted too
      try {
        const enq = await child('w4-enqueue', n, seconds * 1000 + 30_000, { rate });
        if (enq.skipped) {
          notes.push(
            `${sys.label} W4 rep ${rep}: enqueuer fell behind (64 in flight), skipped ${enq.skipped} of ${n}`,
          );
        }
        if (typeof enq.sent === 'number') expected = enq.sent + 1;
        worker.proc.stdin?.write(`${expected}\n`);
      } catch (err) {
        worker.proc.kill('SIGKILL');
        throw err;
      }
      const r = await worker.result;
      if (typeof r.received === 'number' && r.received < expected) {
        notes.push(`${sys.label} W4 rep ${rep}: worker saw only ${r.received} of ${expected} jobs in time`);
      }
      return r;
    }
  }
}

const versions: Record<string, string> = {};
for (const s of systems) {
  try {
    versions[s.id] = await s.version();
  } catch (err) {
    const hint = s.store === 'redis' ? ' (it needs Redis; leave it out with --systems)' : '';
    fail(`${s.label}: ${(err as Error).message}${hint}`);
  }
}
const pgVersion = await serverVersion();

for (let rep = 1; rep <= reps; rep++) {
  for (const w of workloads) {
    for (const sys of systems) {
      process.stderr.write(`rep ${rep}/${reps} ${w} ${sys.label} ... `);
      const t0 = performance.now();
      try {
        const r = await runWorkload(w, sys, rep);
        record(w, sys.id, r);
        if (w === 'w3' && r.handled !== null && r.handled !== undefined && r.handled > jobs) {
          notes.push(`${sys.label} W3 rep ${rep}: handler ran ${r.handled} times for ${jobs} jobs`);
        }
        process.stderr.write(`${JSON.stringify(r)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      } catch (err) {
        record(w, sys.id, null);
        notes.push(`${sys.label} ${w.toUpperCase()} rep ${rep} failed: ${(err as Error).message}`);
        process.stderr.write(`FAILED: ${(err as Error).message}\n`);
      }
    }
  }
}

const report = renderReport({
  systems,
  versions,
  metrics: METRICS,
  samples,
  reps,
  jobs,
  w4: { rate, seconds },
  pgVersion,
  notes,
  loadAtStart,
});
const outDir = new URL('./results/', import.meta.url);
await mkdir(outDir, { recursive: true });
await writeFile(new URL('latest.md', outDir), report);
process.stdout.write(report);
