import { createHash, randomBytes } from 'node:crypto';
import type { ApiCaller } from './auth.js';

/** The console's session cookie: HttpOnly, SameSite=Strict, Path=/, Secure over https. */
export const SESSION_COOKIE = 'baton_session';

/** Settings of the console's session store, each with its default. */
export interface SessionStoreOptions {
  /** How long a session lasts from login, in milliseconds; not extended by use. Default 12 hours. */
  ttlMs?: number;
  /** The most sessions held at once; logging in beyond it ends the oldest. Default 10000. */
  maxSessions?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

export interface Session extends ApiCaller {
  expiresAt: Date;
}

const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');

/**
 * Console sessions, in this process's memory: a restart logs everyone out, and each API process
 * behind a load balancer has its own (use sticky sessions or bearer tokens there). The store keys
 * sessions by a SHA-256 digest of their id, so the ids themselves live only in the browsers' cookies.
 * A session's lifetime is absolute (12 hours by default), not sliding: a stolen cookie stops working
 * by the end of the shift whatever its thief does.
 */
export class SessionStore {
  readonly ttlMs: number;
  readonly maxSessions: number;
  private readonly now: () => number;
  /** Insertion order is creation order, so the first entry is the oldest. */
  private readonly sessions = new Map<string, Session>();

  constructor(options: SessionStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? 12 * 60 * 60 * 1000;
    this.maxSessions = options.maxSessions ?? 10_000;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs < 1000) {
      throw new RangeError(`session ttlMs must be an integer of at least 1000, got ${options.ttlMs}`);
    }
    if (!Number.isInteger(this.maxSessions) || this.maxSessions < 1) {
      throw new RangeError(`session maxSessions must be a positive integer, got ${options.maxSessions}`);
    }
  }

  /** Starts a session for `caller`; returns its id (32 random bytes, base64url), to send once as a cookie. */
  create(caller: ApiCaller): { id: string; session: Session } {
    this.sweep();
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session: Session = {
      actor: caller.actor,
      role: caller.role,
      expiresAt: new Date(this.now() + this.ttlMs),
    };
    this.sessions.set(hashId(id), session);
    return { id, session };
  }

  /** The live session with this id, or null (unknown, ended or expired). */
  get(id: string | undefined): Session | null {
    if (!id) return null;
    const key = hashId(id);
    const session = this.sessions.get(key);
    if (!session) return null;
    if (session.expiresAt.getTime() <= this.now()) {
      this.sessions.delete(key);
      return null;
    }
    return session;
  }

  /** Ends a session (logout); unknown ids are ignored. */
  delete(id: string | undefined): void {
    if (id) this.sessions.delete(hashId(id));
  }

  /** Live sessions, for tests and diagnostics. */
  get size(): number {
    this.sweep();
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, session] of this.sessions) {
      if (session.expiresAt.getTime() <= now) this.sessions.delete(key);
    }
  }
}
