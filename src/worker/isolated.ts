/**
 * Isolated handlers (`defineKind({ isolation: 'thread', moduleUrl })`): the handler runs in a worker
 * thread of its own, one per attempt. The thread imports the kind's module, finds the kind by name
 * and runs its handler; the worker's event loop stays free for heartbeats and other jobs. When the
 * attempt is aborted (timeout, cancel, lost lease, shutdown) the thread is terminated at once: V8
 * stops even a handler stuck in `for (;;) {}`, which no AbortSignal can reach.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { AnyKindDefinition, JobLogger } from '../core/kinds.js';
import { JobError, type JobErrorCode } from '../errors.js';
import type { Job } from '../types.js';

/** What the thread sends back. */
export type ThreadMessage =
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: { name: string; message: string; stack?: string; code?: string } }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; fields: Record<string, unknown>; message?: string }
  | { type: 'progress'; id: number; value: unknown };

export interface IsolatedRun {
  definition: AnyKindDefinition;
  job: Job;
  payload: unknown;
  signal: AbortSignal;
  log: JobLogger;
  progress(value: unknown): Promise<boolean>;
}

// From source (tsx) the entry is the .ts file beside this one; from dist, the compiled .js.
const ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? './isolated-thread.ts' : './isolated-thread.js',
  import.meta.url,
).href;
const TYPESCRIPT = /\.[mc]?ts$/;

/**
 * The thread starts from this bootstrap. Node 20 does not pass loader hooks registered with
 * `--import tsx` on to worker threads, so when the entry or the kind's module is TypeScript (a
 * worker run from source), the thread registers tsx itself before importing them.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.typescript) (await import(workerData.typescript)).register();
  await import(workerData.entry);
})().catch((error) => { process.nextTick(() => { throw error; }); });`;

function typescriptLoader(moduleUrl: string): string | undefined {
  if (!TYPESCRIPT.test(ENTRY) && !TYPESCRIPT.test(moduleUrl)) return undefined;
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return undefined; // the import of the .ts module fails in the thread and says why
  }
}

/** Runs one attempt of an isolated handler; settles with its result or error, and ends the thread. */
export function runIsolated(run: IsolatedRun): Promise<unknown> {
  const { definition, job, payload, signal, log } = run;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const moduleUrl = definition.moduleUrl!;
    const thread = new Thread(BOOTSTRAP, {
      eval: true,
      workerData: {
        entry: ENTRY,
        typescript: typescriptLoader(moduleUrl),
        moduleUrl,
        kind: definition.kind,
        job,
        payload,
      },
    });
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      void thread.terminate();
      settle();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    thread.on('message', (message: ThreadMessage) => {
      switch (message.type) {
        case 'result':
          return finish(() => resolve(message.result));
        case 'error':
          return finish(() => reject(rebuildError(message.error)));
        case 'log':
          return log[message.level](message.fields, message.message);
        case 'progress':
          run.progress(message.value).then(
            (held) => thread.postMessage({ type: 'progress', id: message.id, held }),
            () => thread.postMessage({ type: 'progress', id: message.id, held: false }),
          );
      }
    });
    thread.on('error', (error) => finish(() => reject(error)));
    thread.on('exit', (code) =>
      finish(() => reject(new Error(`the isolated handler's thread exited (code ${code}) without a result`))),
    );
  });
}

/** Errors cross the thread boundary as plain data; a JobError keeps its code (terminal or not). */
function rebuildError(data: { name: string; message: string; stack?: string; code?: string }): Error {
  const error =
    data.name === 'JobError' && data.code
      ? new JobError(data.code as JobErrorCode, data.message)
      : Object.assign(new Error(data.message), { name: data.name });
  if (data.stack) error.stack = data.stack;
  return error;
}
