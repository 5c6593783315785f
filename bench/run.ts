/**
 * Benchmark harness: Baton vs pg-boss vs graphile-worker on the same PostgreSQL server, and BullMQ
 * on Redis. npm run bench -- --reps 3 [--systems baton,pgboss,graphile,bullmq]
 * [--workloads w1,w2,w3,w3x4,w4,retained,memory | --all] [--jobs 50000] [--retained 1000000]
 * [--memory-jobs 1000000]
 * Prints a markdown table to stdout and writes bench/results/latest.md. Progress goes to stderr.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fail, positiveInt } from './lib/args.js';
import { serverVersion } from './lib/db.js';
import { benchMetrics, FLOOR_SYSTEM } from './lib/metrics.js';
import type { Result } from './lib/proc.js';
import { renderReport, type Samples, sampleKey } from './lib/report.js';
import { runRetained } from './lib/retained.js';
import { type Plan, runCeiling, runFloor, runWorkload } from './lib/workloads.js';
import { loadSystem, SYSTEM_IDS } from './systems/index.js';
import type { SystemAdapter } from './systems/types.js';

const DEFAULT_WORKLOADS = ['w1', 'w2', 'w3', 'w3x4', 'w4'];
/** Long runs (a million jobs each by default): only with --workloads or --all. */
const LONG_WORKLOADS = ['retained', 'memory'];

const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '1' },
    systems: { type: 'string', default: SYSTEM_IDS.join(',') },
    workloads: { type: 'string' },
    all: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '50000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    retained: { type: 'string', default: '1000000' },
    'memory-jobs': { type: 'string', default: '1000000' },
  },
});

const reps = positiveInt(opts.reps, 'reps', 20);
const plan: Plan = {
  jobs: positiveInt(opts.jobs, 'jobs', 1_000_000),
  rate: positiveInt(opts.rate, 'rate', 5_000),
  seconds: positiveInt(opts.seconds, 'seconds', 120),
  retained: positiveInt(opts.retained, 'retained', 10_000_000),
  memoryJobs: positiveInt(opts['memory-jobs'], 'memory-jobs', 10_000_000),
};
if (opts.all && opts.workloads) fail('give either --workloads or --all');
const workloads = opts.all
  ? [...DEFAULT_WORKLOADS, ...LONG_WORKLOADS]
  : (opts.workloads?.split(',').map((w) => w.trim().toLowerCase()) ?? DEFAULT_WORKLOADS);
for (const w of workloads) {
  if (![...DEFAULT_WORKLOADS, ...LONG_WORKLOADS].includes(w)) fail(`unknown workload ${w}`);
}
const systems: SystemAdapter[] = [];
for (const id of opts.systems.split(',').map((s) => s.trim())) systems.push(await loadSystem(id));

const METRICS = benchMetrics(plan);
const samples: Samples = new Map();
const loadAtStart = os.loadavg()[0]!;
const notes: string[] = [];

function record(workload: string, system: string, result: Result | null): void {
  for (const m of METRICS.filter((x) => x.workload.toLowerCase() === workload)) {
    const v = result ? result[m.key] : Number.NaN;
    if (v === null || v === undefined) continue; // metric not available (e.g. no /proc)
    const key = sampleKey(m, system);
    samples.set(key, [...(samples.get(key) ?? []), v]);
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
if (workloads.includes('retained')) {
  for (const s of systems.filter((x) => !x.seedHistory)) {
    notes.push(`${s.label}: not measured in the table-size run (its adapter cannot write finished jobs)`);
  }
}

/** Measures of PostgreSQL alone run after a workload's repetition (lib/workloads.ts, roles/). */
const POSTGRES_ALONE: Record<string, { name: string; run: (plan: Plan) => Promise<Result> }> = {
  w1: { name: 'ceiling', run: runCeiling },
  w4: { name: 'floor', run: runFloor },
};

for (let rep = 1; rep <= reps; rep++) {
  for (const w of workloads) {
    for (const sys of systems) {
      if (w === 'retained' && !sys.seedHistory) continue;
      const note = (text: string) => notes.push(`${sys.label}, rep ${rep}, ${text}`);
      const r = await measure(
        `rep ${rep}/${reps} ${w} ${sys.label}`,
        w,
        sys.id,
        (message) => note(`${w.toUpperCase()} failed: ${message}`),
        () => (w === 'retained' ? runRetained(sys, plan, rep, note) : runWorkload(w, sys, plan, note)),
      );
      const n = w === 'memory' ? plan.memoryJobs : plan.jobs;
      if (['w3', 'w3x4', 'memory'].includes(w) && typeof r?.handled === 'number' && r.handled > n) {
        note(`${w.toUpperCase()}: handlers ran ${r.handled} times for ${n} jobs`);
      }
    }
    // After each repetition's W1 and W4: PostgreSQL's own ceiling or floor for it on this machine.
    const alone = POSTGRES_ALONE[w];
    if (alone) {
      await measure(
        `rep ${rep}/${reps} ${w} ${alone.name} (PostgreSQL alone)`,
        alone.name,
        FLOOR_SYSTEM,
        (message) => notes.push(`${w.toUpperCase()} ${alone.name}, rep ${rep}, failed: ${message}`),
        () => alone.run(plan),
      );
    }
  }
}

/**
 * Runs one measurement and records its result under (workload, system), printing its raw result
 * or FAILED to stderr; a failure is recorded as a failed sample and reported through `failed`.
 */
async function measure(
  label: string,
  workload: string,
  system: string,
  failed: (message: string) => void,
  run: () => Promise<Result>,
): Promise<Result | null> {
  process.stderr.write(`${label} ... `);
  const t0 = performance.now();
  try {
    const r = await run();
    record(workload, system, r);
    process.stderr.write(`${JSON.stringify(r)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    return r;
  } catch (err) {
    record(workload, system, null);
    failed((err as Error).message);
    process.stderr.write(`FAILED: ${(err as Error).message}\n`);
    return null;
  }
}

const report = renderReport({
  systems,
  versions,
  metrics: METRICS,
  samples,
  reps,
  plan,
  workloads,
  pgVersion,
  notes,
  loadAtStart,
});
const outDir = new URL('./results/', import.meta.url);
await mkdir(outDir, { recursive: true });
await writeFile(new URL('latest.md', outDir), report);
process.stdout.write(report);
