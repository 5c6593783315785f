import type { Metric } from './report.js';

const n = (x: number) => x.toLocaleString('en-US');

/** The column under which W1's ceiling and W4's floor (roles/) are recorded: PostgreSQL alone, no queue library. */
export const FLOOR_SYSTEM = 'postgres';

/** Rows of the report, in order; `workload` is matched (ignoring case) with the --workloads name. */
export function benchMetrics(p: { retained: number; memoryJobs: number }): Metric[] {
  const store = 'store CPU s / 10k jobs (PostgreSQL; redis-server for BullMQ)';
  return [
    {
      workload: 'W1',
      label: 'single enqueue, 16 in flight, jobs/s',
      key: 'jobsPerSec',
      digits: 0,
      better: 'higher',
    },
    { workload: 'W2', label: 'bulk enqueue, jobs/s', key: 'jobsPerSec', digits: 0, better: 'higher' },
    {
      workload: 'W3',
      label: 'drain, 1 process x concurrency 32, jobs/s',
      key: 'jobsPerSec',
      digits: 0,
      better: 'higher',
    },
    { workload: 'W3', label: 'worker CPU s / 10k jobs', key: 'workerCpuPer10k', digits: 2, better: 'lower' },
    { workload: 'W3', label: store, key: 'storeCpuPer10k', digits: 2, better: 'lower' },
    {
      workload: 'W3x4',
      label: 'drain, 4 processes x concurrency 8, jobs/s',
      key: 'jobsPerSec',
      digits: 0,
      better: 'higher',
    },
    {
      workload: 'W3x4',
      label: 'worker CPU s / 10k jobs (sum of the 4 processes)',
      key: 'workerCpuPer10k',
      digits: 2,
      better: 'lower',
    },
    { workload: 'W3x4', label: store, key: 'storeCpuPer10k', digits: 2, better: 'lower' },
    { workload: 'W4', label: 'latency p50, ms', key: 'p50', digits: 1, better: 'lower' },
    { workload: 'W4', label: 'latency p99, ms', key: 'p99', digits: 1, better: 'lower' },
    ...ceilingMetrics(),
    ...floorMetrics(),
    ...retainedMetrics(n(p.retained)),
    {
      workload: 'Memory',
      label: `drain ${n(p.memoryJobs)} jobs, jobs/s`,
      key: 'jobsPerSec',
      digits: 0,
      better: 'higher',
    },
    {
      workload: 'Memory',
      label: 'max RSS, MB (sampled every 250 ms)',
      key: 'rssMaxMb',
      digits: 0,
      better: 'lower',
    },
    {
      workload: 'Memory',
      label: 'RSS when 10% of jobs had started, MB',
      key: 'rssAt10Mb',
      digits: 0,
      better: 'lower',
    },
    { workload: 'Memory', label: 'RSS at the end, MB', key: 'rssEndMb', digits: 0, better: 'lower' },
    {
      workload: 'Memory',
      label: 'RSS before the worker started (harness + library), MB',
      key: 'rssBaselineMb',
      digits: 0,
      better: 'lower',
    },
    {
      workload: 'Memory',
      label: 'worker CPU s / 10k jobs',
      key: 'workerCpuPer10k',
      digits: 2,
      better: 'lower',
    },
  ];
}

function retainedMetrics(retained: string): Metric[] {
  const rows: Metric[] = [];
  const add = (what: string, key: string, digits: number, better: Metric['better']) => {
    rows.push(
      { workload: 'Retained', label: `${what}, empty table`, key: `${key}Empty`, digits, better },
      {
        workload: 'Retained',
        label: `${what}, ${retained} finished jobs retained`,
        key: `${key}Retained`,
        digits,
        better,
      },
      {
        workload: 'Retained',
        label: `${what}, ratio retained / empty`,
        key: `${key}Ratio`,
        digits: 2,
        better,
      },
    );
  };
  add('W3 drain, jobs/s', 'drain', 0, 'higher');
  add('W3 PostgreSQL CPU s / 10k jobs', 'storeCpu', 2, 'lower');
  add('W4 latency p50, ms', 'p50', 1, 'lower');
  add('W4 latency p99, ms', 'p99', 1, 'lower');
  return rows;
}

/** W1's ceiling, shown in a table of its own (report.ts): rows per second each way. */
function ceilingMetrics(): Metric[] {
  return [
    {
      workload: 'Ceiling',
      label: 'one connection, 16 rows per durable commit with one NOTIFY, rows/s',
      key: 'groupedRowsPerSec',
      digits: 0,
      better: 'higher',
    },
    {
      workload: 'Ceiling',
      label: '16 connections, one row per durable commit, no NOTIFY, rows/s',
      key: 'parallelRowsPerSec',
      digits: 0,
      better: 'higher',
    },
  ];
}

/** W4's floor, shown in a table of its own (report.ts): p50 and p99 of each of its three measures. */
function floorMetrics(): Metric[] {
  const rows: Metric[] = [];
  const add = (what: string, key: string) => {
    for (const q of ['P50', 'P99']) {
      rows.push({
        workload: 'Floor',
        label: `${what}, ${q.toLowerCase()} ms`,
        key: `${key}${q}`,
        digits: 2,
        better: 'lower',
      });
    }
  };
  add('durable one-row insert + NOTIFY, until the listener has it', 'durable');
  add('the same with synchronous_commit off (not durable)', 'async');
  add('select 1 round trip', 'select');
  return rows;
}
