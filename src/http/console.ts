import { Hono } from 'hono';
import type { ApiEnv } from './auth.js';

/** The ops console at /ops/queue (stub: being built). It talks to the API only. */
export function consoleRoutes(): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
