// The overview: counts per kind and state, the per-minute chart, recent failures and dead letters.
import { renderChart } from './chart.js';
import { deadLetterColumns, failureColumns } from './columns.js';
import { el, errorMessage, message, replace, table } from './dom.js';

const STATES = [
  ['pending', 'Pending'],
  ['due', 'Due now'],
  ['running', 'Running'],
  ['completed', 'Completed'],
  ['failed', 'Failed'],
  ['cancelled', 'Cancelled'],
  ['deadLettered', 'Dead-lettered'],
];

export function renderOverview(snapshot, { openJob }) {
  const kinds = Array.isArray(snapshot?.kinds) ? snapshot.kinds : [];
  const withoutWorker = new Set(
    Array.isArray(snapshot?.kindsWithoutWorker)
      ? snapshot.kindsWithoutWorker
      : kinds.filter((row) => row.pending > 0 && row.liveWorkers === 0).map((row) => row.kind),
  );
  renderBanner(withoutWorker);
  renderCounts(document.getElementById('counts'), kinds, withoutWorker);
  renderChart(document.getElementById('chart'), snapshot?.perMinute, snapshot?.generatedAt);
  renderList(
    document.getElementById('recent-failures'),
    snapshot?.recentFailures,
    failureColumns(openJob),
    'No failed jobs.',
  );
  renderList(
    document.getElementById('recent-dead-letters'),
    snapshot?.recentDeadLetters,
    deadLetterColumns(openJob),
    'No dead letters.',
  );
}

export function renderOverviewError(error) {
  replace(document.getElementById('counts'), errorMessage(error, 'Loading the ops snapshot (GET /api/ops)'));
}

function renderBanner(withoutWorker) {
  const banner = document.getElementById('banner');
  banner.hidden = withoutWorker.size === 0;
  replace(
    banner,
    withoutWorker.size === 0
      ? ''
      : `⚠ Pending jobs with no live worker: ${[...withoutWorker].join(', ')}. Nothing will run them until a worker for these kinds starts.`,
  );
}

function renderCounts(container, kinds, withoutWorker) {
  if (kinds.length === 0) {
    replace(container, message('info', 'No jobs yet.'));
    return;
  }
  const countCell = (key) => (row) => {
    const value = Number(row[key] ?? 0);
    const className =
      value === 0
        ? 'count-zero'
        : key === 'failed'
          ? 'count-failed'
          : key === 'deadLettered'
            ? 'count-dead'
            : '';
    return el('span', { class: className, text: String(value), dataset: { count: key } });
  };
  const columns = [
    {
      label: 'Kind',
      cell: (row) =>
        el(
          'span',
          {},
          el('span', { class: 'mono', text: row.kind }),
          withoutWorker.has(row.kind)
            ? [' ', el('span', { class: 'badge warn', text: 'NO LIVE WORKER' })]
            : null,
        ),
    },
    ...STATES.map(([key, label]) => ({ label, class: 'number', cell: countCell(key) })),
    { label: 'Live workers', class: 'number', cell: countCell('liveWorkers') },
  ];
  replace(
    container,
    table(columns, kinds, {
      class: 'grid counts',
      rowClass: (row) => (withoutWorker.has(row.kind) ? 'no-worker' : ''),
    }),
  );
  for (const [index, row] of kinds.entries()) {
    container.querySelectorAll('tbody tr')[index].dataset.kind = row.kind;
  }
}

function renderList(container, rows, columns, empty) {
  if (!Array.isArray(rows)) {
    replace(container, message('warn', 'Not in this server’s snapshot.'));
    return;
  }
  replace(container, rows.length === 0 ? message('info', empty) : table(columns, rows));
}
