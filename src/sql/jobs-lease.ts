/**
 * Statements of the lease life cycle: claim, renew, complete, fail, hand back, recover.
 * Every outcome is fenced: it matches only `lease_token = <the worker's token> and state = 'running'`,
 * so a late write after the lease moved on changes no row (G3).
 */

/**
 * Columns a worker needs to run a job. A timestamptz costs a text parse per value in
 * node-postgres (2.5% of a no-op drain's worker CPU), so run_at and created_at come back as epoch
 * milliseconds (float8, a plain number) and the lease expiry and worker, known to the worker, not
 * at all.
 */
export const claimedColumns = `j.id, j.kind, j.payload, j.priority,
  (extract(epoch from j.run_at) * 1000)::float8 as run_at, j.attempts, j.max_attempts,
  j.lease_token, j.trace_id, j.idempotency_key, j.group_key,
  (extract(epoch from j.created_at) * 1000)::float8 as created_at`;

/**
 * Claims up to $2 due jobs of the kinds $1 (kinds without fleet-wide limits) in one atomic statement:
 * `skip locked` lets concurrent claimers pass each other, and the update gives each job a fresh
 * lease token and expiry on database time (G2, G6). $3: lease ms, $4: worker id.
 *
 * The lateral walk takes each kind's jobs in claim order straight from `jobs_pending_kind` and
 * merges them. A plain `kind = any($1)` lets the planner, whenever its statistics are stale (a
 * table just filled by a bulk enqueue), fetch every pending job of the kinds and sort them at each
 * claim: a 50,000-job drain fell from ~5,000 to ~700 jobs/s that way.
 *
 * The update finds each locked row by its ctid (a Tid Scan: one buffer per job) rather than by
 * the primary key (three per job, measured on claims of 256); the row is locked by `for update`,
 * so its ctid stands until this transaction ends, and `j.id = next.id` keeps a row that moved from
 * ever being mistaken for another (it would only be left for the next claim).
 */
export const jobClaim = `
with next as (
  select candidate.id, candidate.ctid as row_ctid
  from unnest($1::text[]) as served(kind)
  cross join lateral (
    select ctid, id, priority, run_at from baton.jobs
    where state = 'pending' and kind = served.kind and run_at <= now()
    order by priority desc, run_at, id
    limit $2
    for update skip locked
  ) candidate
  order by candidate.priority desc, candidate.run_at, candidate.id
  limit $2
)
update baton.jobs j
set state = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
    lease_expires_at = now() + $3::integer * interval '1 millisecond', worker_id = $4,
    last_attempt_at = now(), updated_at = now(), error_code = null, error_message = null
from next
where j.ctid = next.row_ctid and j.id = next.id
returning ${claimedColumns}`;

/**
 * Takes the kind's limits row lock. Claims of a limited kind are serialised by it, so the counts in
 * `jobClaimLimited` (run as the next statement, with a fresh snapshot) are exact across the fleet.
 * On PostgreSQL the transaction may then sit idle for at most 2 s between statements before the
 * server ends the session: a claimer frozen while it holds the lock (a GC pause, SIGSTOP, a
 * suspended VM) would otherwise stall every claim of the kind, and every worker's start (which
 * upserts the kinds rows), until it resumed. Found by the fencing test freezing a worker mid-claim.
 * Not on PGlite: one process, nobody else to stall, and its single-user backend hangs when the
 * timeout fires.
 */
export function kindLock(engine: 'postgres' | 'pglite'): string {
  return engine === 'postgres' ? kindLockBounded : kindLockPlain;
}

const kindLockPlain = `
select concurrency, rate_limit, rate_window_ms, group_concurrency
from baton.kinds where kind = $1 for update`;

const kindLockBounded = `
select concurrency, rate_limit, rate_window_ms, group_concurrency,
       set_config('idle_in_transaction_session_timeout', '2000', true)
from baton.kinds where kind = $1 for update`;

/**
 * Claims up to $2 jobs of one limited kind $1 within its fleet-wide concurrency ($5), its rate
 * window ($6 starts per $7 ms, a sliding log in kind_starts) and its per-group concurrency ($8).
 * Runs after `kindLock` in the same transaction. Candidates are the first 1,000 due jobs in claim
 * order: with a per-group limit, jobs behind 1,000 blocked ones wait for a later claim.
 *
 * It uses statement_timestamp(), not now(): now() is the start of the transaction, before the wait
 * for the kind lock, so after a long wait the rate window would be judged (and the starts logged)
 * in the past, letting more than N starts into a real window.
 */
export const jobClaimLimited = `
with running as (
  select count(*)::integer as n from baton.jobs where state = 'running' and kind = $1
), recent as (
  select count(*)::integer as n from baton.kind_starts
  where kind = $1 and $6::integer is not null and started_at > statement_timestamp() - $7::integer * interval '1 millisecond'
), allowance as (
  select greatest(0, least($2::integer,
                           coalesce($5::integer - running.n, $2::integer),
                           coalesce($6::integer - recent.n, $2::integer))) as n
  from running, recent
), candidates as (
  select id, group_key, priority, run_at,
         row_number() over (partition by group_key order by priority desc, run_at, id) as group_rank
  from (
    select id, group_key, priority, run_at from baton.jobs
    where state = 'pending' and run_at <= statement_timestamp() and kind = $1
    order by priority desc, run_at, id
    limit 1000
  ) due
), running_groups as (
  select group_key, count(*)::integer as n from baton.jobs
  where state = 'running' and kind = $1 and group_key is not null and $8::integer is not null
  group by group_key
), chosen as (
  select c.id from candidates c
  left join running_groups g on g.group_key = c.group_key
  where $8::integer is null or c.group_key is null or c.group_rank + coalesce(g.n, 0) <= $8::integer
  order by c.priority desc, c.run_at, c.id
  limit (select n from allowance)
), claimed as (
  update baton.jobs j
  set state = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
      lease_expires_at = statement_timestamp() + $3::integer * interval '1 millisecond', worker_id = $4,
      last_attempt_at = statement_timestamp(), updated_at = statement_timestamp(), error_code = null, error_message = null
  from chosen
  where j.id = chosen.id and j.state = 'pending'
  returning ${claimedColumns}
), started as (
  insert into baton.kind_starts (kind, started_at) select $1, statement_timestamp() from claimed where $6::integer is not null
), forgotten as (
  delete from baton.kind_starts
  where kind = $1 and started_at <= statement_timestamp() - coalesce($7::integer, 0) * interval '1 millisecond'
)
select * from claimed`;

/**
 * Renews every live lease of a worker in one statement ($1 ids, $2 tokens, $3 lease ms) and
 * refreshes the worker's registry row ($4 id, $5 running count, $6 ms until it counts as gone).
 * Returns the ids still held; a job missing from the answer has lost its lease.
 */
export const leaseRenew = `
with renewed as (
  update baton.jobs j
  set lease_expires_at = now() + $3::integer * interval '1 millisecond'
  from unnest($1::uuid[], $2::uuid[]) as held(id, token)
  where j.id = held.id and j.lease_token = held.token and j.state = 'running'
  returning j.id
), alive as (
  update baton.workers
  set last_heartbeat_at = now(), running = $5, expires_at = now() + $6::integer * interval '1 millisecond'
  where id = $4
)
select id from renewed`;

/** Completes many jobs at once ($1: JSON array of {id, token, result}); returns the ids that were still held. */
export const jobCompleteMany = `
update baton.jobs j
set state = 'completed', result = done.result, finished_at = now(), updated_at = now(),
    lease_token = null, lease_expires_at = null
from jsonb_to_recordset($1::jsonb) as done(id uuid, token uuid, result jsonb)
where j.id = done.id and j.lease_token = done.token and j.state = 'running'
returning j.id`;

/** Locks a held job for a transactional completion; no row means the lease is gone. */
export const jobLockHeld = `
select id from baton.jobs where id = $1 and lease_token = $2 and state = 'running' for update`;

/** Records a running job's progress; fenced like every outcome. */
export const jobProgress = `
update baton.jobs set progress = $3::jsonb, updated_at = now()
where id = $1 and lease_token = $2 and state = 'running'
returning id`;

/**
 * Writes a failed attempt and the job's next state in one statement (G4): back to pending after
 * $4 ms of backoff, or failed with a dead letter when $3 (terminal code) is set or the attempts
 * are spent. $5 code, $6 message, $7 stack, $8 attempt outcome ('failed' or 'timed_out').
 */
export const jobFail = `
with failed as (
  update baton.jobs j
  set state = case when $3::boolean or j.attempts >= j.max_attempts then 'failed' else 'pending' end,
      run_at = case when $3::boolean or j.attempts >= j.max_attempts then j.run_at
                    else now() + $4::double precision * interval '1 millisecond' end,
      finished_at = case when $3::boolean or j.attempts >= j.max_attempts then now() end,
      error_code = $5, error_message = $6, lease_token = null, lease_expires_at = null, updated_at = now()
  where j.id = $1 and j.lease_token = $2 and j.state = 'running'
  returning j.id, j.kind, j.state, j.run_at, j.attempts, j.worker_id, j.trace_id, j.group_key, j.last_attempt_at
), attempt as (
  insert into baton.job_attempts (job_id, attempt, worker_id, lease_token, started_at, outcome, error_code, error_message, error_stack)
  select id, attempts, worker_id, $2, last_attempt_at, $8, $5, $6, $7 from failed
), dead_letter as (
  insert into baton.dead_letters (job_id, kind, reason, error_code, error_message, group_key, trace_id, attempts)
  select id, kind, case when $3::boolean then 'non_retryable' else 'max_attempts_exceeded' end,
         $5, $6, group_key, trace_id, attempts
  from failed where state = 'failed'
  on conflict (job_id) do update
  set reason = excluded.reason, error_code = excluded.error_code, error_message = excluded.error_message,
      attempts = excluded.attempts, created_at = now()
)
select id, state, run_at, ceil(greatest(0, extract(epoch from run_at - now()) * 1000))::integer as delay_ms
from failed`;

/**
 * Hands running jobs back to pending without spending an attempt (graceful shutdown past its
 * deadline). $1 ids, $2 tokens.
 */
export const jobHandBack = `
with handed as (
  update baton.jobs j
  set state = 'pending', attempts = greatest(j.attempts - 1, 0), run_at = now(),
      lease_token = null, lease_expires_at = null, updated_at = now()
  from unnest($1::uuid[], $2::uuid[]) as held(id, token)
  where j.id = held.id and j.lease_token = held.token and j.state = 'running'
  returning j.id
), wake as (
  select pg_notify('baton_jobs', '0') from handed having count(*) > 0
)
select handed.id from handed left join wake on true`;

/**
 * The recovery sweep (G5): up to $1 jobs whose lease expired on database time go back to pending,
 * or to failed with a dead letter when their attempts are spent. Each gets a `lease_expired`
 * attempt record. `skip locked` lets several workers sweep at once.
 *
 * A requeued job keeps its run_at (it was due when claimed), so it takes its old place in the
 * queue. With run_at = now() it went behind every job that became due while it was held: after a
 * worker was killed with the fleet near capacity, its jobs waited up to 13.6 s for a 2 s lease
 * (the fault suite's sigkill scenario).
 */
export const leaseRecoverExpired = `
with expired as (
  select id, lease_token, worker_id from baton.jobs
  where state = 'running' and lease_expires_at < now()
  order by lease_expires_at
  limit $1
  for update skip locked
), recovered as (
  update baton.jobs j
  set state = case when j.attempts >= j.max_attempts then 'failed' else 'pending' end,
      run_at = least(j.run_at, now()),
      finished_at = case when j.attempts >= j.max_attempts then now() end,
      error_code = 'EXECUTION_FAILED',
      error_message = 'lease expired: worker ' || coalesce(expired.worker_id, '?') || ' stopped renewing it',
      lease_token = null, lease_expires_at = null, updated_at = now()
  from expired
  where j.id = expired.id
  returning j.id, j.kind, j.state, j.attempts, j.trace_id, j.group_key, j.last_attempt_at, j.error_message,
            expired.lease_token as lost_token, expired.worker_id as lost_worker_id
), attempt as (
  insert into baton.job_attempts (job_id, attempt, worker_id, lease_token, started_at, outcome, error_code, error_message)
  select id, attempts, lost_worker_id, lost_token, last_attempt_at, 'lease_expired', 'EXECUTION_FAILED', error_message
  from recovered
), dead_letter as (
  insert into baton.dead_letters (job_id, kind, reason, error_code, error_message, group_key, trace_id, attempts)
  select id, kind, 'max_attempts_exceeded', 'EXECUTION_FAILED', error_message, group_key, trace_id, attempts
  from recovered where state = 'failed'
  on conflict (job_id) do update
  set reason = excluded.reason, error_code = excluded.error_code, error_message = excluded.error_message,
      attempts = excluded.attempts, created_at = now()
), wake as (
  select pg_notify('baton_jobs', '0') from recovered where state = 'pending' having count(*) > 0
)
select recovered.id, recovered.kind, recovered.state, recovered.attempts, recovered.trace_id,
       recovered.lost_worker_id
from recovered left join wake on true`;
