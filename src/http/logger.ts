import { hostname } from 'node:os';
import pino from 'pino';

/**
 * The JSON logger of the HTTP API. Every line carries `event` (such as `http.listening`); the
 * events are listed in docs/logging.md.
 */
export function createHttpLogger(level: pino.LevelWithSilent = 'info'): pino.Logger {
  return pino({
    level,
    base: { component: 'http', pid: process.pid, host: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type Logger = pino.Logger;
