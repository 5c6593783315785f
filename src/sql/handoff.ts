import { claimedColumns } from './jobs-lease.js';

/**
 * Direct hand-off: a worker with free slots offers them in `baton.worker_offers`; a single enqueue
 * made on Baton's own connections then creates its job already running, leased to that worker,
 * and notifies the worker on its own channel with the job (or its id). The job's lease is written in the enqueue's commit, so the job starts after one
 * commit instead of two (the enqueue's, then the claim's), and it is held exactly as a claimed
 * job is: one owner, a fresh token, renewed by heartbeat, recovered by expiry (G2, G5).
 */

/**
 * The most slots a worker offers, and the most jobs one statement hands over (their ids fill at
 * most ~3.7 kB of an 8,000-byte NOTIFY payload).
 */
export const HANDOFF_MAX_JOBS = 100;
/**
 * How long after its hand-off a job the worker has not heard of counts as unheard (`handedToWorker`).
 * Its notification leaves at the enqueue's commit, but the listening backend forwards it only when
 * it is next scheduled, so a poll can read the job a few milliseconds before the worker hears of
 * it: seen in bench/ (a W4 run on the 2-core VM logged `handoff.unheard` for a job its worker was
 * about to be told of). The job ran once all the same (each handed id is taken once); the grace
 * keeps the warning and the extra read for notifications that really went missing.
 */
export const UNHEARD_AFTER_MS = 200;
/** A hand-off notification carries its jobs whole up to this many bytes, else only their ids (NOTIFY takes < 8,000). */
const HANDOFF_PAYLOAD_MAX = 7800;

/**
 * `jobInsertManyUnkeyed` that hands the batch's due jobs to waiting workers. It takes up to one
 * offered slot per due job (at most HANDOFF_MAX_JOBS), among slots that serve every kind of the
 * batch's due jobs, whose worker is live in `baton.workers` and whose LISTEN backend
 * (listener_pid) still exists; `skip locked` passes slots that a concurrent enqueue is taking, so
 * enqueues never wait on each other. Due jobs paired with a slot (in claim order: priority, then
 * batch order) are inserted running, with attempt 1, a fresh lease token and expiry on database
 * time and the slot's worker; each worker gets one NOTIFY on its channel: `{"at": <the lease's
 * start, epoch ms on database time>, "jobs": [<the columns a claim returns>]}`, or, when that is
 * too long for a notification, the jobs' ids separated by commas (the worker then reads them,
 * `handedJobs`). Jobs left over, and delayed jobs, are inserted pending with the usual NOTIFY.
 * $1: the same JSON rows as `jobInsertManyUnkeyed`. Returns whether any worker has slots to offer
 * at all (on offer now or not), so that the client can leave this statement aside while none has.
 *
 * With no slot on offer it costs ~0.1 ms more than `jobInsertManyUnkeyed` for 16 rows (~0.68
 * against ~0.58 ms), which is why the client leaves it aside while no worker has slots at all: the
 * batch is read straight into the insert, and the pairing (`due`) and the notification's JSON are
 * only built when a slot was taken. The main query reads every CTE that notifies: PostgreSQL runs a plain
 * SELECT CTE only when it is read.
 */
export const jobInsertHandingOff = `
with slots as (
  select s.slot_ctid, s.worker_id, s.channel, s.lease_ms, row_number() over () as rank
  from (
    select o.ctid as slot_ctid, o.worker_id, o.channel, o.lease_ms
    from baton.worker_offers o
    join baton.workers w on w.id = o.worker_id and w.expires_at > now()
    where o.offered
      and o.kinds @> array(
            select distinct d.kind
            from jsonb_to_recordset($1::jsonb) as d(kind text, run_at timestamptz, delay_ms double precision)
            where d.run_at is null and d.delay_ms is null)
      and exists (select 1 from pg_stat_get_activity(o.listener_pid))
    limit least((
      select count(*) from jsonb_to_recordset($1::jsonb) as d(run_at timestamptz, delay_ms double precision)
      where d.run_at is null and d.delay_ms is null), ${HANDOFF_MAX_JOBS})
    for update of o skip locked
  ) s
), taken as (
  update baton.worker_offers o set offered = false from slots where o.ctid = slots.slot_ctid
), given as (
  select due.*, slots.worker_id, slots.channel, slots.lease_ms, gen_random_uuid() as lease_token
  from slots join (
    select d.*, row_number() over (order by d.priority desc, d.n) as rank
    from rows from (jsonb_to_recordset($1::jsonb) as (
           id uuid, kind text, payload jsonb, priority integer, run_at timestamptz,
           delay_ms double precision, max_attempts integer, trace_id text, group_key text))
         with ordinality as d(id, kind, payload, priority, run_at, delay_ms, max_attempts, trace_id, group_key, n)
    where d.run_at is null and d.delay_ms is null
  ) due using (rank)
), inserted as (
  insert into baton.jobs (id, kind, payload, priority, run_at, max_attempts, trace_id, group_key,
                          state, attempts, lease_token, lease_expires_at, worker_id, last_attempt_at)
  select x.id, x.kind, x.payload, x.priority,
         coalesce(x.run_at, now() + coalesce(x.delay_ms, 0) * interval '1 millisecond'),
         x.max_attempts, x.trace_id, x.group_key,
         case when g.id is null then 'pending' else 'running' end,
         case when g.id is null then 0 else 1 end,
         g.lease_token,
         case when g.id is not null then now() + g.lease_ms * interval '1 millisecond' end,
         g.worker_id,
         case when g.id is not null then now() end
  from jsonb_to_recordset($1::jsonb) as x(
    id uuid, kind text, payload jsonb, priority integer, run_at timestamptz, delay_ms double precision,
    max_attempts integer, trace_id text, group_key text)
  left join given g on g.id = x.id
  returning run_at, state
), wake as (
  select pg_notify('baton_jobs',
           ceil(greatest(0, extract(epoch from min(run_at) - now()) * 1000))::bigint::text) as sent
  from inserted where state = 'pending'
  having count(*) > 0
), handed as (
  select pg_notify(channel, case when octet_length(jobs) <= ${HANDOFF_PAYLOAD_MAX} then jobs else ids end) as sent
  from (
    select g.channel, string_agg(g.id::text, ',') as ids,
           json_build_object('at', (extract(epoch from now()) * 1000)::float8, 'jobs', json_agg(json_build_object(
             'id', g.id, 'kind', g.kind, 'payload', g.payload, 'priority', g.priority,
             'run_at', (extract(epoch from now()) * 1000)::float8, 'attempts', 1,
             'max_attempts', g.max_attempts, 'lease_token', g.lease_token, 'trace_id', g.trace_id,
             'group_key', g.group_key, 'created_at', (extract(epoch from now()) * 1000)::float8
           )))::text as jobs
    from given g
    group by g.channel
  ) per_worker
)
select (select count(*) from wake) as woke, (select count(*) from handed) as handed,
       exists (select 1 from baton.worker_offers) as offers`;

/**
 * Offers free slots of worker $1: `replace` ($8; the first offer after the worker's listener
 * (re)connected, or after an offer whose answer was lost) writes its $6 slot rows afresh with the
 * first $7 offered, naming channel $2, LISTEN backend $3, kinds $4 and leases of $5 ms; otherwise up
 * to $7 of its slots not on offer are offered. Returns how many were offered and the database's
 * time (epoch ms), against which the worker places the start of a handed job's lease on its own
 * clock (see `Worker.onHandoff`). Written with asynchronous commit: an offer lost in a crash loses
 * no job (the worker's connections go with it), and a hand-off that takes a slot commits
 * synchronously, which flushes the offer too.
 */
export const offerSlots = `
with relaxed as (
  select set_config('synchronous_commit', 'off', true)
), dropped as (
  delete from baton.worker_offers where $8::boolean and worker_id = $1 and slot > $6::integer
), replaced as (
  insert into baton.worker_offers (worker_id, slot, channel, listener_pid, kinds, lease_ms, offered)
  select $1, n, $2, $3, $4::text[], $5, n <= $7::integer
  from generate_series(1, $6::integer) as n, relaxed
  where $8::boolean
  on conflict (worker_id, slot) do update
  set channel = excluded.channel, listener_pid = excluded.listener_pid, kinds = excluded.kinds,
      lease_ms = excluded.lease_ms, offered = excluded.offered
  returning offered
), topped as (
  update baton.worker_offers o set offered = true
  from (
    select ctid from baton.worker_offers
    where not $8::boolean and worker_id = $1 and not offered
    limit $7::integer
    for update
  ) t, relaxed
  where o.ctid = t.ctid
  returning 1
)
select (extract(epoch from now()) * 1000)::float8 as db_now_ms,
       ((select count(*) from replaced where offered) + (select count(*) from topped))::integer as offered`;

/** Withdraws worker $1's offer; returns how many slots were still on offer (none taken since). */
export const offerWithdraw = `
with relaxed as (
  select set_config('synchronous_commit', 'off', true)
), withdrawn as (
  update baton.worker_offers set offered = false
  where worker_id = $1 and offered and exists (select 1 from relaxed)
  returning 1
)
select count(*)::integer as free from withdrawn`;

/**
 * Withdraws up to $2 of worker $1's slots on offer, after a claim brought jobs that take their
 * place; slots an enqueue is taking are skipped (the worker hears of their jobs). Returns how many
 * were withdrawn.
 */
export const offerWithdrawSome = `
with relaxed as (
  select set_config('synchronous_commit', 'off', true)
), withdrawn as (
  update baton.worker_offers o set offered = false
  from (
    select ctid from baton.worker_offers
    where worker_id = $1 and offered
    limit $2::integer
    for update skip locked
  ) t, relaxed
  where o.ctid = t.ctid
  returning 1
)
select count(*)::integer as free from withdrawn`;

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
 * Jobs handed to worker $1 at least UNHEARD_AFTER_MS ago and still on their first attempt (a
 * hand-off creates a job with last_attempt_at = created_at; a claim sets it later), for the poll's
 * check that none was handed to it without the worker hearing of it (a LISTEN connection that
 * stopped delivering while its backend lived on).
 */
export const handedToWorker = `
select id from baton.jobs
where state = 'running' and worker_id = $1 and last_attempt_at = created_at
  and last_attempt_at < now() - interval '${UNHEARD_AFTER_MS} milliseconds'`;
