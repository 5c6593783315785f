/** The HTTP API and console (`baton/http`), kept out of the main entry so the library does not load them. */
export { createApp, type HttpOptions } from './app.js';
export { type HttpServer, startHttpServer } from './server.js';
export { type ApiRole, type ApiToken, type HttpSettings, resolveHttpSettings } from './settings.js';
