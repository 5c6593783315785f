/** Every scenario, in the order the suite runs them. Controls come last. */
import type { Scenario } from '../lib/harness.js';
import { baseline } from './baseline.js';
import { clockSkew } from './clock-skew.js';
import { connectionLeak } from './connection-leak.js';
import { controlAsyncCommit, controlUnfenced } from './controls.js';
import { immediateStop } from './immediate-stop.js';
import { listenCut } from './listen-cut.js';
import { partition } from './partition.js';
import { pgRestart } from './pg-restart.js';
import { poisonPill } from './poison-pill.js';
import { rollbackHalf } from './rollback-half.js';
import { sigkill } from './sigkill.js';
import { sigstop } from './sigstop.js';
import { soak } from './soak.js';
import { stuckHandlers } from './stuck-handlers.js';
import { thunderingStart } from './thundering-start.js';

export const scenarios: Scenario[] = [
  baseline,
  sigkill,
  sigstop,
  pgRestart,
  listenCut,
  partition,
  clockSkew,
  immediateStop,
  rollbackHalf,
  poisonPill,
  stuckHandlers,
  connectionLeak,
  thunderingStart,
  soak,
  controlUnfenced,
  controlAsyncCommit,
];
