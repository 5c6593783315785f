import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import type { ApiEnv } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /api/audit-logs operations, for the OpenAPI document. */
export const auditOperations: Operation[] = [];

/** /api/audit-logs routes (stub: being built). */
export function auditRoutes(_baton: Baton): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
