import type { Database } from '../db/database.js';
import { type EnqueuedJob, type InsertRow, insertJobsHandingOff } from './enqueue.js';

/**
 * How long single enqueues skip the hand-off statement after one found that no worker has slots to
 * offer (a busy worker's slots exist, just not on offer: they keep the statement in use). With
 * nobody to hand to, it costs ~100 µs more than the plain insert of 16 rows (~0.5 ms): bench W1 (16
 * enqueues in flight, no worker) ran ~28% slower with it on every statement.
 */
export const HANDOFF_PAUSE_MS = 50;

interface Waiting {
  row: InsertRow;
  resolve(job: EnqueuedJob): void;
  reject(error: unknown): void;
}

/**
 * Group commit for single enqueues made outside a caller's transaction: enqueues that arrive while
 * statements are in flight are written together in the next one (one statement, one commit, one
 * NOTIFY). Each caller is answered only when the statement holding its job has committed, so no
 * enqueue is acknowledged before it is durable. An idle enqueue goes out at once: no timer, no
 * added latency. The statement hands due jobs to waiting workers where they offer slots
 * (`insertJobsHandingOff`); while no worker has slots to offer at all (none runs, or none hands
 * off), the plain insert is used, looking again every HANDOFF_PAUSE_MS.
 */
export class EnqueueBatcher {
  private waiting: Waiting[] = [];
  private inFlight = 0;
  private idle?: () => void;
  /**
   * True from a statement's completion until the next macrotask. The callers it answers usually
   * enqueue again in microtasks; sending the first of them alone at once would split the callers
   * into two cohorts that alternate in half-size statements. Measured in bench/ W1 (16 single
   * enqueues in flight): 8 rows a statement and ~9,000 jobs/s without this, 16 rows and
   * ~15,000 jobs/s with it.
   */
  private settling = false;
  /** performance.now() until which statements skip the hand-off (no worker had slots to offer). */
  private plainUntil = 0;

  constructor(
    private readonly db: Database,
    /** Statements in flight at once; the next batch gathers while they commit. */
    private readonly maxInFlight = 2,
    private readonly maxBatch = 1000,
  ) {}

  enqueue(row: InsertRow): Promise<EnqueuedJob> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ row, resolve, reject });
      if (!this.settling) this.pump();
    });
  }

  /** Resolves once nothing is waiting or in flight. */
  drained(): Promise<void> {
    if (this.inFlight === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle = resolve;
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.inFlight++;
      this.write(batch).finally(() => {
        this.inFlight--;
        if (this.settling) return;
        this.settling = true;
        setImmediate(() => {
          this.settling = false;
          this.pump();
          if (this.inFlight === 0 && this.waiting.length === 0) this.idle?.();
        });
      });
    }
  }

  private async write(batch: Waiting[]): Promise<void> {
    try {
      const handOff = performance.now() >= this.plainUntil;
      const { jobs, offers } = await insertJobsHandingOff(
        this.db,
        batch.map((entry) => entry.row),
        handOff,
      );
      if (offers === false) this.plainUntil = performance.now() + HANDOFF_PAUSE_MS;
      for (const [index, entry] of batch.entries()) entry.resolve(jobs[index]!);
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One caller's row must not fail the others: each is tried on its own.
      await Promise.all(batch.map((entry) => this.write([entry])));
    }
  }
}
