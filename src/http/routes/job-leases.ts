import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import type { ApiEnv } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /api/jobs (claim, heartbeat, report) operations, for the OpenAPI document. */
export const jobLeaseOperations: Operation[] = [];

/** /api/jobs (claim, heartbeat, report) routes (stub: being built). */
export function jobLeaseRoutes(_baton: Baton): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
