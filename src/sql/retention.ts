/**
 * Retention: finished jobs are deleted once they are older than their kind of state's retention,
 * so the jobs table holds the live queue and a bounded tail of history (SPEC §9). Attempts and
 * dead letters go with their job (`on delete cascade`).
 */

/**
 * Deletes up to $3 finished jobs: completed ones finished more than $1 ms ago, failed and cancelled
 * ones (with their dead letters) more than $2 ms ago, on database time; a null retention keeps
 * that state forever (the comparison with null matches nothing). $4 is the smaller of the two retentions in use: a plain range on
 * finished_at, so the generic plan walks `jobs_finished` (migration 3) from its oldest entry and
 * stops after $3 matches, however long the history. `skip locked` lets every worker prune at once
 * without waiting on each other or on an operator's retry.
 */
export const jobDeleteFinished = `
with doomed as (
  select id from baton.jobs
  where finished_at < now() - $4::bigint * interval '1 millisecond'
    and ((state = 'completed' and finished_at < now() - $1::bigint * interval '1 millisecond')
      or (state in ('failed', 'cancelled') and finished_at < now() - $2::bigint * interval '1 millisecond'))
  order by finished_at
  limit $3
  for update skip locked
), deleted as (
  delete from baton.jobs j using doomed where j.id = doomed.id
  returning j.state
)
select count(*) filter (where state = 'completed')::integer as completed,
       count(*) filter (where state <> 'completed')::integer as failed
from deleted`;
