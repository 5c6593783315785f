/**
 * The CLI (SPEC §8), run as real processes: help for every command, `enqueue` (validated with a
 * --jobs module, refused on bad JSON or an unknown kind), `stats --json` naming kinds with pending
 * jobs and no live worker, and `baton dev` on the embedded database with no DATABASE_URL.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { type BatonClient, defineKind, type QueueStats, type Worker } from '../src/index.js';
import { connectBaton, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { cliCommand, runCli } from './helpers/processes.js';

const FIXTURE = 'test/fixtures/ledger-kinds.ts';
let database: TestDatabase;
let env: Record<string, string>;
const dataDirs: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase('cli');
  env = { DATABASE_URL: database.url };
});

afterAll(async () => {
  for (const folder of dataDirs) await rm(folder, { recursive: true, force: true });
  await database.drop();
});

const jobRow = async (id: string) => (await database.rows(`select * from baton.jobs where id = $1`, [id]))[0];
const jobCount = async () => (await database.rows(`select count(*)::int as n from baton.jobs`))[0].n;

describe('help', () => {
  test('`baton --help` and `baton <command> --help` exit 0 and describe each command', {
    timeout: 120_000,
  }, async () => {
    const described: Record<string, RegExp> = {
      dev: /embedded database/,
      migrate: /Apply pending schema migrations/,
      worker: /Run a worker for the kinds a module exports/,
      enqueue: /Enqueue one job/,
      stats: /Jobs per kind and state/,
      serve: /Serve the HTTP API for the kinds a module exports/,
    };
    const [top, ...each] = await Promise.all([
      runCli(['--help']),
      ...Object.keys(described).map((command) => runCli([command, '--help'])),
    ]);
    // Help text is wrapped to the terminal width: compare with whitespace collapsed.
    const flat = (text: string) => text.replace(/\s+/g, ' ');
    expect(top!.code).toBe(0);
    expect(top!.stdout).toContain('Usage: baton');
    for (const [command, description] of Object.entries(described)) {
      expect(top!.stdout).toMatch(new RegExp(`\\n\\s+${command}\\b`));
      expect(flat(top!.stdout)).toMatch(description);
    }
    for (const [index, command] of Object.keys(described).entries()) {
      const run = each[index]!;
      expect({ command, code: run.code }).toEqual({ command, code: 0 });
      expect(run.stdout).toContain(`Usage: baton ${command}`);
      expect(flat(run.stdout)).toMatch(described[command]!);
    }
    expect(each[3]!.stdout).toMatch(/<kind>.*\n.*<payload>/s); // enqueue names its arguments
    expect(each[2]!.stdout).toContain('--jobs <module>');
  });
});

describe('enqueue', () => {
  test('`baton enqueue <kind> <json> --jobs <module>` prints the job id and the job exists', async () => {
    const run = await runCli(
      ['enqueue', 'ledger.record', '{"sleepMs":5}', '--jobs', FIXTURE, '--group', 'g1', '--trace-id', 't1'],
      env,
    );
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as { id: string; created: boolean };
    expect(printed.created).toBe(true);
    expect(await jobRow(printed.id)).toMatchObject({
      kind: 'ledger.record',
      state: 'pending',
      group_key: 'g1',
      trace_id: 't1',
      // Validated and defaulted by the kind's schema.
      payload: { sleepMs: 5, ignoreAbort: false, failAttempts: 0 },
    });
  });

  test('a payload that is not JSON, or does not match the schema, is refused and nothing is written', async () => {
    const before = await jobCount();
    const notJson = await runCli(['enqueue', 'ledger.record', '{not json', '--jobs', FIXTURE], env);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain('PAYLOAD_INVALID');
    expect(notJson.stderr).toContain('not valid JSON');
    const badPayload = await runCli(['enqueue', 'ledger.record', '{"sleepMs":-1}', '--jobs', FIXTURE], env);
    expect(badPayload.code).toBe(1);
    expect(badPayload.stderr).toContain('PAYLOAD_INVALID');
    expect(badPayload.stderr).toContain('sleepMs');
    expect(await jobCount()).toBe(before);
  });

  test('an unknown kind is refused, with or without --jobs, and nothing is written', async () => {
    const before = await jobCount();
    const unknown = await runCli(['enqueue', 'no.such.kind', '{}'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('KIND_UNKNOWN');
    expect(unknown.stderr).toContain('no.such.kind');
    const notExported = await runCli(['enqueue', 'no.such.kind', '{}', '--jobs', FIXTURE], env);
    expect(notExported.code).toBe(1);
    expect(notExported.stderr).toContain('KIND_UNKNOWN');
    expect(await jobCount()).toBe(before);
  });
});

describe('stats', () => {
  let baton: BatonClient;
  let worker: Worker;
  const served = defineKind({
    kind: 'cli.served',
    payload: z.object({}),
    handler: async () => ({}),
  });

  beforeAll(async () => {
    baton = connectBaton(database);
    worker = baton.createWorker({ kinds: [served], logLevel: 'silent', shutdownSignals: [] });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await baton?.close();
  });

  test('`baton stats --json` prints the kinds and names those with pending jobs and no live worker', async () => {
    // A kind the live worker serves, with a pending (delayed) job: enqueued by name, no --jobs,
    // since the worker registered it.
    const byName = await runCli(['enqueue', 'cli.served', '{}', '--delay-ms', '600000'], env);
    expect(byName.code).toBe(0);
    const run = await runCli(['stats', '--json'], env);
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout) as QueueStats;
    // ledger.record has a pending job from the enqueue tests and no worker at all.
    expect(stats.kinds.find((kind) => kind.kind === 'ledger.record')).toMatchObject({
      pending: 1,
      due: 1,
      liveWorkers: 0,
    });
    expect(stats.kinds.find((kind) => kind.kind === 'cli.served')).toMatchObject({
      pending: 1,
      due: 0,
      liveWorkers: 1,
    });
    expect(stats.kindsWithoutWorker).toEqual(['ledger.record']);
    expect(stats.liveWorkers).toBe(1);

    const table = await runCli(['stats'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^kind\s+pending\s+due\s+running/);
    expect(table.stdout).toContain('WARNING: pending jobs with no live worker: ledger.record');
  });
});

describe('dev', () => {
  test('`baton dev --exit-when-done` runs the demo on the embedded database without DATABASE_URL', {
    timeout: 180_000,
  }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'baton-dev-'));
    dataDirs.push(dataDir);
    const folder = join(dataDir, 'db');
    const run = await runCli(['dev', '--exit-when-done', '--data-dir', folder], { DATABASE_URL: undefined });
    expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code: 0 });
    expect(run.stdout).toContain(`embedded database in ${folder}`);
    const completedLines = run.stdout.split('\n').filter((line) => /job\.completed\s+demo\./.test(line));
    expect(completedLines.length).toBe(11); // 10 demo.greet and demo.flaky on its second attempt
    expect(run.stdout).toMatch(/job\.retry_scheduled\s+demo\.flaky/);
    expect(run.stdout).toMatch(/job\.dead_lettered\s+demo\.lookup/);
    // The stats table at exit: kind, pending, due, running, completed, failed, cancelled, dead.
    expect(run.stdout).toMatch(/\nkind\s+pending\s+due\s+running\s+completed\s+failed\s+cancelled\s+dead/);
    expect(run.stdout).toMatch(/\ndemo\.greet\s+0\s+0\s+0\s+10\s+0\s+0\s+0\s/);
    expect(run.stdout).toMatch(/\ndemo\.flaky\s+0\s+0\s+0\s+1\s+0\s+0\s+0\s/);
    expect(run.stdout).toMatch(/\ndemo\.lookup\s+0\s+0\s+0\s+0\s+1\s+0\s+1\s/);
    // The embedded database was kept in the folder.
    expect((await readdir(folder)).length).toBeGreaterThan(0);
  });

  test('`baton dev` serves the API and console beside the worker and prints an operator token that works', {
    timeout: 120_000,
  }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'baton-dev-'));
    dataDirs.push(dataDir);
    const [command, args] = cliCommand(['dev', '--port', '0', '--data-dir', join(dataDir, 'db')]);
    const child = spawn(command, args, {
      env: { ...process.env, DATABASE_URL: '', BATON_API_TOKENS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    try {
      let stdout = '';
      const printed = await new Promise<RegExpExecArray>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          const match =
            /console: (http:\/\/\S+)\/ops\/queue\n[\s\S]*operator token for this run \(actor "dev"\): (\S+)\n/.exec(
              stdout,
            );
          if (match) resolve(match);
        });
        exited.then(() => reject(new Error(`baton dev exited early: ${stdout}`)));
      });
      const [, url, token] = printed;
      const withToken = await fetch(`${url}/api/jobs?kind=demo.greet`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(withToken.status).toBe(200);
      expect(((await withToken.json()) as { jobs: unknown[] }).jobs.length).toBe(10);
      expect((await fetch(`${url}/api/jobs`)).status).toBe(401);
      expect((await fetch(`${url}/ops/queue`, { redirect: 'manual' })).status).toBeLessThan(400);
      child.kill('SIGINT');
      expect((await exited)[0]).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
