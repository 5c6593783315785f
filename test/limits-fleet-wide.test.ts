/**
 * SPEC §5: per-kind concurrency, rate windows and per-group concurrency are fleet-wide, enforced in
 * the database across all workers (the seed enforced them per worker only). Three worker processes,
 * each with 8 slots, share one queue of limited kinds; the ledger's intervals (handler time on one
 * machine clock) and the database's claim times show the limits were never exceeded, and that they
 * were reached (the work really ran in parallel where the limits allow it). The rate window also
 * holds in real time when claims had to wait for the kind's lock (a claimer that stalled holding it).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { kindLock } from '../src/sql/jobs-lease.js';
import { grouped, limited, rated, record } from './fixtures/ledger-kinds.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { createLedger, type LedgerRow, maxOverlap } from './helpers/ledger.js';
import { pollUntil } from './helpers/poll.js';
import { startWorker, type WorkerProcess } from './helpers/processes.js';

let database: TestDatabase;
const workers: WorkerProcess[] = [];
let ledger: LedgerRow[] = [];
/** Claim times of `ledger.rated` jobs on database time (epoch ms, µs precision), sorted. */
let ratedClaimsMs: number[] = [];

const LIMITED_JOBS = 12;
const RATED_JOBS = 15;
const GROUPS = ['g0', 'g1', 'g2', 'g3'];
const JOBS_PER_GROUP = 4;

beforeAll(async () => {
  database = await createTestDatabase('limits');
  await createLedger(database);
  workers.push(
    ...(await Promise.all(
      Array.from({ length: 3 }, () =>
        startWorker(database.url, {
          env: { BATON_CONCURRENCY: '8', BATON_PREFETCH: '8', BATON_POLL_INTERVAL_MS: '100' },
        }),
      ),
    )),
  );
  const baton = connectBaton(database);
  await baton.enqueueMany(
    limited,
    Array.from({ length: LIMITED_JOBS }, () => ({ payload: { sleepMs: 300 } })),
  );
  await baton.enqueueMany(
    rated,
    Array.from({ length: RATED_JOBS }, () => ({ payload: { sleepMs: 20 } })),
  );
  await baton.enqueueMany(
    grouped,
    GROUPS.flatMap((group) =>
      Array.from({ length: JOBS_PER_GROUP }, () => ({ payload: { sleepMs: 250 }, group })),
    ),
  );
  await baton.close();
  const total = LIMITED_JOBS + RATED_JOBS + GROUPS.length * JOBS_PER_GROUP;
  await pollUntil(
    'every job to complete',
    async () => {
      const [row] = await database.rows(
        `select count(*)::int as n from baton.jobs where state = 'completed'`,
      );
      return row.n === total;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  ledger = await database.rows<LedgerRow>(`select * from ledger order by started_ms`);
  expect(ledger.length).toBe(total); // every job ran once, none failed
  ratedClaimsMs = (
    await database.rows<{ ms: number }>(
      `select extract(epoch from last_attempt_at) * 1000 as ms from baton.jobs
       where kind = 'ledger.rated' order by last_attempt_at`,
    )
  ).map((row) => Number(row.ms));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await database.drop();
});

const ofKind = (kind: string) => ledger.filter((row) => row.kind === kind);

/** The most of `times` (sorted) that fall in any half-open window [t, t + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  let max = 0;
  let first = 0;
  for (let last = 0; last < times.length; last++) {
    while (times[last]! - times[first]! >= windowMs) first++;
    max = Math.max(max, last - first + 1);
  }
  return max;
}

describe('three workers with 8 slots each', () => {
  test('three live workers, each with room for 8 jobs, competed for the jobs', async () => {
    const live = await database.rows(`select concurrency from baton.workers where expires_at > now()`);
    expect(live).toEqual([{ concurrency: 8 }, { concurrency: 8 }, { concurrency: 8 }]);
    for (const worker of workers) expect(worker.child.exitCode).toBeNull();
  });

  test('ledger.limited (concurrency 2) never runs more than 2 at once, and does run 2 at once', () => {
    const rows = ofKind('ledger.limited');
    expect(rows.length).toBe(LIMITED_JOBS);
    expect(maxOverlap(rows)).toBe(2);
  });

  test('ledger.rated (5 starts per 1000 ms) never starts more than 5 in any 1000 ms window', () => {
    // Database time: claims of a rated kind are serialised by the kind's row lock and stamped with
    // the claiming transaction's now(); this is what the limit is defined on.
    expect(ratedClaimsMs.length).toBe(RATED_JOBS);
    expect(maxInWindow(ratedClaimsMs, 1000)).toBeLessThanOrEqual(5);
    // The limit really held the jobs back: 15 starts at 5 per second span at least two windows.
    expect(ratedClaimsMs.at(-1)! - ratedClaimsMs[0]!).toBeGreaterThanOrEqual(2000);
    // And it was reached: some window saw all 5 starts (not a queue that just trickled).
    expect(maxInWindow(ratedClaimsMs, 1000)).toBe(5);

    // Handler starts (machine clock) come a little after the claim, each by its own delay; a window
    // shortened by that jitter (up to 400 ms allowed) must still hold at most 5 of them.
    const starts = ofKind('ledger.rated')
      .map((row) => row.started_ms)
      .sort((a, b) => a - b);
    expect(starts.length).toBe(RATED_JOBS);
    expect(maxInWindow(starts, 600)).toBeLessThanOrEqual(5);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(1500);
  });

  test('ledger.grouped (groupConcurrency 1) runs one job per group at once, groups in parallel', () => {
    const rows = ofKind('ledger.grouped');
    expect(rows.length).toBe(GROUPS.length * JOBS_PER_GROUP);
    for (const group of GROUPS) {
      const inGroup = rows.filter((row) => row.group_key === group);
      expect(inGroup.length).toBe(JOBS_PER_GROUP);
      expect({ group, overlap: maxOverlap(inGroup) }).toEqual({ group, overlap: 1 });
    }
    // Different groups did run at the same time (no kind-wide serialisation).
    expect(maxOverlap(rows)).toBeGreaterThanOrEqual(2);
  });

  test('no worker lost a lease', () => {
    for (const worker of workers) {
      expect(worker.lines.filter((line) => line.event === 'job.lease_lost')).toEqual([]);
    }
  });
});

describe('a claim that waited for the kind lock', () => {
  // Claims of a rated kind queue on the kind's row lock. When a claimer stalls while holding it (a
  // GC pause, a frozen VM, a slow link), the others wait; the starts they then record must be when
  // they really started, or the next claims count a window that has not passed yet.
  test('ledger.rated starts at most 5 in any window (real time) after the lock was held over a second', {
    timeout: 90_000,
  }, async () => {
    const baton = connectBaton(database);
    // Keep every slot and buffer (3 workers x (8 slots + 8 prefetch)) busy with ledger.record jobs,
    // with more waiting, so that no worker claims a limited kind until the fill runs out.
    const fill = await baton.enqueueMany(
      record,
      Array.from({ length: 96 }, () => ({ payload: { sleepMs: 1000 } })),
    );
    await pollUntil('every worker to hold 16 jobs, with more pending', async () => {
      const [row] = await database.rows(
        `select (select count(*)::int from baton.jobs where id = any($1) and state = 'pending') as pending,
                array(select count(*)::int from baton.jobs where id = any($1) and state = 'running'
                      group by worker_id) as held`,
        [fill.map((job) => job.id)],
      );
      return row.pending >= 24 && String(row.held) === '16,16,16';
    });
    const stalled = await database.pool.connect();
    let ids: string[] = [];
    try {
      await stalled.query('begin');
      await stalled.query(`select 1 from baton.kinds where kind = 'ledger.rated' for update`);
      ids = (
        await baton.enqueueMany(
          rated,
          Array.from({ length: 10 }, () => ({ payload: {} })),
        )
      ).map((job) => job.id);
      // Slots free up as the fill completes; claims of ledger.rated (begun after the jobs were due)
      // then queue on the lock. Hold it until one has waited longer than the rate window.
      await pollUntil(
        'a claim to wait on the kind lock for over 1.1 s',
        async () => {
          const [row] = await database.rows(
            `select count(*)::int as n from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'
               and xact_start > (select max(created_at) from baton.jobs where id = any($1))
               and clock_timestamp() - xact_start > interval '1100 milliseconds'`,
            [ids],
          );
          return row.n > 0;
        },
        { timeoutMs: 30_000 },
      );
    } finally {
      await stalled.query('commit');
      stalled.release();
    }
    const done = [...ids, ...fill.map((job) => job.id)];
    await pollUntil(
      'the jobs to complete',
      async () => {
        const [row] = await database.rows(
          `select count(*)::int as n from baton.jobs where id = any($1) and state = 'completed'`,
          [done],
        );
        return row.n === done.length;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    await baton.close();
    const starts = (
      await database.rows<{ started_ms: number }>(
        `select started_ms from ledger where job_id = any($1) order by started_ms`,
        [ids],
      )
    ).map((row) => row.started_ms);
    expect(starts.length).toBe(10);
    // Real time (the machine clock the database shares), with the same jitter allowance as above.
    const relative = starts.map((start) => Math.round(start - starts[0]!));
    expect(
      maxInWindow(starts, 600),
      `starts, ms after the first: ${relative.join(', ')}`,
    ).toBeLessThanOrEqual(5);
  });
});

describe('a claimer that stops answering while it holds a kind lock', () => {
  // A worker frozen mid-claim (GC pause, SIGSTOP, a suspended VM) keeps its transaction open; its
  // kind lock used to stall every claim of the kind and every worker's start until it resumed.
  test('is cut off by PostgreSQL after 2 s idle, and the next claimer gets the lock', {
    timeout: 30_000,
  }, async () => {
    const frozen = await database.pool.connect();
    // Its session is ended under it: the server's FATAL, then the socket closing (both reported).
    const ended = new Promise<Error>((resolve) => frozen.on('error', resolve));
    await frozen.query('begin');
    await frozen.query(kindLock('postgres'), ['ledger.limited']);
    const lockedAt = performance.now();
    const other = await database.pool.connect();
    try {
      await other.query('begin');
      const {
        rows: [lock],
      } = await other.query(kindLock('postgres'), ['ledger.limited']);
      const waitedMs = performance.now() - lockedAt;
      await other.query('commit');
      expect(lock.concurrency).toBe(2);
      // It did wait for the frozen holder, and only about as long as the idle timeout.
      expect(waitedMs).toBeGreaterThanOrEqual(1900);
      expect(waitedMs).toBeLessThan(10_000);
    } finally {
      other.release();
    }
    expect((await ended).message).toMatch(/idle-in-transaction timeout/);
    frozen.release(true);
  });
});
