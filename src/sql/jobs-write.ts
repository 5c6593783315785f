/**
 * Statements that create jobs and change a job's state from outside a worker (enqueue, cancel,
 * retry). Every one of them is one statement, so each is atomic on its own and can run in the
 * caller's transaction.
 *
 * NOTIFY payloads on `baton_jobs` are the milliseconds until the earliest new job is due
 * (0 = now), one notification per statement, never one per job.
 */

/**
 * $1: JSON array of {id, kind, payload, priority, run_at, delay_ms, max_attempts, trace_id,
 * idempotency_key, group_key}. Ids are made by the caller so that each input row maps to its job.
 * A conflicting idempotency key inserts nothing; the caller then looks the existing job up
 * (`jobFindByIdempotencyKeys`), because rows made by this statement or by a transaction that
 * committed during it are not visible to its own reads.
 */
export const jobInsertMany = `
with input as (
  select * from jsonb_to_recordset($1::jsonb) as x(
    id uuid, kind text, payload jsonb, priority integer, run_at timestamptz, delay_ms double precision,
    max_attempts integer, trace_id text, idempotency_key text, group_key text)
), inserted as (
  insert into baton.jobs (id, kind, payload, priority, run_at, max_attempts, trace_id, idempotency_key, group_key)
  select id, kind, payload, priority,
         coalesce(run_at, now() + coalesce(delay_ms, 0) * interval '1 millisecond'),
         max_attempts, trace_id, idempotency_key, group_key
  from input
  on conflict (kind, idempotency_key) where idempotency_key is not null do nothing
  returning id, run_at
), wake as (
  select pg_notify('baton_jobs',
           ceil(greatest(0, extract(epoch from min(run_at) - now()) * 1000))::bigint::text) as sent
  from inserted
  having count(*) > 0
)
select inserted.id from inserted left join wake on true`;

/**
 * `jobInsertMany` for a batch in which no job has an idempotency key: a plain insert (no ON
 * CONFLICT, whose speculative insertion costs an extra WAL record per row) that returns one row,
 * the NOTIFY's, instead of every id (the client made the ids).
 */
export const jobInsertManyUnkeyed = `
with inserted as (
  insert into baton.jobs (id, kind, payload, priority, run_at, max_attempts, trace_id, group_key)
  select id, kind, payload, priority,
         coalesce(run_at, now() + coalesce(delay_ms, 0) * interval '1 millisecond'),
         max_attempts, trace_id, group_key
  from jsonb_to_recordset($1::jsonb) as x(
    id uuid, kind text, payload jsonb, priority integer, run_at timestamptz, delay_ms double precision,
    max_attempts integer, trace_id text, group_key text)
  returning run_at
)
select pg_notify('baton_jobs',
         ceil(greatest(0, extract(epoch from min(run_at) - now()) * 1000))::bigint::text) as sent
from inserted
having count(*) > 0`;

/**
 * A batch written by COPY (`insertJobsFast`): the columns it gives, in this order; the rest take
 * their defaults (state pending, run_at now(), created_at now()). No column default it leaves to
 * PostgreSQL is volatile, so COPY writes the rows in multi-row batches, page by page.
 */
export const jobCopyIn =
  'copy baton.jobs (id, kind, payload, priority, max_attempts, trace_id, group_key) from stdin';

/** The NOTIFY of a COPY batch, in its transaction: every job of such a batch is due at once. */
export const jobsDueNotify = "select pg_notify('baton_jobs', '0')";

export const jobFindByIdempotencyKeys = `
select id, kind, idempotency_key
from baton.jobs
where (kind, idempotency_key) in (select * from unnest($1::text[], $2::text[]))`;

/** Cancels a pending or running job ($2: actor, audited); a running one's worker hears of it on `baton_cancel` and aborts its handler. */
export const jobCancel = `
with previous as (
  select id, state from baton.jobs where id = $1 for update
), cancelled as (
  update baton.jobs j
  set state = 'cancelled', finished_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null
  from previous
  where j.id = previous.id and previous.state in ('pending', 'running')
  returning j.id, previous.state as previous_state
), told as (
  select pg_notify('baton_cancel', id::text) from cancelled where previous_state = 'running'
), audited as (
  insert into baton.audit_log (action, actor, job_id, kind, group_key, trace_id, details)
  select 'job.cancel', $2, j.id, j.kind, j.group_key, j.trace_id, jsonb_build_object('previousState', c.previous_state)
  from cancelled c join baton.jobs j on j.id = c.id
)
select previous.state as previous_state, cancelled.id is not null as cancelled
from previous left join cancelled on true left join told on true`;

/**
 * Puts a failed or cancelled job back to pending with a fresh round of attempts; its dead letter
 * (if any) is removed. The attempt history is kept. $2: the actor, audited.
 */
export const jobRetry = `
with previous as (
  select id, state from baton.jobs where id = $1 for update
), retried as (
  update baton.jobs j
  set state = 'pending', attempts = 0, run_at = now(), finished_at = null, result = null,
      error_code = null, error_message = null, progress = null, worker_id = null, updated_at = now()
  from previous
  where j.id = previous.id and previous.state in ('failed', 'cancelled')
  returning j.id
), unlettered as (
  delete from baton.dead_letters where job_id in (select id from retried)
), wake as (
  select pg_notify('baton_jobs', '0') from retried
), audited as (
  insert into baton.audit_log (action, actor, job_id, kind, group_key, trace_id, details)
  select 'job.retry', $2, j.id, j.kind, j.group_key, j.trace_id, jsonb_build_object('previousState', p.state)
  from retried r join previous p on p.id = r.id join baton.jobs j on j.id = r.id
)
select previous.state as previous_state, retried.id is not null as retried
from previous left join retried on true left join wake on true`;
