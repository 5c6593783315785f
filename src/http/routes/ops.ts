import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import type { ApiEnv } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /api/ops operations, for the OpenAPI document. */
export const opsOperations: Operation[] = [];

/** /api/ops routes (stub: being built). */
export function opsRoutes(_baton: Baton): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
