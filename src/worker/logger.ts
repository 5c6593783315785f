import { hostname } from 'node:os';
import pino from 'pino';

/**
 * The JSON logger of a worker. Every line carries `event` (such as `job.completed`) and the
 * worker id; job lines also carry jobId, kind, attempt, traceId and, when finished, durationMs.
 * The events are listed in docs/logging.md.
 */
export function createWorkerLogger(workerId: string, level: pino.LevelWithSilent): pino.Logger {
  return pino({
    level,
    base: { workerId, pid: process.pid, host: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type Logger = pino.Logger;
