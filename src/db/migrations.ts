/**
 * Numbered, immutable schema migrations. Never edit a migration that has shipped: add a new one.
 * They are applied by `migrate()` under a transaction-scoped advisory lock, so any number of
 * processes may start at once (see test/migrations-concurrent.test.ts).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'jobs, attempts, dead letters, kinds, workers, audit',
    sql: `
create table baton.jobs (
  id               uuid primary key default gen_random_uuid(),
  kind             text not null,
  payload          jsonb not null default '{}'::jsonb,
  result           jsonb,
  state            text not null default 'pending'
                   check (state in ('pending', 'running', 'completed', 'failed', 'cancelled')),
  priority         integer not null default 0,
  run_at           timestamptz not null default now(),
  attempts         integer not null default 0 check (attempts >= 0),
  max_attempts     integer not null default 5 check (max_attempts >= 1),
  last_attempt_at  timestamptz,
  lease_token      uuid,
  lease_expires_at timestamptz,
  worker_id        text,
  trace_id         text,
  idempotency_key  text,
  group_key        text,
  progress         jsonb,
  error_code       text,
  error_message    text,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  finished_at      timestamptz,
  -- A running job always has a lease; any other state never has one.
  constraint jobs_lease_matches_state check ((state = 'running') = (lease_token is not null))
);

-- Claiming walks this index in claim order, one kind at a time (see jobClaim), and never touches
-- finished jobs, so its cost does not grow with history (SPEC §9).
create index jobs_pending_kind on baton.jobs (kind, priority desc, run_at, id) where state = 'pending';
-- The fleet-wide limits and the recovery sweep look only at running jobs, a set bounded by the
-- fleet's concurrency; one index serves both (the sweep reads all of it), so a claim adds one
-- running-index entry, not two.
create index jobs_running on baton.jobs (kind, group_key) where state = 'running';
-- G9: one job per (kind, idempotency key).
create unique index jobs_idempotency on baton.jobs (kind, idempotency_key) where idempotency_key is not null;
create index jobs_trace on baton.jobs (trace_id) where trace_id is not null;
create index jobs_group on baton.jobs (group_key) where group_key is not null;

-- One row per attempt that did not complete (a completed attempt is the job row itself).
-- An operator's retry starts a new round at attempt 1, so (job_id, attempt) may repeat across rounds.
create table baton.job_attempts (
  id            bigint generated always as identity primary key,
  job_id        uuid not null references baton.jobs (id) on delete cascade,
  attempt       integer not null,
  worker_id     text,
  lease_token   uuid,
  started_at    timestamptz,
  finished_at   timestamptz not null default now(),
  outcome       text not null check (outcome in ('failed', 'timed_out', 'lease_expired', 'aborted')),
  error_code    text,
  error_message text,
  error_stack   text
);
create index job_attempts_job on baton.job_attempts (job_id, id);

create table baton.dead_letters (
  job_id        uuid primary key references baton.jobs (id) on delete cascade,
  kind          text not null,
  reason        text not null,
  error_code    text,
  error_message text,
  group_key     text,
  trace_id      text,
  attempts      integer not null,
  created_at    timestamptz not null default now()
);
create index dead_letters_created on baton.dead_letters (created_at desc);

-- Fleet-wide limits per kind, written by workers at start-up (the last one to start wins).
create table baton.kinds (
  kind              text primary key,
  concurrency       integer check (concurrency >= 1),
  rate_limit        integer check (rate_limit >= 1),
  rate_window_ms    integer check (rate_window_ms >= 1),
  group_concurrency integer check (group_concurrency >= 1),
  updated_at        timestamptz not null default now()
);

-- Starts of rate-limited kinds inside their window (a sliding log, pruned as it is read).
create table baton.kind_starts (
  kind       text not null,
  started_at timestamptz not null default now()
);
create index kind_starts_kind_time on baton.kind_starts (kind, started_at);

create table baton.workers (
  id                text primary key,
  host              text not null,
  pid               integer not null,
  kinds             text[] not null,
  concurrency       integer not null,
  running           integer not null default 0,
  started_at        timestamptz not null default now(),
  last_heartbeat_at timestamptz not null default now(),
  -- Live while now() < expires_at; every heartbeat moves it three heartbeats ahead.
  expires_at        timestamptz not null
);

create table baton.audit_log (
  id         bigint generated always as identity primary key,
  action     text not null,
  actor      text not null,
  batch_id   uuid,
  job_id     uuid,
  kind       text,
  group_key  text,
  trace_id   text,
  details    jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index audit_log_created on baton.audit_log (created_at desc, id desc);
`,
  },
  {
    version: 2,
    name: 'jobs listed by creation time',
    sql: `
-- The API's job list pages newest first on (created_at, id) with a keyset (jobListPage); this
-- index makes every page an index range walk, however deep.
create index jobs_created on baton.jobs (created_at desc, id desc);
`,
  },
  {
    version: 3,
    name: 'indexes for operators: dead letters, audit log, finished jobs',
    sql: `
-- Dead letters and the audit log page newest first on a keyset (created_at, id) like the job list.
drop index baton.dead_letters_created;
create index dead_letters_created on baton.dead_letters (created_at desc, job_id desc);
create index dead_letters_group on baton.dead_letters (group_key) where group_key is not null;
create index dead_letters_trace on baton.dead_letters (trace_id) where trace_id is not null;
create index audit_log_action on baton.audit_log (action, created_at desc, id desc);
create index audit_log_actor on baton.audit_log (actor, created_at desc, id desc);
create index audit_log_batch on baton.audit_log (batch_id) where batch_id is not null;
create index audit_log_job on baton.audit_log (job_id) where job_id is not null;
create index audit_log_kind on baton.audit_log (kind, created_at desc, id desc) where kind is not null;
create index audit_log_group on baton.audit_log (group_key) where group_key is not null;
create index audit_log_trace on baton.audit_log (trace_id) where trace_id is not null;
-- Completions and failures per minute (console chart, /metrics) and retention read finished jobs
-- and attempts by time. Only a finishing update adds an entry: a claim leaves finished_at null.
create index jobs_finished on baton.jobs (finished_at) where finished_at is not null;
create index job_attempts_finished on baton.job_attempts (finished_at);
`,
  },
  {
    version: 4,
    name: 'jobs listed by id',
    sql: `
-- Job ids are UUIDv7 (time-ordered, made by the enqueuing client), so the job list pages newest
-- first on the primary key. jobs_created cost an entry on every insert and on every claim and
-- completion (they change state, which partial indexes read, so they are never HOT updates):
-- measured on a 38,400-job claim+complete cycle, dropping it took WAL from 1,171 to 957 bytes and
-- buffer hits from 32 to 26 per job.
drop index baton.jobs_created;
`,
  },
  {
    version: 5,
    name: 'waiting workers for direct hand-off',
    sql: `
-- A worker with free slots and nothing to claim offers them here; a single enqueue then takes
-- offered slots, creates its jobs already running, leased to their workers, and notifies each
-- worker on its own channel: one commit between enqueue and start instead of two (the enqueue's,
-- then the claim's). One row per slot (up to 100 per worker), so that concurrent enqueues lock
-- different rows; taking and offering a slot flip \`offered\`, which no index covers, so they are
-- HOT updates that reuse their page's space without VACUUM (inserting and deleting a row per
-- hand-off grew the table by a page every ~40 jobs until VACUUM, and every enqueue scans it).
-- listener_pid is the backend of the worker's LISTEN connection, which must still exist for a
-- slot to be taken (a killed worker's connection closes, and its offer lapses with it).
create table baton.worker_offers (
  worker_id    text not null,
  slot         integer not null,
  channel      text not null,
  listener_pid integer not null,
  kinds        text[] not null,
  lease_ms     integer not null check (lease_ms > 0),
  offered      boolean not null default false,
  primary key (worker_id, slot)
) with (fillfactor = 50);
`,
  },
];
