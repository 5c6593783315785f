import { randomFillSync } from 'node:crypto';

/** Random bytes, refilled 512 ids at a time (8 per id). */
const pool = Buffer.alloc(8 * 512);
let offset = pool.length;
let lastMs = 0;
/** lastMs as the id's first 12 hex digits, with the dash after the 8th. */
let lastMsHex = '';
let sequence = 0;
const DIGITS = '0123456789abcdef';
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

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
  const ms = Date.now();
  if (ms <= lastMs) {
    sequence++;
    if (sequence > 0xfff) {
      setTime(lastMs + 1); // more than 4,096 ids in one ms: borrow the next millisecond
      sequence = 0;
    }
  } else {
    setTime(ms);
    sequence = 0;
  }
  // Written digit by digit from a table: Buffer slices, writeUIntBE and toString('hex') made this
  // ~2.9 µs per id, the largest part of building a job row (W2 builds 1,000 per call).
  const o = offset;
  offset += 8;
  return (
    lastMsHex +
    '-7' +
    DIGITS[sequence >> 8]! +
    DIGITS[(sequence >> 4) & 0xf]! +
    DIGITS[sequence & 0xf]! +
    '-' +
    HEX[0x80 | (pool[o]! & 0x3f)]! +
    HEX[pool[o + 1]!]! +
    '-' +
    HEX[pool[o + 2]!]! +
    HEX[pool[o + 3]!]! +
    HEX[pool[o + 4]!]! +
    HEX[pool[o + 5]!]! +
    HEX[pool[o + 6]!]! +
    HEX[pool[o + 7]!]!
  );
}

function setTime(ms: number): void {
  lastMs = ms;
  const hex = ms.toString(16).padStart(12, '0');
  lastMsHex = `${hex.slice(0, 8)}-${hex.slice(8, 12)}`;
}
