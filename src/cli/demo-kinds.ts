import { z } from 'zod';
import { defineKind } from '../core/kinds.js';
import { JobError } from '../errors.js';

/** The kinds `baton dev` runs when no `--jobs` module is given: one that succeeds, one that retries, one that dead-letters. */
export const greet = defineKind({
  kind: 'demo.greet',
  payload: z.object({ name: z.string().min(1) }),
  handler: async ({ name }) => {
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    return { greeting: `hello, ${name}` };
  },
});

export const flaky = defineKind({
  kind: 'demo.flaky',
  payload: z.object({ failures: z.number().int().min(0) }),
  maxAttempts: 3,
  backoff: { baseMs: 200, maxMs: 1000 },
  handler: async ({ failures }, { job }) => {
    if (job.attempts <= failures) throw new Error(`transient failure ${job.attempts} of ${failures}`);
    return { succeededOnAttempt: job.attempts };
  },
});

export const lookup = defineKind({
  kind: 'demo.lookup',
  payload: z.object({ id: z.number().int() }),
  handler: async ({ id }) => {
    throw new JobError('ENTITY_NOT_FOUND', `record ${id} does not exist`);
  },
});

export const demoKinds = [greet, flaky, lookup];
