/**
 * Enqueues inside the caller's transactions (G7), half of which roll back, while workers run. No
 * rolled-back job may ever run (the checker counts it as unexpected); every committed one must.
 */
import { work } from '../kinds.js';
import { FAST_LEASE, type Scenario } from '../lib/harness.js';

export const rollbackHalf: Scenario = {
  name: 'rollback-half',
  summary: 'enqueues in 2,000 transactions (quick: 300) of 1 to 5 jobs, half rolled back, 2 workers running',
  async run(run, size) {
    for (let index = 0; index < 2; index++)
      await run.startWorker({ env: { ...FAST_LEASE, BATON_LOG_LEVEL: 'warn' } });
    const transactions = size.quick ? 300 : 2000;
    let committed = 0;
    let rolledBack = 0;
    const client = await run.pool.connect();
    try {
      for (let index = 0; index < transactions; index++) {
        await client.query('begin');
        const seqs: number[] = [];
        for (let job = 0; job < 1 + (index % 5); job++) {
          await run.enqueue(work, { ms: 0 }, { client });
          seqs.push(run.lastSeq);
        }
        const commit = Math.random() < 0.5;
        await client.query(commit ? 'commit' : 'rollback');
        run.settleTransaction(seqs, commit);
        if (commit) committed += seqs.length;
        else rolledBack += seqs.length;
      }
    } finally {
      client.release();
    }
    const drainedMs = await run.drain(60_000);
    run.check('drained', drainedMs < 60_000);
    const [rows] = await run.rows(`select count(*)::int as n from baton.jobs`);
    run.check(
      'exactly the committed jobs exist',
      rows.n === committed,
      `${rows.n} rows, ${committed} committed, ${rolledBack} rolled back`,
    );
  },
};
