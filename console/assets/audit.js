// The audit log: filters by action, actor and batch, paging, JSON and CSV export, and prune
// (a dry run, then a confirmation).
import { api, queryString } from './api.js';
import {
  confirmDialog,
  el,
  errorMessage,
  formValues,
  jobLink,
  message,
  orDash,
  replace,
  time,
} from './dom.js';
import { pagedList } from './paged-list.js';

const PAGE_SIZE = 50;
const AUTO_REFRESH_MS = 5000;

const count = (value) => (Array.isArray(value) ? value.length : Number(value ?? 0));

export function initAudit({ openJob }) {
  const form = document.getElementById('audit-filters');
  const exportJson = document.getElementById('audit-export-json');
  const exportCsv = document.getElementById('audit-export-csv');
  let filters = {};

  const list = pagedList(document.getElementById('audit-list'), {
    doing: 'Loading the audit log (GET /api/audit-logs)',
    empty: 'No audit entries match.',
    columns: [
      { label: 'When', cell: (row) => time(row.createdAt) },
      { label: 'Action', cell: (row) => el('span', { class: 'mono', text: orDash(row.action) }) },
      { label: 'Actor', cell: (row) => orDash(row.actor) },
      { label: 'Job', cell: (row) => (row.jobId ? jobLink(row.jobId, openJob) : '—') },
      { label: 'Batch', cell: (row) => el('span', { class: 'mono', text: orDash(row.batchId) }) },
      { label: 'Kind', cell: (row) => orDash(row.kind) },
      { label: 'Group', cell: (row) => orDash(row.group) },
      { label: 'Trace id', cell: (row) => orDash(row.traceId) },
      {
        label: 'Details',
        class: 'error-text',
        cell: (row) =>
          el('span', { class: 'mono', text: row.details == null ? '—' : JSON.stringify(row.details) }),
      },
    ],
    load: async (cursor) => {
      const page = await api('/api/audit-logs', { query: { ...filters, limit: PAGE_SIZE, cursor } });
      rememberActions(page?.entries);
      return { rows: page?.entries, nextCursor: page?.nextCursor };
    },
  });

  function apply() {
    filters = formValues(form);
    // Cookies authenticate GETs, so the export is a plain link; the filters go in its query string.
    exportJson.href = `/api/audit-logs/export${queryString({ ...filters, format: 'json' })}`;
    exportCsv.href = `/api/audit-logs/export${queryString({ ...filters, format: 'csv' })}`;
    list.reload();
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
    if (window.location.hash !== '#audit') window.location.hash = '#audit';
  });
  form.addEventListener('reset', () => setTimeout(apply));
  initPrune();

  let loaded = false;
  return {
    shown() {
      if (!loaded) apply();
      loaded = true;
    },
    tick() {
      if (list.staleFirstPage(AUTO_REFRESH_MS)) list.refresh();
    },
  };
}

/** Offers the actions seen so far as suggestions in the action filter. */
function rememberActions(entries) {
  const list = document.getElementById('audit-actions');
  const known = new Set([...list.options].map((option) => option.value));
  for (const entry of Array.isArray(entries) ? entries : []) {
    if (typeof entry.action !== 'string' || known.has(entry.action)) continue;
    known.add(entry.action);
    list.append(el('option', { value: entry.action }));
  }
}

function initPrune() {
  const form = document.getElementById('audit-prune');
  const result = document.getElementById('audit-prune-result');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const olderThanDays = Number(form.elements.olderThanDays.value);
    if (!Number.isInteger(olderThanDays) || olderThanDays < 0) {
      replace(result, message('error', 'Older than: a whole number of days, 0 or more.'));
      return;
    }
    replace(result, message('info', 'Dry run…'));
    let dry;
    try {
      dry = await api('/api/audit-logs/prune', { method: 'POST', body: { olderThanDays, dryRun: true } });
    } catch (error) {
      replace(result, errorMessage(error, 'Prune dry run (POST /api/audit-logs/prune)'));
      return;
    }
    const matched = count(dry?.matched ?? dry?.deleted ?? dry?.pruned ?? dry?.count);
    replace(
      result,
      message(
        'info',
        `Dry run: ${matched} audit entries are older than ${olderThanDays} days. Nothing has been deleted.`,
      ),
    );
    if (matched === 0) return;
    const sure = await confirmDialog(
      `Delete ${matched} audit entries?`,
      `Every audit entry older than ${olderThanDays} days (${matched} now) will be deleted for good. Export them first if they may be needed.`,
      `Delete ${matched} entries`,
    );
    if (!sure) {
      replace(result, message('info', 'Not pruned: nothing changed.'));
      return;
    }
    try {
      const done = await api('/api/audit-logs/prune', {
        method: 'POST',
        body: { olderThanDays, dryRun: false },
      });
      replace(
        result,
        message(
          'ok',
          `Pruned ${count(done?.deleted ?? done?.pruned ?? done?.matched ?? done?.count)} audit entries.`,
        ),
      );
    } catch (error) {
      replace(result, errorMessage(error, 'Prune (POST /api/audit-logs/prune)'));
    }
  });
}
