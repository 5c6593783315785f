// The job detail panel: fields, payload, result, progress, attempts with their errors and stacks,
// the dead letter, and the operator's retry and cancel.
import { api } from './api.js';
import { confirmDialog, el, errorMessage, jsonBlock, message, orDash, replace, table, time } from './dom.js';

export function initDetail({ isOperator, onChange }) {
  const panel = document.getElementById('job-detail');
  const title = panel.querySelector('.detail-title');
  const body = panel.querySelector('.detail-body');
  let current = null;
  const close = () => {
    panel.hidden = true;
    current = null;
  };
  document.getElementById('job-detail-close').addEventListener('click', close);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !document.querySelector('dialog[open]')) close();
  });

  async function open(jobId, notice) {
    current = jobId;
    panel.hidden = false;
    title.textContent = `Job ${jobId}`;
    replace(body, notice ?? '', message('info', 'Loading…'));
    let job;
    try {
      job = (await api(`/api/jobs/${encodeURIComponent(jobId)}`))?.job;
    } catch (error) {
      if (current === jobId) replace(body, notice ?? '', errorMessage(error, `Loading job ${jobId}`));
      return;
    }
    if (current !== jobId || !job) return;
    replace(body, notice ?? '', actions(job), fields(job), section('Payload', jsonBlock(job.payload)));
    body.append(
      section('Result', jsonBlock(job.result)),
      section('Progress', jsonBlock(job.progress)),
      section('Attempts', attempts(job.attemptHistory)),
    );
    if (job.deadLetter) body.append(section('Dead letter', deadLetter(job.deadLetter)));
  }

  function actions(job) {
    const bar = el(
      'div',
      { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', text: 'Reload', on: { click: () => open(job.id) } }),
    );
    if (!isOperator) return bar;
    if (job.state === 'failed' || job.state === 'cancelled') {
      bar.append(
        el('button', { type: 'button', text: 'Retry this job', on: { click: () => act(job, 'retry') } }),
      );
    }
    if (job.state === 'pending' || job.state === 'running') {
      bar.append(
        el('button', {
          type: 'button',
          class: 'danger',
          text: 'Cancel this job',
          on: { click: () => act(job, 'cancel') },
        }),
      );
    }
    return bar;
  }

  async function act(job, action) {
    if (action === 'cancel') {
      const running =
        job.state === 'running'
          ? ' It is running: its handler will be told to stop and its result will not be kept.'
          : '';
      const sure = await confirmDialog(
        'Cancel this job?',
        `Job ${job.id} (${job.kind}) will be cancelled.${running}`,
        'Cancel the job',
      );
      if (!sure) return;
    }
    let notice;
    try {
      const answer = await api(`/api/jobs/${encodeURIComponent(job.id)}/${action}`, { method: 'POST' });
      notice = message(
        'ok',
        `${action === 'retry' ? 'Retried' : 'Cancelled'}: was ${answer?.job?.previousState ?? job.state}, now ${answer?.job?.state ?? '?'}.`,
      );
      onChange?.();
    } catch (error) {
      notice = errorMessage(error, action === 'retry' ? 'Retry' : 'Cancel');
    }
    await open(job.id, notice);
  }

  return open;
}

function section(name, content) {
  return el('section', { class: 'detail-section' }, el('h3', { text: name }), content);
}

function fields(job) {
  const rows = [
    ['State', el('span', { class: `badge state-${job.state}`, text: orDash(job.state) })],
    ['Kind', orDash(job.kind)],
    ['Group', orDash(job.group)],
    ['Trace id', orDash(job.traceId)],
    ['Attempts', `${orDash(job.attempts)} of ${orDash(job.maxAttempts)}`],
    ['Worker', orDash(job.workerId)],
    ['Priority', orDash(job.priority)],
    ['Idempotency key', orDash(job.idempotencyKey)],
    ['Error code', orDash(job.errorCode)],
    ['Error', orDash(job.errorMessage)],
    ['Run at', time(job.runAt)],
    ['Created', time(job.createdAt)],
    ['Last attempt', time(job.lastAttemptAt)],
    ['Lease expires', time(job.leaseExpiresAt)],
    ['Finished', time(job.finishedAt)],
  ];
  return el(
    'dl',
    { class: 'fields' },
    rows.map(([name, value]) => [el('dt', { text: name }), el('dd', {}, value)]),
  );
}

function attempts(history) {
  if (!Array.isArray(history) || history.length === 0) return message('info', 'No attempt yet.');
  const columns = [
    { label: '#', class: 'number', cell: (row) => orDash(row.attempt) },
    {
      label: 'Outcome',
      cell: (row) => el('span', { class: `badge state-${row.outcome}`, text: orDash(row.outcome) }),
    },
    { label: 'Worker', cell: (row) => orDash(row.workerId) },
    { label: 'Started', cell: (row) => time(row.startedAt) },
    { label: 'Finished', cell: (row) => time(row.finishedAt) },
    {
      label: 'Error',
      class: 'error-text',
      cell: (row) =>
        row.errorCode || row.errorMessage || row.errorStack
          ? el(
              'div',
              {},
              el('div', { class: 'mono', text: `${orDash(row.errorCode)}: ${orDash(row.errorMessage)}` }),
              row.errorStack
                ? el(
                    'details',
                    { open: true },
                    el('summary', { text: 'Stack' }),
                    el('pre', { class: 'stack', text: row.errorStack }),
                  )
                : null,
            )
          : '—',
    },
  ];
  return table(columns, history, { class: 'grid attempts' });
}

function deadLetter(entry) {
  const rows = [
    ['Reason', orDash(entry.reason)],
    ['Error code', orDash(entry.errorCode)],
    ['Error', orDash(entry.errorMessage)],
    ['Attempts', orDash(entry.attempts)],
    ['Dead since', time(entry.createdAt)],
  ];
  return el(
    'dl',
    { class: 'fields' },
    rows.map(([name, value]) => [el('dt', { text: name }), el('dd', {}, value)]),
  );
}
