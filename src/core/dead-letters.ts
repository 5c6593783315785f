import type { Database } from '../db/database.js';

/** Dead letters: list, side-effect-free preview, and audited batch retry (stub: being built). */
export class DeadLetters {
  constructor(readonly db: Database) {}
}
