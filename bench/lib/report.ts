import os from 'node:os';
import type { SystemAdapter } from '../systems/types.js';

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
  jobs: number;
  w4: { rate: number; seconds: number };
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
  out.push(
    `- Jobs: ${r.jobs.toLocaleString('en-US')} (W2, W3), ${Math.ceil(r.jobs / 5).toLocaleString('en-US')} (W1); ` +
      `W4 ${r.w4.rate} jobs/s for ${r.w4.seconds} s; repetitions: ${r.reps}` +
      (r.reps > 1 ? ' (cells show median (min–max))' : ''),
  );
  out.push('');
  out.push(`| Workload | Metric | ${r.systems.map((s) => `${s.label} ${r.versions[s.id]}`).join(' | ')} |`);
  out.push(`|---|---|${r.systems.map(() => '---:').join('|')}|`);
  for (const m of r.metrics) {
    const cells = r.systems.map((s) => cell(r.samples.get(sampleKey(m, s.id)), m.digits));
    if (cells.every((c) => c === '–')) continue;
    out.push(`| ${m.workload} | ${m.label} (${m.better} is better) | ${cells.join(' | ')} |`);
  }
  out.push('', '## Workloads', '');
  out.push('- W1: single enqueues, 16 in flight from one process.');
  out.push('- W2: bulk enqueue, batches of 1,000 (one library call per batch), one process.');
  out.push(
    '- W3: jobs pre-enqueued (untimed); one worker process, concurrency 32, no-op handler. Timed from ' +
      'worker start until the store shows every job in a terminal state. CPU is per 10,000 jobs: the ' +
      'worker process (process.cpuUsage) and the store: all PostgreSQL processes, or for BullMQ the ' +
      'redis-server process (/proc utime+stime). BullMQ is done when its handlers have counted every job ' +
      'and its queue counts show none waiting or active and all of them completed or failed.',
  );
  out.push(
    '- W4: one process enqueues single jobs at a steady rate while a separate worker process ' +
      '(concurrency 32) runs; latency is handler start minus the enqueue timestamp in the payload.',
  );
  out.push('', '## Settings', '');
  for (const s of r.systems) out.push(`- ${s.label} ${r.versions[s.id]}: ${s.settings}`);
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
