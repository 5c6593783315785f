import { readdir, readFile } from 'node:fs/promises';
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type ApiEnv, checkCsrf, checkSameOrigin, requestProtocol, tokenVerifier } from './auth.js';
import { HttpError } from './errors.js';
import { SESSION_COOKIE, type SessionStore } from './sessions.js';
import type { ApiToken } from './settings.js';

/**
 * The console's files: plain HTML, CSS and ES modules, no build step. Resolved from this module so
 * that it works from both src/http (tsx, tests) and dist/http (the built package).
 */
export const CONSOLE_DIRECTORY = new URL('../../console/', import.meta.url);

/**
 * Sent with every console response. No inline script or style is allowed, so a payload that reaches
 * the page as markup still cannot run; the console builds its DOM with textContent besides.
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Asset names the console may serve: letters, digits, dashes and one known extension. No paths. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(js|css|svg)$/;

const LOGIN_ERRORS = {
  invalid: 'That token is not valid. Check it and paste it again.',
  worker: 'A worker token cannot open the console; use a viewer or operator token.',
  missing: 'Paste an API token to log in.',
} as const;

export interface ConsoleOptions {
  /** The API tokens (BATON_API_TOKENS); the console accepts the same ones. */
  tokens: readonly ApiToken[];
  /** Where console sessions live; the API's `requireToken` must be given the same store. */
  sessions: SessionStore;
}

/**
 * The ops console: `/ops/login` (a form taking an API token, which opens a session cookie),
 * `/ops/logout`, `/ops/session` (who is logged in) and the page `/ops/queue`, which talks to the
 * HTTP API only. `/ops/queue` itself is a static page: what it shows comes from the API, which
 * checks the session, so a link opened from another site (where a SameSite=Strict cookie is not
 * sent with the navigation) still lands on the page, which then finds its session with fetch.
 */
export function consoleRoutes(options: ConsoleOptions): Hono<ApiEnv> {
  const { sessions } = options;
  const verify = tokenVerifier(options.tokens);
  const routes = new Hono<ApiEnv>();
  const assets = listAssets();

  routes.use('*', securityHeaders);

  routes.get('/', (c) => c.redirect('/ops/queue', 303));
  routes.get('/queue', async (c) => html(c, await readConsoleFile('queue.html')));
  routes.get('/login', async (c) => html(c, await loginPage()));

  routes.post(
    '/login',
    bodyLimit({
      maxSize: 16 * 1024,
      onError: () => {
        throw new HttpError(413, 'BODY_TOO_LARGE', 'the login form is larger than 16384 bytes');
      },
    }),
    async (c) => {
      checkSameOrigin(c);
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const token = typeof form.token === 'string' ? form.token.trim() : '';
      if (token === '') return html(c, await loginPage('missing'), 401);
      const caller = verify(token);
      if (!caller) return html(c, await loginPage('invalid'), 401);
      if (caller.role === 'worker') return html(c, await loginPage('worker'), 403);
      sessions.delete(getCookie(c, SESSION_COOKIE));
      const { id } = sessions.create(caller);
      setCookie(c, SESSION_COOKIE, id, {
        httpOnly: true,
        sameSite: 'Strict',
        path: '/',
        secure: requestProtocol(c) === 'https:',
        maxAge: Math.floor(sessions.ttlMs / 1000),
      });
      return c.redirect('/ops/queue', 303);
    },
  );

  // Sent by the page with fetch and the CSRF header, so another site cannot log an operator out.
  routes.post('/logout', (c) => {
    checkCsrf(c);
    sessions.delete(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: requestProtocol(c) === 'https:' });
    return c.json({ loggedOut: true });
  });

  routes.get('/session', (c) => {
    c.header('Cache-Control', 'no-store');
    const session = sessions.get(getCookie(c, SESSION_COOKIE));
    if (!session) throw new HttpError(401, 'UNAUTHORIZED', 'no console session; log in at /ops/login');
    return c.json({ actor: session.actor, role: session.role, expiresAt: session.expiresAt });
  });

  routes.get('/assets/:name', async (c) => {
    const name = c.req.param('name');
    const extension = name.slice(name.lastIndexOf('.'));
    if (!ASSET_NAME.test(name) || !(await assets).has(name)) {
      throw new HttpError(404, 'NOT_FOUND', 'no such console file');
    }
    const body = await readConsoleFile(`assets/${name}`);
    return c.body(body, 200, {
      'Content-Type': CONTENT_TYPES[extension]!,
      'Cache-Control': 'no-cache',
    });
  });

  return routes;
}

const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) c.res.headers.set(name, value);
};

/** The asset names found in console/assets when the app starts: the only files it will serve. */
async function listAssets(): Promise<Set<string>> {
  const names = await readdir(new URL('assets/', CONSOLE_DIRECTORY)).catch(() => [] as string[]);
  return new Set(names.filter((name) => ASSET_NAME.test(name)));
}

function readConsoleFile(relative: string): Promise<string> {
  return readFile(new URL(relative, CONSOLE_DIRECTORY), 'utf8');
}

async function loginPage(error?: keyof typeof LOGIN_ERRORS): Promise<string> {
  const page = await readConsoleFile('login.html');
  const message = error ? `<p class="login-error" role="alert">${escapeHtml(LOGIN_ERRORS[error])}</p>` : '';
  return page.replace('<!--login-error-->', message);
}

function html(c: Parameters<MiddlewareHandler>[0], body: string, status: ContentfulStatusCode = 200) {
  return c.body(body, status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (character) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character] ?? character,
  );
}
