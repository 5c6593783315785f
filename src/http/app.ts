import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Baton } from '../core/baton.js';
import { type ApiEnv, requireReader, requireToken } from './auth.js';
import { consoleRoutes } from './console.js';
import { errorRenderer, HttpError } from './errors.js';
import { createHttpLogger, type Logger } from './logger.js';
import { buildOpenApiDocument, type Operation } from './openapi.js';
import { auditOperations, auditRoutes } from './routes/audit.js';
import { deadLetterOperations, deadLetterRoutes } from './routes/dead-letters.js';
import { healthOperations, healthRoutes } from './routes/health.js';
import { jobLeaseOperations, jobLeaseRoutes } from './routes/job-leases.js';
import { jobOperations, jobRoutes } from './routes/jobs.js';
import { metricsOperations, metricsRoutes } from './routes/metrics.js';
import { opsOperations, opsRoutes } from './routes/ops.js';
import { SessionStore } from './sessions.js';
import type { HttpSettings } from './settings.js';

export interface HttpOptions {
  /** Where the API logs its events (docs/logging.md). Default: a new JSON logger on stdout at info. */
  logger?: Logger;
  /** The console's login sessions (in memory). Default: a new store with 12-hour sessions. */
  sessions?: SessionStore;
}

/** Every operation of the API, in the order the OpenAPI document lists them. */
export const API_OPERATIONS: readonly Operation[] = [
  ...healthOperations,
  ...jobOperations,
  ...jobLeaseOperations,
  ...deadLetterOperations,
  ...opsOperations,
  ...auditOperations,
  ...metricsOperations,
  {
    method: 'get',
    path: '/api/openapi.json',
    summary: 'This OpenAPI document, generated from the schemas that validate the requests',
    access: 'viewer',
  },
];

const VERSION = '0.1.0';

/**
 * The HTTP API over a Baton core, as a Hono app (it does not listen; see server.ts). Health routes
 * are open; everything else needs a bearer token (or the console's session), and actions need the
 * operator role.
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
  // No response is to be read as anything but its declared type (JSON, CSV, the console's files).
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
  });
  const sessions = options.sessions ?? new SessionStore();
  app.route('/', healthRoutes(baton, logger));
  app.route('/ops', consoleRoutes({ tokens: settings.tokens, sessions }));
  const authenticate = requireToken(settings.tokens, { sessions });
  app.use('/api/*', authenticate);
  app.use('/metrics', authenticate);
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
  // Claim, heartbeat and report first: `/api/jobs/claim` must not be read as a job id.
  app.route('/api/jobs', jobLeaseRoutes(baton, logger));
  app.route('/api/jobs', jobRoutes(baton));
  app.route('/api/dead-letters', deadLetterRoutes(baton));
  app.route('/api/audit-logs', auditRoutes(baton));
  app.route('/api/ops', opsRoutes(baton));
  app.route('/metrics', metricsRoutes(baton));
  const openApi = buildOpenApiDocument(API_OPERATIONS, VERSION);
  app.get('/api/openapi.json', requireReader, (c) => c.json(openApi));
  return app;
}
