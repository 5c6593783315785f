/**
 * Statements behind `GET /metrics` (src/core/fleet-metrics.ts). The gauges are read whole at each
 * scrape; the counters and histograms read only what finished inside a window (since, until] of
 * finished_at, which moves forward at every scrape, so their cost follows the rate of completions,
 * not the size of history.
 */

/**
 * The end of the next window: the database's time less $2 ms (the safety lag), never before $1
 * (the previous end). finished_at is set to now(), the start of the finishing transaction, so a
 * row can become visible after later ones: the lag lets transactions that take up to $2 ms between
 * their start and their commit land before the window closes over them. As text, because a JS Date
 * drops the microseconds a window edge needs to count each row once.
 */
export const metricsWindowEnd = `
select greatest($1::timestamptz, statement_timestamp() - $2::integer * interval '1 millisecond')::text as until`;

/** The database's time, as text: where a new reader's first window starts. */
export const metricsClock = `select statement_timestamp()::text as now`;

/**
 * Jobs per kind and state. Pending and running jobs are few, but the finished states make this
 * read every job row, so its cost grows with history until retention prunes it (a parallel
 * sequential scan: 51 ms on 300,000 jobs). One pass with one grouping, not the nine aggregates and
 * three joins of `queueStats`.
 */
export const metricsJobCounts = `
select kind, state, count(*)::integer as n from baton.jobs group by kind, state`;

export const metricsDeadLetterCounts = `
select kind, count(*)::integer as n from baton.dead_letters group by kind`;

/** Live workers: the total (kind null), then per kind served (a worker serving two kinds counts in both). */
export const metricsLiveWorkers = `
select null::text as kind, count(*)::integer as n from baton.workers where expires_at > now()
union all
select served.kind, count(*)::integer from baton.workers, unnest(kinds) as served(kind)
where expires_at > now() group by served.kind`;

/**
 * Jobs completed in the window ($1, $2], per kind and histogram bucket, for the time from due to
 * start (last_attempt_at - run_at: the start of the attempt that completed, after its own backoff)
 * and the run time (finished_at - last_attempt_at). $3: the buckets' upper bounds in seconds,
 * ascending; `bucket` is the index of the first bound >= the value (Prometheus's `le`), or the
 * number of bounds for a value above them all. A range walk of `jobs_finished` (migration 3), also as
 * the prepared statement's generic plan: 3 ms for a 13-second window of 1,200 completions among
 * 300,000 jobs.
 */
export const metricsJobsCompleted = `
with completed as (
  select kind,
         greatest(0, extract(epoch from last_attempt_at - run_at))::float8 as wait_seconds,
         greatest(0, extract(epoch from finished_at - last_attempt_at))::float8 as run_seconds
  from baton.jobs
  where finished_at > $1::timestamptz and finished_at <= $2::timestamptz and state = 'completed'
)
select kind, 'wait' as measure,
       (select count(*) from unnest($3::float8[]) as bound where bound < wait_seconds)::integer as bucket,
       count(*)::integer as n, sum(wait_seconds)::float8 as seconds
from completed group by 1, 2, 3
union all
select kind, 'run',
       (select count(*) from unnest($3::float8[]) as bound where bound < run_seconds)::integer,
       count(*)::integer, sum(run_seconds)::float8
from completed group by 1, 2, 3`;

/**
 * Attempts that ended without completing in the window ($1, $2], per kind and outcome (failed,
 * timed_out, lease_expired, aborted). A range walk of `job_attempts_finished` (migration 3), the
 * kind from each attempt's job by primary key: 1.3 ms for 376 attempts in a 13-second window.
 */
export const metricsAttemptsFailed = `
select j.kind, a.outcome, count(*)::integer as n
from baton.job_attempts a join baton.jobs j on j.id = a.job_id
where a.finished_at > $1::timestamptz and a.finished_at <= $2::timestamptz
group by j.kind, a.outcome`;
