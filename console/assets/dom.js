// DOM helpers. Everything shown comes from the API and may be hostile (a payload, an error message,
// a group name), so text only ever goes through textContent and attributes through properties; no
// innerHTML, insertAdjacentHTML or document.write anywhere in the console.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Builds an element. `props`: `class`, `text` (textContent), `dataset`, `on` ({ event: handler }),
 * and DOM properties (type, name, value, checked, disabled, href, title, hidden, ...).
 * Children: nodes, strings (as text), null/undefined/false (skipped), arrays of those.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on')
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for' || key === 'scope')
      node.setAttribute(key, String(value));
    else node[key] = value;
  }
  append(node, children);
  return node;
}

/** An SVG element with attributes (numbers and fixed names only) and children. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A `<table>`: columns are `{ label, cell(row) -> node | string, class? }`. */
export function table(columns, rows, options = {}) {
  const head = el(
    'thead',
    {},
    el(
      'tr',
      {},
      columns.map((column) => el('th', { scope: 'col', class: column.class ?? '' }, column.label)),
    ),
  );
  const body = el(
    'tbody',
    {},
    rows.map((row) =>
      el(
        'tr',
        { class: options.rowClass?.(row) ?? '' },
        columns.map((column) => el('td', { class: column.class ?? '' }, column.cell(row) ?? '')),
      ),
    ),
  );
  return el('table', { class: options.class ?? 'grid' }, head, body);
}

/** "—" for nothing, else the value as text. */
export function orDash(value) {
  return value === null || value === undefined || value === '' ? '—' : String(value);
}

/** Local date and time of an ISO timestamp, with how long ago in the title. */
export function time(iso) {
  if (!iso) return el('span', { text: '—' });
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el('span', { text: String(iso) });
  return el('time', {
    dateTime: date.toISOString(),
    title: date.toISOString(),
    text: `${formatDate(date)} (${ago(date)})`,
  });
}

export function formatDate(date) {
  const pad = (value) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function ago(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 0) return `in ${Math.abs(seconds)} s`;
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** Pretty JSON of any value, as text for a `<pre>`. */
export function jsonBlock(value) {
  const text = value === undefined ? '—' : JSON.stringify(value, null, 2);
  return el('pre', { class: 'json', text });
}

/** A message line in a panel: kind `error`, `ok`, `info` or `warn`. */
export function message(kind, text) {
  return el('p', { class: `message message-${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
}

/** An error from the API (or the network) as a panel message naming its code. */
export function errorMessage(error, doing) {
  const code = error?.code ? ` [${error.code}]` : '';
  return message('error', `${doing} failed${code}: ${error?.message ?? String(error)}`);
}

/**
 * Asks before an action, in the page's own `<dialog>` (not window.confirm, which a tired finger
 * dismisses without reading). Resolves true when confirmed.
 */
export function confirmDialog(title, text, confirmLabel) {
  const dialog = document.getElementById('confirm-dialog');
  replace(dialog.querySelector('.confirm-title'), title);
  replace(dialog.querySelector('.confirm-text'), text);
  const confirmButton = dialog.querySelector('.confirm-yes');
  confirmButton.textContent = confirmLabel;
  return new Promise((resolve) => {
    const finish = () => {
      dialog.removeEventListener('close', finish);
      resolve(dialog.returnValue === 'yes');
    };
    dialog.returnValue = '';
    dialog.addEventListener('close', finish);
    dialog.showModal();
  });
}

/** The values of a form's named fields, without the empty ones. */
export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string' && value.trim() !== '') values[name] = value.trim();
  }
  return values;
}

/** A button that looks like a link and opens a job's detail. */
export function jobLink(jobId, open) {
  return el('button', {
    type: 'button',
    class: 'link job-link',
    text: jobId,
    title: 'Open this job',
    on: { click: () => open(jobId) },
  });
}
