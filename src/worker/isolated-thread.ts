/**
 * The thread of an isolated handler (see isolated.ts): imports the kind's module, runs the handler
 * once and posts its result or error. The worker terminates the thread when the attempt is aborted.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AnyKindDefinition, JobContext } from '../core/kinds.js';
import { BatonError } from '../errors.js';
import type { Job } from '../types.js';
import type { ThreadMessage } from './isolated.js';

const { moduleUrl, kind, job, payload } = workerData as {
  moduleUrl: string;
  kind: string;
  job: Job;
  payload: unknown;
};
const port = parentPort!;
const post = (message: ThreadMessage) => port.postMessage(message);

function findKind(loaded: Record<string, unknown>): AnyKindDefinition | undefined {
  for (const value of Object.values(loaded)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if ((candidate as AnyKindDefinition | null)?.kind === kind) return candidate as AnyKindDefinition;
    }
  }
  return undefined;
}

let nextProgress = 0;
const progressWaiters = new Map<number, (held: boolean) => void>();
port.on('message', (message: { type: 'progress'; id: number; held: boolean }) => {
  progressWaiters.get(message.id)?.(message.held);
  progressWaiters.delete(message.id);
});

async function main(): Promise<void> {
  const definition = findKind(await import(moduleUrl));
  if (!definition?.handler) throw new Error(`module ${moduleUrl} exports no kind ${kind} with a handler`);
  const log = (level: 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message?: string) =>
    post({ type: 'log', level, fields, message });
  const context: JobContext<unknown> = {
    job: job as Job<unknown, never>,
    // Never aborted here: an aborted attempt's thread is terminated instead.
    signal: new AbortController().signal,
    log: { info: log('info'), warn: log('warn'), error: log('error') },
    progress: (value) =>
      new Promise((resolve) => {
        const id = nextProgress++;
        progressWaiters.set(id, resolve);
        post({ type: 'progress', id, value });
      }),
    completeInTransaction: () => {
      throw new BatonError(
        'OPTIONS_INVALID',
        `kind ${kind}: completeInTransaction is not available to isolated handlers (isolation: 'thread')`,
      );
    },
  };
  return definition.handler(payload, context);
}

main().then(
  (result) => post({ type: 'result', result }),
  (error: Error & { code?: string }) =>
    post({
      type: 'error',
      error: {
        name: error?.name ?? 'Error',
        message: error?.message ?? String(error),
        stack: error?.stack,
        code: error?.code,
      },
    }),
);
