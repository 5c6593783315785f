import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Baton } from '../core/baton.js';
import { createApp, type HttpOptions } from './app.js';
import { startPeriodicAuditPrune } from './audit-prune.js';
import { resolveRecoveryIntervalMs, startLeaseRecovery } from './lease-recovery.js';
import { createHttpLogger } from './logger.js';
import type { HttpSettings } from './settings.js';

export interface HttpServer {
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  port: number;
  /** Stops accepting connections, lets requests in flight finish, then resolves. */
  close(): Promise<void>;
}

export interface HttpServerOptions extends HttpOptions {
  /**
   * How often expired leases are swept (jobs of HTTP workers that died go back to pending, see
   * lease-recovery.ts), in ms; 0 disables. Default 5000, as for library workers.
   */
  recoveryIntervalMs?: number;
}

/** Serves the API of `baton` with Node's HTTP server; resolves once it listens. */
export async function startHttpServer(
  baton: Baton,
  settings: HttpSettings,
  options: HttpServerOptions = {},
): Promise<HttpServer> {
  const logger = options.logger ?? createHttpLogger();
  const recoveryIntervalMs = resolveRecoveryIntervalMs(options.recoveryIntervalMs);
  const app = createApp(baton, settings, { logger });
  let server: ServerType | undefined;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port: settings.port, hostname: settings.host }, resolve);
    server.once('error', reject);
  });
  const listening = server!;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ event: 'http.listening', url, tokens: settings.tokens.length });
  const auditPrune = startPeriodicAuditPrune(baton, settings, logger);
  const leaseRecovery = startLeaseRecovery(baton, recoveryIntervalMs, logger);
  return {
    url,
    port: address.port,
    close: async () => {
      await auditPrune.stop();
      await leaseRecovery.stop();
      await new Promise<void>((resolve, reject) => {
        listening.close((error) => (error ? reject(error) : resolve()));
        // Idle keep-alive connections would hold close() open; requests in flight still finish.
        if ('closeIdleConnections' in listening) listening.closeIdleConnections();
      });
      logger.info({ event: 'http.stopped', url });
    },
  };
}
