/**
 * SPEC §9: schema changes are versioned migrations, safe when several processes start at once.
 * Ten `baton migrate` processes run together on a fresh, unmigrated database: all succeed, exactly
 * one applies the migrations, and the schema has one row per migration and every table.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { migrations } from '../src/db/migrations.js';
import { latestMigrationVersion } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { runCli } from './helpers/processes.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('migrate_concurrent', { migrated: false });
});

afterAll(async () => {
  await database.drop();
});

const TABLES = [
  'audit_log',
  'dead_letters',
  'job_attempts',
  'jobs',
  'kind_starts',
  'kinds',
  'migrations',
  'worker_offers',
  'workers',
];

test('ten `baton migrate` processes at once on a fresh database all exit 0 and migrate it once', {
  timeout: 180_000,
}, async () => {
  // Fresh: no Baton schema at all.
  expect(await database.rows(`select 1 from pg_namespace where nspname = 'baton'`)).toEqual([]);

  const runs = await Promise.all(
    Array.from({ length: 10 }, () => runCli(['migrate'], { DATABASE_URL: database.url })),
  );
  for (const run of runs) {
    expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code: 0 });
    expect(run.stderr).not.toMatch(/error|baton:/i);
  }

  const version = latestMigrationVersion();
  const applied = runs.filter((run) => run.stdout.startsWith('applied migrations'));
  const already = runs.filter((run) => run.stdout === `schema already at version ${version}\n`);
  expect(applied.length).toBe(1);
  expect(applied[0]!.stdout).toBe(
    `applied migrations ${migrations.map((migration) => migration.version).join(', ')}; schema at version ${version}\n`,
  );
  expect(already.length).toBe(9);

  const recorded = await database.rows(`select version, name from baton.migrations order by version`);
  expect(recorded).toEqual(migrations.map(({ version, name }) => ({ version, name })));

  const tables = await database.rows(
    `select table_name from information_schema.tables where table_schema = 'baton' order by table_name`,
  );
  expect(tables.map((row) => row.table_name)).toEqual(TABLES);

  // The schema works: a job can be written and read.
  const [job] = await database.rows(`insert into baton.jobs (kind) values ('test.kind') returning state`);
  expect(job.state).toBe('pending');

  // And one more run later finds nothing left to do.
  const again = await runCli(['migrate'], { DATABASE_URL: database.url });
  expect(again).toMatchObject({ code: 0, stdout: `schema already at version ${version}\n` });
  expect((await database.rows(`select count(*)::int as n from baton.migrations`))[0].n).toBe(
    migrations.length,
  );
});
