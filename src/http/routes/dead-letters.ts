import { Hono } from 'hono';
import { z } from 'zod';
import type { Baton } from '../../core/baton.js';
import { JOB_STATES, type JobState } from '../../types.js';
import { type ApiEnv, requireOperator, requireReader } from '../auth.js';
import type { Operation } from '../openapi.js';
import { pageLimit, parse, readJson } from '../validation.js';

// Types are checked here; ranges, lengths and the "filters or jobIds" rule are the core's to check
// (one set of rules for the library and the API), and its OPTIONS_INVALID comes back as a 400 too.
const DEAD_REASONS = ['non_retryable', 'max_attempts_exceeded'] as const;

const filtersShape = {
  group: z.string().min(1).optional(),
  kind: z.string().min(1).optional(),
  traceId: z.string().min(1).optional(),
  reason: z.enum(DEAD_REASONS).optional(),
  errorCode: z.string().min(1).optional().describe('the code of the error that dead-lettered the job'),
};

const pageQuery = z.strictObject({
  ...filtersShape,
  cursor: z.string().min(1).optional(),
  limit: pageLimit(500).optional(),
});

const retryBody = z.strictObject({
  filters: z.strictObject(filtersShape).optional(),
  jobIds: z.array(z.string()).optional(),
  limit: z.number().optional(),
  dryRun: z.boolean().optional(),
});

const deadLetterItem = z.object({
  jobId: z.uuid(),
  kind: z.string(),
  reason: z.enum(DEAD_REASONS),
  errorCode: z.string().nullable(),
  errorMessage: z.string().nullable(),
  group: z.string().nullable(),
  traceId: z.string().nullable(),
  attempts: z.number().int(),
  createdAt: z.iso.datetime(),
  state: z.enum(JOB_STATES as [JobState, ...JobState[]]),
});

const listResponse = z.object({ deadLetters: z.array(deadLetterItem), nextCursor: z.string().nullable() });

const previewResponse = listResponse.extend({
  total: z.number().int(),
  retryable: z.number().int(),
});

const retryResponse = z.object({
  batchId: z.uuid().nullable(),
  dryRun: z.boolean(),
  retried: z.array(z.uuid()),
  skipped: z.array(
    z.object({
      jobId: z.uuid(),
      reason: z.enum(['job_missing', 'job_pending', 'job_running', 'job_completed']),
    }),
  ),
  matched: z.number().int(),
});

/** The /api/dead-letters operations, for the OpenAPI document. */
export const deadLetterOperations: Operation[] = [
  {
    method: 'get',
    path: '/api/dead-letters',
    summary: 'List dead letters, newest first, with their jobs’ state; filters and cursor paging',
    access: 'viewer',
    query: pageQuery,
    response: listResponse,
  },
  {
    method: 'get',
    path: '/api/dead-letters/preview',
    summary:
      'What a batch retry by the same filters would touch, paged, with total and retryable counts (no side effects)',
    access: 'viewer',
    query: pageQuery,
    response: previewResponse,
  },
  {
    method: 'post',
    path: '/api/dead-letters/retry',
    summary:
      'Retry failed or cancelled jobs by filters or by job ids (limit ≤ 500, dryRun), audited as one batch',
    access: 'operator',
    body: retryBody,
    response: retryResponse,
  },
];

/** `/api/dead-letters` routes; the caller is already authenticated (see app.ts). */
export function deadLetterRoutes(baton: Baton): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();

  routes.get('/', requireReader, async (c) => {
    const { cursor, limit, ...filters } = parse(pageQuery, c.req.query(), 'query parameter');
    return c.json(await baton.deadLetters.list(filters, { cursor, limit }));
  });

  routes.get('/preview', requireReader, async (c) => {
    const { cursor, limit, ...filters } = parse(pageQuery, c.req.query(), 'query parameter');
    return c.json(await baton.deadLetters.preview(filters, { cursor, limit }));
  });

  routes.post('/retry', requireOperator, async (c) => {
    const body = parse(retryBody, await readJson(c.req), 'body');
    return c.json(await baton.deadLetters.retry({ ...body, actor: c.get('caller').actor }));
  });

  return routes;
}
