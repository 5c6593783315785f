import type { Database } from '../db/database.js';

/** Leases for workers outside this process (HTTP): claim, heartbeat, report (stub: being built). */
export class Leases {
  constructor(readonly db: Database) {}
}
