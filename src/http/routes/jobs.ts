import { Hono } from 'hono';
import { z } from 'zod';
import type { Baton } from '../../core/baton.js';
import type { Job, JobDetail } from '../../types.js';
import { JOB_STATES, type JobState } from '../../types.js';
import { type ApiEnv, requireOperator, requireReader } from '../auth.js';
import { HttpError } from '../errors.js';
import type { Operation } from '../openapi.js';
import { pageLimit, parse, readJson, timestamp } from '../validation.js';

// Types are checked here; ranges and lengths are the core's to check (one set of rules for the
// library and the API), and its OPTIONS_INVALID comes back as a 400 too.
const jobOptionsShape = {
  runAt: timestamp.optional(),
  delayMs: z.number().optional(),
  priority: z.number().optional(),
  maxAttempts: z.number().optional(),
  idempotencyKey: z.string().optional(),
  traceId: z.string().optional(),
  group: z.string().optional(),
};

/** The most jobs one POST /api/jobs creates. */
export const MAX_JOBS_PER_REQUEST = 1000;

// A missing payload passes here so the core refuses it as PAYLOAD_INVALID, as the library does.
const enqueueOneBody = z.strictObject({
  kind: z.string().min(1),
  payload: z.unknown().optional(),
  ...jobOptionsShape,
});
const enqueueManyBody = z.strictObject({
  kind: z.string().min(1),
  jobs: z
    .array(z.strictObject({ payload: z.unknown().optional(), ...jobOptionsShape }))
    .min(1)
    .max(MAX_JOBS_PER_REQUEST),
});

const listQuery = z.strictObject({
  kind: z.string().min(1).optional(),
  state: z.enum(JOB_STATES as [JobState, ...JobState[]]).optional(),
  group: z.string().min(1).optional(),
  traceId: z.string().min(1).optional(),
  errorCode: z.string().min(1).optional(),
  createdFrom: timestamp.optional(),
  createdBefore: timestamp.optional(),
  cursor: z.string().min(1).optional(),
  limit: pageLimit(500).optional(),
});

/**
 * The lease token is the right to write a job's outcome: it stays inside Baton and its workers,
 * never in an API response.
 */
function publicJob<T extends Job>(job: T): Omit<T, 'leaseToken'> {
  const { leaseToken: _leaseToken, ...rest } = job;
  return rest;
}

/** The `/api/jobs` operations, for the OpenAPI document. */
export const jobOperations: Operation[] = [
  {
    method: 'get',
    path: '/api/jobs',
    summary: 'List jobs, newest first, with filters and cursor paging',
    access: 'viewer',
    query: listQuery,
  },
  {
    method: 'post',
    path: '/api/jobs',
    summary: 'Enqueue one job (kind, payload, options) or many (kind, jobs)',
    access: 'operator',
    body: z.union([enqueueOneBody, enqueueManyBody]),
    status: 201,
  },
  {
    method: 'get',
    path: '/api/jobs/:id',
    summary: 'One job with its attempts, errors, progress, result and dead letter',
    access: 'viewer',
  },
  {
    method: 'post',
    path: '/api/jobs/:id/retry',
    summary: 'Put a failed or cancelled job back to pending (audited)',
    access: 'operator',
  },
  {
    method: 'post',
    path: '/api/jobs/:id/cancel',
    summary: 'Cancel a pending or running job (audited)',
    access: 'operator',
  },
];

/** `/api/jobs` routes; the caller is already authenticated (see app.ts). */
export function jobRoutes(baton: Baton): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();

  routes.get('/', requireReader, async (c) => {
    const { cursor, limit, ...filters } = parse(listQuery, c.req.query(), 'query parameter');
    const page = await baton.listJobs(filters, { cursor, limit });
    return c.json({ jobs: page.jobs.map(publicJob), nextCursor: page.nextCursor });
  });

  routes.post('/', requireOperator, async (c) => {
    const body = await readJson(c.req);
    if (typeof body === 'object' && body !== null && 'jobs' in body) {
      const { kind, jobs } = parse(enqueueManyBody, body, 'body');
      const items = jobs.map(({ payload, ...options }) => ({ payload, ...options }));
      return c.json({ jobs: await baton.enqueueMany(kind, items, { actor: c.get('caller').actor }) }, 201);
    }
    const { kind, payload, ...options } = parse(enqueueOneBody, body, 'body');
    return c.json(
      { job: await baton.enqueue(kind, payload, { ...options, actor: c.get('caller').actor }) },
      201,
    );
  });

  routes.get('/:id', requireReader, async (c) => {
    const id = c.req.param('id');
    const job: JobDetail | null = await baton.getJob(id);
    if (!job) throw new HttpError(404, 'JOB_NOT_FOUND', `job ${id} does not exist`);
    return c.json({ job: publicJob(job) });
  });

  routes.post('/:id/retry', requireOperator, async (c) => {
    const id = c.req.param('id');
    const { previousState } = await baton.retry(id, { actor: c.get('caller').actor });
    return c.json({ job: { id, previousState, state: 'pending' } });
  });

  routes.post('/:id/cancel', requireOperator, async (c) => {
    const id = c.req.param('id');
    const { previousState } = await baton.cancel(id, { actor: c.get('caller').actor });
    return c.json({ job: { id, previousState, state: 'cancelled' } });
  });

  return routes;
}
