import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { onTestFailed } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: log lines are free-form JSON.
export type LogLine = Record<string, any>;

/** A real worker process started through the CLI (`baton worker --jobs <fixture>`), with its JSON log collected. */
export class WorkerProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const text = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as LogLine;
        this.lines.push(line);
        this.waiters = this.waiters.filter((waiter) => {
          if (!waiter.predicate(line)) return true;
          waiter.resolve(line);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (already seen or yet to come) that matches. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${this.stderr.join('')}`)),
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

  waitForEvent(event: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((line) => line.event === event, timeoutMs);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Kills the process if it still runs and waits for it to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** The CLI run from source (`node --import tsx src/cli/main.ts ...`). */
export function cliCommand(args: string[]): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', `${ROOT}src/cli/main.ts`, ...args]];
}

/** Starts `baton worker --jobs test/fixtures/<fixture>` against `databaseUrl`, waiting until it logs worker.started. */
export async function startWorker(
  databaseUrl: string,
  options: { fixture?: string; env?: Record<string, string>; args?: string[]; waitStarted?: boolean } = {},
): Promise<WorkerProcess> {
  const fixture = `${ROOT}test/fixtures/${options.fixture ?? 'ledger-kinds.ts'}`;
  const [command, args] = cliCommand(['worker', '--jobs', fixture, ...(options.args ?? [])]);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, BATON_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker = new WorkerProcess(child);
  showLogOnFailure(worker);
  if (options.waitStarted !== false) {
    await Promise.race([
      worker.waitForEvent('worker.started', 30_000),
      worker.exited.then(({ code }) => {
        throw new Error(`worker exited with ${code} before starting: ${worker.stderr.join('')}`);
      }),
    ]);
  }
  return worker;
}

/**
 * When the current test fails, prints the worker's last log lines and stderr: a multi-process test
 * that fails only on a loaded CI machine is otherwise hard to read afterwards.
 */
function showLogOnFailure(worker: WorkerProcess): void {
  try {
    onTestFailed(() => {
      const tail = worker.lines.slice(-40).map((line) => JSON.stringify(line));
      process.stderr.write(
        `--- worker pid ${worker.pid}: last ${tail.length} of ${worker.lines.length} log lines ---\n${tail.join('\n')}\n${worker.stderr.join('').slice(-4000)}\n`,
      );
    });
  } catch {
    // Started outside a test (beforeAll): nothing to attach to.
  }
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, cliArgs] = cliCommand(args);
  const child = spawn(command, cliArgs, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
  });
  // 'close', not 'exit': at 'exit' the child's output may not all have been read yet (a loaded CI
  // machine once showed a --help run that exited 0 with stdout still empty here).
  const [code] = await once(child, 'close');
  return { code, stdout, stderr };
}
