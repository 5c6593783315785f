import { Hono } from 'hono';
import type { Baton } from '../../core/baton.js';
import { latestMigrationVersion, schemaVersion } from '../../db/migrate.js';
import { HttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Operation } from '../openapi.js';

export const healthOperations: Operation[] = [
  { method: 'get', path: '/healthz', summary: 'The process answers (no database call)', access: 'open' },
  {
    method: 'get',
    path: '/readyz',
    summary: 'The database answers and its schema is at the version this server needs (503 otherwise)',
    access: 'open',
  },
];

/**
 * `GET /healthz`: the process answers (no database call). `GET /readyz`: the database answers and
 * its schema is at the version this build needs. Neither needs a token, so load balancers can call them.
 */
export function healthRoutes(baton: Baton, logger: Logger): Hono {
  const routes = new Hono();
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    const needed = latestMigrationVersion();
    let version: number;
    try {
      version = await schemaVersion(baton.db);
    } catch (error) {
      // The route is open to anyone, so the driver's message (hosts, database names) stays in the log.
      logger.warn({ event: 'http.not_ready', err: error });
      throw new HttpError(503, 'NOT_READY', 'the database does not answer', { cause: error });
    }
    if (version < needed) {
      throw new HttpError(
        503,
        'NOT_READY',
        `database schema is at version ${version}, this server needs ${needed}: run \`baton migrate\``,
      );
    }
    return c.json({ status: 'ready', schemaVersion: version });
  });
  return routes;
}
