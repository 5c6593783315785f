import type { SystemAdapter } from './types.js';

export const SYSTEM_IDS = ['baton', 'pgboss', 'graphile', 'bullmq'] as const;

/** Imported lazily so a child only loads the library it measures. */
export async function loadSystem(id: string): Promise<SystemAdapter> {
  switch (id) {
    case 'baton':
      return (await import('./baton.js')).baton;
    case 'pgboss':
      return (await import('./pgboss.js')).pgboss;
    case 'graphile':
      return (await import('./graphile.js')).graphile;
    case 'bullmq':
      return (await import('./bullmq.js')).bullmq;
    default:
      throw new Error(`unknown system ${id}; expected one of ${SYSTEM_IDS.join(', ')}`);
  }
}
