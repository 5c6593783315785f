import os from 'node:os';
import type { SystemAdapter } from '../systems/types.js';
import { FLOOR_SYSTEM } from './metrics.js';
import type { Plan } from './workloads.js';

export interface Metric {
  workload: string;
  label: string;
  /** Key in a child's result object. */
  key: string;
  digits: number;
  better: 'higher' | 'lower';
}

/** samples[metricIndex][systemId] = values over the repetitions (NaN for a failed run). */
export type Samples = Map<string, number[]>;

export const sampleKey = (m: Metric, system: string) => `${m.workload}/${m.key}/${system}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(x: number, digits: number): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(values: number[] | undefined, digits: number): string {
  if (!values || values.length === 0) return '–';
  const ok = values.filter((v) => Number.isFinite(v));
  const failed = values.length - ok.length;
  if (ok.length === 0) return 'failed';
  let s = fmt(median(ok), digits);
  if (ok.length > 1) s += ` (${fmt(Math.min(...ok), digits)}–${fmt(Math.max(...ok), digits)})`;
  if (failed) s += ` [${failed} failed]`;
  return s;
}

export interface ReportInput {
  systems: SystemAdapter[];
  versions: Record<string, string>;
  metrics: Metric[];
  samples: Samples;
  reps: number;
  plan: Plan;
  /** The workloads run (their descriptions are printed). */
  workloads: string[];
  pgVersion: string;
  notes: string[];
  /** os.loadavg()[0] when the run started: other load on the machine skews results. */
  loadAtStart: number;
}

export function renderReport(r: ReportInput): string {
  const cpu = os.cpus();
  const out: string[] = [];
  out.push('# Baton benchmark', '');
  out.push(`- Date: ${new Date().toISOString()}`);
  out.push(
    `- Machine: ${cpu.length} CPUs, ${cpu[0]?.model ?? 'unknown'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; ` +
      `1-min load average ${r.loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end`,
  );
  out.push(
    `- Node ${process.version}, PostgreSQL ${r.pgVersion} on 127.0.0.1 (one fresh database per system and run)`,
  );
  for (const s of r.systems.filter((x) => x.store === 'redis')) {
    const v = r.versions[s.id] ?? '';
    out.push(
      `- ${s.label} ${v} runs on Redis, not PostgreSQL` +
        (v.includes('no persistence')
          ? ': this Redis keeps nothing on disk (no AOF, no RDB, no fsync), so an acknowledged job is lost ' +
            'if Redis stops; the PostgreSQL systems commit with fsync on. Compare with that in mind.'
          : '.'),
    );
  }
  const n = (x: number) => x.toLocaleString('en-US');
  const p = r.plan;
  out.push(
    `- Jobs: ${n(p.jobs)} (W2, W3, W3x4), ${n(Math.ceil(p.jobs / 5))} (W1); W4 ${p.rate} jobs/s for ${p.seconds} s` +
      (r.workloads.includes('retained') ? `; retained: ${n(p.retained)} finished jobs` : '') +
      (r.workloads.includes('memory') ? `; memory: ${n(p.memoryJobs)} jobs` : '') +
      `; repetitions: ${r.reps}${r.reps > 1 ? ' (cells show median (min–max))' : ''}`,
  );
  out.push('');
  out.push(`| Workload | Metric | ${r.systems.map((s) => `${s.label} ${r.versions[s.id]}`).join(' | ')} |`);
  out.push(`|---|---|${r.systems.map(() => '---:').join('|')}|`);
  for (const m of r.metrics) {
    const cells = r.systems.map((s) => cell(r.samples.get(sampleKey(m, s.id)), m.digits));
    if (cells.every((c) => c === '–')) continue;
    out.push(`| ${m.workload} | ${m.label} (${m.better} is better) | ${cells.join(' | ')} |`);
  }
  /** A table of its own for a PostgreSQL-alone measure (the FLOOR_SYSTEM column), if it ran. */
  const postgresAlone = (workload: string, title: string, intro: string, digits: number) => {
    const rows = r.metrics
      .filter((m) => m.workload === workload)
      .map((m) => [m.label, r.samples.get(sampleKey(m, FLOOR_SYSTEM))] as const)
      .filter(([, values]) => values !== undefined);
    if (rows.length === 0) return;
    out.push('', `## ${title}`, '', intro, '', '| measure | PostgreSQL |', '|---|---:|');
    for (const [label, values] of rows) out.push(`| ${label} | ${cell(values, digits)} |`);
  };
  postgresAlone(
    'Ceiling',
    "W1's ceiling: PostgreSQL alone, 16 in flight",
    `${n(Math.ceil(r.plan.jobs / 5))} durable single-row inserts after 1,000 untimed, on a fresh database, no queue ` +
      'library (bench/roles/ceiling.ts): what PostgreSQL alone reaches with 16 in flight, grouped into one commit ' +
      "per 16 (as Baton's single enqueues are) and as 16 separate commits. A W1 far below the better of the two " +
      'is spent in the queue, not in the commit.',
    0,
  );
  postgresAlone(
    'Floor',
    "W4's floor: PostgreSQL alone at W4's pace",
    `One statement every ${fmt(1000 / r.plan.rate, 0)} ms on a fresh database, no queue library ` +
      '(bench/roles/floor.ts). A queue whose enqueue is durable before its job may start cannot start a job ' +
      'sooner than the first row after the enqueue is sent.',
    2,
  );
  out.push('', '## Workloads', '');
  for (const [w, text] of Object.entries(DESCRIPTIONS)) {
    if (r.workloads.includes(w)) out.push(`- ${w === 'w3x4' ? 'W3x4' : w.toUpperCase()}: ${text}`);
  }
  out.push('', '## Settings', '');
  for (const s of r.systems) out.push(`- ${s.label} ${r.versions[s.id]}: ${s.settings}`);
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

const DESCRIPTIONS: Record<string, string> = {
  w1: 'single enqueues, 16 in flight from one process.',
  w2: 'bulk enqueue, batches of 1,000 (one library call per batch), one process.',
  w3:
    'jobs pre-enqueued (untimed); one worker process, concurrency 32, no-op handler. Timed from ' +
    'worker start until the store shows every job in a terminal state. CPU is per 10,000 jobs: the ' +
    'worker process (process.cpuUsage) and the store: the PostgreSQL server at 127.0.0.1:5432 (its ' +
    "postmaster and children; other databases' work on it during the run counts too), or for BullMQ the " +
    'redis-server process (/proc utime+stime). BullMQ is done when its handlers have counted every job ' +
    'and its queue counts show none waiting or active and all of them completed or failed.',
  w3x4:
    "W3's drain by 4 worker processes at concurrency 8 each (32 slots in all, as in W3). Timed by the " +
    'orchestrator from "go" (all 4 processes loaded, then each starts its worker) until the store shows ' +
    'every job terminal (once the handler counts the processes report add up to N, it polls every 10 ms). ' +
    'Worker CPU is the sum over the 4 processes from "go" to the end; store CPU as in W3.',
  w4:
    'one process enqueues single jobs at a steady rate while a separate worker process ' +
    '(concurrency 32) runs; latency is handler start minus the enqueue timestamp in the payload.',
  retained:
    'W4 and then W3 on a table holding the retained finished jobs (written with SQL, finished over the ' +
    'last 23 h, then VACUUM ANALYZE; retention set to 2 days so none is deleted meanwhile), and the same ' +
    'on an empty table, in the same repetition (the order alternates between repetitions). Ratio is ' +
    'retained / empty per repetition, then the median.',
  memory:
    'one worker process at concurrency 32 drains the jobs (pre-enqueued in batches of 1,000, untimed) as ' +
    'in W3; the process samples its own RSS (process.memoryUsage.rss()) every 250 ms. It runs as compiled ' +
    'JavaScript (bench/child.ts bundled by esbuild, Baton from src/), not under tsx, as a deployed worker would.',
};
