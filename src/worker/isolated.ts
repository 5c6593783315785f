/**
 * Isolated handlers (`defineKind({ isolation: 'thread' | 'process', moduleUrl })`): the handler runs
 * in an isolate of its own, one per attempt: a worker thread, or a child process. The isolate imports
 * the kind's module, finds the kind by name and runs its handler; the worker's event loop stays free
 * for heartbeats and other jobs. When the attempt is aborted (timeout, cancel, lost lease, shutdown)
 * the isolate is ended at once: a thread is terminated (V8 stops even a handler stuck in
 * `for (;;) {}`, which no AbortSignal can reach), a process gets SIGKILL. A child process also
 * survives what a thread cannot: a handler that calls `process.abort()` or crashes Node ends its own
 * process only, and the attempt fails (retryable) with the signal or exit code in its message. A
 * child whose worker dies (SIGKILL) ends itself within about a second, even in a CPU loop: a thread
 * in the child watches for its parent (isolated-entry.ts).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import type { AnyKindDefinition, JobLogger } from '../core/kinds.js';
import { JobError, type JobErrorCode } from '../errors.js';
import type { Job } from '../types.js';

export type Isolation = 'thread' | 'process';

/** What the isolate needs to run one attempt. */
export interface IsolateStart {
  isolation: Isolation;
  moduleUrl: string;
  kind: string;
  job: Job;
  payload: unknown;
}

/** What the isolate sends back. */
export type IsolateMessage =
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: { name: string; message: string; stack?: string; code?: string } }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; fields: Record<string, unknown>; message?: string }
  | { type: 'progress'; id: number; value: unknown };

/** What the worker sends to the isolate: a child process gets its start this way; both get progress answers. */
export type WorkerMessage =
  | { type: 'start'; start: IsolateStart }
  | { type: 'progress'; id: number; held: boolean };

export interface IsolatedRun {
  definition: AnyKindDefinition;
  job: Job;
  payload: unknown;
  signal: AbortSignal;
  log: JobLogger;
  progress(value: unknown): Promise<boolean>;
}

/** A running thread or child process, seen the same way. */
interface Isolate {
  send(message: WorkerMessage): void;
  /** Ends it at once; harmless when it has ended already. */
  kill(): void;
}

interface IsolateEvents {
  message(message: IsolateMessage): void;
  /** It failed, or ended without sending a result. */
  failed(error: Error): void;
}

/** Is the kind's handler run in an isolate? */
export const isIsolated = (definition: AnyKindDefinition): boolean =>
  definition.isolation === 'thread' || definition.isolation === 'process';

// From source (tsx) the entry is the .ts file beside this one; from dist, the compiled .js.
const ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? './isolated-entry.ts' : './isolated-entry.js',
  import.meta.url,
).href;
const TYPESCRIPT = /\.[mc]?ts$/;

/**
 * tsx, when the entry or the kind's module is TypeScript (a worker run from source): `specifier` is
 * `tsx/esm/api` for a thread, which registers it itself, and `tsx` (its loader) for a process.
 */
function typescriptLoader(moduleUrl: string, specifier: 'tsx/esm/api' | 'tsx'): string | undefined {
  if (!TYPESCRIPT.test(ENTRY) && !TYPESCRIPT.test(moduleUrl)) return undefined;
  try {
    return import.meta.resolve(specifier);
  } catch {
    return undefined; // the import of the .ts module fails in the isolate and says why
  }
}

/**
 * A thread starts from this bootstrap. Node 20 does not pass loader hooks registered with
 * `--import tsx` on to worker threads, so when TypeScript is involved the thread registers tsx
 * itself before importing the entry.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.typescript) (await import(workerData.typescript)).register();
  await import(workerData.entry);
})().catch((error) => { process.nextTick(() => { throw error; }); });`;

function startThread(start: IsolateStart, events: IsolateEvents): Isolate {
  const thread = new Thread(BOOTSTRAP, {
    eval: true,
    workerData: { entry: ENTRY, typescript: typescriptLoader(start.moduleUrl, 'tsx/esm/api'), start },
  });
  thread.on('message', events.message);
  thread.on('error', events.failed);
  thread.on('exit', (code) =>
    events.failed(new Error(`the isolated handler's thread exited (code ${code}) without a result`)),
  );
  return { send: (message) => thread.postMessage(message), kill: () => void thread.terminate() };
}

/**
 * A child process runs the entry with Node's defaults: the worker's own command-line flags are not
 * passed on (an inspector port or `--eval` would break it), NODE_OPTIONS is, with the environment;
 * tsx is loaded when TypeScript is involved. Messages use the `advanced` serialization, so payloads,
 * results and jobs cross as they cross to a thread (structured clone: a Date stays a Date).
 */
function startProcess(start: IsolateStart, events: IsolateEvents): Isolate {
  const loader = typescriptLoader(start.moduleUrl, 'tsx');
  // The worker's pid, for the child's parent watch (isolated-entry.ts).
  const child = fork(fileURLToPath(ENTRY), [String(process.pid)], {
    execArgv: loader ? ['--import', loader] : [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', events.message);
  child.on('error', events.failed);
  // 'close', not 'exit': it comes after the IPC channel has delivered everything the child sent.
  child.on('close', (code, signal) =>
    events.failed(
      new Error(
        `the isolated handler's process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} without a result`,
      ),
    ),
  );
  const send = (message: WorkerMessage) => {
    // A child that is gone cannot answer; its 'close' settles the attempt.
    if (child.connected) child.send(message, () => {});
  };
  send({ type: 'start', start });
  return {
    send,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs one attempt of an isolated handler; settles with its result or error, and ends the isolate. */
export function runIsolated(run: IsolatedRun): Promise<unknown> {
  const { definition, job, payload, signal, log } = run;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const isolation = definition.isolation as Isolation;
    const start: IsolateStart = {
      isolation,
      moduleUrl: definition.moduleUrl!,
      kind: definition.kind,
      job,
      payload,
    };
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      isolate.kill();
      settle();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    const events: IsolateEvents = {
      message(message) {
        switch (message.type) {
          case 'result':
            return finish(() => resolve(message.result));
          case 'error':
            return finish(() => reject(rebuildError(message.error)));
          case 'log':
            return log[message.level](message.fields, message.message);
          case 'progress':
            run.progress(message.value).then(
              (held) => isolate.send({ type: 'progress', id: message.id, held }),
              () => isolate.send({ type: 'progress', id: message.id, held: false }),
            );
        }
      },
      failed: (error) => finish(() => reject(error)),
    };
    const isolate = isolation === 'process' ? startProcess(start, events) : startThread(start, events);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Errors cross into the worker as plain data; a JobError keeps its code (terminal or not). */
function rebuildError(data: { name: string; message: string; stack?: string; code?: string }): Error {
  const error =
    data.name === 'JobError' && data.code
      ? new JobError(data.code as JobErrorCode, data.message)
      : Object.assign(new Error(data.message), { name: data.name });
  if (data.stack) error.stack = data.stack;
  return error;
}
