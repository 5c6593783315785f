/**
 * Control runs: each breaks a guarantee on purpose, and passes only when the checker catches it.
 *
 * - control-unfenced: a handler commits its completion on its own, outside the fenced completing
 *   transaction; a worker frozen past its lease then completes jobs another worker completed too.
 * - control-async-commit: synchronous_commit=off (and a slow WAL writer) with an immediate stop
 *   right after enqueues were acknowledged: acknowledged jobs vanish.
 */
import { createBaton } from '../../src/index.js';
import { work } from '../kinds.js';
import { FAST_LEASE, type Scenario, sleep } from '../lib/harness.js';

export const controlUnfenced: Scenario = {
  name: 'control-unfenced',
  summary:
    'CONTROL: completions written without the lease fence, worker frozen past its lease (must show duplicate completions)',
  control: true,
  async run(run) {
    const frozen = await run.startWorker({ env: FAST_LEASE });
    for (let index = 0; index < 4; index++)
      await run.enqueue(work, { ms: 3000, ignoreAbort: true, unfenced: true });
    await sleep(1000);
    frozen.kill('SIGSTOP');
    await run.fault('SIGSTOP', await run.runningOn(frozen));
    await run.startWorker({ env: FAST_LEASE });
    await run.drain(30_000);
    frozen.kill('SIGCONT');
    await sleep(3000); // the frozen worker's handlers finish and write their unfenced completions
  },
};

export const controlAsyncCommit: Scenario = {
  name: 'control-async-commit',
  summary:
    'CONTROL: synchronous_commit=off, then stop -m immediate right after acknowledged enqueues (must show lost jobs)',
  control: true,
  async run(run) {
    await run.cluster.admin(`alter database ${run.database} set synchronous_commit = off`);
    await run.cluster.admin(`alter system set wal_writer_delay = '10s'`);
    await run.cluster.admin('select pg_reload_conf()');
    try {
      // A new client: its connections start with the database's synchronous_commit=off.
      const producer = createBaton({ connectionString: run.url, maxConnections: 1 });
      const original = run.baton;
      run.baton = producer;
      for (let index = 0; index < 200; index++) await run.enqueue(work, { ms: 0 });
      run.baton = original;
      await run.cluster.stop('immediate');
      await producer.close().catch(() => {});
      await run.cluster.start();
    } finally {
      await run.cluster.admin(`alter system reset wal_writer_delay`);
      await run.cluster.admin('select pg_reload_conf()');
      await run.cluster.admin(`alter database ${run.database} reset synchronous_commit`);
    }
    await run.startWorker({ env: FAST_LEASE });
    await run.drain(30_000);
  },
};
