import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { Baton } from '../../core/baton.js';
import {
  claimOptionsSchema,
  completedOutcomeSchema,
  failedOutcomeSchema,
  heartbeatOptionsSchema,
  type LeasedJob,
} from '../../core/leases.js';
import { BatonError } from '../../errors.js';
import { type ApiEnv, requireWorker } from '../auth.js';
import type { Logger } from '../logger.js';
import type { Operation } from '../openapi.js';
import { parse, readJson } from '../validation.js';

// The bodies are the core's option schemas plus what HTTP adds (the lease token, a shorter worker
// name), so the API and the library accept the same ranges.
const leaseToken = z.uuid();

const claimBody = claimOptionsSchema.extend({
  /** The caller's own name for itself; jobs record `http:<actor>:<workerId>` as their worker. */
  workerId: z.string().min(1).max(128).optional(),
});
const heartbeatBody = heartbeatOptionsSchema.extend({ leaseToken });
const reportBody = z.discriminatedUnion('outcome', [
  completedOutcomeSchema.extend({ leaseToken }),
  failedOutcomeSchema.extend({ leaseToken }),
]);

const leasedJob = z.object({
  id: z.uuid(),
  kind: z.string(),
  payload: z.unknown(),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  leaseToken: z.uuid(),
  leaseExpiresAt: z.string(),
  traceId: z.string().nullable(),
  group: z.string().nullable(),
  priority: z.number().int(),
  createdAt: z.string(),
});
const claimResponse = z.object({ jobs: z.array(leasedJob) });
const heartbeatResponse = z.object({ job: z.object({ id: z.uuid(), leaseExpiresAt: z.string() }) });
const reportResponse = z.object({
  job: z.object({
    id: z.uuid(),
    state: z.enum(['completed', 'pending', 'failed']),
    retryAt: z.string().nullable(),
    deadLetterReason: z.enum(['non_retryable', 'max_attempts_exceeded']).nullable(),
  }),
});

/** The /api/jobs (claim, heartbeat, report) operations, for the OpenAPI document. */
export const jobLeaseOperations: Operation[] = [
  {
    method: 'post',
    path: '/api/jobs/claim',
    summary: 'Claim due jobs of some kinds with a lease (workers in other languages)',
    access: 'worker',
    body: claimBody,
    response: claimResponse,
  },
  {
    method: 'post',
    path: '/api/jobs/:id/heartbeat',
    summary: 'Renew the lease of a claimed job and record its progress (409 LEASE_LOST / JOB_CANCELLED)',
    access: 'worker',
    body: heartbeatBody,
    response: heartbeatResponse,
  },
  {
    method: 'post',
    path: '/api/jobs/:id/report',
    summary: 'Report the outcome of a claimed job: completed with a result, or failed with an error',
    access: 'worker',
    body: reportBody,
    response: reportResponse,
  },
];

const leasedJobJson = (job: LeasedJob) => ({
  ...job,
  leaseExpiresAt: job.leaseExpiresAt.toISOString(),
  createdAt: job.createdAt.toISOString(),
});

/**
 * /api/jobs (claim, heartbeat, report) routes for workers in other languages; the caller is
 * already authenticated (see app.ts) and must be a worker or an operator. This is the one place a
 * lease token leaves Baton: to the worker that holds the lease.
 */
export function jobLeaseRoutes(baton: Baton, logger: Logger): Hono<ApiEnv> {
  const routes = new Hono<ApiEnv>();

  /** A fenced write that found the lease gone is logged like the library worker's (`job.lease_lost`). */
  const fenced = async <T>(c: Context<ApiEnv>, via: 'heartbeat' | 'report', write: () => Promise<T>) => {
    try {
      return await write();
    } catch (error) {
      if (error instanceof BatonError && (error.code === 'LEASE_LOST' || error.code === 'JOB_CANCELLED')) {
        logger.warn(
          {
            event: 'job.lease_lost',
            jobId: c.req.param('id'),
            via,
            actor: c.get('caller').actor,
            reason: error.code,
          },
          'a write from an HTTP worker was refused: its lease is gone',
        );
      }
      throw error;
    }
  };

  routes.post('/claim', requireWorker, async (c) => {
    const { workerId, ...options } = parse(claimBody, await readJson(c.req), 'body');
    const { actor } = c.get('caller');
    const jobs = await baton.leases.claim({
      ...options,
      workerId: workerId === undefined ? `http:${actor}` : `http:${actor}:${workerId}`,
    });
    return c.json({ jobs: jobs.map(leasedJobJson) });
  });

  routes.post('/:id/heartbeat', requireWorker, async (c) => {
    const { leaseToken, ...options } = parse(heartbeatBody, await readJson(c.req), 'body');
    const job = await fenced(c, 'heartbeat', () =>
      baton.leases.heartbeat(c.req.param('id'), leaseToken, options),
    );
    return c.json({ job: { id: job.id, leaseExpiresAt: job.leaseExpiresAt.toISOString() } });
  });

  routes.post('/:id/report', requireWorker, async (c) => {
    const { leaseToken, ...outcome } = parse(reportBody, await readJson(c.req), 'body');
    const job = await fenced(c, 'report', () => baton.leases.report(c.req.param('id'), leaseToken, outcome));
    return c.json({ job: { ...job, retryAt: job.retryAt?.toISOString() ?? null } });
  });

  return routes;
}
