// The ops console's entry: who is logged in, tabs, and the live refresh of the ops snapshot.
import { ApiError, api, goToLogin } from './api.js';
import { initAudit } from './audit.js';
import { initBatchRetry } from './batch-retry.js';
import { initDetail } from './detail.js';
import { formatDate } from './dom.js';
import { initFailures } from './failures.js';
import { renderOverview, renderOverviewError } from './overview.js';
import { renderWorkers, renderWorkersError } from './workers.js';

/** How often the snapshot is fetched while the page is visible. */
const REFRESH_MS = 2000;

const TABS = ['overview', 'failures', 'dead-letters', 'audit', 'workers'];

async function start() {
  let session;
  try {
    session = await api('/ops/session');
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showStartError(error);
    return;
  }
  document.body.dataset.role = session.role;
  document.getElementById('who').textContent = `${session.actor} (${session.role})`;
  document.getElementById('logout').addEventListener('click', logout);

  const isOperator = session.role === 'operator';
  const panels = {};
  const openJob = initDetail({ isOperator, onChange: () => refreshNow() });
  const openJobForm = document.getElementById('open-job');
  openJobForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const jobId = openJobForm.elements.jobId.value.trim();
    if (jobId) openJob(jobId);
  });
  panels.failures = initFailures({ openJob, isOperator });
  panels['dead-letters'] = initBatchRetry({ openJob });
  panels.audit = initAudit({ openJob });

  const showTab = () => {
    const wanted = window.location.hash.slice(1);
    const active = TABS.includes(wanted) ? wanted : 'overview';
    for (const tab of document.querySelectorAll('.tab')) {
      const on = tab.dataset.tab === active;
      tab.classList.toggle('active', on);
      if (on) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
    for (const panel of document.querySelectorAll('.panel')) panel.hidden = panel.dataset.panel !== active;
    panels[active]?.shown?.();
    return active;
  };
  window.addEventListener('hashchange', showTab);
  showTab();

  const context = { openJob, activeTab: () => document.querySelector('.tab.active')?.dataset.tab };
  let timer;
  let inFlight = false;
  async function refresh() {
    clearTimeout(timer);
    if (!inFlight && !document.hidden) {
      inFlight = true;
      try {
        await refreshSnapshot(context);
        panels[context.activeTab()]?.tick?.();
      } finally {
        inFlight = false;
      }
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }
  function refreshNow() {
    refresh();
    panels[context.activeTab()]?.shown?.();
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  refresh();
}

async function refreshSnapshot({ openJob }) {
  const status = document.getElementById('refresh-status');
  try {
    const snapshot = await api('/api/ops');
    renderOverview(snapshot, { openJob });
    renderWorkers(document.getElementById('workers'), snapshot.workers);
    status.textContent = `live · updated ${formatDate(new Date()).slice(11)}`;
    status.classList.remove('stale');
  } catch (error) {
    renderOverviewError(error);
    renderWorkersError(document.getElementById('workers'), error);
    status.textContent = `NOT UPDATING: ${error.message} (retrying every ${REFRESH_MS / 1000} s)`;
    status.classList.add('stale');
  }
}

async function logout() {
  try {
    await api('/ops/logout', { method: 'POST' });
  } finally {
    goToLogin();
  }
}

function showStartError(error) {
  const status = document.getElementById('refresh-status');
  status.textContent = `cannot reach the server: ${error.message}; reload to try again`;
  status.classList.add('stale');
}

start();
