import type { Queryable } from '../db/database.js';
import { jobCompleteMany } from '../sql/jobs-lease.js';

/** Completions written by one statement; every caller of the batch awaits the same promise. */
interface Batch {
  items: string[];
  written: Promise<ReadonlySet<string>>;
  resolve(held: ReadonlySet<string>): void;
  reject(error: unknown): void;
}

/**
 * One element of `jobCompleteMany`'s parameter. `id` and `token` are a job's id and lease token as
 * the database returned them (UUIDs, so they need no escaping); `resultJson` is serialised JSON.
 */
export function completionItem(id: string, token: string, resultJson: string): string {
  return `{"id":"${id}","token":"${token}","result":${resultJson}}`;
}

function newBatch(): Batch {
  let resolve!: Batch['resolve'];
  let reject!: Batch['reject'];
  const written = new Promise<ReadonlySet<string>>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch whose callers have all gone (none, in practice) must not be an unhandled rejection.
  written.catch(() => {});
  return { items: [], written, resolve, reject };
}

/**
 * Writes completions in batches without waiting on a timer: completions of one event-loop turn go
 * together (setImmediate), and those that arrive while a write is in flight go together in the
 * next statement. Under load this turns N completions into a few statements; when idle it adds no
 * latency. A batch has one promise for all its callers (a promise per job was a fifth of what a
 * no-op drain allocated per job).
 */
export class CompletionWriter {
  private open?: Batch;
  private queued: Batch[] = [];
  private writing = false;

  constructor(
    private readonly db: Queryable,
    private readonly maxBatch = 1000,
  ) {}

  /**
   * Completes one job if its lease is still held (arguments as for `completionItem`). Resolves with
   * the ids of its batch that were still held: the job was completed if its id is among them,
   * fenced out if not.
   */
  complete(id: string, token: string, resultJson: string): Promise<ReadonlySet<string>> {
    let batch = this.open;
    if (!batch || batch.items.length >= this.maxBatch) {
      batch = this.open = newBatch();
      this.queued.push(batch);
    }
    batch.items.push(completionItem(id, token, resultJson));
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => void this.writeAll());
    }
    return batch.written;
  }

  private async writeAll(): Promise<void> {
    for (let batch = this.queued.shift(); batch; batch = this.queued.shift()) {
      if (batch === this.open) this.open = undefined;
      try {
        const { rows } = await this.db.query(jobCompleteMany, [`[${batch.items.join(',')}]`]);
        batch.resolve(new Set(rows.map((row: { id: string }) => row.id)));
      } catch (error) {
        batch.reject(error);
      }
    }
    this.writing = false;
  }
}
