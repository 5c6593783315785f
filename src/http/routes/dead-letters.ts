import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import type { ApiEnv } from '../auth.js';
import type { Operation } from '../openapi.js';

/** The /api/dead-letters operations, for the OpenAPI document. */
export const deadLetterOperations: Operation[] = [];

/** /api/dead-letters routes (stub: being built). */
export function deadLetterRoutes(_baton: Baton): Hono<ApiEnv> {
  return new Hono<ApiEnv>();
}
