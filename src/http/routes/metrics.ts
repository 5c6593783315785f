import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import type { ApiEnv } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /metrics operations, for the OpenAPI document. */
export const metricsOperations: Operation[] = [];

/** /metrics routes (stub: being built). */
export function metricsRoutes(_baton: Baton): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
