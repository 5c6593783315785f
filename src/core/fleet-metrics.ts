import { type Queryable, queryRows } from '../db/database.js';
import {
  metricsAttemptsFailed,
  metricsClock,
  metricsDeadLetterCounts,
  metricsJobCounts,
  metricsJobsCompleted,
  metricsLiveWorkers,
  metricsWindowEnd,
} from '../sql/metrics.js';
import { JOB_STATES, type JobState } from '../types.js';

/** What the fleet looks like now: counts read whole at each call. */
export interface FleetGauges {
  /** Jobs per kind and state; every state of a kind that has jobs is present (0 when none). */
  jobs: { kind: string; state: JobState; count: number }[];
  /** Dead letters per kind. */
  deadLettered: { kind: string; count: number }[];
  /** Live workers (heartbeat recent), in all. */
  liveWorkers: number;
  /** Live workers per kind they serve. */
  liveWorkersByKind: { kind: string; count: number }[];
}

/** Durations of the jobs of one kind that completed in a window, bucketed by the caller's bounds. */
export interface DurationBuckets {
  kind: string;
  /** `counts[i]`: values v with bounds[i-1] < v <= bounds[i]; the last entry: v > every bound. */
  counts: number[];
  /** `sums[i]`: the sum, in seconds, of the values counted in `counts[i]`. */
  sums: number[];
}

/** What finished in one window (since the previous read): for counters and histograms. */
export interface FleetFinished {
  /** The window, as the database's timestamps (text, microseconds kept). */
  since: string;
  until: string;
  /** Jobs completed, per kind. */
  completed: { kind: string; count: number }[];
  /** Attempts that ended without completing, per kind and outcome (failed, timed_out, lease_expired, aborted). */
  attemptsFailed: { kind: string; outcome: string; count: number }[];
  /** Completed jobs' time from due (run_at) to the start of the attempt that completed. */
  enqueueToStart: DurationBuckets[];
  /** Completed jobs' time from the start of the attempt that completed to its completion. */
  run: DurationBuckets[];
}

export interface FleetMetricsOptions {
  /**
   * How far behind the database's clock each window ends, in ms. Default 2000. A job's finished_at
   * is the start time of the transaction that finished it, so a transaction that commits after the
   * window has passed its start is never counted; this lag lets transactions that take up to that
   * long between start and commit be counted. Longer lags count more of them but later.
   */
  lagMs?: number;
  /** Upper bounds, in seconds, of the duration buckets (ascending). */
  bucketBounds: readonly number[];
}

/**
 * Fleet-wide figures for Prometheus, read from the database at scrape time (the process serving
 * them does not run the jobs). Gauges are read whole; counters and histograms are fed
 * incrementally: each `readFinished()` returns only what finished after the previous one, starting
 * at `start()` (so a new reader's counters start at zero, as Prometheus expects of a process).
 * Reads are serialised, so concurrent scrapes each get their own window and nothing is counted twice.
 */
export class FleetMetrics {
  readonly lagMs: number;
  readonly bucketBounds: readonly number[];
  private watermark: Promise<string | null> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    options: FleetMetricsOptions,
  ) {
    this.lagMs = options.lagMs ?? 2000;
    this.bucketBounds = options.bucketBounds;
    if (!Number.isInteger(this.lagMs) || this.lagMs < 0) {
      throw new RangeError(`FleetMetrics lagMs must be an integer >= 0, got ${options.lagMs}`);
    }
    if (this.bucketBounds.some((bound, index) => index > 0 && bound <= this.bucketBounds[index - 1]!)) {
      throw new RangeError(
        `FleetMetrics bucketBounds must be ascending, got ${this.bucketBounds.join(', ')}`,
      );
    }
  }

  /**
   * Marks now (the database's clock) as the start of the first window. If the database does not
   * answer, the first successful `readFinished()` starts the count instead. Idempotent.
   */
  start(): void {
    this.watermark ??= this.now().catch(() => null);
  }

  async readGauges(): Promise<FleetGauges> {
    const [jobRows, deadRows, workerRows] = await Promise.all([
      queryRows<{ kind: string; state: JobState; n: number }>(this.db, metricsJobCounts, []),
      queryRows<{ kind: string; n: number }>(this.db, metricsDeadLetterCounts, []),
      queryRows<{ kind: string | null; n: number }>(this.db, metricsLiveWorkers, []),
    ]);
    const byKind = new Map<string, Map<JobState, number>>();
    for (const row of jobRows) {
      if (!byKind.has(row.kind)) byKind.set(row.kind, new Map(JOB_STATES.map((state) => [state, 0])));
      byKind.get(row.kind)!.set(row.state, row.n);
    }
    return {
      jobs: [...byKind].flatMap(([kind, states]) =>
        [...states].map(([state, count]) => ({ kind, state, count })),
      ),
      deadLettered: deadRows.map((row) => ({ kind: row.kind, count: row.n })),
      liveWorkers: workerRows.find((row) => row.kind === null)?.n ?? 0,
      liveWorkersByKind: workerRows
        .filter((row): row is { kind: string; n: number } => row.kind !== null)
        .map((row) => ({ kind: row.kind, count: row.n })),
    };
  }

  /**
   * What finished since the previous call (or `start()`), up to the database's time less `lagMs`.
   * The window moves only when the read succeeds, so a failed scrape loses nothing.
   */
  readFinished(): Promise<FleetFinished> {
    const read = this.queue.then(() => this.readNextWindow());
    this.queue = read.catch(() => undefined);
    return read;
  }

  private async readNextWindow(): Promise<FleetFinished> {
    this.start();
    let since = await this.watermark!;
    if (since === null) {
      since = await this.now();
      this.watermark = Promise.resolve(since);
    }
    const [end] = await queryRows<{ until: string }>(this.db, metricsWindowEnd, [since, this.lagMs]);
    const until = end!.until;
    const [completedRows, attemptRows] = await Promise.all([
      queryRows<{ kind: string; measure: 'wait' | 'run'; bucket: number; n: number; seconds: number }>(
        this.db,
        metricsJobsCompleted,
        [since, until, this.bucketBounds],
      ),
      queryRows<{ kind: string; outcome: string; n: number }>(this.db, metricsAttemptsFailed, [since, until]),
    ]);
    this.watermark = Promise.resolve(until);

    const completed = new Map<string, number>();
    const buckets = { wait: new Map<string, DurationBuckets>(), run: new Map<string, DurationBuckets>() };
    for (const row of completedRows) {
      if (row.measure === 'wait') completed.set(row.kind, (completed.get(row.kind) ?? 0) + row.n);
      const measure = buckets[row.measure];
      let entry = measure.get(row.kind);
      if (!entry) {
        const size = this.bucketBounds.length + 1;
        entry = { kind: row.kind, counts: new Array(size).fill(0), sums: new Array(size).fill(0) };
        measure.set(row.kind, entry);
      }
      entry.counts[row.bucket] = row.n;
      entry.sums[row.bucket] = row.seconds;
    }
    return {
      since,
      until,
      completed: [...completed].map(([kind, count]) => ({ kind, count })),
      attemptsFailed: attemptRows.map((row) => ({ kind: row.kind, outcome: row.outcome, count: row.n })),
      enqueueToStart: [...buckets.wait.values()],
      run: [...buckets.run.values()],
    };
  }

  private async now(): Promise<string> {
    const [row] = await queryRows<{ now: string }>(this.db, metricsClock, []);
    return row!.now;
  }
}
