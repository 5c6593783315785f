/**
 * Statements that workers outside the process (the HTTP API's claim, heartbeat and report) need
 * besides the lease life cycle of jobs-lease.ts, whose claim, complete, fail and recover they
 * reuse. Every write is fenced by the lease token like the library worker's (G3).
 */

/** The fleet-wide limits recorded for the kinds $1 (kinds with no row are unlimited). */
export const kindLimitsOf = `
select kind, concurrency, rate_limit, rate_window_ms, group_concurrency
from baton.kinds where kind = any($1::text[])`;

/**
 * Records the limits of kinds ($1: JSON array of {kind, concurrency, rate_limit, rate_window_ms,
 * group_concurrency}) that no worker has published yet, so that jobs claimed over HTTP respect the
 * limits their kind's definition declares even before a library worker of the kind ever started.
 * A row a worker published is left alone: its settings may override the definition on purpose.
 */
export const kindLimitsSeed = `
insert into baton.kinds (kind, concurrency, rate_limit, rate_window_ms, group_concurrency)
select kind, concurrency, rate_limit, rate_window_ms, group_concurrency
from jsonb_to_recordset($1::jsonb) as x(
  kind text, concurrency integer, rate_limit integer, rate_window_ms integer, group_concurrency integer)
on conflict (kind) do nothing`;

/**
 * The lease expiry of jobs just claimed ($1 ids), read in the claim's transaction: the claim
 * statements leave it out of their answer (the library worker knows its own lease length), but a
 * remote worker is told when its lease ends on database time.
 */
export const jobLeaseExpiries = `
select id, lease_expires_at from baton.jobs where id = any($1::uuid[])`;

/**
 * Renews one job's lease ($3 ms from now) and, when $4 is true, records its progress ($5), fenced:
 * only while the job runs under exactly the token $2 and its lease has not expired on database
 * time. No row means the lease is gone (see `jobLeaseState` for why).
 */
export const jobLeaseExtend = `
update baton.jobs
set lease_expires_at = now() + $3::integer * interval '1 millisecond',
    progress = case when $4::boolean then $5::jsonb else progress end,
    updated_at = case when $4::boolean then now() else updated_at end
where id = $1 and lease_token = $2 and state = 'running' and lease_expires_at > now()
returning id, lease_expires_at`;

/**
 * Where a job stands against the token $2: its kind and attempt (a failure report's backoff needs
 * them), whether it holds that token, and whether its lease is live on database time. No row: no
 * such job.
 */
export const jobLeaseState = `
select id, kind, state, attempts,
       coalesce(lease_token = $2::uuid, false) as held,
       coalesce(lease_expires_at > now(), false) as live,
       lease_expires_at
from baton.jobs where id = $1`;
