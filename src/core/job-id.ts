import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(16 * 256);
let offset = pool.length;
let lastMs = 0;
let sequence = 0;

/**
 * A new job id: a UUIDv7 (RFC 9562), whose first 48 bits are the Unix time in milliseconds and
 * the rest random, with a 12-bit counter in `rand_a` so ids made in one millisecond by one process
 * still ascend. Jobs made close together get ids close together, so the primary key's new entries
 * (one per insert, and one per claim and per completion, which are not HOT updates) land on a few
 * hot index pages instead of random ones. Ids are only ever compared for equality and used as a
 * tie-breaker; no decision reads time from them (G6 keeps every decision on database time).
 */
export function newJobId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + 16);
  offset += 16;
  let ms = Date.now();
  if (ms <= lastMs) {
    sequence++;
    if (sequence > 0xfff) {
      lastMs++; // more than 4,096 ids in one ms: borrow the next millisecond
      sequence = 0;
    }
    ms = lastMs;
  } else {
    lastMs = ms;
    sequence = 0;
  }
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
