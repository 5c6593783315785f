import type { Database } from './database.js';
import { migrations } from './migrations.js';

/** Any fixed 64-bit key works; this one reads "baton migrate". */
const MIGRATION_LOCK_KEY = 0x6261746f6e6d6967n;

export interface MigrateResult {
  applied: number[];
  version: number;
}

/**
 * Brings the schema to the newest version. Everything happens in one transaction that first takes a
 * transaction-scoped advisory lock: concurrent callers queue on the lock, and the ones after the
 * first find nothing left to apply. Even `create schema if not exists` runs under the lock, since
 * two of those racing can fail on the catalog's unique index.
 */
export async function migrate(db: Database): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
    await tx.query('create schema if not exists baton');
    await tx.query(`create table if not exists baton.migrations (
      version    integer primary key,
      name       text not null,
      applied_at timestamptz not null default now()
    )`);
    const { rows } = await tx.query('select version from baton.migrations');
    const done = new Set(rows.map((row: { version: number }) => row.version));
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await tx.execScript(migration.sql);
      await tx.query('insert into baton.migrations (version, name) values ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return { applied, version: latestMigrationVersion() };
  });
}

export function latestMigrationVersion(): number {
  return Math.max(...migrations.map((migration) => migration.version));
}

/** The applied version, or 0 when Baton's schema is absent. */
export async function schemaVersion(db: Database): Promise<number> {
  const exists = await db.query(`select to_regclass('baton.migrations') is not null as present`);
  if (!exists.rows[0]?.present) return 0;
  const { rows } = await db.query('select coalesce(max(version), 0)::int as version from baton.migrations');
  return Number(rows[0]?.version ?? 0);
}
