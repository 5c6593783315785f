/** Read-only statements of the ops snapshot (counts per kind come from `queueStats` in jobs-read.ts). */

/** Attempt outcomes that count as failures: a handler's error, a timeout, a lost lease (not an operator's cancel). */
const FAILED_OUTCOMES = `('failed', 'timed_out', 'lease_expired')`;

/**
 * The latest $1 failed attempts with their job's kind, group and trace id, newest first: a backward
 * walk of job_attempts_finished (migration 3), ties on finished_at broken by id.
 */
export const opsRecentFailures = `
select a.job_id, j.kind, j.group_key, j.trace_id, a.attempt, a.outcome, a.error_code, a.error_message,
       a.finished_at
from baton.job_attempts a
join baton.jobs j on j.id = a.job_id
where a.outcome in ${FAILED_OUTCOMES}
order by a.finished_at desc, a.id desc
limit $1`;

/** The latest $1 dead letters, newest first (dead_letters_created), with their job's state now. */
export const opsRecentDeadLetters = `
select d.*, j.state from baton.dead_letters d join baton.jobs j on j.id = d.job_id
order by d.created_at desc, d.job_id desc
limit $1`;

/**
 * Jobs completed and attempts failed in each of the last 60 minutes, oldest first, the current
 * minute last, zeros included. Both counts are range scans of the finished-time indexes
 * (jobs_finished, job_attempts_finished), so their cost follows the last hour's traffic, not
 * history. A completed job is counted in the minute it finished; retried later, it leaves the count.
 */
export const opsPerMinute = `
with bounds as (
  select date_trunc('minute', now()) - interval '59 minutes' as first_minute, now() as generated_at
), minutes as (
  select generate_series(first_minute, first_minute + interval '59 minutes', interval '1 minute') as minute
  from bounds
), completions as (
  select date_trunc('minute', finished_at) as minute, count(*) as completed
  from baton.jobs, bounds
  where finished_at >= bounds.first_minute and state = 'completed'
  group by 1
), failures as (
  select date_trunc('minute', finished_at) as minute, count(*) as failed
  from baton.job_attempts, bounds
  where finished_at >= bounds.first_minute and outcome in ${FAILED_OUTCOMES}
  group by 1
)
select minutes.minute, coalesce(completed, 0) as completed, coalesce(failed, 0) as failed,
       bounds.generated_at
from minutes
cross join bounds
left join completions using (minute)
left join failures using (minute)
order by minutes.minute`;
