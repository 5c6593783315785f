import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('../child.ts', import.meta.url));

export interface ChildArgs {
  role: string;
  system: string;
  db: string;
  jobs: number;
  timeoutMs: number;
  rate?: number;
  /** Worker slots in this process (default 32). */
  concurrency?: number;
  /** Extra environment variables for the child (e.g. a Baton worker setting). */
  env?: Record<string, string>;
  /** Run this compiled child.ts (lib/bundle.ts) with plain node instead of child.ts under tsx. */
  script?: string;
}

export type Result = Record<string, number | null>;

export interface Child {
  proc: ChildProcess;
  /** Resolves when the child prints @@READY. */
  ready: Promise<void>;
  /** Resolves with the @@RESULT payload; rejects on a non-zero exit or the kill timeout. */
  result: Promise<Result>;
}

/**
 * Starts one child process running bench/child.ts. It is sent SIGKILL if it runs
 * longer than args.timeoutMs + 15 s (the child's own deadline is args.timeoutMs).
 * `onProgress` receives the counts of "@@PROGRESS <n>" lines (jobs handled so far).
 */
export function startChild(args: ChildArgs, onProgress?: (handled: number) => void): Child {
  const argv = args.script ? [args.script] : ['--import', 'tsx', CHILD];
  const proc = spawn(process.execPath, [...argv, JSON.stringify(args)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...args.env },
  });
  const killTimer = setTimeout(() => proc.kill('SIGKILL'), args.timeoutMs + 15_000);
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  let payload: Result | undefined;
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => {
    if (line === '@@READY') onReady();
    else if (line.startsWith('@@PROGRESS ')) onProgress?.(Number(line.slice(11)));
    else if (line.startsWith('@@RESULT ')) payload = JSON.parse(line.slice(9)) as Result;
    else if (line.trim()) process.stderr.write(`  [${args.system}/${args.role}] ${line}\n`);
  });
  const result = new Promise<Result>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(killTimer);
      if (code === 0 && payload) resolve(payload);
      else reject(new Error(`${args.system}/${args.role} exited with ${signal ?? code}`));
    });
  });
  // A child that dies before READY must not leave the caller waiting on `ready` forever.
  result.then(onReady, onReady);
  return { proc, ready, result };
}

export async function runChild(args: ChildArgs): Promise<Result> {
  return startChild(args).result;
}
