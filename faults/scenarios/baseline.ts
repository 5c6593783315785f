/** Baseline: a bulk of short jobs on 4 worker processes, no fault. The checker must find nothing. */
import { work } from '../kinds.js';
import type { Scenario } from '../lib/harness.js';

export const baseline: Scenario = {
  name: 'baseline',
  summary: '100,000 jobs (quick: 5,000) of 0 ms on 4 worker processes, no fault',
  async run(run, size) {
    const total = size.quick ? 5000 : 100_000;
    for (let index = 0; index < 4; index++)
      await run.startWorker({ env: { BATON_LOG_LEVEL: 'warn', BATON_CONCURRENCY: '16' } });
    const started = Date.now();
    for (let done = 0; done < total; done += 5000) {
      await run.enqueueMany(
        work,
        Array.from({ length: Math.min(5000, total - done) }, () => ({ ms: 0 })),
      );
    }
    const drainedMs = await run.drain(size.quick ? 120_000 : 900_000);
    const seconds = (Date.now() - started) / 1000;
    run.note(`${Math.round(total / seconds)} jobs/s end to end`);
    run.check('drained', drainedMs < (size.quick ? 120_000 : 900_000), `${seconds.toFixed(1)} s`);
  },
};
