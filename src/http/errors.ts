import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BatonError, type BatonErrorCode } from '../errors.js';
import type { Logger } from './logger.js';

/** Codes the HTTP API answers with besides BatonError's own. */
export type HttpErrorCode =
  | BatonErrorCode
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'CSRF_REJECTED'
  | 'NOT_FOUND'
  | 'BODY_TOO_LARGE'
  | 'NOT_READY'
  | 'INTERNAL';

/** The one error type of the HTTP layer; `errorRenderer` turns it (and anything else thrown) into a response. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: HttpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const STATUS_OF_BATON_CODE: Record<BatonErrorCode, ContentfulStatusCode> = {
  PAYLOAD_INVALID: 400,
  PAYLOAD_TOO_LARGE: 400,
  OPTIONS_INVALID: 400,
  KIND_UNKNOWN: 400,
  JOB_NOT_FOUND: 404,
  JOB_STATE_CONFLICT: 409,
  LEASE_LOST: 409,
  JOB_CANCELLED: 409,
  // Neither comes from a request's input: the server is misconfigured or not migrated.
  CONFIG_INVALID: 500,
  SCHEMA_OUTDATED: 503,
};

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Renders any error as `{ error: { code, message } }`; the one place an error becomes a response. */
export function errorRenderer(logger: Logger): (error: unknown, c: Context) => Response {
  return (error, c) => {
    const known =
      error instanceof HttpError
        ? error
        : error instanceof BatonError
          ? new HttpError(STATUS_OF_BATON_CODE[error.code], error.code, error.message, { cause: error })
          : null;
    if (known)
      return c.json<ErrorBody>({ error: { code: known.code, message: known.message } }, known.status);
    // Unexpected errors are logged, but their text stays out of the response.
    logger.error({ event: 'http.request_failed', method: c.req.method, path: c.req.path, err: error });
    return c.json<ErrorBody>({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
  };
}
