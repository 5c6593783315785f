import { BatonError } from '../errors.js';

/**
 * Keyset cursors of the newest-first lists (jobs, dead letters, audit entries): opaque to callers,
 * base64url of the last row's exact created_at text (a JS Date drops the microseconds the keyset
 * needs) and its id.
 */
export function encodeKeysetCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

/**
 * Decodes a cursor `encodeKeysetCursor` made; anything else is `OPTIONS_INVALID` naming `where`
 * (e.g. `listJobs`). `isId` checks the id's form (a uuid, a bigint).
 */
export function decodeKeysetCursor(
  cursor: string,
  isId: (id: string) => boolean,
  where: string,
): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof createdAt === 'string' &&
      !Number.isNaN(Date.parse(createdAt)) &&
      typeof id === 'string' &&
      isId(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // Falls through to the error below.
  }
  throw new BatonError(
    'OPTIONS_INVALID',
    `${where}: cursor ${JSON.stringify(cursor)} is not one Baton returned`,
  );
}
