/**
 * GET /metrics over real HTTP, with an in-process worker running real jobs: the gauges equal the
 * database's counts, the counters start at zero when the API starts and grow by exactly the
 * completions and failed attempts that happened between two scrapes, the histograms count every
 * completion in the right bucket, a forced lease expiry counts as a lease loss, and the route needs
 * a reading token. Waits are for states (pollUntil), never sleeps.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createApp } from '../src/http/app.js';
import { createHttpLogger } from '../src/http/logger.js';
import { DURATION_BUCKETS } from '../src/http/routes/metrics.js';
import type { HttpServer } from '../src/http/server.js';
import { type BatonClient, defineKind, JobError, type Worker } from '../src/index.js';
import { leaseRecoverExpired } from '../src/sql/jobs-lease.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { type ApiCall, serveApi, TEST_TOKENS, VIEWER_TOKEN, WORKER_TOKEN } from './helpers/http.js';
import { pollUntil } from './helpers/poll.js';

/** The lag of the metrics window (FleetMetrics' default): rows finished later are read at a later scrape. */
const LAG_SECONDS = 2;

let releaseHeld: () => void = () => {};
const held = new Promise<void>((resolve) => {
  releaseHeld = resolve;
});

const ok = defineKind({
  kind: 'metrics.ok',
  payload: z.object({ n: z.number() }),
  handler: async ({ n }) => ({ n }),
});
/** Fails its first attempt (retryable), completes its second. */
const flaky = defineKind({
  kind: 'metrics.flaky',
  payload: z.object({}),
  maxAttempts: 3,
  backoff: { baseMs: 10, maxMs: 10 },
  handler: async (_payload, { job }) => {
    if (job.attempts === 1) throw new Error('first attempt fails');
    return { attempt: job.attempts };
  },
});
/** Fails for good at once: dead-lettered as non_retryable. */
const doomed = defineKind({
  kind: 'metrics.doomed',
  payload: z.object({}),
  handler: async () => {
    throw new JobError('PAYLOAD_UNSUPPORTED', 'cannot do this');
  },
});
/** Runs until the test lets it go; its lease is expired under it. */
const stuck = defineKind({
  kind: 'metrics.stuck',
  payload: z.object({}),
  maxAttempts: 1,
  handler: async () => {
    await held;
    return {};
  },
});
const KINDS = [ok, flaky, doomed, stuck];

let database: TestDatabase;
let baton: BatonClient;
let worker: Worker;
let server: HttpServer;
let call: ApiCall;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small parser of the Prometheus text format (sample lines; comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_all, character: string) =>
        character === 'n' ? '\n' : character,
      );
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** The value of the one sample with this name and (at least) these labels; undefined if none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
    if (found.length > 1)
      throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
    return found[0]?.value;
  }
  all(name: string): Sample[] {
    return this.samples.filter((sample) => sample.name === name);
  }
}

async function scrape(token: string = VIEWER_TOKEN): Promise<Scrape> {
  const response = await call('GET', '/metrics', { token });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(parseMetrics(response.body as string));
}

/** Waits until every job and attempt finished so far lies inside the window the next scrape reads. */
async function untilWindowCovers(): Promise<void> {
  await pollUntil('the metrics window to pass every finished job', async () => {
    const [row] = await database.rows(
      `select statement_timestamp() - $1 * interval '1 second' >
              greatest((select max(finished_at) from baton.jobs), (select max(finished_at) from baton.job_attempts))
              as covered`,
      [LAG_SECONDS],
    );
    return row.covered === true;
  });
}

const finishedCount = async (ids: string[]) =>
  (
    await database.rows(
      `select count(*)::int as n from baton.jobs where id = any($1) and finished_at is not null`,
      [ids],
    )
  )[0].n as number;

async function enqueueAll(kind: (typeof KINDS)[number], count: number): Promise<string[]> {
  // By name: the payloads differ by kind, and each kind's schema checks its own.
  const jobs = await baton.enqueueMany(
    kind.kind,
    Array.from({ length: count }, (_, n) => ({ payload: kind === ok ? { n } : {} })),
  );
  return jobs.map((job) => job.id);
}

/** The gauges must equal what the database holds now. */
async function expectGaugesMatchDatabase(metrics: Scrape): Promise<void> {
  const counts = await database.rows(
    `select kind, state, count(*)::int as n from baton.jobs group by kind, state`,
  );
  const kinds = new Set(counts.map((row) => row.kind as string));
  for (const kind of kinds) {
    for (const state of ['pending', 'running', 'completed', 'failed', 'cancelled']) {
      const expected = counts.find((row) => row.kind === kind && row.state === state)?.n ?? 0;
      expect(metrics.value('baton_jobs', { kind, state }), `baton_jobs{${kind},${state}}`).toBe(expected);
    }
  }
  expect(metrics.all('baton_jobs')).toHaveLength(kinds.size * 5);
  const dead = await database.rows(`select kind, count(*)::int as n from baton.dead_letters group by kind`);
  expect(
    Object.fromEntries(
      metrics.all('baton_jobs_dead_lettered').map((sample) => [sample.labels.kind, sample.value]),
    ),
  ).toEqual(Object.fromEntries(dead.map((row) => [row.kind, row.n])));
  const [live] = await database.rows(`select count(*)::int as n from baton.workers where expires_at > now()`);
  expect(metrics.value('baton_workers_live')).toBe(live.n);
  for (const kind of KINDS) {
    expect(metrics.value('baton_workers_live_by_kind', { kind: kind.kind })).toBe(1);
  }
}

/** Counters and histogram counts per kind, to compare two scrapes. */
function countersOf(metrics: Scrape) {
  return Object.fromEntries(
    KINDS.map(({ kind }) => [
      kind,
      {
        completed: metrics.value('baton_jobs_completed_total', { kind }),
        failed: metrics.value('baton_jobs_failed_total', { kind }),
        leaseLosses: metrics.value('baton_lease_losses_total', { kind }),
        startCount: metrics.value('baton_job_enqueue_to_start_seconds_count', { kind }),
        runCount: metrics.value('baton_job_run_seconds_count', { kind }),
      },
    ]),
  );
}

beforeAll(async () => {
  database = await createTestDatabase('http_metrics');
  baton = connectBaton(database, { kinds: KINDS });
  worker = baton.createWorker({
    kinds: KINDS,
    concurrency: 8,
    pollIntervalMs: 100,
    logLevel: 'silent',
    shutdownSignals: [],
    shutdownTimeoutMs: 1000,
  });
  await worker.start();
});

afterAll(async () => {
  releaseHeld();
  await server?.close();
  await worker?.stop();
  await baton?.close();
  await database?.drop();
});

describe('GET /metrics', () => {
  test('counters start at zero when the API starts, though jobs finished before', async () => {
    const before = await enqueueAll(ok, 2);
    await pollUntil('jobs finished before the API starts', async () => (await finishedCount(before)) === 2);
    ({ server, call } = await serveApi(baton));

    const metrics = await scrape();
    expect(metrics.value('baton_jobs', { kind: 'metrics.ok', state: 'completed' })).toBe(2);
    for (const { kind } of KINDS) {
      expect(metrics.value('baton_jobs_completed_total', { kind })).toBe(0);
      expect(metrics.value('baton_jobs_failed_total', { kind })).toBe(0);
      expect(metrics.value('baton_lease_losses_total', { kind })).toBe(0);
      expect(metrics.value('baton_job_run_seconds_count', { kind })).toBe(0);
    }
    // The API process's own metrics come with them.
    expect(metrics.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  test('gauges equal the database; counters and histograms grow by exactly what finished', async () => {
    const first = countersOf(await scrape());
    const okIds = await enqueueAll(ok, 5);
    const flakyIds = await enqueueAll(flaky, 1);
    const doomedIds = await enqueueAll(doomed, 1);
    const all = [...okIds, ...flakyIds, ...doomedIds];
    await pollUntil('7 jobs finished', async () => (await finishedCount(all)) === 7);
    await untilWindowCovers();

    const metrics = await scrape();
    await expectGaugesMatchDatabase(metrics);
    expect(metrics.value('baton_jobs_dead_lettered', { kind: 'metrics.doomed' })).toBe(1);

    const second = countersOf(metrics);
    const grew = (kind: string, key: keyof (typeof first)[string]) =>
      second[kind]![key]! - first[kind]![key]!;
    expect(grew('metrics.ok', 'completed')).toBe(5);
    expect(grew('metrics.flaky', 'completed')).toBe(1);
    expect(grew('metrics.doomed', 'completed')).toBe(0);
    expect(grew('metrics.ok', 'failed')).toBe(0);
    expect(grew('metrics.flaky', 'failed')).toBe(1);
    expect(grew('metrics.doomed', 'failed')).toBe(1);
    for (const { kind } of KINDS) {
      expect(grew(kind, 'leaseLosses')).toBe(0);
      expect(grew(kind, 'startCount'), kind).toBe(grew(kind, 'completed'));
      expect(grew(kind, 'runCount'), kind).toBe(grew(kind, 'completed'));
    }

    // Every bucket and the sums agree with the durations the database holds (the histogram
    // started empty: this was the first window with completions).
    const durations = await database.rows(
      `select kind,
              greatest(0, extract(epoch from last_attempt_at - run_at))::float8 as start,
              greatest(0, extract(epoch from finished_at - last_attempt_at))::float8 as run
       from baton.jobs where id = any($1) and state = 'completed'`,
      [all],
    );
    for (const [metric, column] of [
      ['baton_job_enqueue_to_start_seconds', 'start'],
      ['baton_job_run_seconds', 'run'],
    ] as const) {
      for (const kind of ['metrics.ok', 'metrics.flaky']) {
        const values = durations.filter((row) => row.kind === kind).map((row) => row[column] as number);
        for (const bound of DURATION_BUCKETS) {
          expect(
            metrics.value(`${metric}_bucket`, { kind, le: String(bound) }),
            `${metric} ${kind} le=${bound}`,
          ).toBe(values.filter((value) => value <= bound).length);
        }
        expect(metrics.value(`${metric}_bucket`, { kind, le: '+Inf' })).toBe(values.length);
        expect(metrics.value(`${metric}_sum`, { kind })).toBeCloseTo(
          values.reduce((sum, value) => sum + value, 0),
          6,
        );
      }
    }

    // A scrape with nothing new finished changes no counter: nothing is counted twice.
    expect(countersOf(await scrape())).toEqual(second);
  });

  test('a lease that expires under a running job counts as a lease loss and a failed attempt', async () => {
    const first = countersOf(await scrape());
    const [stuckId] = await enqueueAll(stuck, 1);
    const okIds = await enqueueAll(ok, 3);
    await pollUntil('the stuck job to run', async () => {
      const [row] = await database.rows(`select state from baton.jobs where id = $1`, [stuckId]);
      return row.state === 'running';
    });
    // As if its worker had stopped renewing: the lease expires, then the recovery sweep (the
    // statement every worker runs) takes the job back; in one transaction so no heartbeat slips in.
    const client = await database.pool.connect();
    try {
      await client.query('begin');
      await client.query(
        `update baton.jobs set lease_expires_at = now() - interval '1 second' where id = $1`,
        [stuckId],
      );
      const { rows } = await client.query(leaseRecoverExpired, [10]);
      expect(rows).toEqual([expect.objectContaining({ id: stuckId, state: 'failed' })]);
      await client.query('commit');
    } finally {
      client.release();
    }
    releaseHeld();
    await pollUntil('3 more jobs completed', async () => (await finishedCount(okIds)) === 3);
    await untilWindowCovers();

    const metrics = await scrape();
    await expectGaugesMatchDatabase(metrics);
    expect(metrics.value('baton_jobs_dead_lettered', { kind: 'metrics.stuck' })).toBe(1);
    const second = countersOf(metrics);
    expect(second['metrics.stuck']).toEqual({
      ...first['metrics.stuck'],
      failed: first['metrics.stuck']!.failed! + 1,
      leaseLosses: first['metrics.stuck']!.leaseLosses! + 1,
    });
    expect(second['metrics.ok']).toEqual({
      ...first['metrics.ok'],
      completed: first['metrics.ok']!.completed! + 3,
      startCount: first['metrics.ok']!.startCount! + 3,
      runCount: first['metrics.ok']!.runCount! + 3,
    });
    expect(second['metrics.flaky']).toEqual(first['metrics.flaky']);
    expect(second['metrics.doomed']).toEqual(first['metrics.doomed']);
  });

  test('needs a reading token: 401 without one, 200 for a viewer or an operator, 403 for a worker', async () => {
    const anonymous = await call('GET', '/metrics', { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHORIZED');
    expect((await call('GET', '/metrics', { token: 'not-a-token-at-all-0000' })).status).toBe(401);
    expect((await call('GET', '/metrics', { token: VIEWER_TOKEN })).status).toBe(200);
    expect((await call('GET', '/metrics')).status).toBe(200);
    const robot = await call('GET', '/metrics', { token: WORKER_TOKEN });
    expect(robot.status).toBe(403);
    expect(robot.body.error.code).toBe('FORBIDDEN');
  });

  test('two apps in one process keep their own registries', async () => {
    const other = createApp(
      baton,
      { tokens: TEST_TOKENS, bodyLimitBytes: 1024 * 1024 },
      {
        logger: createHttpLogger('silent'),
      },
    );
    const response = await other.request('/metrics', {
      headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
    });
    expect(response.status).toBe(200);
    const metrics = new Scrape(parseMetrics(await response.text()));
    // A new app counts from its own start: nothing finished since.
    expect(metrics.value('baton_jobs_completed_total', { kind: 'metrics.ok' })).toBe(0);
    expect(metrics.value('baton_jobs', { kind: 'metrics.ok', state: 'completed' })).toBeGreaterThan(0);
    expect((await scrape()).value('baton_jobs_completed_total', { kind: 'metrics.ok' })).toBe(8);
  });
});
