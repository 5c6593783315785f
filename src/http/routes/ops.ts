import { Hono } from 'hono';
import { z } from 'zod';
import { MAX_AUDIT_ENTRIES_PER_PAGE } from '../../core/audit.js';
import type { Baton } from '../../core/baton.js';
import { MAX_OPS_RECENT, readOpsSnapshot } from '../../core/ops.js';
import { type ApiEnv, requireReader } from '../auth.js';
import type { Operation } from '../openapi.js';
import { pageLimit, parse } from '../validation.js';

const opsQuery = z.strictObject({
  recentLimit: pageLimit(MAX_OPS_RECENT)
    .optional()
    .describe('recent failures and dead letters: 1 to 200, default 20'),
  auditAction: z.string().min(1).optional().describe('audit entries of this action only'),
  auditActor: z.string().min(1).optional().describe('audit entries of this actor only'),
  auditCursor: z.string().min(1).optional().describe('audit.nextCursor of the previous snapshot'),
  auditLimit: pageLimit(MAX_AUDIT_ENTRIES_PER_PAGE)
    .optional()
    .describe('audit entries per page: 1 to 500, default 20'),
});

/** The /api/ops operations, for the OpenAPI document. */
export const opsOperations: Operation[] = [
  {
    method: 'get',
    path: '/api/ops',
    summary:
      'The ops snapshot: counts per kind and state, kinds without a worker, live workers, recent failures and ' +
      'dead letters, a page of the audit log, completions and failures per minute over the last hour',
    access: 'viewer',
    query: opsQuery,
  },
];

/** `/api/ops`; the caller is already authenticated (see app.ts). */
export function opsRoutes(baton: Baton): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();
  routes.get('/', requireReader, async (c) => {
    const query = parse(opsQuery, c.req.query(), 'query parameter');
    const snapshot = await readOpsSnapshot(baton, {
      recentLimit: query.recentLimit,
      audit: {
        filters: { action: query.auditAction, actor: query.auditActor },
        cursor: query.auditCursor,
        limit: query.auditLimit,
      },
    });
    return c.json(snapshot);
  });
  return routes;
}
