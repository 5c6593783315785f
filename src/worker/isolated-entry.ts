/**
 * Where an isolated handler runs (see isolated.ts): a worker thread (`isolation: 'thread'`) or a
 * child process (`isolation: 'process'`). It imports the kind's module, runs the handler once and
 * posts its result or error. The worker ends the isolate when the attempt is settled or aborted.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AnyKindDefinition, JobContext } from '../core/kinds.js';
import { BatonError } from '../errors.js';
import type { Job } from '../types.js';
import type { IsolateMessage, IsolateStart, WorkerMessage } from './isolated.js';

/** The way to the worker: a thread's port, or a child process's IPC channel. */
const channel = parentPort
  ? {
      post: (message: IsolateMessage) => parentPort!.postMessage(message),
      listen: (listener: (message: WorkerMessage) => void) => parentPort!.on('message', listener),
    }
  : {
      post: (message: IsolateMessage) => process.send!(message),
      listen: (listener: (message: WorkerMessage) => void) => process.on('message', listener),
    };

let nextProgress = 0;
const progressWaiters = new Map<number, (held: boolean) => void>();
let started: (start: IsolateStart) => void;
const start = new Promise<IsolateStart>((resolve) => {
  started = resolve;
});
channel.listen((message) => {
  if (message.type === 'start') return started(message.start);
  progressWaiters.get(message.id)?.(message.held);
  progressWaiters.delete(message.id);
});
if (parentPort) started!((workerData as { start: IsolateStart }).start);
// A child whose worker went away (killed with SIGKILL, say) has no one to answer to.
else process.on('disconnect', () => process.exit(1));

function findKind(loaded: Record<string, unknown>, kind: string): AnyKindDefinition | undefined {
  for (const value of Object.values(loaded)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if ((candidate as AnyKindDefinition | null)?.kind === kind) return candidate as AnyKindDefinition;
    }
  }
  return undefined;
}

async function main(): Promise<unknown> {
  const { isolation, moduleUrl, kind, job, payload } = await start;
  const definition = findKind(await import(moduleUrl), kind);
  if (!definition?.handler) throw new Error(`module ${moduleUrl} exports no kind ${kind} with a handler`);
  const log = (level: 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message?: string) =>
    channel.post({ type: 'log', level, fields, message });
  const context: JobContext<unknown> = {
    job: job as Job<unknown, never>,
    // Never aborted here: an aborted attempt's isolate is ended instead.
    signal: new AbortController().signal,
    log: { info: log('info'), warn: log('warn'), error: log('error') },
    progress: (value) =>
      new Promise((resolve) => {
        const id = nextProgress++;
        progressWaiters.set(id, resolve);
        channel.post({ type: 'progress', id, value });
      }),
    completeInTransaction: () => {
      throw new BatonError(
        'OPTIONS_INVALID',
        `kind ${kind}: completeInTransaction is not available to isolated handlers (isolation: '${isolation}')`,
      );
    },
  };
  return definition.handler(payload, context);
}

main().then(
  (result) => channel.post({ type: 'result', result }),
  (error: Error & { code?: string }) =>
    channel.post({
      type: 'error',
      error: {
        name: error?.name ?? 'Error',
        message: error?.message ?? String(error),
        stack: error?.stack,
        code: error?.code,
      },
    }),
);
