/**
 * W4's floor: what PostgreSQL itself takes, at W4's pace, for the one step every PostgreSQL queue
 * pays before a job can start when its enqueue is durable: a one-row insert that commits (flushed
 * to disk) and notifies a listening connection. No queue library is involved; a plain table and a
 * channel of the probe's own. Three measures, one after another on the same two connections:
 *
 * - `durable`: insert + pg_notify in one statement, committed with the server's settings
 *   (synchronous_commit on): time from sending it until the listening connection receives the
 *   notification. A queue whose enqueue is durable before its job may start cannot beat this.
 * - `async`: the same with `synchronous_commit = off` for the probe's session (not durable): what
 *   the disk flush costs at this pace.
 * - `select`: `select 1` round trips: what waking an idle server process costs at this pace.
 *
 * Each sends one statement every 1000 / rate ms (one in flight), n times, and reports p50 and p99.
 */
import pg from 'pg';
import { quantile } from '../lib/quantile.js';

export interface FloorResult extends Record<string, number> {
  durableP50: number;
  durableP99: number;
  asyncP50: number;
  asyncP99: number;
  selectP50: number;
  selectP99: number;
}

const CHANNEL = 'bench_floor';

export async function latencyFloor(
  url: string,
  rate: number,
  n: number,
  deadline: number,
): Promise<FloorResult> {
  const listener = new pg.Client({ connectionString: url });
  const sender = new pg.Client({ connectionString: url });
  await listener.connect();
  await sender.connect();
  try {
    await sender.query('create table bench_floor (id bigserial primary key, sent double precision not null)');
    await listener.query(`listen ${CHANNEL}`);
    let arrived: ((at: number) => void) | undefined;
    listener.on('notification', () => arrived?.(performance.now()));

    const interval = 1000 / rate;
    /** Runs `send` n times at the pace; returns each one's latency, sorted. */
    const paced = async (send: (t0: number) => Promise<number>): Promise<number[]> => {
      const lat: number[] = [];
      await send(performance.now()); // warm-up: plan, first notification
      const start = performance.now();
      for (let i = 0; i < n && performance.now() < deadline; i++) {
        const wait = start + i * interval - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const t0 = performance.now();
        lat.push((await send(t0)) - t0);
      }
      return lat.sort((a, b) => a - b);
    };
    const insertNotify = async (t0: number): Promise<number> => {
      const notified = new Promise<number>((r) => {
        arrived = r;
      });
      await sender.query(
        `with i as (insert into bench_floor (sent) values ($1) returning id)
         select pg_notify('${CHANNEL}', id::text) from i`,
        [t0],
      );
      return notified;
    };

    const durable = await paced(insertNotify);
    await sender.query('set synchronous_commit = off');
    const async_ = await paced(insertNotify);
    await sender.query('reset synchronous_commit');
    const select = await paced(async () => {
      await sender.query('select 1');
      return performance.now();
    });
    return {
      durableP50: quantile(durable, 0.5),
      durableP99: quantile(durable, 0.99),
      asyncP50: quantile(async_, 0.5),
      asyncP99: quantile(async_, 0.99),
      selectP50: quantile(select, 0.5),
      selectP99: quantile(select, 0.99),
    };
  } finally {
    await listener.end();
    await sender.end();
  }
}
