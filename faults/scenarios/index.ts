/** Every scenario, in the order the suite runs them. Controls come last. */
import type { Scenario } from '../lib/harness.js';
import { baseline } from './baseline.js';

export const scenarios: Scenario[] = [baseline];
