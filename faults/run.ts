/**
 * The fault-injection suite: `npm run faults -- [--quick] [--only a,b] [--soak-minutes N]`.
 * Starts a private PostgreSQL cluster (never the shared server), runs each scenario against its
 * own database with real worker processes, prints one table row per scenario and writes the table
 * to faults/results/latest.md (latest-quick.md for --quick). Exits non-zero when a scenario fails
 * its checker or checks, or when a control run is not caught.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { createCluster } from './lib/cluster.js';
import { passes, Run, type Scenario, type Size } from './lib/harness.js';
import { formatRow, TABLE_HEADER } from './lib/report.js';
import { buildWorkers } from './lib/workers.js';
import { scenarios } from './scenarios/index.js';

function parseArgs(argv: string[]): { quick: boolean; only?: string[]; soakMinutes: number } {
  const quick = argv.includes('--quick');
  const onlyAt = argv.indexOf('--only');
  const soakAt = argv.indexOf('--soak-minutes');
  return {
    quick,
    only: onlyAt >= 0 ? argv[onlyAt + 1]?.split(',') : undefined,
    soakMinutes: soakAt >= 0 ? Number(argv[soakAt + 1]) : 30,
  };
}

async function runScenario(
  cluster: Awaited<ReturnType<typeof createCluster>>,
  scenario: Scenario,
  size: Size,
): Promise<{ row: string; ok: boolean }> {
  const run = new Run(cluster, `faults_${scenario.name.replaceAll('-', '_')}`);
  const started = Date.now();
  try {
    await run.setup(scenario.migrated !== false);
    await scenario.run(run, size);
    const exited = run.workers
      .filter((worker) => !worker.alive)
      .map((worker) => `  worker ${worker.pid} exited: ${worker.stderr.join('').slice(-1500)}`);
    const figures = await run.finish();
    const checksOk = run.checks.every((line) => line.ok);
    const clean = passes(figures);
    const ok = scenario.control ? !clean : clean && checksOk;
    if (!ok) await diagnose(run, scenario.name, exited);
    const seconds = Math.round((Date.now() - started) / 1000);
    return { row: formatRow(scenario, figures, run, ok, seconds), ok };
  } catch (error) {
    const seconds = Math.round((Date.now() - started) / 1000);
    const failure = (error as Error).stack ?? String(error);
    process.stderr.write(`scenario ${scenario.name} failed to run: ${failure}\n`);
    run.check(
      'ran to the end',
      false,
      String((error as Error).message)
        .split('\n')[0]!
        .slice(0, 200),
    );
    return { row: formatRow(scenario, null, run, false, seconds), ok: false };
  } finally {
    await run.close();
  }
}

/** On a failure, what the tables hold, to stderr. */
async function diagnose(run: Run, name: string, exited: string[]): Promise<void> {
  const states = await run.rows(`select kind, state, count(*)::int as n from baton.jobs group by 1, 2`);
  const ledger = await run.rows(
    `select outcome, detail, count(*)::int as n from faults.ledger group by 1, 2`,
  );
  const pids = await run.rows(`select worker_pid, count(*)::int as n from faults.ledger group by 1`);
  const failures = await run.rows(
    `select error_code, left(error_message, 200) as message, attempts, count(*)::int as n
     from baton.jobs where state = 'failed' group by 1, 2, 3 order by n desc limit 5`,
  );
  process.stderr.write(
    `${exited.join('\n')}\n${name}: jobs ${JSON.stringify(states)}\n  failed ${JSON.stringify(failures)}\n  ledger ${JSON.stringify(ledger)}\n  by pid ${JSON.stringify(pids)} (workers ${run.workers.map((worker) => worker.pid).join(',')})\n`,
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const size: Size = { quick: args.quick, soakMinutes: args.soakMinutes };
  const chosen = scenarios.filter((scenario) =>
    args.only ? args.only.includes(scenario.name) : !(args.quick && scenario.fullOnly),
  );
  if (args.only) {
    const unknown = args.only.filter((name) => !scenarios.some((scenario) => scenario.name === name));
    if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(', ')}`);
  }
  ensureFaketime();
  buildWorkers();
  const started = Date.now();
  const cluster = await createCluster();
  const rows: string[] = [];
  let failed = 0;
  process.stdout.write(`faults: private PostgreSQL on 127.0.0.1:${cluster.port} (${cluster.dir})\n\n`);
  process.stdout.write(`${TABLE_HEADER}\n`);
  try {
    for (const scenario of chosen) {
      const { row, ok } = await runScenario(cluster, scenario, size);
      if (!ok) failed++;
      rows.push(row);
      process.stdout.write(`${row}\n`);
    }
  } finally {
    await cluster.destroy();
  }
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const machine = `${hostname()}: ${cpus().length} vCPU (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL 15`;
  const report = [
    `# Fault suite${args.quick ? ' (quick)' : ''}: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machine}. Took ${minutes} min. ${failed === 0 ? 'All scenarios passed.' : `${failed} scenario(s) FAILED.`}`,
    '',
    TABLE_HEADER,
    ...rows,
    '',
  ].join('\n');
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/latest${args.quick ? '-quick' : ''}.md`, import.meta.url), report);
  process.stdout.write(`\n${failed === 0 ? 'all passed' : `${failed} FAILED`} in ${minutes} min\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}

/** The clock-skew scenario needs libfaketime; install it when missing (root, Debian). */
function ensureFaketime(): void {
  try {
    execFileSync('faketime', ['-f', '+1h', 'true'], { stdio: 'ignore' });
  } catch {
    process.stdout.write('faults: installing faketime (apt-get)\n');
    try {
      execFileSync('apt-get', ['install', '-y', 'faketime'], { stdio: 'ignore' });
    } catch {
      execFileSync('apt-get', ['update'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', 'faketime'], { stdio: 'ignore' });
    }
  }
}

// Exit explicitly: a stray handle (a pool's timer, a child's pipe) must not keep the suite running.
main().then(
  () => process.exit(),
  (error) => {
    process.stderr.write(`faults: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
