import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { HttpError, type HttpErrorCode } from './errors.js';
import { SESSION_COOKIE, type SessionStore } from './sessions.js';
import type { ApiRole, ApiToken } from './settings.js';

/** What a request's token (or console session) grants, set by `requireToken` on the context. */
export interface ApiCaller {
  actor: string;
  role: ApiRole;
}

export type ApiEnv = { Variables: { caller: ApiCaller } };

/** The header the console sends on every request; a cross-site form cannot send it (see `checkCsrf`). */
export const CSRF_HEADER = 'x-baton-csrf';

// Not in errors.ts's union (owned elsewhere); the renderer takes any code.
const CSRF_REJECTED: HttpErrorCode = 'CSRF_REJECTED';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Finds the caller a token belongs to. Tokens are compared as SHA-256 digests with `timingSafeEqual`,
 * and every configured token is compared, so the time taken tells nothing of how much of a guess was
 * right or which entry matched.
 */
export function tokenVerifier(tokens: readonly ApiToken[]): (token: string) => ApiCaller | null {
  const known = tokens.map((entry) => ({ ...entry, digest: digest(entry.token) }));
  return (token) => {
    const presented = digest(token);
    let caller: ApiCaller | null = null;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, presented) && !caller)
        caller = { actor: entry.actor, role: entry.role };
    }
    return caller;
  };
}

/** The origin this server is reached at, as the browser sees it (a TLS-terminating proxy may say https). */
export function ownOrigin(c: Context): string {
  const url = new URL(c.req.url);
  return `${requestProtocol(c)}//${url.host}`;
}

/** `https:` when the request came over TLS (directly or, by `X-Forwarded-Proto`, through a proxy). */
export function requestProtocol(c: Context): string {
  const forwarded = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  if (forwarded === 'https' || forwarded === 'http') return `${forwarded}:`;
  return new URL(c.req.url).protocol;
}

/**
 * Refuses a request that may come from another site: an `Origin` other than our own, or a
 * `Sec-Fetch-Site` other than `same-origin` (or `none`, a navigation the user typed). A page cannot
 * forge either header; non-browser clients send neither and pass this check.
 *
 * `Origin: null` is what the console's own pages send: under `Referrer-Policy: no-referrer` a
 * browser writes the origin of a form post or same-origin fetch as "null" (Fetch standard, "append a
 * request Origin header"). So "null" passes only with `Sec-Fetch-Site: same-origin`, which every
 * browser that sends it sets itself; without that header "null" (also a sandboxed frame's origin)
 * is refused.
 */
export function checkSameOrigin(c: Context): void {
  const origin = c.req.header('origin');
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HttpError(403, CSRF_REJECTED, `cross-site request refused (Sec-Fetch-Site ${site})`);
  }
  if (origin === 'null' ? site !== 'same-origin' : origin !== undefined && origin !== ownOrigin(c)) {
    throw new HttpError(403, CSRF_REJECTED, `cross-origin request refused (Origin ${origin})`);
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery defence for cookie-authenticated requests that change state: the
 * `x-baton-csrf: 1` header is required (a cross-site form cannot send it, and a cross-site fetch
 * cannot without a CORS preflight, which this server never grants), and the origin must be ours.
 */
export function checkCsrf(c: Context): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  if (c.req.header(CSRF_HEADER) !== '1') {
    throw new HttpError(
      403,
      CSRF_REJECTED,
      `a request authenticated by the console session that changes state needs the ${CSRF_HEADER}: 1 header`,
    );
  }
  checkSameOrigin(c);
}

export interface RequireTokenOptions {
  /** The console's sessions; without it only bearer tokens are accepted. */
  sessions?: SessionStore;
}

/**
 * Authentication of /api and /metrics: an `Authorization: Bearer <token>` header, or else the
 * console's session cookie, which gives the same actor and role as the token it was opened with.
 * Cookie-authenticated requests that change state must pass `checkCsrf`; bearer requests are not
 * sent by browsers on their own, so they need no such check.
 */
export function requireToken(
  tokens: readonly ApiToken[],
  options: RequireTokenOptions = {},
): MiddlewareHandler<ApiEnv> {
  const verify = tokenVerifier(tokens);
  const { sessions } = options;
  return async (c, next) => {
    const header = c.req.header('authorization');
    const sessionId = sessions && header === undefined ? getCookie(c, SESSION_COOKIE) : undefined;
    let caller: ApiCaller | null;
    if (sessions && sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!session) {
        throw new HttpError(401, 'UNAUTHORIZED', 'the console session has ended or expired; log in again');
      }
      checkCsrf(c);
      caller = { actor: session.actor, role: session.role };
    } else {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
      if (!match) {
        c.header('WWW-Authenticate', 'Bearer');
        throw new HttpError(401, 'UNAUTHORIZED', 'an Authorization: Bearer <token> header is required');
      }
      caller = verify(match[1]!);
      if (!caller) {
        c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
        throw new HttpError(401, 'UNAUTHORIZED', 'the bearer token is not valid');
      }
    }
    c.set('caller', caller);
    await next();
  };
}

/** Refuses callers whose role is not one of `roles`. */
export function requireRole(...roles: ApiRole[]): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const caller = c.get('caller');
    if (!roles.includes(caller.role)) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `actor ${caller.actor} is a ${caller.role}; this action needs ${roles.map((role) => `a ${role}`).join(' or ')}`,
      );
    }
    await next();
  };
}

/** Refuses callers whose role is not `operator` (viewers only read). */
export const requireOperator = requireRole('operator');

/** Refuses callers who may not read (a `worker` token only claims and reports). */
export const requireReader = requireRole('viewer', 'operator');

/** Lets through workers and operators: claim, heartbeat, report. */
export const requireWorker = requireRole('worker', 'operator');
