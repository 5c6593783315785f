/**
 * 50 worker processes (quick: 16) started at once against a fresh, empty database: each runs the
 * migrations itself. One schema results, nobody deadlocks or fails, and the connections stay within
 * the configured budget: each process's pool, its listener, its handlers' pool and the ledger's.
 */
import { readFileSync } from 'node:fs';
import { latestMigrationVersion } from '../../src/index.js';
import { work } from '../kinds.js';
import { FAST_LEASE, type Scenario, sleep } from '../lib/harness.js';

export const thunderingStart: Scenario = {
  name: 'thundering-start',
  summary:
    '50 workers (quick: 16) started at once on an empty database (each migrates), then 20 jobs per worker',
  migrated: false,
  async run(run, size) {
    const count = size.quick ? 16 : 50;
    const perWorker = { pool: 2, listener: 1, handlers: 1, ledger: 1 };
    const budget = count * (perWorker.pool + perWorker.listener + perWorker.handlers + perWorker.ledger);
    const env = {
      ...FAST_LEASE,
      BATON_MAX_CONNECTIONS: String(perWorker.pool),
      BATON_HANDLER_CONNECTIONS: String(perWorker.handlers),
      FAULTS_LEDGER_CONNECTIONS: String(perWorker.ledger),
    };
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await run
          .rows(
            `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name <> 'faults_runner'`,
            [run.database],
          )
          .catch(() => [{ n: 0 }]);
        peak = Math.max(peak, row.n);
        await sleep(50);
      }
    })();
    const log = readFileSync(run.cluster.logPath, 'utf8').length;
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: count }, () => run.startWorker({ env })));
    const startSeconds = (Date.now() - started) / 1000;
    const failed = results.filter((result) => result.status === 'rejected');
    run.check(
      `all ${count} started`,
      failed.length === 0,
      failed.length > 0
        ? String((failed[0] as PromiseRejectedResult).reason).slice(0, 120)
        : `in ${startSeconds.toFixed(1)} s`,
    );
    await run.enqueueMany(
      work,
      Array.from({ length: count * 20 }, () => ({ ms: 10 })),
    );
    const drainedMs = await run.drain(60_000);
    sampling = false;
    await sampler;
    run.check('drained', drainedMs < 60_000);
    const versions = await run.rows('select version from baton.migrations order by version');
    run.check(
      'one schema',
      versions.length === latestMigrationVersion() &&
        versions.every((row, index) => row.version === index + 1),
      `versions ${versions.map((row) => row.version).join(',')}`,
    );
    const serverLog = readFileSync(run.cluster.logPath, 'utf8').slice(log);
    const stderr = run.workers.flatMap((worker) => worker.stderr).join('');
    run.check('no deadlock', !/deadlock/i.test(serverLog) && !/deadlock/i.test(stderr));
    run.check('connections within budget', peak <= budget, `peak ${peak}, budget ${budget}`);
  },
};
