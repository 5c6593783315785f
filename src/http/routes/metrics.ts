import { Hono } from 'hono';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Baton } from '../../core/baton.js';
import { type DurationBuckets, FleetMetrics } from '../../core/fleet-metrics.js';
import { type ApiEnv, requireReader } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /metrics operations, for the OpenAPI document. */
export const metricsOperations: Operation[] = [
  {
    method: 'get',
    path: '/metrics',
    summary:
      'Prometheus text format: jobs per kind and state, dead letters, live workers, completions, failed ' +
      'attempts, lease losses, time to start and run time, and the API process itself',
    access: 'viewer',
    produces: 'text/plain',
  },
];

/**
 * Upper bounds, in seconds, of both duration histograms: from 5 ms (a job picked up at once) to
 * an hour (a long backlog, or a long job).
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];

/**
 * `GET /metrics` in the Prometheus text format, for any reading token (viewer or operator).
 *
 * Each call makes its own prom-client registry, so two apps in one process keep separate series.
 * The API server runs no jobs, so the fleet-wide figures come from the database at each scrape
 * (src/core/fleet-metrics.ts): gauges are counted whole; counters and histograms add what finished
 * since the previous scrape, starting at zero when this app is created (counters are per process),
 * and trail the database's clock by 2 s so that transactions in flight can commit first.
 */
export function metricsRoutes(baton: Baton): Hono<ApiEnv> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const jobs = new Gauge({
    name: 'baton_jobs',
    help: 'Jobs per kind and state (pending, running, completed, failed, cancelled).',
    labelNames: ['kind', 'state'] as const,
    registers,
  });
  const deadLettered = new Gauge({
    name: 'baton_jobs_dead_lettered',
    help: 'Dead letters per kind (jobs that failed for good and were not retried).',
    labelNames: ['kind'] as const,
    registers,
  });
  const workersLive = new Gauge({
    name: 'baton_workers_live',
    help: 'Workers whose heartbeat is recent, fleet-wide.',
    registers,
  });
  const workersLiveByKind = new Gauge({
    name: 'baton_workers_live_by_kind',
    help: 'Live workers serving each kind (a worker serving two kinds counts in both).',
    labelNames: ['kind'] as const,
    registers,
  });
  const completed = new Counter({
    name: 'baton_jobs_completed_total',
    help: 'Jobs completed, fleet-wide, since this process started.',
    labelNames: ['kind'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'baton_jobs_failed_total',
    help:
      'Attempts that ended without completing (failed, timed out, lease expired), fleet-wide, since this ' +
      'process started. A job retried three times counts three.',
    labelNames: ['kind'] as const,
    registers,
  });
  const leaseLosses = new Counter({
    name: 'baton_lease_losses_total',
    help: 'Attempts whose lease expired (the worker stopped renewing it) and were recovered by the sweep; also counted in baton_jobs_failed_total.',
    labelNames: ['kind'] as const,
    registers,
  });
  const enqueueToStart = new Histogram({
    name: 'baton_job_enqueue_to_start_seconds',
    help: 'Completed jobs: seconds from due (run_at, after any delay or backoff) to the start of the attempt that completed.',
    labelNames: ['kind'] as const,
    buckets: [...DURATION_BUCKETS],
    registers,
  });
  const runTime = new Histogram({
    name: 'baton_job_run_seconds',
    help: 'Completed jobs: seconds from the start of the attempt that completed to its completion.',
    labelNames: ['kind'] as const,
    buckets: [...DURATION_BUCKETS],
    registers,
  });

  const fleet = new FleetMetrics(baton.db, { bucketBounds: DURATION_BUCKETS });
  fleet.start();
  const seenKinds = new Set<string>();

  /** Gives every kind its series at zero, so that rate() sees the first increment. */
  const ensureKind = (kind: string) => {
    if (seenKinds.has(kind)) return;
    seenKinds.add(kind);
    completed.inc({ kind }, 0);
    failed.inc({ kind }, 0);
    leaseLosses.inc({ kind }, 0);
    enqueueToStart.zero({ kind });
    runTime.zero({ kind });
  };

  async function refresh(): Promise<void> {
    const [gauges, finished] = await Promise.all([fleet.readGauges(), fleet.readFinished()]);
    for (const kind of baton.kinds.keys()) ensureKind(kind);

    jobs.reset();
    for (const { kind, state, count } of gauges.jobs) {
      ensureKind(kind);
      jobs.set({ kind, state }, count);
    }
    deadLettered.reset();
    for (const { kind, count } of gauges.deadLettered) deadLettered.set({ kind }, count);
    workersLive.set(gauges.liveWorkers);
    workersLiveByKind.reset();
    for (const { kind, count } of gauges.liveWorkersByKind) workersLiveByKind.set({ kind }, count);

    for (const { kind, count } of finished.completed) {
      ensureKind(kind);
      completed.inc({ kind }, count);
    }
    for (const { kind, outcome, count } of finished.attemptsFailed) {
      ensureKind(kind);
      failed.inc({ kind }, count);
      if (outcome === 'lease_expired') leaseLosses.inc({ kind }, count);
    }
    for (const entry of finished.enqueueToStart) observeBuckets(enqueueToStart, entry);
    for (const entry of finished.run) observeBuckets(runTime, entry);
  }

  const routes = new Hono<ApiEnv>();
  routes.get('/', requireReader, async (c) => {
    await refresh();
    return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType });
  });
  return routes;
}

/**
 * Adds a window's bucketed durations to a histogram. prom-client has no bulk observe, so each
 * bucket's n values are observed as n values of their mean: the mean of values inside a bucket is
 * inside it too, so the buckets, `_count` and `_sum` come out as if each value had been observed,
 * while only a few rows per kind leave the database.
 */
function observeBuckets(histogram: Histogram<'kind'>, { kind, counts, sums }: DurationBuckets): void {
  const observer = histogram.labels({ kind });
  counts.forEach((count, index) => {
    if (count === 0) return;
    const lower = index === 0 ? Number.NEGATIVE_INFINITY : DURATION_BUCKETS[index - 1]!;
    const upper = DURATION_BUCKETS[index] ?? Number.POSITIVE_INFINITY;
    // Rounding of the sum may put the mean a hair outside its bucket; it goes back to the edge.
    let mean = sums[index]! / count;
    if (mean > upper) mean = upper;
    if (mean <= lower) mean = Number.isFinite(upper) ? upper : lower * (1 + 1e-9);
    for (let observed = 0; observed < count; observed++) observer.observe(mean);
  });
}
