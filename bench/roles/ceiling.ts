/**
 * W1's ceiling: how many durable single-row inserts PostgreSQL itself commits per second on this
 * machine with 16 in flight, as W1 has, with no queue library: a plain table with a primary key and a
 * small JSON payload. Two ways, one after the other on a fresh database:
 *
 * - `grouped`: one connection, 16 rows per statement with one NOTIFY, back to back: what a client
 *   that groups its 16 callers into one commit (as Baton's single enqueues do) reaches here, with
 *   the least a statement can do per row.
 * - `parallel`: 16 connections, each committing one row at a time, no NOTIFY (pgbench-like): what
 *   the server's own group commit reaches when 16 commits arrive together. A queue that wakes its
 *   workers with a NOTIFY per commit gets less (PostgreSQL serialises notifying commits).
 *
 * Neither is a bound for every design, but a queue's W1 far below the better of the two is spending
 * its time in its own statement and client, not in PostgreSQL's commit.
 * Each way runs `rows` rows after 1,000 untimed ones, so it measures the server, not a cold client.
 * Both commit with the server's settings (synchronous_commit on, fsync on).
 */
import pg from 'pg';

export interface CeilingResult extends Record<string, number> {
  groupedRowsPerSec: number;
  parallelRowsPerSec: number;
}

const IN_FLIGHT = 16;
const WARM_UP_ROWS = 1000;

export async function enqueueCeiling(url: string, rows: number, deadline: number): Promise<CeilingResult> {
  const clients = Array.from({ length: IN_FLIGHT }, () => new pg.Client({ connectionString: url }));
  await Promise.all(clients.map((client) => client.connect()));
  try {
    const [first] = clients as [pg.Client];
    await first.query('create table bench_ceiling (id bigserial primary key, payload jsonb not null)');
    const payload = JSON.stringify({ t: Date.now() });

    /** Rows per second for `count` rows written by `write` (which returns how many it wrote). */
    const rate = async (count: number, write: () => Promise<number>): Promise<number> => {
      let done = 0;
      const start = performance.now();
      while (done < count && performance.now() < deadline) done += await write();
      return done / ((performance.now() - start) / 1000);
    };
    const grouped = () =>
      first
        .query(
          `with i as (insert into bench_ceiling (payload) select $1::jsonb from generate_series(1, ${IN_FLIGHT}) returning id)
           select pg_notify('bench_ceiling', max(id)::text) from i`,
          [payload],
        )
        .then(() => IN_FLIGHT);
    await rate(WARM_UP_ROWS, grouped);
    const groupedRowsPerSec = await rate(rows, grouped);

    /** Each connection commits one row at a time until `count` rows are written in all. */
    const parallel = async (count: number): Promise<number> => {
      let left = count;
      const start = performance.now();
      await Promise.all(
        clients.map(async (client) => {
          while (left > 0 && performance.now() < deadline) {
            left--;
            await client.query('insert into bench_ceiling (payload) values ($1::jsonb)', [payload]);
          }
        }),
      );
      return (count - Math.max(0, left)) / ((performance.now() - start) / 1000);
    };
    await parallel(WARM_UP_ROWS);
    const parallelRowsPerSec = await parallel(rows);
    return { groupedRowsPerSec, parallelRowsPerSec };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}
