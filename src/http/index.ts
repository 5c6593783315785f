/** The HTTP API and console (`baton/http`), kept out of the main entry so the library does not load them. */
export { createApp, type HttpOptions } from './app.js';
export { type HttpServer, startHttpServer } from './server.js';
export { type ApiRole, type ApiToken, type HttpSettings, resolveHttpSettings } from './settings.js';
export * from './types.js';
export { resolveWorkerSettings, WORKER_ENV, type WorkerSettings } from './worker/options.js';
export { Worker, type WorkerInspection, type WorkerOptions } from './worker/worker.js';
