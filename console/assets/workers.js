// The live workers: host, pid, kinds, concurrency, running jobs, last heartbeat.
import { el, errorMessage, message, orDash, replace, table, time } from './dom.js';

export function renderWorkers(container, workers) {
  if (!Array.isArray(workers)) {
    replace(container, message('warn', 'The worker list is not in this server’s snapshot.'));
    return;
  }
  if (workers.length === 0) {
    replace(container, message('warn', 'No live worker. Pending jobs will wait until one starts.'));
    return;
  }
  const columns = [
    { label: 'Worker', cell: (row) => el('span', { class: 'mono', text: orDash(row.id) }) },
    { label: 'Host', cell: (row) => orDash(row.host) },
    { label: 'PID', class: 'number', cell: (row) => orDash(row.pid) },
    { label: 'Kinds', cell: (row) => (Array.isArray(row.kinds) ? row.kinds.join(', ') : orDash(row.kinds)) },
    { label: 'Concurrency', class: 'number', cell: (row) => orDash(row.concurrency) },
    { label: 'Running', class: 'number', cell: (row) => orDash(row.running) },
    { label: 'Started', cell: (row) => time(row.startedAt) },
    { label: 'Last heartbeat', cell: (row) => time(row.lastHeartbeatAt) },
  ];
  replace(container, table(columns, workers, { class: 'grid workers' }));
}

export function renderWorkersError(container, error) {
  replace(container, errorMessage(error, 'Loading the workers (GET /api/ops)'));
}
