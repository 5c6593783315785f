/** Read-only statements: one job with its history, and queue statistics. */

export const jobGet = `select * from baton.jobs where id = $1`;

export const jobAttemptsList = `
select attempt, worker_id, started_at, finished_at, outcome, error_code, error_message, error_stack
from baton.job_attempts where job_id = $1 order by id`;

export const deadLetterGet = `select * from baton.dead_letters where job_id = $1`;

/**
 * Counts per kind and state. It reads every job, finished ones too, so its cost grows with
 * history until retention prunes it; it is for operators, never on the claim path.
 */
export const queueStats = `
with by_state as (
  select kind,
         count(*) filter (where state = 'pending')::integer as pending,
         count(*) filter (where state = 'pending' and run_at <= now())::integer as due,
         count(*) filter (where state = 'running')::integer as running,
         count(*) filter (where state = 'completed')::integer as completed,
         count(*) filter (where state = 'failed')::integer as failed,
         count(*) filter (where state = 'cancelled')::integer as cancelled
  from baton.jobs group by kind
), dead as (
  select kind, count(*)::integer as dead_lettered from baton.dead_letters group by kind
), served as (
  select unnest(kinds) as kind, count(*)::integer as live_workers
  from baton.workers where expires_at > now() group by 1
), kinds as (
  select kind from by_state union select kind from dead union select kind from served
)
select kinds.kind,
       coalesce(pending, 0) as pending, coalesce(due, 0) as due, coalesce(running, 0) as running,
       coalesce(completed, 0) as completed, coalesce(failed, 0) as failed,
       coalesce(cancelled, 0) as cancelled, coalesce(dead_lettered, 0) as dead_lettered,
       coalesce(live_workers, 0) as live_workers
from kinds
left join by_state using (kind) left join dead using (kind) left join served using (kind)
order by kinds.kind`;

export const liveWorkerCount = `select count(*)::integer as n from baton.workers where expires_at > now()`;

/**
 * One page of jobs, newest first, with optional filters; keyset paging on the id, which is a
 * time-ordered UUIDv7 (src/core/job-id.ts), so a page costs the same at any depth and rows
 * inserted meanwhile cause no repeats or gaps. $1 kind, $2 state, $3 group, $4 trace id, $5 error
 * code (null: any), $6 created from (inclusive), $7 created before (exclusive), $8 the keyset:
 * rows before this id (the first page passes the largest uuid), $9 page size.
 *
 * The statement is prepared once, so the planner makes one generic plan. The keyset and created
 * range are plain comparisons (never "param is null or ...") so that plan is a backward walk of
 * the primary key stopping after $9 matches; the other filters, the created range included, are
 * checked row by row on that walk, so a filter that matches few jobs (or a range far in the past)
 * reads more of the index before it fills a page. Retention keeps that walk bounded.
 */
export const jobListPage = `
select * from baton.jobs
where id < $8::uuid
  and created_at >= $6::timestamptz
  and created_at < $7::timestamptz
  and ($1::text is null or kind = $1::text)
  and ($2::text is null or state = $2::text)
  and ($3::text is null or group_key = $3::text)
  and ($4::text is null or trace_id = $4::text)
  and ($5::text is null or error_code = $5::text)
order by id desc
limit $9`;
