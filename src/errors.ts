/** Codes a handler (or Baton) gives a failed attempt. All but EXECUTION_FAILED are terminal. */
export const TERMINAL_ERROR_CODES = [
  'PAYLOAD_MISSING',
  'PAYLOAD_INVALID',
  'PAYLOAD_UNSUPPORTED',
  'PRECONDITION_FAILED',
  'ENTITY_NOT_FOUND',
] as const;
export type TerminalErrorCode = (typeof TERMINAL_ERROR_CODES)[number];
export type JobErrorCode = TerminalErrorCode | 'EXECUTION_FAILED';

export function isTerminalCode(code: string): code is TerminalErrorCode {
  return (TERMINAL_ERROR_CODES as readonly string[]).includes(code);
}

/**
 * Throw from a handler to fail the attempt with a code. Terminal codes dead-letter the job at once
 * (`non_retryable`); `EXECUTION_FAILED`, like any other thrown error, is retried with backoff.
 *
 * @example throw new JobError('ENTITY_NOT_FOUND', `book ${payload.bookId} does not exist`);
 */
export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(
    readonly code: JobErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes of errors Baton's API throws at its callers. */
export type BatonErrorCode =
  | 'PAYLOAD_INVALID'
  | 'PAYLOAD_TOO_LARGE'
  | 'OPTIONS_INVALID'
  | 'CONFIG_INVALID'
  | 'KIND_UNKNOWN'
  | 'JOB_NOT_FOUND'
  | 'JOB_STATE_CONFLICT'
  /** A heartbeat or outcome came with a lease token the job no longer runs under: nothing was written (G3). */
  | 'LEASE_LOST'
  /** A heartbeat or outcome for a job that was cancelled (its lease was revoked): nothing was written. */
  | 'JOB_CANCELLED'
  | 'SCHEMA_OUTDATED';

/** An error Baton's API throws at its caller: bad input, bad configuration, or a request that conflicts with a job's state. */
export class BatonError extends Error {
  override readonly name = 'BatonError';
  constructor(
    readonly code: BatonErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Raised inside a handler's transactional completion when the job's lease moved on: nothing was written. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor(readonly jobId: string) {
    super(`lease of job ${jobId} was lost; its outcome was not written`);
  }
}
