import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Baton } from '../core/baton.js';
import type { AnyKindDefinition } from '../core/kinds.js';
import { pruneFinishedJobs } from '../core/retention.js';
import { jobFromRow } from '../core/rows.js';
import type { Database, Subscription } from '../db/database.js';
import { latestMigrationVersion, schemaVersion } from '../db/migrate.js';
import { BatonError } from '../errors.js';
import {
  HANDOFF_MAX_JOBS,
  handedJobs,
  handedToWorker,
  offerSlots,
  offerWithdraw,
  offerWithdrawSome,
} from '../sql/handoff.js';
import {
  jobClaim,
  jobClaimLimited,
  jobHandBack,
  kindLock,
  leaseRecoverExpired,
  leaseRenew,
} from '../sql/jobs-lease.js';
import { kindLimitsPublish, workerDeregister, workerForgetGone, workerRegister } from '../sql/workers.js';
import { CompletionWriter } from './completions.js';
import {
  abortExecution,
  type Execution,
  type ExecutionDeps,
  logLeaseLost,
  runExecution,
  startExecution,
} from './execution.js';
import { createWorkerLogger, type Logger } from './logger.js';
import { resolveWorkerSettings, type WorkerSettings } from './options.js';

/** The most work, in handler run time, that prefetched jobs may represent while they wait. */
const PREFETCH_WAIT_MS = 50;
const PREFETCH_AUTO_MAX = 1024;
/**
 * How long a handed job's id is remembered once heard of (by notification or by the poll's check):
 * long past any notification still on its way, as a lost LISTEN connection is dropped within two
 * health checks (10 s by default) and nothing arrives from it after that.
 */
const HANDED_MEMORY_MS = 60_000;
/** How long shutdown waits for handlers it aborted to settle before it goes on. */
const ABORTED_HANDLER_GRACE_MS = 1000;

export interface WorkerOptions extends Partial<WorkerSettings> {
  /** The kinds this worker runs; each needs a handler. A worker claims only these kinds. */
  kinds: readonly AnyKindDefinition[];
  /** Use this pino logger instead of creating one. */
  logger?: Logger;
}

interface KindLimits {
  kind: string;
  concurrency: number | null;
  rate_limit: number | null;
  rate_window_ms: number | null;
  group_concurrency: number | null;
}

export interface WorkerInspection {
  id: string;
  state: Worker['state'];
  concurrency: number;
  kinds: string[];
  listening: boolean;
  /** Claimed jobs waiting for a slot. */
  buffered: number;
  running: { jobId: string; kind: string; attempt: number; runningMs: number }[];
  counts: { claimed: number; completed: number; failed: number; leaseLost: number };
}

/**
 * The worker runtime (SPEC §5): claims jobs in batches sized to its free slots, wakes on
 * LISTEN/NOTIFY with polling as a fallback, renews all its leases in one statement per heartbeat,
 * sweeps expired leases, and stops gracefully.
 */
export class Worker {
  readonly settings: WorkerSettings;
  readonly log: Logger;
  state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';

  private readonly kinds = new Map<string, AnyKindDefinition>();
  private readonly limits: KindLimits[] = [];
  private readonly unlimitedKinds: string[] = [];
  /** Claimed jobs waiting for a slot (at most `prefetch`), oldest first; their leases are renewed like the others. */
  private buffer: Execution[] = [];
  /** Jobs whose handler runs: each holds a slot. */
  private readonly running = new Map<string, Execution>();
  /** Jobs whose handler settled and whose outcome is being written: no slot, but the lease is still held. */
  private readonly finishing = new Map<string, Execution>();
  private readonly completions: CompletionWriter;
  private readonly deps: ExecutionDeps;
  private subscription?: Subscription;
  private listening = false;
  private timers: NodeJS.Timeout[] = [];
  private wakeTimer?: { at: number; timer: NodeJS.Timeout };
  private pruning = false;
  /** performance.now() when the lease renewal in flight was sent. */
  private renewalSentAt?: number;
  private claiming = false;
  private claimAgain = false;
  /** The claim loop in flight, if any: shutdown waits for it. */
  private claimLoopDone?: Promise<void>;
  /** Bumped by every reason to look for jobs; a claim that comes back short clears `mayHaveMore` only if none arrived meanwhile. */
  private wakeups = 0;
  private mayHaveMore = true;
  private limitedTurn = 0;
  private drained?: () => void;
  private stopping?: Promise<void>;
  private forceStop?: () => void;
  private signalHandlers: [NodeJS.Signals, () => void][] = [];
  /** Moving average of handler run time (ms), starting pessimistic so a first claim never hoards long jobs. */
  private averageRunMs = 1000;
  private counts = { claimed: 0, completed: 0, failed: 0, leaseLost: 0 };
  /** The channel enqueues notify when they hand this worker a job (see `offerFreeSlots`). */
  private readonly handoffChannel = `baton_handoff_${randomUUID().replaceAll('-', '')}`;
  /** The backend of the LISTEN connection while it listens: an offer names it, and lapses with it. */
  private listenerPid?: number;
  /** Slots on offer or handed to this worker and not yet heard of: they hold no job here yet, but are not free. */
  private offered = 0;
  /** Slots may be on offer that no enqueue must take any more (the listener was lost): withdraw them all. */
  private offerOut = false;
  /** The next offer replaces the row's count instead of adding to it (after a reconnect or a lost answer). */
  private replaceOffer = true;
  /** A moment on this worker's clock (performance.now()) and the database's time read no earlier (epoch ms). */
  private databaseClock?: { localMs: number; databaseMs: number };
  /** Ids of jobs handed to this worker that it heard of, and when: none is taken on twice. */
  private readonly handedSeen = new Map<string, number>();
  /** This worker has offered slots since it started (so the poll looks for hand-offs it missed). */
  private offeredEver = false;
  private lookingForUnheard = false;
  /** Fetches of handed jobs in flight; shutdown waits for them. */
  private readonly handoffFetches = new Set<Promise<void>>();

  constructor(
    private readonly baton: Baton,
    options: WorkerOptions,
    handlerDb: () => Database,
  ) {
    const { kinds, logger, ...given } = options;
    this.settings = resolveWorkerSettings(given);
    this.log = logger ?? createWorkerLogger(this.settings.id, this.settings.logLevel);
    if (!Array.isArray(kinds) || kinds.length === 0) {
      throw new BatonError('CONFIG_INVALID', 'a worker needs at least one kind (option kinds)');
    }
    for (const definition of kinds) {
      if (typeof definition.handler !== 'function') {
        throw new BatonError(
          'CONFIG_INVALID',
          `kind ${definition.kind} has no handler; a worker can only run kinds with handlers`,
        );
      }
      if (this.kinds.has(definition.kind))
        throw new BatonError('CONFIG_INVALID', `kind ${definition.kind} is given twice`);
      this.kinds.set(definition.kind, definition);
      const rate = this.settings.kindRateLimit[definition.kind] ?? definition.rateLimit;
      const limits: KindLimits = {
        kind: definition.kind,
        concurrency: this.settings.kindConcurrency[definition.kind] ?? definition.concurrency ?? null,
        rate_limit: rate?.max ?? null,
        rate_window_ms: rate?.windowMs ?? null,
        group_concurrency:
          this.settings.groupConcurrency[definition.kind] ?? definition.groupConcurrency ?? null,
      };
      this.limits.push(limits);
      if (limits.concurrency === null && limits.rate_limit === null && limits.group_concurrency === null) {
        this.unlimitedKinds.push(definition.kind);
      }
    }
    for (const map of ['kindConcurrency', 'kindRateLimit', 'groupConcurrency'] as const) {
      for (const kind of Object.keys(this.settings[map])) {
        if (!this.kinds.has(kind))
          throw new BatonError(
            'CONFIG_INVALID',
            `setting ${map} names kind ${kind}, which this worker does not run`,
          );
      }
    }
    this.completions = new CompletionWriter(baton.db);
    this.deps = {
      db: baton.db,
      handlerDb,
      completions: this.completions,
      defaultBackoff: { baseMs: this.settings.backoffBaseMs, maxMs: this.settings.backoffMaxMs },
      leaseMs: this.settings.leaseMs,
      onRetryScheduled: (delayMs) => this.wakeIn(delayMs),
      handBack: (execution) => this.handBack([execution]),
      onHandlerSettled: (execution) => this.releaseSlot(execution),
    };
  }

  get id(): string {
    return this.settings.id;
  }

  /** Registers the worker, starts listening, heartbeating and sweeping, and begins claiming. */
  async start(): Promise<void> {
    if (this.state !== 'idle')
      throw new BatonError('CONFIG_INVALID', `worker ${this.id} was already started`);
    this.state = 'starting';
    try {
      await this.register();
    } catch (error) {
      // Leave nothing half-started: no registry row, no listener, no timers.
      this.state = 'stopped';
      for (const timer of this.timers.splice(0)) clearInterval(timer);
      await this.subscription?.close().catch(() => {});
      await this.baton.db.query(workerDeregister, [this.id]).catch(() => {});
      throw error;
    }
    this.every(this.settings.pollIntervalMs, () => {
      this.wake();
      void this.findUnheardHandoffs();
    });
    this.every(this.settings.heartbeatMs, () => this.heartbeat());
    this.every(this.settings.recoveryIntervalMs, () => this.recover());
    this.every(this.settings.retentionIntervalMs, () => this.pruneFinished());
    this.installSignalHandlers();
    this.state = 'running';
    // Slots are on offer by the time start() resolves (a first claim that finds jobs takes their
    // place), so single enqueues made right after it are handed over, not left to a claim.
    await this.offerFreeSlots(true).catch((error) => {
      this.log.warn(
        { event: 'claim.failed', err: (error as Error).message },
        'could not offer slots for hand-off; claiming as usual',
      );
    });
    this.log.info(
      {
        event: 'worker.started',
        kinds: [...this.kinds.keys()],
        concurrency: this.settings.concurrency,
        leaseMs: this.settings.leaseMs,
      },
      'worker started',
    );
    void this.recover();
    this.wake();
  }

  /** Writes the registry row and the kinds' limits, and starts listening. */
  private async register(): Promise<void> {
    const db = this.baton.db;
    const version = await schemaVersion(db);
    if (version < latestMigrationVersion()) {
      throw new BatonError(
        'SCHEMA_OUTDATED',
        `database schema is at version ${version}, Baton needs ${latestMigrationVersion()}: run \`baton migrate\``,
      );
    }
    await db.query(workerRegister, [
      this.id,
      hostname(),
      process.pid,
      [...this.kinds.keys()],
      this.settings.concurrency,
      this.liveForMs(),
    ]);
    const changed = await db.query(kindLimitsPublish, [JSON.stringify(this.limits)]);
    for (const row of changed.rows)
      this.log.warn(
        { event: 'kind.limits_changed', kind: row.kind },
        'this worker changed the fleet-wide limits of a kind',
      );
    this.subscription = await db.listen(['baton_jobs', 'baton_cancel', this.handoffChannel], {
      onNotification: (channel, payload) => this.onNotification(channel, payload),
      onConnected: ({ backendPid }) => {
        if (this.listening) return;
        this.listenerPid = backendPid;
        this.replaceOffer = true;
        this.listening = true;
        this.log.info({ event: 'listener.connected' }, 'listening for new jobs');
        this.wake(); // jobs enqueued while we were not listening
      },
      onUnavailable: (reason) => {
        this.listening = false;
        this.listenerLost();
        this.log.warn(
          { event: 'listener.unavailable', reason, pollIntervalMs: this.settings.pollIntervalMs },
          'LISTEN does not deliver notifications here; polling only',
        );
      },
      onLost: (error) => {
        this.listening = false;
        this.listenerLost();
        this.log.warn(
          { event: 'listener.lost', err: error.message },
          'LISTEN connection lost; polling until it is back',
        );
      },
    });
  }

  /**
   * Stops gracefully: no new claims; running jobs may finish until `shutdownTimeoutMs`, then their
   * signals abort (reason `shutdown`) and their jobs go back to pending without spending an attempt.
   */
  stop(): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped';
      return Promise.resolve();
    }
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  inspect(): WorkerInspection {
    const now = performance.now();
    return {
      id: this.id,
      state: this.state,
      concurrency: this.settings.concurrency,
      kinds: [...this.kinds.keys()],
      listening: this.listening,
      buffered: this.buffer.length,
      running: [...this.running.values()].map((execution) => ({
        jobId: execution.job.id,
        kind: execution.job.kind,
        attempt: execution.job.attempts,
        runningMs: Math.round(now - execution.startedAt),
      })),
      counts: { ...this.counts },
    };
  }

  private async shutdown(): Promise<void> {
    this.state = 'stopping';
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer.timer);
    this.log.info({ event: 'worker.stopping', running: this.running.size }, 'worker stopping');
    this.timers.push(setInterval(() => this.heartbeat(), this.settings.heartbeatMs)); // keep leases while draining
    // Claims in flight land in the buffer (nothing starts while stopping); wait for them, but not
    // past the shutdown deadline (a claim to an unreachable database may never answer).
    await Promise.race([
      this.claimLoopDone,
      new Promise((resolve) => setTimeout(resolve, this.settings.shutdownTimeoutMs).unref()),
    ]);
    await this.endHandoffs();
    // Jobs that never started go straight back, without spending an attempt.
    await this.handBack(this.buffer.splice(0));
    if (this.running.size > 0 || this.finishing.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.settings.shutdownTimeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
        this.forceStop = this.drained;
      });
    }
    if (this.running.size > 0) {
      const handing = [...this.running.values()];
      for (const execution of handing) abortExecution(execution, 'shutdown');
      await this.handBack(handing.filter((execution) => execution.phase === 'running'));
      // The aborted handlers get a moment to finish their own clean-up (their abort listeners,
      // finally blocks) before the process may exit; one that ignores its signal is not waited for.
      await Promise.race([
        Promise.allSettled(handing.map((execution) => execution.handlerRun)),
        new Promise((resolve) => setTimeout(resolve, ABORTED_HANDLER_GRACE_MS).unref()),
      ]);
    }
    if (this.running.size > 0 || this.finishing.size > 0) {
      // Outcome writes in flight get a moment to land before the registry row goes.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await this.subscription?.close().catch(() => {});
    await this.baton.db.query(workerDeregister, [this.id]).catch((error) => {
      this.log.warn(
        { event: 'worker.deregister_failed', err: error.message },
        'could not remove the registry row',
      );
    });
    this.removeSignalHandlers();
    this.state = 'stopped';
    this.log.info({ event: 'worker.stopped', ...this.counts }, 'worker stopped');
  }

  private every(ms: number, tick: () => unknown): void {
    const timer = setInterval(tick, ms);
    this.timers.push(timer);
  }

  private liveForMs(): number {
    return this.settings.heartbeatMs * 3;
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === this.handoffChannel) {
      this.onHandoff(payload);
      return;
    }
    if (channel === 'baton_cancel') {
      const buffered = this.buffer.find((execution) => execution.job.id === payload);
      if (buffered && this.dropBuffered(buffered)) {
        buffered.log.info({ event: 'job.cancelled' }, 'claimed job was cancelled before it started');
      }
      const execution = this.running.get(payload);
      if (execution) abortExecution(execution, 'cancelled');
      return;
    }
    const delayMs = Number(payload);
    this.wakeIn(Number.isFinite(delayMs) ? delayMs : 0);
  }

  /** Look for jobs in `delayMs` (0 = now); keeps only the earliest pending wake-up. */
  private wakeIn(delayMs: number): void {
    if (delayMs <= 0) {
      this.wake();
      return;
    }
    const at = performance.now() + delayMs;
    if (this.wakeTimer && this.wakeTimer.at <= at) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer.timer);
    this.wakeTimer = {
      at,
      timer: setTimeout(() => {
        this.wakeTimer = undefined;
        this.wake();
      }, delayMs + 5),
    };
  }

  private wake(): void {
    this.wakeups++;
    this.mayHaveMore = true;
    this.claimSoon();
  }

  private claimSoon(): void {
    if (this.state !== 'running') return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claimLoopDone = this.claimLoop();
  }

  /**
   * Claims while there are free slots and jobs may be waiting, one claim in flight at a time (so
   * jobs start in the order they were claimed), each of at most half the prefetch (at least the
   * concurrency). Claims of the whole room (up to 512 jobs then) left the worker idle while the
   * next was out: timing every claim of a 50,000-job no-op drain on the 2-core VM showed a claim in
   * flight 91% of the time and nothing running or buffered at each answer, as PostgreSQL took
   * longer to claim ~270 jobs (12 ms) than the worker took to run them. Half-size claims from a
   * prefetch of up to 1,024 go out while the other half still waits (docs/performance.md: quarter
   * or sixteenth claims, a 2,048 cap, and two or three claims in flight measured no better).
   * Shutdown waits for the claim and hands back what it brought.
   */
  private async claimLoop(): Promise<void> {
    this.claiming = true;
    try {
      for (;;) {
        await this.claimWhileWorthIt();
        // Nothing (more) to claim: offer the free slots to enqueues; a wake-up meanwhile claims again.
        await this.offerFreeSlots();
        if (!this.claimAgain) break;
      }
    } catch (error) {
      this.log.warn(
        { event: 'claim.failed', err: (error as Error).message },
        'claim failed; retrying at the next poll',
      );
    } finally {
      this.claiming = false;
    }
  }

  private async claimWhileWorthIt(): Promise<void> {
    do {
      this.claimAgain = false;
      if (this.offerOut && this.state === 'running') await this.withdrawOffer();
      // Slots on offer count as free for a claim; what it brings takes their place in the offer
      // (withdrawSlots below). Withdrawing the whole offer before each claim left enqueues without
      // one until it was back: on a 200 jobs/s stream, each job that then went to a claim caused
      // the next such gap, and 2-5% of the jobs went the slow way.
      const held = this.running.size + this.buffer.length;
      const free = Math.max(0, this.settings.concurrency - held);
      const prefetch = this.prefetchNow();
      const chunk = Math.max(this.settings.concurrency, Math.floor(prefetch / 2));
      const room = Math.min(chunk, this.settings.concurrency + prefetch - held);
      // With free slots, claim at once; otherwise only once a whole chunk fits, so that claims stay
      // large rather than a stream of tiny ones (measured on a 50,000 no-op drain: claims
      // alternated 524 and 20 jobs, and the tiny ones delayed the large).
      const worthClaiming = free > 0 || room >= chunk;
      if (room <= 0 || !worthClaiming || !this.mayHaveMore || this.state !== 'running') break;
      const wakeupsBefore = this.wakeups;
      const claimed = await this.claim(room, free);
      if (claimed > 0 && this.offered > 0) await this.withdrawSlots(claimed);
      if (claimed < room && this.wakeups === wakeupsBefore) this.mayHaveMore = false;
      else this.claimAgain = true;
    } while (this.claimAgain);
  }

  /**
   * Offers this worker's free slots for direct hand-off (setting `handoff`, sql/handoff.ts) once
   * a claim came back short and no wake-up has come since: the next single enqueues of its
   * unlimited kinds create their jobs already leased to it and notify it on its own channel. The
   * slots count as held from the moment they are offered (a hand-off may be notified before this
   * statement answers) until they are withdrawn or their jobs are heard of.
   */
  private async offerFreeSlots(atStart = false): Promise<void> {
    const pid = this.listenerPid;
    if (!this.settings.handoff || this.baton.db.engine !== 'postgres' || this.unlimitedKinds.length === 0)
      return;
    if ((this.mayHaveMore && !atStart) || this.state !== 'running' || !this.listening || pid === undefined)
      return;
    const slots = Math.min(this.settings.concurrency, HANDOFF_MAX_JOBS);
    const unheld = Math.min(slots, this.settings.concurrency - this.running.size - this.buffer.length);
    const free = unheld - this.offered;
    // Top up once half the free slots are off offer, rather than one statement per finished job.
    if (free <= 0 || this.offered * 2 >= unheld) return;
    const replace = this.replaceOffer;
    this.offered += free;
    this.offeredEver = true;
    const sentAt = performance.now();
    try {
      const { rows } = await this.baton.db.query(offerSlots, [
        this.id,
        this.handoffChannel,
        pid,
        this.unlimitedKinds,
        this.settings.leaseMs,
        slots,
        free,
        replace,
      ]);
      this.databaseClock = { localMs: sentAt, databaseMs: Number(rows[0].db_now_ms) };
      // Counted as offered before the answer (a hand-off may be heard first); correct the count.
      this.offered = Math.max(0, this.offered - (free - rows[0].offered));
      if (replace && this.listenerPid === pid) this.replaceOffer = false;
    } catch (error) {
      // Perhaps written, perhaps not: the next offer replaces the row's count.
      this.offered = Math.max(0, this.offered - free);
      this.replaceOffer = true;
      throw error;
    }
  }

  /** Takes back up to `count` slots on offer, skipping any an enqueue is taking (it will be heard of). */
  private async withdrawSlots(count: number): Promise<void> {
    const { rows } = await this.baton.db.query(offerWithdrawSome, [this.id, count]);
    this.offered = Math.max(0, this.offered - (rows[0]?.free ?? 0));
    this.handoffsMaybeSettled();
  }

  /** Takes back every slot still on offer (none of them was taken, so they are free again). */
  private async withdrawOffer(): Promise<void> {
    const { rows } = await this.baton.db.query(offerWithdraw, [this.id]);
    this.offerOut = false;
    this.offered = Math.max(0, this.offered - (rows[0]?.free ?? 0));
    this.handoffsMaybeSettled();
  }

  /**
   * Notifications on the lost connection are not heard, so nothing offered is coming any more (a
   * job handed to it meanwhile stays leased to this worker until its lease expires and recovery
   * requeues it). The offer is withdrawn by the next claim, which this wake-up starts; its backend
   * is gone, so no enqueue takes it meanwhile.
   */
  private listenerLost(): void {
    this.listenerPid = undefined;
    this.offered = 0;
    this.replaceOffer = true;
    if (this.state === 'running') this.offerOut = true;
    this.handoffsMaybeSettled();
    this.wake();
  }

  /**
   * An enqueue handed this worker jobs: the notification carries them whole (with the lease's start
   * on database time), or only their ids when they were too long for it, and then they are read.
   * Either way they run like claimed ones.
   */
  private onHandoff(payload: string): void {
    if (payload.startsWith('{') && this.databaseClock) {
      const { at, jobs: all } = JSON.parse(payload) as { at: number; jobs: Record<string, unknown>[] };
      const jobs = all.filter((job) => this.firstHeard(job.id as string));
      // The lease started at `at` on database time. The clock pair was taken with the offer: the
      // database read its time after this worker sent the statement, so `at` maps to no later than
      // this on the worker's clock (the lease is counted from no later than it began).
      const { localMs, databaseMs } = this.databaseClock;
      const leaseStartedAt = Math.min(performance.now(), localMs + (at - databaseMs));
      for (const row of jobs) this.enqueueLocally(row, leaseStartedAt, 'handoff');
      this.afterHandoff(jobs.length);
      return;
    }
    const all = payload.startsWith('{')
      ? (JSON.parse(payload) as { jobs: { id: string }[] }).jobs.map((job) => job.id)
      : payload.split(',');
    this.readHanded(all.filter((id) => this.firstHeard(id)));
  }

  /**
   * Whether a handed job is heard of for the first time (and remembers it); the first time, the
   * slot it took is no longer on offer.
   */
  private firstHeard(id: string): boolean {
    if (this.handedSeen.has(id)) return false;
    this.handedSeen.set(id, performance.now());
    this.offered = Math.max(0, this.offered - 1);
    return true;
  }

  /**
   * The poll's check for jobs handed to this worker that it never heard of: a LISTEN connection
   * that stops delivering while its backend lives on (a half-open connection, until the health
   * probe notices) keeps its offer takeable. Such jobs are taken on here, as soon as the next poll,
   * instead of waiting for their leases to expire.
   */
  private async findUnheardHandoffs(): Promise<void> {
    if (!this.offeredEver || this.lookingForUnheard || this.state !== 'running') return;
    this.lookingForUnheard = true;
    try {
      const forgetBefore = performance.now() - HANDED_MEMORY_MS;
      for (const [id, heardAt] of this.handedSeen) {
        if (heardAt >= forgetBefore) break; // in insertion order: the rest are newer
        this.handedSeen.delete(id);
      }
      const { rows } = await this.baton.db.query(handedToWorker, [this.id]);
      const known = new Set(this.buffer.map((execution) => execution.job.id));
      const unheard = rows
        .map((row: { id: string }) => row.id)
        .filter((id: string) => !known.has(id) && !this.running.has(id) && !this.finishing.has(id))
        .filter((id: string) => this.firstHeard(id));
      if (unheard.length === 0) return;
      this.log.warn(
        { event: 'handoff.unheard', jobIds: unheard },
        'jobs were handed to this worker without a notification reaching it; taking them on now',
      );
      this.readHanded(unheard);
    } catch (error) {
      this.log.warn(
        { event: 'handoff.check_failed', err: (error as Error).message },
        'could not look for jobs handed to this worker; retrying at the next poll',
      );
    } finally {
      this.lookingForUnheard = false;
    }
  }

  /** Reads handed jobs named by id and runs them. */
  private readHanded(ids: string[]): void {
    if (ids.length === 0) return;
    const sentAt = performance.now();
    const fetch: Promise<void> = this.baton.db
      .query(handedJobs, [ids, this.id])
      .then(
        ({ rows }) => this.receiveHanded(rows, sentAt),
        (error) => {
          this.log.warn(
            { event: 'handoff.read_failed', err: (error as Error).message, jobIds: ids },
            'could not read jobs handed to this worker; their leases will expire and recovery will requeue them',
          );
        },
      )
      .finally(() => {
        this.handoffFetches.delete(fetch);
        this.handoffsMaybeSettled();
      });
    this.handoffFetches.add(fetch);
  }

  private receiveHanded(rows: Record<string, unknown>[], sentAt: number): void {
    for (const row of rows) {
      // The lease started at the hand-off, before this read by what it is short of a whole lease.
      const shortMs = Math.max(0, this.settings.leaseMs - Number(row.lease_left_ms));
      this.enqueueLocally(row, sentAt - shortMs, 'handoff');
    }
    this.afterHandoff(rows.length);
  }

  /** Starts the jobs just handed over (the last `count` buffered), or hands them back when stopping. */
  private afterHandoff(count: number): void {
    if (count === 0) return;
    if (this.state === 'running') this.startBuffered();
    else void this.handBack(this.buffer.splice(this.buffer.length - count, count));
  }

  private handoffsSettled?: () => void;

  private handoffsMaybeSettled(): void {
    if (this.offered === 0 && this.handoffFetches.size === 0) this.handoffsSettled?.();
  }

  /**
   * On stop: withdraws the offer, then gives jobs already handed (notified or being read) up to a
   * second to arrive; they are handed back with the buffer, as nothing starts while stopping.
   */
  private async endHandoffs(): Promise<void> {
    if (this.offeredEver) {
      await this.withdrawOffer().catch((error) => {
        this.log.warn(
          { event: 'handoff.withdraw_failed', err: (error as Error).message },
          'could not withdraw the hand-off offer; it lapses with the listener connection',
        );
      });
    }
    if (this.offered === 0 && this.handoffFetches.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      this.handoffsSettled = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.handoffsSettled = undefined;
  }

  /**
   * How many claimed jobs may wait for a slot now. With `prefetch: 'auto'`: enough that the slots
   * never run dry between claims, but never more than about PREFETCH_WAIT_MS of work, so a worker
   * does not hoard long jobs that idle workers could run; at most PREFETCH_AUTO_MAX. Measured on
   * 50,000 no-op jobs at concurrency 32 (2 cores, loaded): claims of 64 drained ~4,800 jobs/s,
   * claims of 512 ~9,900.
   */
  private prefetchNow(): number {
    const { prefetch, concurrency } = this.settings;
    if (prefetch !== 'auto') return prefetch;
    const byRunTime = Math.floor((concurrency * PREFETCH_WAIT_MS) / Math.max(this.averageRunMs, 0.01));
    return Math.min(PREFETCH_AUTO_MAX, byRunTime);
  }

  /**
   * Claims up to `room` jobs of unlimited kinds (free slots plus prefetch), then jobs of limited
   * kinds only into truly free slots, so that a limited kind's fleet-wide capacity is never held by
   * a job that waits in this worker's buffer. Each statement's jobs are buffered (and started) as
   * soon as it answers, their lease counted from when it was sent: a slow limited-kind transaction
   * used to hold back the unlimited jobs claimed before it, their leases running out meanwhile.
   * Returns how many jobs were claimed.
   */
  private async claim(room: number, free: number): Promise<number> {
    const db = this.baton.db;
    const { leaseMs } = this.settings;
    let claimed = 0;
    if (this.unlimitedKinds.length > 0) {
      const sentAt = performance.now();
      const { rows } = await db.query(jobClaim, [this.unlimitedKinds, room, leaseMs, this.id]);
      this.buffered(rows, sentAt);
      claimed += rows.length;
    }
    const slots = Math.min(free, room - claimed);
    const limited = this.limits.filter((limits) => !this.unlimitedKinds.includes(limits.kind));
    let limitedClaimed = 0;
    for (let index = 0; index < limited.length && limitedClaimed < slots; index++) {
      // Rotate the starting kind so that one busy limited kind cannot starve the others.
      const { kind } = limited[(this.limitedTurn + index) % limited.length]!;
      const sentAt = performance.now();
      const rows = await db.transaction(async (tx) => {
        const {
          rows: [limits],
        } = await tx.query(kindLock(db.engine), [kind]);
        if (!limits) return [];
        const result = await tx.query(jobClaimLimited, [
          kind,
          slots - limitedClaimed,
          leaseMs,
          this.id,
          limits.concurrency,
          limits.rate_limit,
          limits.rate_window_ms,
          limits.group_concurrency,
        ]);
        return result.rows;
      });
      this.buffered(rows, sentAt);
      limitedClaimed += rows.length;
    }
    this.limitedTurn++;
    return claimed + limitedClaimed;
  }

  /** Buffers what one claim statement brought back and starts what fits. */
  private buffered(rows: Record<string, unknown>[], sentAt: number): void {
    if (rows.length === 0) return;
    for (const row of rows) this.enqueueLocally(row, sentAt);
    this.startBuffered();
  }

  private enqueueLocally(
    row: Record<string, unknown>,
    claimSentAt: number,
    via: 'claim' | 'handoff' = 'claim',
  ): Execution {
    const job = jobFromRow(row);
    job.workerId = this.id;
    const execution = startExecution(job, this.kinds.get(job.kind)!, this.log, claimSentAt);
    this.buffer.push(execution);
    this.counts.claimed++;
    execution.log.info({ event: 'job.claimed', workerId: this.id, via }, 'job claimed');
    return execution;
  }

  /**
   * Starts buffered jobs while slots are free. A job whose lease this worker can no longer vouch
   * for (no renewal answered within the lease, as in a partition, or a claim that took that long
   * to come back) is not started: it waits for a renewal, which either renews it (then it starts)
   * or finds it gone (job.lease_lost). Giving it up on the local estimate alone dropped jobs the
   * database still held for this worker when a claim was slow (seen in CI).
   */
  private startBuffered(): void {
    let stale = false;
    let index = 0;
    while (
      index < this.buffer.length &&
      this.running.size < this.settings.concurrency &&
      this.state === 'running'
    ) {
      if (this.leaseLeftMs(this.buffer[index]!) <= 0) {
        stale = true;
        index++;
      } else {
        this.execute(index === 0 ? this.buffer.shift()! : this.buffer.splice(index, 1)[0]!);
      }
    }
    if (stale) void this.heartbeat();
  }

  private dropBuffered(execution: Execution): boolean {
    const index = this.buffer.indexOf(execution);
    if (index < 0) return false;
    this.buffer.splice(index, 1);
    return true;
  }

  private execute(execution: Execution): void {
    const { job } = execution;
    execution.startedAt = performance.now();
    this.running.set(job.id, execution);
    const settle = () => {
      this.releaseSlot(execution);
      this.finishing.delete(job.id);
      if (this.running.size === 0 && this.finishing.size === 0) this.drained?.();
    };
    runExecution(execution, this.deps).then(
      () => {
        if (execution.abortReason === undefined) this.counts.completed++;
        settle();
      },
      (error) => {
        this.counts.failed++;
        execution.log.error(
          { event: 'job.outcome_unwritten', err: error },
          'could not write the outcome; the lease will expire and the job will be recovered',
        );
        settle();
      },
    );
    // After runExecution has set the handler's abort hook: an abort before that would not settle it.
    this.watchLeaseDeadline(execution);
  }

  private releaseSlot(execution: Execution): void {
    const { job } = execution;
    if (this.running.get(job.id) !== execution) return;
    this.running.delete(job.id);
    this.finishing.set(job.id, execution);
    this.averageRunMs += 0.2 * (performance.now() - execution.startedAt - this.averageRunMs);
    this.startBuffered();
    // A settled job of a limited kind frees fleet-wide capacity that a short claim may have left unused.
    if (!this.unlimitedKinds.includes(job.kind)) this.wake();
    else this.claimSoon();
  }

  /**
   * Renews every lease in one statement; jobs missing from the answer lost their lease and are
   * aborted. One renewal is in flight at a time: while the database does not answer (a partition),
   * ticks do not pile statements onto the pool, but they still watch the leases' deadlines.
   */
  private async heartbeat(): Promise<void> {
    this.watchLeaseDeadlines();
    if (this.renewalSentAt !== undefined && performance.now() - this.renewalSentAt < this.settings.leaseMs)
      return;
    const executions = [...this.buffer, ...this.running.values(), ...this.finishing.values()];
    const sentAt = performance.now();
    this.renewalSentAt = sentAt;
    let answered = false;
    try {
      const { rows } = await this.baton.db.query(leaseRenew, [
        executions.map((execution) => execution.job.id),
        executions.map((execution) => execution.job.leaseToken),
        this.settings.leaseMs,
        this.id,
        executions.length,
        this.liveForMs(),
      ]);
      const held = new Set(rows.map((row: { id: string }) => row.id));
      for (const execution of executions) {
        if (held.has(execution.job.id)) execution.renewedAt = sentAt;
        else if (this.dropBuffered(execution)) logLeaseLost(execution, 'heartbeat');
        else if (execution.phase === 'running' && this.running.get(execution.job.id) === execution)
          this.loseLease(execution);
      }
      answered = true;
    } catch (error) {
      this.log.warn(
        { event: 'heartbeat.failed', err: (error as Error).message, running: executions.length },
        'could not renew leases',
      );
    } finally {
      if (this.renewalSentAt === sentAt) this.renewalSentAt = undefined;
    }
    this.watchLeaseDeadlines();
    // Buffered jobs that waited for this answer may start now (never after a failed renewal: that
    // would retry at once, in a loop while the database is down).
    if (answered && this.buffer.length > 0) this.startBuffered();
  }

  /**
   * A lease not renewed for a whole lease time may already be someone else's: stop working on it
   * by its deadline, whether or not the renewal statement ever answers. The deadline counts from
   * when the last successful renewal was sent (the database's expiry is at least that late), less a
   * small margin; a timer fires at the deadline itself, not at the next tick, which could be up to
   * a heartbeat after another worker took the job. Found by the fault suite's partition scenario:
   * the check used to run only after the renewal answered, so during a partition it never ran.
   */
  private watchLeaseDeadlines(): void {
    for (const execution of [...this.running.values()]) {
      if (execution.phase === 'running') this.watchLeaseDeadline(execution);
    }
    // Buffered jobs past their deadline are not dropped here: startBuffered never starts them, and
    // the next renewal that answers tells whether they are still this worker's.
  }

  /** Milliseconds until this worker must stop working on the job (see watchLeaseDeadlines). */
  private leaseLeftMs(execution: Execution): number {
    const { leaseMs } = this.settings;
    // 200 ms for a 2 s lease: a fresh-clone CI run saw a timer fire ~100 ms late on the loaded VM.
    const marginMs = Math.min(250, leaseMs / 10);
    return execution.renewedAt + leaseMs - marginMs - performance.now();
  }

  /**
   * Aborts a running job whose deadline has passed, or arms a timer at its deadline when that comes
   * before the next heartbeat tick. Also called when a job starts: one started from the buffer
   * close to its deadline used to wait for the next tick, up to a heartbeat past the deadline (the
   * partition scenario saw aborts 2.1 to 2.7 s after the cut on a 2 s lease).
   */
  private watchLeaseDeadline(execution: Execution): void {
    const leftMs = this.leaseLeftMs(execution);
    if (leftMs <= 0) this.loseLease(execution);
    else if (leftMs <= this.settings.heartbeatMs && !execution.leaseTimer) {
      // Node may fire a timer a little early (it counts from the event loop's cached time), and
      // then the deadline had not quite passed: check again at once rather than at the next
      // heartbeat tick, up to a third of a lease later (aborts 0.2 to 0.6 s late were seen in CI).
      execution.leaseTimer = setTimeout(() => {
        execution.leaseTimer = undefined;
        const current = this.running.get(execution.job.id) === execution;
        if (current && execution.phase === 'running') this.watchLeaseDeadline(execution);
      }, Math.ceil(leftMs) + 1);
    }
  }

  private loseLease(execution: Execution): void {
    if (execution.abortReason) return;
    this.counts.leaseLost++;
    logLeaseLost(execution, 'heartbeat');
    abortExecution(execution, 'lease_lost');
  }

  private async recover(): Promise<void> {
    try {
      for (;;) {
        const { rows } = await this.baton.db.query(leaseRecoverExpired, [this.settings.recoveryBatchSize]);
        for (const row of rows) {
          const fields = {
            jobId: row.id,
            kind: row.kind,
            attempt: row.attempts,
            traceId: row.trace_id ?? undefined,
            lostWorkerId: row.lost_worker_id,
          };
          if (row.state === 'failed') {
            this.log.warn(
              {
                event: 'job.dead_lettered',
                ...fields,
                reason: 'max_attempts_exceeded',
                errorCode: 'EXECUTION_FAILED',
              },
              'lease expired on the last attempt',
            );
          } else {
            this.log.warn({ event: 'recovery.requeued', ...fields }, 'lease expired; job requeued');
          }
        }
        if (rows.length < this.settings.recoveryBatchSize) break;
      }
      await this.baton.db.query(workerForgetGone);
    } catch (error) {
      this.log.warn(
        { event: 'recovery.failed', err: (error as Error).message },
        'recovery sweep failed; retrying at the next interval',
      );
    }
  }

  /** Deletes finished jobs past their retention (every worker does; `skip locked` keeps them apart). */
  private async pruneFinished(): Promise<void> {
    if (this.pruning) return; // a slow run is not stacked on by the next tick
    this.pruning = true;
    try {
      const deleted = await pruneFinishedJobs(this.baton.db, {
        retainCompletedMs: this.settings.retainCompletedMs,
        retainFailedMs: this.settings.retainFailedMs,
        batchSize: this.settings.retentionBatchSize,
      });
      if (deleted.completed + deleted.failed > 0) {
        this.log.info({ event: 'retention.deleted', ...deleted }, 'finished jobs past retention deleted');
      }
    } catch (error) {
      this.log.warn(
        { event: 'retention.failed', err: (error as Error).message },
        'deleting finished jobs failed; retrying at the next interval',
      );
    } finally {
      this.pruning = false;
    }
  }

  private async handBack(executions: Execution[]): Promise<void> {
    if (executions.length === 0) return;
    try {
      const { rows } = await this.baton.db.query(jobHandBack, [
        executions.map((execution) => execution.job.id),
        executions.map((execution) => execution.job.leaseToken),
      ]);
      const handed = new Set(rows.map((row: { id: string }) => row.id));
      for (const execution of executions) {
        execution.phase = 'finishing';
        if (handed.has(execution.job.id))
          execution.log.info({ event: 'job.handed_back' }, 'job handed back to pending on shutdown');
      }
    } catch (error) {
      this.log.error(
        { event: 'job.hand_back_failed', err: (error as Error).message },
        'could not hand jobs back; their leases will expire and recovery will requeue them',
      );
    }
  }

  private installSignalHandlers(): void {
    for (const signal of this.settings.shutdownSignals) {
      const handler = () => {
        if (this.stopping) {
          this.log.warn({ event: 'worker.stop_forced', signal }, 'second signal: aborting running jobs now');
          this.forceStop?.();
          return;
        }
        this.log.info({ event: 'worker.signal', signal }, 'stopping on signal');
        void this.stop().then(async () => {
          if (process.listenerCount(signal) === 0) {
            await this.baton.close().catch(() => {});
            process.exit(0);
          }
        });
      };
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }
  }

  private removeSignalHandlers(): void {
    for (const [signal, handler] of this.signalHandlers.splice(0)) process.off(signal, handler);
  }
}
