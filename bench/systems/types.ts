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

export interface SystemAdapter {
  /** Short id used on the command line and as part of the database name. */
  id: 'baton' | 'pgboss' | 'graphile';
  label: string;
  /** Installed version of the library. */
  version(): Promise<string>;
  /** Settings used, printed with the results. */
  settings: string;
  /** Create the schema (migrations, queues). Runs once per fresh database, untimed. */
  setup(url: string): Promise<void>;
  producer(url: string): Promise<Producer>;
  startWorker(url: string, opts: WorkerOptions): Promise<RunningWorker>;
  /** SQL returning one row with column `n`: jobs not yet in a terminal state. */
  unfinishedSql: string;
}
