import pino from 'pino';
import type { Baton } from '../../src/core/baton.js';
import { createHttpLogger, type Logger } from '../../src/http/logger.js';
import { type HttpServer, startHttpServer } from '../../src/http/server.js';
import { type HttpSettings, resolveHttpSettings } from '../../src/http/settings.js';

/** Tokens of the HTTP tests: one operator, one viewer. */
export const OPERATOR_TOKEN = 'operator-token-0123456789';
export const VIEWER_TOKEN = 'viewer-token-0123456789ab';
export const WORKER_TOKEN = 'worker-token-0123456789ab';
export const TEST_TOKENS: HttpSettings['tokens'] = [
  { actor: 'alice', role: 'operator', token: OPERATOR_TOKEN },
  { actor: 'bob', role: 'viewer', token: VIEWER_TOKEN },
  { actor: 'robot', role: 'worker', token: WORKER_TOKEN },
];

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response is JSON; otherwise its text (null when empty). */
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by each test.
  body: any;
}

/** A logger that keeps every line it writes, parsed, for tests that check log events. */
export function captureLogs(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (text: string) => lines.push(JSON.parse(text)) });
  return { logger, lines };
}

/** The API of `baton` served on a free port of 127.0.0.1, with a small client for it. */
export async function serveApi(
  baton: Baton,
  settings: Partial<HttpSettings> = {},
  options: { logger?: Logger } = {},
): Promise<{ server: HttpServer; call: ApiCall }> {
  const server = await startHttpServer(
    baton,
    // The environment is left out so that a developer's BATON_* variables do not change the tests.
    resolveHttpSettings({ port: 0, host: '127.0.0.1', tokens: TEST_TOKENS, ...settings }, {}),
    { logger: options.logger ?? createHttpLogger('silent') },
  );
  const call: ApiCall = async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? OPERATOR_TOKEN : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (options.headers) Object.assign(headers, options.headers);
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.json !== undefined) body = JSON.stringify(options.json);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const response = await fetch(`${server.url}${path}`, { method, headers, body });
    const text = await response.text();
    const json = response.headers.get('content-type')?.includes('application/json');
    return {
      status: response.status,
      headers: response.headers,
      body: json && text ? JSON.parse(text) : text || null,
    };
  };
  return { server, call };
}

export type ApiCall = (
  method: 'GET' | 'POST',
  path: string,
  options?: {
    /** Default the operator's; null sends no Authorization header. */
    token?: string | null;
    json?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  },
) => Promise<ApiResponse>;
