import { type Queryable, queryRows } from '../db/database.js';
import { jobDeleteFinished } from '../sql/retention.js';

export interface RetentionOptions {
  /** Completed jobs are deleted this long after they finished; 0 keeps them forever. */
  retainCompletedMs: number;
  /** Failed and cancelled jobs (and their dead letters) are deleted this long after they finished; 0 keeps them. */
  retainFailedMs: number;
  /** Jobs deleted per statement. */
  batchSize: number;
  /** Statements per call at most, so one call stays short however large the backlog. Default 20. */
  maxBatches?: number;
}

/**
 * Deletes finished jobs past their retention, in batches, and says how many went. Safe to run
 * from every worker at once (`skip locked`); pending and running jobs are never touched.
 */
export async function pruneFinishedJobs(
  db: Queryable,
  { retainCompletedMs, retainFailedMs, batchSize, maxBatches = 20 }: RetentionOptions,
): Promise<{ completed: number; failed: number }> {
  const total = { completed: 0, failed: 0 };
  if (retainCompletedMs <= 0 && retainFailedMs <= 0) return total;
  // 0 means "keep forever": the statement gets null, and a comparison with null matches nothing.
  const completedMs = retainCompletedMs > 0 ? retainCompletedMs : null;
  const failedMs = retainFailedMs > 0 ? retainFailedMs : null;
  const smallest = Math.min(completedMs ?? Number.POSITIVE_INFINITY, failedMs ?? Number.POSITIVE_INFINITY);
  for (let batch = 0; batch < maxBatches; batch++) {
    const [row] = await queryRows<{ completed: number; failed: number }>(db, jobDeleteFinished, [
      completedMs,
      failedMs,
      batchSize,
      smallest,
    ]);
    total.completed += row!.completed;
    total.failed += row!.failed;
    if (row!.completed + row!.failed < batchSize) break;
  }
  return total;
}
