/**
 * Real worker processes for the fault suite: `node .faults-build/<pid>/src/cli/main.js worker --jobs
 * .faults-build/<pid>/faults/kinds.js`, the tree compiled to JavaScript as it would run in production
 * (`buildWorkers`), optionally under a command prefix (faketime). Their JSON logs are parsed,
 * counted per event, and kept in memory only for warnings and the events a scenario asks for.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isRunning } from '../../src/process-alive.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Where every run of the suite compiles, each into its own directory; inside the repository, so node_modules resolves. */
const BUILDS = `${ROOT}.faults-build/`;
/**
 * Where this run compiles src/ and faults/ (faults/tsconfig.build.json): a directory named after
 * its process, so that two runs at once (two people, or CI beside a developer) never delete or
 * overwrite each other's build: with one shared directory, a second run's clean-up and compile
 * took the files from under the first run's worker (re)starts (seen once, in an earlier session).
 */
const BUILD = `${BUILDS}${process.pid}/`;

/**
 * Compiles src/ and faults/ to JavaScript for the worker processes, afresh each run (so a run never
 * tests a stale build). Workers started through a TypeScript loader (tsx) cost ~1.8 CPU-seconds each
 * on this kind of machine against ~0.5 compiled, and a scenario that restarts workers (poison-pill)
 * would measure the loader, not Baton. The build is removed when the run exits; builds left by runs
 * that no longer exist (killed, or from before builds had their own directories) are removed first.
 */
export function buildWorkers(): void {
  removeStaleBuilds();
  rmSync(BUILD, { recursive: true, force: true });
  process.on('exit', () => rmSync(BUILD, { recursive: true, force: true }));
  execFileSync(
    process.execPath,
    [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}faults/tsconfig.build.json`, '--outDir', BUILD],
    { cwd: ROOT, stdio: 'inherit' },
  );
}

function removeStaleBuilds(): void {
  let entries: string[];
  try {
    entries = readdirSync(BUILDS);
  } catch {
    return; // no builds yet
  }
  for (const entry of entries) {
    if (/^\d+$/.test(entry) && isRunning(Number(entry))) continue;
    rmSync(`${BUILDS}${entry}`, { recursive: true, force: true });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: log lines are free-form JSON.
export type LogLine = Record<string, any>;

export interface WorkerSpec {
  databaseUrl: string;
  env?: Record<string, string>;
  /** A command put in front of node, such as ['faketime', '-f', '+3h']. */
  prefix?: string[];
  /** Keep every line of these events (besides warn and above). */
  keep?: string[];
}

/** Every worker process started, so that none outlives the runner. */
const started = new Set<WorkerProcess>();
process.on('exit', () => {
  for (const worker of started) if (worker.alive) worker.kill('SIGKILL');
});

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly counts = new Map<string, number>();
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  workerId?: string;
  /** Date.now() when the process was spawned, and when it was seen running (registered or logged worker.started). */
  readonly spawnedAtMs = Date.now();
  readyAtMs?: number;
  /** Date.now() when the process exited. */
  exitedAtMs?: number;
  /** Lines written in total (all levels that reached stdout). */
  written = 0;
  private waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  constructor(readonly spec: WorkerSpec) {
    const args = [`${BUILD}src/cli/main.js`, 'worker', '--jobs', `${BUILD}faults/kinds.js`];
    const [command, ...rest] = [...(spec.prefix ?? []), process.execPath, ...args];
    this.child = spawn(command!, rest, {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: spec.databaseUrl,
        BATON_LOG_LEVEL: 'info',
        BATON_SHUTDOWN_TIMEOUT_MS: '2000',
        ...spec.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a signal reaches node even under a prefix (faketime runs node as
      // its child, and killing faketime alone would leave node behind).
      detached: true,
    });
    const keep = new Set(spec.keep ?? []);
    let buffer = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const text = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!text.startsWith('{')) continue;
        this.written++;
        const line = JSON.parse(text) as LogLine;
        this.counts.set(line.event, (this.counts.get(line.event) ?? 0) + 1);
        if (line.event === 'worker.started') this.workerId = line.workerId;
        if (line.level >= 40 || keep.has(line.event) || line.event?.startsWith('worker.'))
          this.lines.push(line);
        this.waiters = this.waiters.filter((waiter) => {
          if (!waiter.predicate(line)) return true;
          waiter.resolve(line);
          return false;
        });
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = once(this.child, 'exit').then(([code, signal]) => {
      this.exitedAtMs = Date.now();
      return { code, signal };
    });
    started.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  count(event: string): number {
    return this.counts.get(event) ?? 0;
  }

  /** The first line (from now on, or kept already) that matches, within `timeoutMs`. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${this.pid}: no such log line within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** Signals the whole process group (the prefix and node). */
  kill(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  /** Resident memory in kB (VmRSS), or 0 once gone. */
  rssKb(): number {
    try {
      const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return Number(match?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.kill('SIGCONT');
    this.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Starts a worker and waits until it runs: its `worker.started` line, or (at log level warn, where
 * that line is not written) its registry row, which `registered` looks up by pid.
 */
export async function startWorker(
  spec: WorkerSpec,
  registered: (pid: number) => Promise<string | undefined>,
): Promise<WorkerProcess> {
  const worker = new WorkerProcess(spec);
  const byRegistry = async () => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && worker.alive && !worker.workerId) {
      worker.workerId = await registered(worker.pid).catch(() => undefined);
      if (!worker.workerId) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!worker.workerId) throw new Error(`worker ${worker.pid} did not register within 60 s`);
  };
  await Promise.race([
    Promise.race([worker.waitFor((line) => line.event === 'worker.started', 60_000), byRegistry()]),
    worker.exited.then(({ code, signal }) => {
      throw new Error(
        `worker exited (${code ?? signal}) before starting: ${worker.stderr.join('').slice(-2000)}`,
      );
    }),
  ]);
  worker.readyAtMs = Date.now();
  return worker;
}
