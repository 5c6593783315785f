import { claimedColumns } from './jobs-lease.js';

/**
 * Direct hand-off: a worker with free slots and nothing to claim offers them in
 * `baton.worker_offers`; a single enqueue made on Baton's own connections then creates its job
 * already running, leased to that worker, and notifies the worker on its own channel with the
 * job ids. The job's lease is written in the enqueue's commit, so the job starts after one
 * commit instead of two (the enqueue's, then the claim's), and it is held exactly as a claimed
 * job is: one owner, a fresh token, renewed by heartbeat, recovered by expiry (G2, G5).
 */

/** The most jobs one statement hands over (their ids fill at most ~3.7 kB of an 8,000-byte NOTIFY payload). */
export const HANDOFF_MAX_JOBS = 100;
/** A hand-off notification carries its jobs whole up to this many bytes, else only their ids (NOTIFY takes < 8,000). */
const HANDOFF_PAYLOAD_MAX = 7800;

/**
 * `jobInsertManyUnkeyed` that hands the batch's due jobs to waiting workers. It takes (deletes) up
 * to one offered slot per due job, among slots that serve every kind of the batch's due jobs,
 * whose worker is live in `baton.workers` and whose LISTEN backend (listener_pid) still exists;
 * `skip locked` passes slots that a concurrent enqueue is taking, so enqueues never wait on each
 * other. Due jobs paired with a slot (in claim order: priority, then batch order) are inserted
 * running, with attempt 1, a fresh lease token and expiry on database time and the slot's worker;
 * each worker gets one NOTIFY on its channel: `{"at": <the lease's start, epoch ms on database
 * time>, "jobs": [<the columns a claim returns>]}`, or, when that is too long for a notification,
 * the jobs' ids separated by commas (the worker then reads them, `handedJobs`). Jobs left over, and delayed jobs,
 * are inserted pending with the usual NOTIFY. $1: the same JSON rows as `jobInsertManyUnkeyed`.
 * The main query reads every CTE that notifies: PostgreSQL runs a plain SELECT CTE only when read.
 */
export const jobInsertHandingOff = `
with input as (
  select x.*, row_number() over () as n, (x.run_at is null and x.delay_ms is null) as due_now
  from jsonb_to_recordset($1::jsonb) as x(
    id uuid, kind text, payload jsonb, priority integer, run_at timestamptz, delay_ms double precision,
    max_attempts integer, trace_id text, group_key text)
), due as (
  select id, row_number() over (order by priority desc, n) as rank from input where due_now
), slots as (
  select s.ctid as slot_ctid, s.worker_id, s.channel, s.lease_ms, row_number() over () as rank
  from (
    select o.ctid, o.worker_id, o.channel, o.lease_ms
    from baton.worker_offers o
    join baton.workers w on w.id = o.worker_id and w.expires_at > now()
    where o.kinds @> array(select distinct kind from input where due_now)
      and exists (select 1 from pg_stat_get_activity(o.listener_pid))
    limit least((select count(*) from due), ${HANDOFF_MAX_JOBS})
    for update of o skip locked
  ) s
), taken as (
  delete from baton.worker_offers o using slots where o.ctid = slots.slot_ctid
), given as (
  select due.id, slots.worker_id, slots.channel, slots.lease_ms
  from due join slots using (rank)
), inserted as (
  insert into baton.jobs (id, kind, payload, priority, run_at, max_attempts, trace_id, group_key,
                          state, attempts, lease_token, lease_expires_at, worker_id, last_attempt_at)
  select i.id, i.kind, i.payload, i.priority,
         coalesce(i.run_at, now() + coalesce(i.delay_ms, 0) * interval '1 millisecond'),
         i.max_attempts, i.trace_id, i.group_key,
         case when g.id is null then 'pending' else 'running' end,
         case when g.id is null then 0 else 1 end,
         case when g.id is not null then gen_random_uuid() end,
         case when g.id is not null then now() + g.lease_ms * interval '1 millisecond' end,
         g.worker_id,
         case when g.id is not null then now() end
  from input i left join given g on g.id = i.id
  returning id, kind, payload, priority, run_at, attempts, max_attempts, lease_token, trace_id,
            group_key, created_at, state
), wake as (
  select pg_notify('baton_jobs',
           ceil(greatest(0, extract(epoch from min(run_at) - now()) * 1000))::bigint::text) as sent
  from inserted where state = 'pending'
  having count(*) > 0
), handed as (
  select pg_notify(channel, case when octet_length(jobs) <= ${HANDOFF_PAYLOAD_MAX} then jobs else ids end) as sent
  from (
    select given.channel, string_agg(given.id::text, ',') as ids,
           json_build_object('at', (extract(epoch from now()) * 1000)::float8, 'jobs', json_agg(json_build_object(
             'id', j.id, 'kind', j.kind, 'payload', j.payload, 'priority', j.priority,
             'run_at', (extract(epoch from j.run_at) * 1000)::float8, 'attempts', j.attempts,
             'max_attempts', j.max_attempts, 'lease_token', j.lease_token, 'trace_id', j.trace_id,
             'group_key', j.group_key, 'created_at', (extract(epoch from j.created_at) * 1000)::float8
           )))::text as jobs
    from given join inserted j on j.id = given.id
    group by given.channel
  ) per_worker
)
select (select count(*) from wake) as woke, (select count(*) from handed) as handed`;

/**
 * Offers $5 more free slots of worker $1 (one row each; `replace` $7 first drops any it still has:
 * the first offer after the worker's listener (re)connected, or after an offer whose answer was
 * lost), listening on channel $2 through backend $3, for kinds $4, leases of $6 ms. Returns the
 * database's time (epoch ms), against which the worker places the start of a handed job's lease
 * on its own clock (see `Worker.receiveHanded`). Written with asynchronous commit: an offer lost
 * in a crash loses no job (the worker's connections go with it), and a hand-off that takes a slot
 * commits synchronously, which flushes the offer too.
 */
export const offerSlots = `
with relaxed as (
  select set_config('synchronous_commit', 'off', true)
), replaced as (
  delete from baton.worker_offers where $7::boolean and worker_id = $1
), offered as (
  insert into baton.worker_offers (worker_id, channel, listener_pid, kinds, lease_ms)
  select $1, $2, $3, $4::text[], $6 from generate_series(1, $5::integer), relaxed
)
select (extract(epoch from now()) * 1000)::float8 as db_now_ms`;

/** Withdraws worker $1's offer; returns how many slots were still on offer (none taken since). */
export const offerWithdraw = `
with relaxed as (
  select set_config('synchronous_commit', 'off', true)
), withdrawn as (
  delete from baton.worker_offers where worker_id = $1 returning 1
)
select count(*)::integer as free from withdrawn, relaxed`;

/**
 * The jobs handed to worker $2 ($1 ids from its channel) that it still holds, with the lease time
 * left on database time (the worker counts its lease from the hand-off, not from when it heard).
 */
export const handedJobs = `
select ${claimedColumns},
       (extract(epoch from j.lease_expires_at - now()) * 1000)::float8 as lease_left_ms
from baton.jobs j
where j.id = any($1::uuid[]) and j.worker_id = $2 and j.state = 'running'`;

/**
 * Jobs handed to worker $1 and still on their first attempt (a hand-off creates a job with
 * last_attempt_at = created_at; a claim sets it later), for the poll's check that none was handed
 * to it without the worker hearing of it (a LISTEN connection that stopped delivering while its
 * backend lived on).
 */
export const handedToWorker = `
select id from baton.jobs
where state = 'running' and worker_id = $1 and last_attempt_at = created_at`;
