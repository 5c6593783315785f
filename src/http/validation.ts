import { z } from 'zod';
import { HttpError } from './errors.js';

/** A timestamp with an explicit offset, e.g. 2026-01-31T12:00:00Z. */
export const timestamp = z.iso.datetime({ offset: true }).transform((text) => new Date(text));

/** A page size in a query string: 1 to `max`. */
export const pageLimit = (max: number) => z.coerce.number().int().min(1).max(max);

/**
 * Checks `value` against `schema`; the first problem becomes a 400 `BAD_REQUEST` that names where
 * it is (`body jobs.0.payload: ...`). Routes validate with the same schemas the OpenAPI document
 * is generated from (see openapi.ts), so the two cannot drift.
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const checked = schema.safeParse(value);
  if (checked.success) return checked.data;
  const issue = checked.error.issues[0]!;
  const path = issue.path.join('.');
  throw new HttpError(400, 'BAD_REQUEST', `${where}${path ? ` ${path}` : ''}: ${issue.message}`);
}

/** The request body as JSON, or a 400 when it is not JSON. */
export async function readJson(request: { json(): Promise<unknown> }): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'the request body is not valid JSON');
  }
}
