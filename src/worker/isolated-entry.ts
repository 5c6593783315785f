/**
 * Where an isolated handler runs (see isolated.ts): a worker thread (`isolation: 'thread'`) or a
 * child process (`isolation: 'process'`). It imports the kind's module, runs the handler once and
 * posts its result or error. The worker ends the isolate when the attempt is settled or aborted.
 */
import { parentPort, Worker as Thread, workerData } from 'node:worker_threads';
import type { AnyKindDefinition, JobContext } from '../core/kinds.js';
import { BatonError } from '../errors.js';
import type { Job } from '../types.js';
import type { IsolateMessage, IsolateStart, WorkerMessage } from './isolated.js';

/** How often a child process checks that its worker lives. */
const PARENT_WATCH_MS = 250;

const PARENT_WATCH = `
const { writeSync } = require('node:fs');
const { workerData } = require('node:worker_threads');
const check = () => {
  if (process.ppid === workerData.parent) return;
  try {
    writeSync(2, 'baton: isolated handler process ' + process.pid + ' ends itself: its worker (pid ' + workerData.parent + ') is gone\\n');
  } catch {}
  process.kill(process.pid, 'SIGKILL');
};
check();
setInterval(check, workerData.intervalMs);`;

/**
 * Ends the child process within PARENT_WATCH_MS or so of its worker's death, even while the handler
 * holds the main thread in `for (;;) {}` and 'disconnect' is never emitted. Node has no API for
 * Linux's parent-death signal, so a thread of the child's own watches: it has an event loop of its
 * own, reads process.ppid live (a dead worker's children are at once reparented, to init or a
 * subreaper) and kills the whole process with SIGKILL (`process.exit()` in a thread ends only the
 * thread). Unref'd, so it never keeps the child alive.
 *
 * Started just before the handler, not at the child's start: the thread takes about 50 ms of CPU to
 * start, which beside the import of the kind's module made most attempts 40 to 120 ms slower on the
 * loaded 2 vCPU VM; beside the handler only its constructor (2 to 4 ms) is in the attempt's way
 * (docs/configuration.md). `parent` is the pid the worker passed: were the worker gone already,
 * process.ppid would be init's.
 */
function watchParent(parent: number): void {
  const watch = new Thread(PARENT_WATCH, {
    eval: true,
    execArgv: [], // no loader: the watch is plain JavaScript
    workerData: { parent, intervalMs: PARENT_WATCH_MS },
  });
  watch.unref();
}

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
// A child whose worker went away (killed with SIGKILL, say) has no one to answer to. While its
// handler runs, the event loop may never turn to notice: watchParent watches then.
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
  if (!parentPort) watchParent(Number(process.argv[2]) || process.ppid);
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
