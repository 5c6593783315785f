import type { Database } from '../db/database.js';

/** The audit log: list, export, prune (stub: being built). */
export class AuditLog {
  constructor(readonly db: Database) {}
}
