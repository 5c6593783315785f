// The console's only door to Baton: fetch on the HTTP API, authenticated by the session cookie.
// Every request carries the CSRF header the server requires of cookie-authenticated actions.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** `?a=1&b=2` from an object, leaving out empty values; '' when nothing is left. */
export function queryString(params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Calls the API and returns its JSON. Throws ApiError with the API's error code and message; a 401
 * (session over) sends the browser to the login page.
 */
export async function api(path, { method = 'GET', query, body } = {}) {
  const headers = { accept: 'application/json', 'x-baton-csrf': '1' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(`${path}${queryString(query)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `the server did not answer (${error.message})`);
  }
  const text = await response.text();
  let json = null;
  if (text && (response.headers.get('content-type') ?? '').includes('application/json')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401) goToLogin();
    const code = json?.error?.code ?? `HTTP_${response.status}`;
    const message =
      json?.error?.message ??
      (response.status === 404 ? `${path} is not available on this server` : response.statusText);
    throw new ApiError(response.status, code, message);
  }
  return json;
}

let leaving = false;

/** Off to the login page (once), e.g. when the session has expired. */
export function goToLogin() {
  if (leaving) return;
  leaving = true;
  window.location.assign('/ops/login');
}
