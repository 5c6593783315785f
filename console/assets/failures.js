// Failures panel: failed jobs and dead letters, filtered by kind, group, trace id, error code and
// dead reason; each job opens in the detail panel and can be retried.
import { api } from './api.js';
import { deadLetterColumns, failureColumns, jobIdOf } from './columns.js';
import { el, formValues, replace } from './dom.js';
import { pagedList } from './paged-list.js';

const LABELS = {
  kind: 'kind',
  group: 'group',
  traceId: 'trace id',
  errorCode: 'error code',
  reason: 'dead reason',
};
const PAGE_SIZE = 50;
/** The first page of each list is reloaded this often while the panel is shown. */
const AUTO_REFRESH_MS = 5000;

export function initFailures({ openJob, isOperator }) {
  const form = document.getElementById('failure-filters');
  const summary = document.getElementById('failure-filter-summary');
  let filters = {};

  const retryColumn = (after) =>
    isOperator
      ? [
          {
            label: '',
            cell: (row) =>
              el('button', {
                type: 'button',
                class: 'small',
                text: 'Retry',
                on: { click: (event) => retryOne(event.currentTarget, jobIdOf(row), after) },
              }),
          },
        ]
      : [];

  const failed = pagedList(document.getElementById('failed-jobs'), {
    doing: 'Loading failed jobs (GET /api/jobs?state=failed)',
    empty: 'No failed jobs match.',
    columns: failureColumns(
      openJob,
      retryColumn(() => failed.refresh()),
    ),
    load: async (cursor) => {
      const { reason: _reason, ...jobFilters } = filters;
      const page = await api('/api/jobs', {
        query: { ...jobFilters, state: 'failed', limit: PAGE_SIZE, cursor },
      });
      return { rows: page?.jobs, nextCursor: page?.nextCursor };
    },
  });
  const dead = pagedList(document.getElementById('dead-letter-list'), {
    doing: 'Loading dead letters (GET /api/dead-letters)',
    empty: 'No dead letters match.',
    columns: deadLetterColumns(
      openJob,
      retryColumn(() => dead.refresh()),
    ),
    load: async (cursor) => {
      const page = await api('/api/dead-letters', { query: { ...filters, limit: PAGE_SIZE, cursor } });
      return { rows: page?.deadLetters ?? page?.items, nextCursor: page?.nextCursor };
    },
  });

  function apply() {
    filters = formValues(form);
    const parts = Object.entries(filters).map(([name, value]) => `${LABELS[name] ?? name} = ${value}`);
    summary.textContent = parts.length
      ? `Filtered by ${parts.join(', ')}`
      : 'No filters: the newest failures of every kind.';
    if (filters.reason) summary.textContent += ' (dead reason applies to dead letters only)';
    failed.reload();
    dead.reload();
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.addEventListener('reset', () => setTimeout(apply));

  let loaded = false;
  return {
    shown() {
      if (!loaded) apply();
      loaded = true;
    },
    tick() {
      if (failed.staleFirstPage(AUTO_REFRESH_MS)) failed.refresh();
      if (dead.staleFirstPage(AUTO_REFRESH_MS)) dead.refresh();
    },
  };
}

async function retryOne(button, jobId, after) {
  button.disabled = true;
  const cell = button.parentElement;
  try {
    await api(`/api/jobs/${encodeURIComponent(jobId)}/retry`, { method: 'POST' });
    replace(cell, el('span', { class: 'badge state-running', text: 'retried' }));
    setTimeout(after, 1500);
  } catch (error) {
    button.disabled = false;
    replace(cell, button, el('span', { class: 'message-error', text: ` ${error.code}: ${error.message}` }));
  }
}
