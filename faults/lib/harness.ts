/**
 * One scenario's run: its own database on the private cluster, a driver that enqueues and remembers
 * what was acknowledged, worker processes, the faults injected, extra checks, the drain and the
 * checker. Scenarios (faults/scenarios/*.ts) only describe the workload and the faults.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { type BatonClient, createBaton, type EnqueueOptions, type KindDefinition } from '../../src/index.js';
import { check, type Fault, type Figures, passes } from './checker.js';
import type { Cluster } from './cluster.js';
import { DatabaseClock, LEDGER_SCHEMA } from './ledger.js';
import { startWorker, type WorkerProcess, type WorkerSpec } from './workers.js';

export interface Size {
  quick: boolean;
  soakMinutes: number;
}

export interface Scenario {
  name: string;
  /** One line: the workload and the fault. */
  summary: string;
  /** A control run breaks a guarantee on purpose: it passes when the checker catches it. */
  control?: boolean;
  /** Only in the full suite. */
  fullOnly?: boolean;
  /** false: the database starts empty, without Baton's schema (the workers migrate it). */
  migrated?: boolean;
  run(run: Run, size: Size): Promise<void>;
}

export interface CheckLine {
  what: string;
  ok: boolean;
  detail: string;
}

// biome-ignore lint/suspicious/noExplicitAny: a kind of any payload.
type AnyKind = KindDefinition<any, any, any>;

export class Run {
  readonly url: string;
  readonly pool: pg.Pool;
  baton: BatonClient;
  readonly clock: DatabaseClock;
  readonly workers: WorkerProcess[] = [];
  readonly acknowledged = new Map<number, { expect: 'completed' | 'dead' }>();
  readonly indeterminate = new Set<number>();
  readonly faults: Fault[] = [];
  readonly checks: CheckLine[] = [];
  readonly notes: string[] = [];
  private seq = 0;
  private supervising = true;

  constructor(
    readonly cluster: Cluster,
    readonly database: string,
  ) {
    this.url = cluster.url(database);
    // The runner's own connections are named, so a scenario can tell them from the workers'.
    const runnerUrl = `${this.url}?application_name=faults_runner`;
    this.pool = new pg.Pool({ connectionString: runnerUrl, max: 4 });
    this.pool.on('error', () => {}); // a restart kills idle clients; the pool makes new ones
    this.baton = createBaton({ connectionString: runnerUrl, maxConnections: 8 });
    this.clock = new DatabaseClock(this.pool);
  }

  /** Creates the database, Baton's schema (unless `migrated` is false) and the ledger. */
  async setup(migrated = true): Promise<void> {
    await this.cluster.admin(`create database ${this.database}`);
    if (migrated) await this.baton.migrate();
    await this.pool.query(LEDGER_SCHEMA);
    await this.clock.ready();
  }

  // biome-ignore lint/suspicious/noExplicitAny: ad hoc reads.
  async rows<Row = any>(text: string, params?: unknown[]): Promise<Row[]> {
    return (await this.pool.query(text, params as unknown[])).rows;
  }

  /** Starts a worker process on this run's database (or `spec.databaseUrl`). */
  async startWorker(
    spec: Partial<WorkerSpec> = {},
    options: { restart?: boolean } = {},
  ): Promise<WorkerProcess> {
    const worker = await startWorker({ databaseUrl: this.url, ...spec }, async (pid) => {
      const rows = await this.rows(
        `select id from baton.workers where pid = $1 and host = $2 order by started_at desc limit 1`,
        [pid, hostname()],
      );
      return rows[0]?.id;
    });
    this.workers.push(worker);
    if (!this.supervising) await worker.stop(); // started while the run was closing: never leave one behind
    if (options.restart) {
      // Like a process supervisor: a worker that dies is replaced.
      void worker.exited.then(() => {
        if (this.supervising) void this.startWorker(spec, options).catch(() => {});
      });
    }
    return worker;
  }

  live(): WorkerProcess[] {
    return this.workers.filter((worker) => worker.alive);
  }

  /** Enqueues one job with the next seq; an enqueue that fails is indeterminate (it may have committed). */
  async enqueue<P extends { seq: number }>(
    kind: AnyKind,
    payload: Omit<P, 'seq'>,
    options: EnqueueOptions & { expect?: 'completed' | 'dead' } = {},
  ): Promise<string | undefined> {
    const { expect = 'completed', ...enqueueOptions } = options;
    const seq = ++this.seq;
    try {
      const job = await this.baton.enqueue(kind, { ...payload, seq }, enqueueOptions);
      if (!enqueueOptions.client) this.acknowledged.set(seq, { expect });
      else this.indeterminate.add(seq); // the caller's transaction decides: see commit()/rollback()
      return job.id;
    } catch {
      this.indeterminate.add(seq);
      return undefined;
    }
  }

  /** The seqs enqueued in a caller's transaction become acknowledged when it commits. */
  settleTransaction(seqs: number[], committed: boolean): void {
    for (const seq of seqs) {
      this.indeterminate.delete(seq);
      if (committed) this.acknowledged.set(seq, { expect: 'completed' });
    }
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Enqueues many in one call (one statement, or one COPY for a large plain batch on PostgreSQL). */
  async enqueueMany(
    kind: AnyKind,
    payloads: object[],
    expect: 'completed' | 'dead' = 'completed',
  ): Promise<string[]> {
    const first = this.seq + 1;
    this.seq += payloads.length;
    try {
      const jobs = await this.baton.enqueueMany(
        kind,
        payloads.map((payload, index) => ({ payload: { ...payload, seq: first + index } })),
      );
      for (let index = 0; index < payloads.length; index++) this.acknowledged.set(first + index, { expect });
      return jobs.map((job) => job.id);
    } catch {
      for (let index = 0; index < payloads.length; index++) this.indeterminate.add(first + index);
      return [];
    }
  }

  /** Ids of the jobs a worker holds now (by its registry id). */
  async runningOn(worker: WorkerProcess): Promise<string[]> {
    const rows = await this.rows(`select id from baton.jobs where state = 'running' and worker_id = $1`, [
      worker.workerId,
    ]);
    return rows.map((row) => row.id);
  }

  /** The leases a worker holds now: job id → token and expiry (database time, epoch ms). */
  async leasesOn(worker: WorkerProcess): Promise<NonNullable<Fault['leases']>> {
    const rows = await this.rows(
      `select id, lease_token, extract(epoch from lease_expires_at) * 1000 as expires_ms
       from baton.jobs where state = 'running' and worker_id = $1`,
      [worker.workerId],
    );
    return Object.fromEntries(
      rows.map((row) => [row.id, { token: row.lease_token, expiresMs: Number(row.expires_ms) }]),
    );
  }

  async runningJobs(): Promise<string[]> {
    return (await this.rows(`select id from baton.jobs where state = 'running'`)).map((row) => row.id);
  }

  /** Records an injected fault at the runner's estimate of database time now. */
  async fault(what: string, jobIds: string[] = []): Promise<number> {
    const atMs = await this.clock.now();
    this.faults.push({ what, atMs, jobIds });
    return atMs;
  }

  check(what: string, ok: boolean, detail = ''): void {
    this.checks.push({ what, ok, detail });
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Waits until no job is pending or running, for at most `timeoutMs`; returns how long it took. */
  async drain(timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      const rows = await this.rows(
        `select count(*)::int as n from baton.jobs where state in ('pending', 'running')`,
      ).catch(() => [{ n: -1 }]);
      if (rows[0].n === 0) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return Date.now() - started;
  }

  /** Stops every worker (SIGKILL: nothing may tidy up after the drain) and runs the checker. */
  async finish(): Promise<Figures> {
    this.supervising = false;
    await Promise.all(this.workers.map((worker) => worker.stop()));
    const figures = await check(this.pool, {
      acknowledged: this.acknowledged,
      indeterminate: this.indeterminate,
      faults: this.faults,
    });
    return figures;
  }

  async close(): Promise<void> {
    this.supervising = false;
    await Promise.all(this.workers.map((worker) => worker.stop()));
    await this.baton.close().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

/**
 * Enqueues `make()` jobs of `kind` at about `perSecond` until the returned stop() is called (and
 * awaited). Enqueues that fail (the database is down) are indeterminate and the feed goes on.
 */
export function feed(run: Run, kind: AnyKind, perSecond: number, make: () => object): () => Promise<void> {
  let stopped = false;
  const tickMs = 100;
  const loop = (async () => {
    let carry = 0;
    while (!stopped) {
      carry += (perSecond * tickMs) / 1000;
      const count = Math.floor(carry);
      carry -= count;
      const tick = sleep(tickMs);
      await Promise.all(Array.from({ length: count }, () => run.enqueue(kind, make())));
      await tick;
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** Worker settings of the fault scenarios: a 2 s lease (1 s heartbeat) and a 0.5 s recovery sweep. */
export const FAST_LEASE = {
  BATON_LEASE_MS: '2000',
  BATON_RECOVERY_INTERVAL_MS: '500',
  BATON_POLL_INTERVAL_MS: '1000',
};

export { passes };
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const between = (low: number, high: number) => low + Math.random() * (high - low);
