/**
 * Kinds of the fault suite, loaded by real workers (`baton worker --jobs faults/kinds.ts`). Every
 * execution writes ledger rows (faults/lib/ledger.ts); the payload's `seq` is the driver's own
 * number for the job, so the checker can tell acknowledged, rolled-back and unknown jobs apart.
 * Importing this module has no side effect (the runner imports it for the definitions).
 */
import pg from 'pg';
import { z } from 'zod';
import { defineKind, type JobContext } from '../src/index.js';
import { DatabaseClock, LEDGER_INSERT, type LedgerOutcome, ledgerValues } from './lib/ledger.js';

let ledgerPool: pg.Pool | undefined;
let clock: DatabaseClock | undefined;
/** The ledger's own pool (not Baton's), made on first use in the process that runs handlers. */
function ledger(): { pool: pg.Pool; clock: DatabaseClock } {
  if (!ledgerPool) {
    ledgerPool = new pg.Pool({
      connectionString: process.env.DATABASE_URL,
      max: Number(process.env.FAULTS_LEDGER_CONNECTIONS ?? 2),
    });
    ledgerPool.on('error', () => {}); // a restart kills idle clients; the pool makes new ones
    clock = new DatabaseClock(ledgerPool);
  }
  return { pool: ledgerPool, clock: clock! };
}

/** Writes a ledger row in its own transaction, retrying through a database restart for up to 30 s. */
async function record(
  context: JobContext<{ seq: number }>,
  startedMs: number,
  endedMs: number,
  outcome: LedgerOutcome,
  detail: string | null = null,
): Promise<void> {
  const values = ledgerValues(context.job, context.job.payload.seq, startedMs, endedMs, outcome, detail);
  for (let tries = 0; ; tries++) {
    try {
      await ledger().pool.query(LEDGER_INSERT, values);
      return;
    } catch (error) {
      if (tries >= 60) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

const reasonOf = (error: unknown) => String((error as { reason?: string })?.reason ?? error);

const workPayload = z.object({
  seq: z.number().int(),
  /** How long the handler works. */
  ms: z.number().min(0).default(0),
  /** Fail attempts up to this number (a plain, retryable error). */
  failAttempts: z.number().int().min(0).default(0),
  /** Keep working after the signal aborts (a handler that does not cooperate). */
  ignoreAbort: z.boolean().default(false),
  /** CONTROL ONLY: also record a completion outside the fenced transaction (breaks G3/G8 on purpose). */
  unfenced: z.boolean().default(false),
});

/** The workhorse: works `ms`, then completes with its ledger row in the fenced completing transaction. */
export const work = defineKind({
  kind: 'faults.work',
  payload: workPayload,
  maxAttempts: 25,
  timeoutMs: 60_000,
  backoff: { baseMs: 100, maxMs: 500 },
  handler: async (input, context) => {
    const { clock } = ledger();
    const startedMs = await clock.now();
    try {
      if (input.ms > 0) await sleep(input.ms, input.ignoreAbort ? undefined : context.signal);
    } catch (error) {
      // The moment the handler saw its abort is when it stopped working on the job.
      await record(context, startedMs, await clock.now(), 'aborted', reasonOf(error));
      throw error;
    }
    if (context.job.attempts <= input.failAttempts) {
      await record(context, startedMs, await clock.now(), 'failed');
      throw new Error(`planned failure of attempt ${context.job.attempts}`);
    }
    if (input.unfenced) {
      // CONTROL: the side effect is committed on its own, not in the fenced completing transaction.
      await record(context, startedMs, await clock.now(), 'completed', 'unfenced');
      return { seq: input.seq };
    }
    try {
      return await context.completeInTransaction(async (tx) => {
        const values = ledgerValues(context.job, input.seq, startedMs, await clock.now(), 'completed');
        await tx.query(LEDGER_INSERT, values);
        return { seq: input.seq };
      });
    } catch (error) {
      await record(context, startedMs, await clock.now(), 'rejected', (error as Error).name);
      throw error;
    }
  },
});

/** Records the attempt's start, then ends the whole process it runs in, as a native crash would. */
async function swallowPoison(_input: unknown, context: JobContext<{ seq: number }>): Promise<never> {
  const now = await ledger().clock.now();
  await record(context, now, now, 'started');
  process.abort();
}

/** A poison pill: the handler kills its whole process (process.abort()), at every attempt. */
export const poison = defineKind({
  kind: 'faults.poison',
  payload: z.object({ seq: z.number().int() }),
  maxAttempts: 3,
  handler: swallowPoison,
});

/**
 * The same poison pill isolated in a child process (`isolation: 'process'`): each attempt ends its
 * own child only, and fails (retryable, naming SIGABRT) with the worker still running.
 */
export const poisonIsolated = defineKind({
  kind: 'faults.poison_isolated',
  payload: z.object({ seq: z.number().int() }),
  maxAttempts: 3,
  backoff: { baseMs: 100, maxMs: 500 },
  isolation: 'process',
  moduleUrl: import.meta.url,
  handler: swallowPoison,
});

/** Never settles and ignores its signal: only the timeout frees its slot. */
export const hang = defineKind({
  kind: 'faults.hang',
  payload: z.object({ seq: z.number().int() }),
  maxAttempts: 2,
  timeoutMs: 1000,
  backoff: { baseMs: 100, maxMs: 200 },
  handler: async (_input, context) => {
    const now = await ledger().clock.now();
    await record(context, now, now, 'started');
    context.signal.addEventListener('abort', () => {
      void ledger()
        .clock.now()
        .then((at) => record(context, now, at, 'aborted', reasonOf(context.signal.reason)));
    });
    return new Promise<never>(() => {});
  },
});

/** Stuck in a CPU loop, in an isolated thread: the timeout terminates the thread and frees the slot. */
export const spin = defineKind({
  kind: 'faults.spin',
  payload: z.object({ seq: z.number().int() }),
  maxAttempts: 2,
  timeoutMs: 1000,
  backoff: { baseMs: 100, maxMs: 200 },
  isolation: 'thread',
  moduleUrl: import.meta.url,
  handler: async (_input, context) => {
    const now = await ledger().clock.now();
    await record(context, now, now, 'started');
    for (;;) {
      // A CPU loop that never yields: no timer, signal or message reaches this thread's event loop.
    }
  },
});

const leaked: pg.Client[] = [];
/**
 * Leaks database connections: opens `connections` clients of its own and never closes them, then
 * completes through Baton's handler pool like any other job.
 */
export const leak = defineKind({
  kind: 'faults.leak',
  payload: z.object({ seq: z.number().int(), connections: z.number().int().min(0).max(20).default(2) }),
  maxAttempts: 5,
  handler: async (input, context) => {
    const { clock } = ledger();
    const startedMs = await clock.now();
    for (let index = 0; index < input.connections; index++) {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      client.on('error', () => {});
      await client.connect();
      await client.query('begin'); // and an open transaction, idle, forever
      leaked.push(client);
    }
    return context.completeInTransaction(async (tx) => {
      await tx.query(
        LEDGER_INSERT,
        ledgerValues(context.job, input.seq, startedMs, await clock.now(), 'completed'),
      );
      return { leaked: leaked.length };
    });
  },
});
