/**
 * The embedded database's folder belongs to one opener at a time: a second PGlite on the same
 * folder would run alone and overwrite the first one's files. A second `createEmbeddedBaton` (or
 * a second `baton dev`) is refused naming the process that holds it; after close, or when the
 * holder is gone, the folder opens again with its data.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEmbeddedBaton } from '../src/index.js';
import { record } from './fixtures/ledger-kinds.js';
import { runCli } from './helpers/processes.js';

let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'baton-lock-'));
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

test('a second opener of the same folder is refused naming the holder; after close it opens with the data', {
  timeout: 120_000,
}, async () => {
  const dataDir = join(folder, 'db');
  const first = await createEmbeddedBaton({ dataDir, kinds: [record] });
  await first.migrate();
  const { id } = await first.enqueue(record, {});
  await expect(createEmbeddedBaton({ dataDir })).rejects.toThrow(
    new RegExp(`in use by process ${process.pid} \\(this one\\)`),
  );
  // Another process is refused too, with a clear message and exit code 1.
  const other = await runCli(['dev', '--data-dir', dataDir, '--no-http', '--exit-when-done'], {
    DATABASE_URL: '',
  });
  expect(other.code).toBe(1);
  expect(other.stderr).toMatch(
    new RegExp(`CONFIG_INVALID: the embedded database in .* is in use by process ${process.pid}`),
  );
  await first.close();
  expect(existsSync(`${dataDir}.lock`)).toBe(false);

  const second = await createEmbeddedBaton({ dataDir, kinds: [record] });
  try {
    expect((await second.getJob(id))?.state).toBe('pending');
  } finally {
    await second.close();
  }
});

test('a lock left by a process that is gone is taken over', { timeout: 60_000 }, async () => {
  const dataDir = join(folder, 'stale');
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  writeFileSync(`${dataDir}.lock`, gone.stdout.toString());
  const baton = await createEmbeddedBaton({ dataDir });
  await baton.close();
  expect(existsSync(`${dataDir}.lock`)).toBe(false);
});
