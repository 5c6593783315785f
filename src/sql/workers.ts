/** The registry of live workers, and the fleet-wide limits they publish for their kinds. */

/** $1 id, $2 host, $3 pid, $4 kinds, $5 concurrency, $6 ms until the row counts as gone without a heartbeat. */
export const workerRegister = `
insert into baton.workers (id, host, pid, kinds, concurrency, expires_at)
values ($1, $2, $3, $4::text[], $5, now() + $6::integer * interval '1 millisecond')
on conflict (id) do update
set host = excluded.host, pid = excluded.pid, kinds = excluded.kinds, concurrency = excluded.concurrency,
    started_at = now(), last_heartbeat_at = now(), expires_at = excluded.expires_at`;

/** Removes the registry row and any hand-off slots the worker still offers. */
export const workerDeregister = `
with offers as (delete from baton.worker_offers where worker_id = $1)
delete from baton.workers where id = $1`;

/**
 * Forgets workers that stopped heartbeating long ago (their jobs are recovered by lease expiry, not
 * here), and hand-off slots of workers no longer registered (a stop whose offer landed late).
 */
export const workerForgetGone = `
with gone as (
  delete from baton.workers where expires_at < now() - interval '1 hour'
)
delete from baton.worker_offers o
where not exists (select 1 from baton.workers w where w.id = o.worker_id)`;

export const workerListLive = `
select id, host, pid, kinds, concurrency, running, started_at, last_heartbeat_at
from baton.workers where expires_at > now() order by started_at`;

/**
 * Publishes the limits of the kinds a worker serves (null = unlimited). $1: JSON array of
 * {kind, concurrency, rate_limit, rate_window_ms, group_concurrency}. Returns the rows whose limits
 * changed, so the worker can log that another configuration was overridden.
 */
export const kindLimitsPublish = `
with input as (
  select * from jsonb_to_recordset($1::jsonb) as x(
    kind text, concurrency integer, rate_limit integer, rate_window_ms integer, group_concurrency integer)
), previous as (
  select k.* from baton.kinds k join input using (kind)
), published as (
  insert into baton.kinds (kind, concurrency, rate_limit, rate_window_ms, group_concurrency)
  select kind, concurrency, rate_limit, rate_window_ms, group_concurrency from input
  on conflict (kind) do update
  set concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
      rate_window_ms = excluded.rate_window_ms, group_concurrency = excluded.group_concurrency, updated_at = now()
)
select input.kind from input join previous using (kind)
where (input.concurrency, input.rate_limit, input.rate_window_ms, input.group_concurrency)
      is distinct from (previous.concurrency, previous.rate_limit, previous.rate_window_ms, previous.group_concurrency)`;
