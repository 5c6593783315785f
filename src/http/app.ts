import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Baton } from '../core/baton.js';
import { type ApiEnv, requireToken } from './auth.js';
import { errorRenderer, HttpError } from './errors.js';
import { createHttpLogger, type Logger } from './logger.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import type { HttpSettings } from './settings.js';

export interface HttpOptions {
  /** Where the API logs its events (docs/logging.md). Default: a new JSON logger on stdout at info. */
  logger?: Logger;
}

/**
 * The HTTP API over a Baton core, as a Hono app (it does not listen; see server.ts). Health routes
 * are open; everything under /api needs a bearer token, and actions need the operator role.
 */
export function createApp(
  baton: Baton,
  settings: Pick<HttpSettings, 'tokens' | 'bodyLimitBytes'>,
  options: HttpOptions = {},
): Hono<ApiEnv> {
  const logger = options.logger ?? createHttpLogger();
  const app = new Hono<ApiEnv>();
  app.onError(errorRenderer(logger));
  app.notFound(() => {
    throw new HttpError(404, 'NOT_FOUND', 'no such route');
  });
  app.route('/', healthRoutes(baton, logger));
  app.use('/api/*', requireToken(settings.tokens));
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: settings.bodyLimitBytes,
      onError: () => {
        throw new HttpError(
          413,
          'BODY_TOO_LARGE',
          `the request body is larger than ${settings.bodyLimitBytes} bytes (BATON_HTTP_BODY_LIMIT_BYTES)`,
        );
      },
    }),
  );
  app.route('/api/jobs', jobRoutes(baton));
  return app;
}
