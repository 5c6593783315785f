// Table columns shared by the overview and the failures panel. Rows come from several routes, so
// each cell reads the field names defensively (a dead letter has jobId, a job has id).
import { el, jobLink, orDash, time } from './dom.js';

export const jobIdOf = (row) => row.jobId ?? row.id;

/** Columns of a failed job (a Job from /api/jobs or the snapshot's recent failures). */
export function failureColumns(openJob, extra = []) {
  return [
    { label: 'Job', cell: (row) => jobLink(jobIdOf(row), openJob) },
    { label: 'Kind', cell: (row) => orDash(row.kind) },
    { label: 'Group', cell: (row) => orDash(row.group) },
    { label: 'Trace id', cell: (row) => orDash(row.traceId) },
    { label: 'Error code', cell: (row) => orDash(row.errorCode) },
    { label: 'Error', class: 'error-text', cell: (row) => orDash(row.errorMessage) },
    { label: 'Attempts', class: 'number', cell: (row) => attemptsText(row) },
    { label: 'When', cell: (row) => time(row.finishedAt ?? row.failedAt ?? row.updatedAt ?? row.createdAt) },
    ...extra,
  ];
}

/** Columns of a dead letter (from /api/dead-letters or the snapshot's recent dead letters). */
export function deadLetterColumns(openJob, extra = []) {
  return [
    { label: 'Job', cell: (row) => jobLink(jobIdOf(row), openJob) },
    { label: 'Kind', cell: (row) => orDash(row.kind) },
    { label: 'Reason', cell: (row) => el('span', { class: 'badge state-dead', text: orDash(row.reason) }) },
    { label: 'Group', cell: (row) => orDash(row.group) },
    { label: 'Trace id', cell: (row) => orDash(row.traceId) },
    { label: 'Error code', cell: (row) => orDash(row.errorCode) },
    { label: 'Error', class: 'error-text', cell: (row) => orDash(row.errorMessage) },
    { label: 'Attempts', class: 'number', cell: (row) => attemptsText(row) },
    { label: 'Job state', cell: (row) => orDash(row.jobState ?? row.state) },
    { label: 'Dead since', cell: (row) => time(row.createdAt) },
    ...extra,
  ];
}

function attemptsText(row) {
  // A recent failure of the snapshot is one attempt (`attempt`), a job or dead letter has `attempts`.
  if (row.attempts === undefined) return row.attempt === undefined ? '—' : `#${row.attempt}`;
  return row.maxAttempts ? `${row.attempts} / ${row.maxAttempts}` : String(row.attempts);
}
