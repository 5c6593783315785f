/** The small interface every system under test implements. One module per system. */

export interface Payload {
  /** Wall-clock enqueue time in ms (performance.timeOrigin + performance.now()). */
  t: number;
}

export interface Producer {
  /** Enqueue one job. */
  enqueue(payload: Payload): Promise<void>;
  /** Enqueue a batch with one library call. */
  enqueueMany(payloads: Payload[]): Promise<void>;
  close(): Promise<void>;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export interface WorkerOptions {
  concurrency: number;
  /** Called at the start of every job with its payload. */
  onJob(payload: Payload): void;
}

/** Counts a system's jobs in its own store (for stores that SQL cannot query). */
export interface JobCounter {
  /** Jobs not yet in a terminal state. */
  unfinished(): Promise<number>;
  /** Jobs in a terminal state (finished or permanently failed). */
  terminal(): Promise<number>;
  close(): Promise<void>;
}

export interface SystemAdapter {
  /** Short id used on the command line and as part of the database name. */
  id: 'baton' | 'pgboss' | 'graphile' | 'bullmq';
  label: string;
  /** Installed version of the library. */
  version(): Promise<string>;
  /** Settings used, printed with the results. */
  settings: string;
  /** Where jobs are kept: the server whose CPU W3 reports (default 'postgresql'). */
  store?: 'postgresql' | 'redis';
  /** Empties the store before each run; default: drop and recreate database `bench_<id>`. */
  reset?(): Promise<void>;
  /** Create the schema (migrations, queues). Runs once per fresh database, untimed. */
  setup(url: string): Promise<void>;
  producer(url: string): Promise<Producer>;
  startWorker(url: string, opts: WorkerOptions): Promise<RunningWorker>;
  /** SQL returning one row with column `n`: jobs not yet in a terminal state. */
  unfinishedSql?: string;
  /** For stores other than PostgreSQL, instead of unfinishedSql. */
  jobCounter?(url: string): Promise<JobCounter>;
  /**
   * The table-size run ("retained"): writes `n` jobs that finished over the last day straight into
   * the store (untimed, within `timeoutMs`) and leaves it vacuumed and analysed. Systems without it
   * are not measured there.
   */
  seedHistory?(url: string, n: number, timeoutMs: number): Promise<void>;
  /** SQL returning one row with column `n`: how many of seedHistory's jobs are still there. */
  historyCountSql?: string;
  /** Environment for the workers of the table-size run, so retention keeps the history meanwhile. */
  historyWorkerEnv?: Record<string, string>;
}
