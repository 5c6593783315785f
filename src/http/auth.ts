import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { HttpError } from './errors.js';
import type { ApiRole, ApiToken } from './settings.js';

/** What a request's token grants, set by `requireToken` on the context. */
export interface ApiCaller {
  actor: string;
  role: ApiRole;
}

export type ApiEnv = { Variables: { caller: ApiCaller } };

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with `timingSafeEqual`, and
 * every configured token is compared, so the time taken tells nothing of how much of a guess was right
 * or which entry matched.
 */
export function requireToken(tokens: readonly ApiToken[]): MiddlewareHandler<ApiEnv> {
  const known = tokens.map((entry) => ({ ...entry, digest: digest(entry.token) }));
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'UNAUTHORIZED', 'an Authorization: Bearer <token> header is required');
    }
    const presented = digest(match[1]!);
    let caller: ApiCaller | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, presented) && !caller)
        caller = { actor: entry.actor, role: entry.role };
    }
    if (!caller) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new HttpError(401, 'UNAUTHORIZED', 'the bearer token is not valid');
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
