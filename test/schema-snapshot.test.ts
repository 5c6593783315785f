/**
 * The committed schema snapshot (docs/schema.sql.snapshot) must match what the migrations build,
 * so a change to the schema shows up in review. Refresh it with UPDATE_SCHEMA_SNAPSHOT=1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

const SNAPSHOT = new URL('../docs/schema.sql.snapshot', import.meta.url);
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('schema');
});
afterAll(async () => {
  await database.drop();
});

async function describeSchema(): Promise<string> {
  const columns = await database.rows(`
    select table_name, column_name, data_type, is_nullable, coalesce(column_default, '') as column_default
    from information_schema.columns where table_schema = 'baton' order by table_name, ordinal_position`);
  const indexes = await database.rows(
    `select indexdef from pg_indexes where schemaname = 'baton' order by indexname`,
  );
  const constraints = await database.rows(`
    select conrelid::regclass::text as table_name, conname, pg_get_constraintdef(oid) as definition
    from pg_constraint where connamespace = 'baton'::regnamespace order by 1, 2`);
  return [
    ...columns.map(
      (c) =>
        `column ${c.table_name}.${c.column_name} ${c.data_type}${c.is_nullable === 'NO' ? ' not null' : ''}${c.column_default ? ` default ${c.column_default}` : ''}`,
    ),
    ...indexes.map((i) => `index ${i.indexdef}`),
    ...constraints.map((c) => `constraint ${c.table_name}.${c.conname} ${c.definition}`),
  ]
    .join('\n')
    .concat('\n');
}

test('the migrated schema matches the committed snapshot', async () => {
  const actual = await describeSchema();
  if (process.env.UPDATE_SCHEMA_SNAPSHOT) writeFileSync(SNAPSHOT, actual);
  expect(actual).toBe(readFileSync(SNAPSHOT, 'utf8'));
});
