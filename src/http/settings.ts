import { BatonError } from '../errors.js';

/**
 * `viewer` reads everything; `operator` also acts (enqueue, retry, cancel, prune); `worker` only
 * claims jobs and heartbeats and reports the ones it holds (workers in other languages).
 */
export type ApiRole = 'viewer' | 'operator' | 'worker';
export const API_ROLES: readonly ApiRole[] = ['viewer', 'operator', 'worker'];

/** One API token: who holds it (recorded in the audit log) and what it may do. */
export interface ApiToken {
  actor: string;
  role: ApiRole;
  token: string;
}

/**
 * Every setting of the HTTP API, its environment variable and its default, defined once.
 * Precedence: defaults < environment < options given in code.
 */
export interface HttpSettings {
  /** `BATON_HTTP_PORT`: port to listen on; 0 picks a free one. Default 8080. */
  port: number;
  /** `BATON_HTTP_HOST`: address to listen on. Default 127.0.0.1 (this machine only). */
  host: string;
  /**
   * `BATON_API_TOKENS`: comma-separated `actor:role:token` entries, role `viewer` (reads),
   * `operator` (also acts) or `worker` (claims and reports jobs), tokens of at least 16 characters. Default none: every route but
   * health then answers 401.
   */
  tokens: ApiToken[];
  /** `BATON_HTTP_BODY_LIMIT_BYTES`: largest request body; a larger one gets 413. Default 1048576 (1 MiB). */
  bodyLimitBytes: number;
  /**
   * `BATON_AUDIT_TTL_DAYS`: audit entries older than this many days are pruned periodically by
   * `baton serve`; 0 disables the periodic prune. Default 30.
   */
  auditTtlDays: number;
  /** `BATON_AUDIT_PRUNE_INTERVAL_MS`: time between periodic prunes. Default 3600000 (1 hour). */
  auditPruneIntervalMs: number;
  /** `BATON_AUDIT_PRUNE_BATCH_SIZE`: entries deleted per statement by the periodic prune. Default 1000. */
  auditPruneBatchSize: number;
}

export const MIN_TOKEN_LENGTH = 16;

const DEFAULTS: HttpSettings = {
  port: 8080,
  host: '127.0.0.1',
  tokens: [],
  bodyLimitBytes: 1024 * 1024,
  auditTtlDays: 30,
  auditPruneIntervalMs: 60 * 60 * 1000,
  auditPruneBatchSize: 1000,
};

const invalid = (variable: string, value: string, expected: string) =>
  new BatonError('CONFIG_INVALID', `invalid setting ${variable}=${JSON.stringify(value)}: ${expected}`);

function integerSetting(variable: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(variable, text, `expected an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Parses `BATON_API_TOKENS`. A bad entry is named by its position and actor, never by its token,
 * so the message can be logged.
 */
export function parseApiTokens(text: string, variable = 'BATON_API_TOKENS'): ApiToken[] {
  const tokens: ApiToken[] = [];
  const entries = text.split(',').map((entry) => entry.trim());
  for (const [index, entry] of entries.entries()) {
    if (entry === '' && entries.length === 1) break;
    const where = `${variable}: entry ${index + 1}`;
    const parts = entry.split(':');
    if (parts.length !== 3 || parts.some((part) => part === '')) {
      throw new BatonError('CONFIG_INVALID', `invalid setting ${where}: expected actor:role:token`);
    }
    const [actor, role, token] = parts as [string, string, string];
    if (!(API_ROLES as readonly string[]).includes(role)) {
      throw new BatonError(
        'CONFIG_INVALID',
        `invalid setting ${where} (actor ${actor}): role ${JSON.stringify(role)} is not one of ${API_ROLES.join(', ')}`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new BatonError(
        'CONFIG_INVALID',
        `invalid setting ${where} (actor ${actor}): the token has ${token.length} characters, at least ${MIN_TOKEN_LENGTH} are needed`,
      );
    }
    if (tokens.some((other) => other.token === token)) {
      throw new BatonError(
        'CONFIG_INVALID',
        `invalid setting ${where} (actor ${actor}): the same token is given twice`,
      );
    }
    tokens.push({ actor, role: role as ApiRole, token });
  }
  return tokens;
}

/** HTTP settings: defaults, then `BATON_HTTP_*` / `BATON_API_TOKENS` variables, then `overrides`; validated. */
export function resolveHttpSettings(
  overrides: Partial<HttpSettings> = {},
  env: NodeJS.ProcessEnv = process.env,
): HttpSettings {
  const settings: HttpSettings = { ...DEFAULTS };
  const read = (variable: string) => {
    const value = env[variable];
    return value === undefined || value === '' ? undefined : value;
  };
  const port = read('BATON_HTTP_PORT');
  if (port !== undefined) settings.port = integerSetting('BATON_HTTP_PORT', port, 0, 65_535);
  const host = read('BATON_HTTP_HOST');
  if (host !== undefined) settings.host = host;
  const tokens = read('BATON_API_TOKENS');
  if (tokens !== undefined) settings.tokens = parseApiTokens(tokens);
  const limit = read('BATON_HTTP_BODY_LIMIT_BYTES');
  if (limit !== undefined) {
    settings.bodyLimitBytes = integerSetting('BATON_HTTP_BODY_LIMIT_BYTES', limit, 1, 1024 * 1024 * 1024);
  }
  const ttl = read('BATON_AUDIT_TTL_DAYS');
  if (ttl !== undefined) settings.auditTtlDays = integerSetting('BATON_AUDIT_TTL_DAYS', ttl, 0, 36_500);
  const interval = read('BATON_AUDIT_PRUNE_INTERVAL_MS');
  if (interval !== undefined) {
    settings.auditPruneIntervalMs = integerSetting(
      'BATON_AUDIT_PRUNE_INTERVAL_MS',
      interval,
      1000,
      2_147_483_647,
    );
  }
  const batch = read('BATON_AUDIT_PRUNE_BATCH_SIZE');
  if (batch !== undefined) {
    settings.auditPruneBatchSize = integerSetting('BATON_AUDIT_PRUNE_BATCH_SIZE', batch, 1, 100_000);
  }
  const merged = { ...settings, ...stripUndefined(overrides) };
  if (!Number.isInteger(merged.port) || merged.port < 0 || merged.port > 65_535) {
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting port=${merged.port}: expected an integer from 0 to 65535`,
    );
  }
  if (!Number.isInteger(merged.bodyLimitBytes) || merged.bodyLimitBytes < 1) {
    throw new BatonError(
      'CONFIG_INVALID',
      `invalid setting bodyLimitBytes=${merged.bodyLimitBytes}: expected a positive integer`,
    );
  }
  for (const [name, min, max] of [
    ['auditTtlDays', 0, 36_500],
    ['auditPruneIntervalMs', 1000, 2_147_483_647],
    ['auditPruneBatchSize', 1, 100_000],
  ] as const) {
    const value = merged[name];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new BatonError(
        'CONFIG_INVALID',
        `invalid setting ${name}=${value}: expected an integer from ${min} to ${max}`,
      );
    }
  }
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
