/**
 * Dead letters: list and preview pages, match counts, and the batch retry.
 *
 * The filters of every statement here are the same five, in the same places: $1 group, $2 kind,
 * $3 trace id, $4 reason, $5 error code (null: any). They match the dead letter's own columns (as
 * written when the job was dead-lettered), so a preview and a retry by the same filters agree.
 */

const deadLetterFilters = `
  ($1::text is null or d.group_key = $1::text)
  and ($2::text is null or d.kind = $2::text)
  and ($3::text is null or d.trace_id = $3::text)
  and ($4::text is null or d.reason = $4::text)
  and ($5::text is null or d.error_code = $5::text)`;

/**
 * One page of dead letters, newest first, each with its job's state now; keyset paging on
 * (created_at, job_id) so a page costs the same at any depth and dead letters written meanwhile
 * cause no repeats or gaps. $6/$7: rows before (created_at, job_id); the first page passes
 * 'infinity' and the largest uuid. $8 page size (callers ask one more to learn whether a page follows).
 *
 * The statement is prepared once per connection, so after five runs PostgreSQL may keep one
 * generic plan, made without the parameters' values. With the keyset row comparison alone, that
 * plan guesses a third of all dead letters match it and a tenth are wanted, so it sorts every
 * match: 218 ms for a first page of 51 out of 100,000 dead letters. The redundant
 * `created_at <= $6 and created_at > '-infinity'` is a range on a parameter, which the planner
 * guesses as narrow (0.5%), so the generic plan becomes a backward walk of dead_letters_created
 * (migration 3) that stops after $8 matches, with one primary-key probe of jobs per row: 0.25 ms
 * at any depth, 1.4 ms with a group filter that matches 0.5% (the filters are checked row by row
 * on the walk; "$1 is null or ..." cannot use dead_letters_group in a generic plan). created_at
 * also comes back as text because a JS Date drops the microseconds the keyset needs.
 */
export const deadLetterListPage = `
select d.job_id, d.kind, d.reason, d.error_code, d.error_message, d.group_key, d.trace_id, d.attempts,
       d.created_at, d.created_at::text as created_at_exact, j.state
from baton.dead_letters d
join baton.jobs j on j.id = d.job_id
where (d.created_at, d.job_id) < ($6::timestamptz, $7::uuid)
  and d.created_at <= $6::timestamptz and d.created_at > '-infinity'::timestamptz
  and ${deadLetterFilters}
order by d.created_at desc, d.job_id desc
limit $8`;

/**
 * How many dead letters match, and how many of their jobs are still failed or cancelled (what a
 * retry would put back to pending). It reads every dead letter (a sequential scan in the generic
 * plan) and probes jobs for each match: 10 ms for 500 matches among 100,000 dead letters, 175 ms
 * for all 100,000. Dead letters are pruned with their jobs, and only an operator's preview asks.
 */
export const deadLetterCount = `
select count(*)::integer as total,
       count(*) filter (where j.state in ('failed', 'cancelled'))::integer as retryable
from baton.dead_letters d
join baton.jobs j on j.id = d.job_id
where ${deadLetterFilters}`;

/** The state of each job in $1 that exists (a dry run of a retry by job ids reads only this). */
export const jobStatesByIds = `select id, state from baton.jobs where id = any($1::uuid[])`;

/**
 * Retries a batch of jobs in one statement, so it is all written or none of it. $1 job ids (in
 * the order they matched, no duplicates), $2 actor, $3 batch id, $4 the summary's details (the
 * filters or the ids, the limit); the counts are added here.
 *
 * Each job is locked, then retried only if it is failed or cancelled under that lock: put back to
 * pending with a fresh round of attempts like `jobRetry`, its dead letter removed. The others,
 * and ids with no job, are skipped. Locks are taken in id order, so two batches over overlapping
 * jobs wait for each other instead of deadlocking, and the one that waited reads the state the
 * first one committed (read committed re-reads a row it locked after a wait): a job is retried by
 * one of them only. Every retried and every skipped job gets an audit entry, and the batch one
 * summary, all with batch id $3. Workers are woken by one NOTIFY for the whole batch.
 * Returns one row per id, in the order of $1: previous_state (null when there is no job), retried.
 */
export const deadLetterRetryBatch = `
with wanted as (
  select id, position from unnest($1::uuid[]) with ordinality as wanted(id, position)
), locked as (
  select j.id, j.state, j.kind, j.group_key, j.trace_id from baton.jobs j
  where j.id = any($1::uuid[])
  order by j.id
  for update
), retried as (
  update baton.jobs j
  set state = 'pending', attempts = 0, run_at = now(), finished_at = null, result = null,
      error_code = null, error_message = null, progress = null, worker_id = null, updated_at = now()
  from locked
  where j.id = locked.id and locked.state in ('failed', 'cancelled')
  returning j.id
), unlettered as (
  delete from baton.dead_letters where job_id in (select id from retried)
), wake as (
  select pg_notify('baton_jobs', '0') as sent from retried having count(*) > 0
), outcome as (
  select wanted.id, wanted.position, locked.state, locked.kind, locked.group_key, locked.trace_id,
         retried.id is not null as retried
  from wanted
  left join locked on locked.id = wanted.id
  left join retried on retried.id = wanted.id
), audited as (
  insert into baton.audit_log (action, actor, batch_id, job_id, kind, group_key, trace_id, details)
  select case when retried then 'job.retry' else 'job.retry_skipped' end,
         $2::text, $3::uuid, id, kind, group_key, trace_id,
         case when retried then jsonb_build_object('previousState', state)
              else jsonb_build_object('reason', 'job_' || coalesce(state, 'missing'), 'state', state) end
  from outcome
  order by position
), summarised as (
  insert into baton.audit_log (action, actor, batch_id, details)
  select 'dead_letters.retry_batch', $2::text, $3::uuid,
         $4::jsonb || jsonb_build_object('matched', count(*),
                                         'retried', count(*) filter (where retried),
                                         'skipped', count(*) filter (where not retried))
  from outcome
)
select outcome.id, outcome.state as previous_state, outcome.retried
from outcome
left join wake on true
order by outcome.position`;
