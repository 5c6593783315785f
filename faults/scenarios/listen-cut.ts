/**
 * The LISTEN connection cut two ways: terminated by the server (pg_terminate_backend), and left
 * half-open (a proxy silently stops forwarding it; only the listener's health probe can tell).
 * Each is detected within 15 s, jobs enqueued in the gap run within the poll interval, and the log
 * stays calm.
 */
import { work } from '../kinds.js';
import { FAST_LEASE, type Run, type Scenario, sleep } from '../lib/harness.js';
import { startFaultProxy } from '../lib/proxy.js';
import type { WorkerProcess } from '../lib/workers.js';

const POLL_MS = 1000;

async function gapJobs(run: Run, what: string): Promise<void> {
  const ids: string[] = [];
  const at = await run.clock.now();
  for (let index = 0; index < 5; index++) {
    const id = await run.enqueue(work, { ms: 0 });
    if (id) ids.push(id);
  }
  run.faults.push({ what, atMs: at, jobIds: ids });
}

/** Seconds from `since` until the worker logs `event` (as counted from `before`). */
async function secondsUntil(
  worker: WorkerProcess,
  event: string,
  before: number,
  since: number,
  limitMs: number,
) {
  const deadline = Date.now() + limitMs;
  while (worker.count(event) <= before && Date.now() < deadline) await sleep(50);
  return worker.count(event) > before ? (Date.now() - since) / 1000 : Number.POSITIVE_INFINITY;
}

export const listenCut: Scenario = {
  name: 'listen-cut',
  summary:
    'LISTEN connection terminated (pg_terminate_backend), then made half-open by a proxy; jobs enqueued in each gap',
  async run(run) {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: run.cluster.port });
    try {
      const url = `postgres://postgres@127.0.0.1:${proxy.port}/${run.database}`;
      const env = { ...FAST_LEASE, BATON_POLL_INTERVAL_MS: String(POLL_MS) };
      const worker = await run.startWorker({
        databaseUrl: url,
        env,
        keep: ['listener.connected', 'listener.lost'],
      });
      await worker.waitFor((line) => line.event === 'listener.connected');
      const quietBefore = worker.written;

      // 1. Terminated by the server.
      const lostBefore = worker.count('listener.lost');
      const connectedBefore = worker.count('listener.connected');
      const t1 = Date.now();
      await run.rows(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'baton_listener' and datname = $1`,
        [run.database],
      );
      await run.fault('pg_terminate_backend(listener)');
      await gapJobs(run, 'jobs enqueued while LISTEN was down (terminated)');
      const detected1 = await secondsUntil(worker, 'listener.lost', lostBefore, t1, 15_000);
      await secondsUntil(worker, 'listener.connected', connectedBefore, t1, 15_000);
      run.check('terminated LISTEN detected within 15 s', detected1 <= 15, `${detected1.toFixed(1)} s`);

      // 2. Half-open: the proxy stops forwarding the listener's connection, sockets stay open.
      await sleep(1000);
      const lostBefore2 = worker.count('listener.lost');
      const connectedBefore2 = worker.count('listener.connected');
      const t2 = Date.now();
      const cut = proxy.blackhole((startup) => startup.includes('baton_listener'));
      await run.fault('half-open listener');
      await gapJobs(run, 'jobs enqueued while LISTEN was half-open');
      const detected2 = await secondsUntil(worker, 'listener.lost', lostBefore2, t2, 20_000);
      await secondsUntil(worker, 'listener.connected', connectedBefore2, t2, 20_000);
      run.check(
        'half-open LISTEN detected within 15 s',
        cut === 1 && detected2 <= 15,
        `${detected2.toFixed(1)} s`,
      );

      // Jobs enqueued after LISTEN is back are woken by NOTIFY again.
      await gapJobs(run, 'jobs enqueued after LISTEN came back');
      await run.drain(30_000);
      const gaps = await run.rows(
        `select max(l.started_ms - extract(epoch from j.created_at) * 1000) as worst
         from faults.ledger l join baton.jobs j on j.id = l.job_id where l.outcome = 'completed'`,
      );
      const worst = Number(gaps[0].worst);
      run.check(
        'every gap job ran within the poll interval',
        worst <= POLL_MS + 500,
        `worst ${Math.round(worst)} ms from enqueue to start`,
      );
      const lines = worker.written - quietBefore;
      run.check('log stays calm', lines <= 4 + 3 * 15, `${lines} lines for 2 cuts and 15 jobs`);
    } finally {
      await proxy.close();
    }
  },
};
