// Batch retry of dead letters: a side-effect-free preview with paging and per-page selection, then
// "retry selected" or "retry all matching", each a dry run first and a confirmation naming how many
// jobs will change, then the result with its batch id.
import { api } from './api.js';
import { deadLetterColumns, jobIdOf } from './columns.js';
import { confirmDialog, el, errorMessage, formValues, message, replace, table } from './dom.js';

/** The most jobs one batch retry changes (the API's limit). */
const MAX_BATCH = 500;

const count = (value) => (Array.isArray(value) ? value.length : Number(value ?? 0));

export function initBatchRetry({ openJob }) {
  const form = document.getElementById('batch-filters');
  const summary = document.getElementById('batch-summary');
  const preview = document.getElementById('batch-preview');
  const pager = document.getElementById('batch-pager');
  const result = document.getElementById('batch-result');
  const retrySelected = document.getElementById('retry-selected');
  const retryMatching = document.getElementById('retry-matching');
  let filters = {};
  let limit = 20;
  let cursors = [null];
  let rows = [];
  let matching = 0;
  const selected = new Set();

  function updateButtons() {
    retrySelected.textContent = `Retry selected (${selected.size})`;
    retrySelected.disabled = selected.size === 0;
    retryMatching.textContent = `Retry all matching (${matching})`;
    retryMatching.disabled = matching === 0;
  }

  async function load() {
    const { limit: pageSize, ...rest } = formValues(form);
    filters = rest;
    limit = Number(pageSize ?? 20);
    cursors = [null];
    selected.clear();
    replace(result);
    await showPage();
  }

  async function showPage() {
    replace(preview, message('info', 'Loading…'));
    let page;
    try {
      page = await api('/api/dead-letters/preview', {
        query: { ...filters, limit, cursor: cursors[cursors.length - 1] },
      });
    } catch (error) {
      matching = 0;
      updateButtons();
      replace(summary);
      replace(pager);
      replace(preview, errorMessage(error, 'Preview (GET /api/dead-letters/preview)'));
      return;
    }
    rows = page?.items ?? page?.deadLetters ?? [];
    matching = Number(page?.retryable ?? page?.total ?? rows.length);
    const total = page?.total ?? '?';
    replace(
      summary,
      message(
        'info',
        `${total} dead letters match; ${page?.retryable ?? '?'} can be retried (their job is failed or cancelled).` +
          (matching > MAX_BATCH ? ` One batch retries at most ${MAX_BATCH}; run it again for the rest.` : ''),
      ),
    );
    renderRows();
    replace(
      pager,
      el('span', { class: 'muted', text: `Page ${cursors.length}` }),
      cursors.length > 1
        ? el('button', {
            type: 'button',
            class: 'secondary small',
            text: 'Previous page',
            on: { click: previous },
          })
        : null,
      page?.nextCursor
        ? el('button', {
            type: 'button',
            class: 'secondary small',
            text: 'Next page',
            on: { click: () => next(page.nextCursor) },
          })
        : null,
    );
    updateButtons();
  }

  function renderRows() {
    if (rows.length === 0) {
      replace(preview, message('info', 'No dead letters match these filters.'));
      return;
    }
    const selectable = rows.filter(isRetryable);
    const all = el('input', {
      type: 'checkbox',
      class: 'select-page',
      title: 'Select every retryable job on this page',
      'aria-label': 'Select all on this page',
      checked: selectable.length > 0 && selectable.every((row) => selected.has(jobIdOf(row))),
      on: {
        change: (event) => {
          for (const row of selectable) {
            if (event.currentTarget.checked) selected.add(jobIdOf(row));
            else selected.delete(jobIdOf(row));
          }
          renderRows();
          updateButtons();
        },
      },
    });
    const pick = {
      label: all,
      cell: (row) =>
        el('input', {
          type: 'checkbox',
          class: 'select-job',
          'aria-label': `Select job ${jobIdOf(row)}`,
          disabled: !isRetryable(row),
          checked: selected.has(jobIdOf(row)),
          on: {
            change: (event) => {
              if (event.currentTarget.checked) selected.add(jobIdOf(row));
              else selected.delete(jobIdOf(row));
              all.checked = selectable.every((item) => selected.has(jobIdOf(item)));
              updateButtons();
            },
          },
        }),
    };
    replace(preview, table([pick, ...deadLetterColumns(openJob)], rows, { class: 'grid preview' }));
  }

  function next(cursor) {
    cursors.push(cursor);
    showPage();
  }
  function previous() {
    if (cursors.length > 1) cursors.pop();
    showPage();
  }

  async function retry(target, description) {
    replace(result, message('info', 'Dry run…'));
    let dry;
    try {
      dry = await api('/api/dead-letters/retry', { method: 'POST', body: { ...target, dryRun: true } });
    } catch (error) {
      replace(result, errorMessage(error, 'Dry run (POST /api/dead-letters/retry)'));
      return;
    }
    const willChange = count(dry?.retried);
    const skipped = Array.isArray(dry?.skipped) ? dry.skipped : [];
    replace(
      result,
      message(
        'info',
        `Dry run: ${willChange} jobs would be retried, ${skipped.length} skipped. Nothing has changed yet.`,
      ),
    );
    if (willChange === 0) return;
    const sure = await confirmDialog(
      `Retry ${willChange} jobs?`,
      `${willChange} dead-lettered jobs (${description}) will go back to pending and run again${skipped.length ? `; ${skipped.length} will be skipped` : ''}. This is recorded in the audit log.`,
      `Retry ${willChange} jobs`,
    );
    if (!sure) {
      replace(result, message('info', 'Not retried: nothing changed.'));
      return;
    }
    try {
      const done = await api('/api/dead-letters/retry', {
        method: 'POST',
        body: { ...target, dryRun: false },
      });
      showResult(done);
    } catch (error) {
      replace(result, errorMessage(error, 'Batch retry (POST /api/dead-letters/retry)'));
      return;
    }
    selected.clear();
    await showPage();
  }

  function showResult(done) {
    const skipped = Array.isArray(done?.skipped) ? done.skipped : [];
    replace(
      result,
      message(
        'ok',
        `Batch ${done?.batchId ?? '(no id)'}: ${count(done?.retried)} jobs retried, ${skipped.length} skipped.`,
      ),
      el(
        'p',
        {},
        el('a', {
          href: '#audit',
          class: 'batch-audit-link',
          text: 'See this batch in the audit log',
          dataset: { batchId: done?.batchId ?? '' },
        }),
      ),
      skipped.length
        ? table(
            [
              { label: 'Skipped job', cell: (row) => String(row.jobId ?? row.id ?? row) },
              { label: 'Why', cell: (row) => String(row.reason ?? '') },
            ],
            skipped,
          )
        : null,
    );
    result.querySelector('.batch-audit-link').addEventListener('click', (event) => {
      const audit = document.getElementById('audit-filters');
      for (const input of audit.querySelectorAll('input')) input.value = '';
      audit.elements.batchId.value = event.currentTarget.dataset.batchId;
      audit.requestSubmit();
    });
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  retrySelected.addEventListener('click', () =>
    retry({ jobIds: [...selected], limit: Math.min(selected.size, MAX_BATCH) }, 'the selected ones'),
  );
  retryMatching.addEventListener('click', () =>
    retry(
      { filters, limit: MAX_BATCH },
      Object.keys(filters).length ? 'every one matching the filters' : 'every dead letter',
    ),
  );
  updateButtons();

  let loaded = false;
  return {
    shown() {
      if (!loaded) load();
      loaded = true;
    },
  };
}

function isRetryable(row) {
  if (typeof row.retryable === 'boolean') return row.retryable;
  const state = row.jobState ?? row.state;
  return state === undefined || state === 'failed' || state === 'cancelled';
}
