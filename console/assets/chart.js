// Completions and failures per minute over the last hour, as inline SVG built element by element.
import { el, message, replace, svg } from './dom.js';

const MINUTES = 60;
const WIDTH = 600;
const HEIGHT = 160;
const LEFT = 34;
const BOTTOM = 18;
const TOP = 8;

/**
 * `perMinute`: [{ minute (ISO), completed, failed }]; missing minutes count as zero. `generatedAt`
 * (the database's clock) places "now", so a browser whose clock is off still draws the right hour.
 */
export function renderChart(container, perMinute, generatedAt) {
  if (!Array.isArray(perMinute)) {
    replace(container, message('warn', 'Per-minute figures are not in this server’s snapshot.'));
    return;
  }
  const clock = new Date(generatedAt ?? Date.now()).getTime();
  const now = Math.floor((Number.isNaN(clock) ? Date.now() : clock) / 60_000) * 60_000;
  const start = now - (MINUTES - 1) * 60_000;
  const buckets = Array.from({ length: MINUTES }, (_, index) => ({
    at: start + index * 60_000,
    completed: 0,
    failed: 0,
  }));
  for (const entry of perMinute) {
    const at = Math.floor(new Date(entry.minute).getTime() / 60_000) * 60_000;
    const index = Math.round((at - start) / 60_000);
    if (index < 0 || index >= MINUTES) continue;
    buckets[index].completed += Number(entry.completed ?? 0);
    buckets[index].failed += Number(entry.failed ?? 0);
  }
  const highest = Math.max(1, ...buckets.map((bucket) => bucket.completed + bucket.failed));
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = (WIDTH - LEFT) / MINUTES;
  const scale = (value) => (value / highest) * plotHeight;
  const bars = [];
  for (const [index, bucket] of buckets.entries()) {
    if (bucket.completed + bucket.failed === 0) continue;
    const x = LEFT + index * slot + 1;
    const width = Math.max(1, slot - 2);
    const completedHeight = scale(bucket.completed);
    const failedHeight = scale(bucket.failed);
    const label = `${new Date(bucket.at).toTimeString().slice(0, 5)}: ${bucket.completed} completed, ${bucket.failed} failed`;
    bars.push(
      svg(
        'g',
        { class: 'minute' },
        svg('title', {}, label),
        svg('rect', {
          class: 'bar-completed',
          x,
          y: TOP + plotHeight - completedHeight,
          width,
          height: completedHeight,
        }),
        svg('rect', {
          class: 'bar-failed',
          x,
          y: TOP + plotHeight - completedHeight - failedHeight,
          width,
          height: failedHeight,
        }),
      ),
    );
  }
  const totals = buckets.reduce(
    (sum, bucket) => ({ completed: sum.completed + bucket.completed, failed: sum.failed + bucket.failed }),
    { completed: 0, failed: 0 },
  );
  const chart = svg(
    'svg',
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-label': 'Completions and failures per minute, last hour',
    },
    svg('line', { class: 'axis', x1: LEFT, y1: TOP + plotHeight, x2: WIDTH, y2: TOP + plotHeight }),
    svg('line', { class: 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotHeight }),
    svg('text', { x: 2, y: TOP + 8 }, String(highest)),
    svg('text', { x: 2, y: TOP + plotHeight }, '0'),
    svg('text', { x: LEFT, y: HEIGHT - 4 }, '60 min ago'),
    svg('text', { x: WIDTH - 24, y: HEIGHT - 4 }, 'now'),
    bars,
  );
  replace(
    container,
    chart,
    el(
      'p',
      { class: 'muted' },
      el('span', { class: 'legend-completed', text: `■ ${totals.completed} completed` }),
      ' · ',
      el('span', { class: 'legend-failed', text: `■ ${totals.failed} failed` }),
      ' in the last hour',
    ),
  );
}
