/** One markdown table row per scenario: the checker's figures, the scenario's own checks, the verdict. */
import type { Figures } from './checker.js';
import type { Run, Scenario } from './harness.js';

export const TABLE_HEADER = [
  '| scenario | jobs | faults | lost | unexpected | overlapping | dup. completions | over max | stuck | longest recovery | late results rejected | checks | time | result |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|',
].join('\n');

const seconds = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);

export function formatRow(
  scenario: Scenario,
  figures: Figures | null,
  run: Run,
  ok: boolean,
  tookSeconds: number,
): string {
  const checks = [
    ...run.checks.map(
      (line) => `${line.ok ? '✓' : '✗ FAILED:'} ${line.what}${line.detail ? ` (${line.detail})` : ''}`,
    ),
    ...run.notes,
  ]
    .join('; ')
    .replaceAll('|', '/');
  const verdict = scenario.control ? (ok ? 'caught (control)' : 'NOT CAUGHT') : ok ? 'pass' : 'FAIL';
  const cells = figures
    ? [
        figures.jobs,
        figures.faults,
        figures.lost,
        figures.unexpected,
        figures.overlapping,
        figures.duplicateCompletions,
        figures.overMax,
        figures.stuck,
        seconds(figures.longestRecoveryMs),
        figures.rejected,
      ]
    : Array.from({ length: 10 }, () => '–');
  return `| ${scenario.name} | ${cells.join(' | ')} | ${checks || '–'} | ${tookSeconds} s | ${verdict} |`;
}
