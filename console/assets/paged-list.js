// A list loaded page by page with the API's opaque cursors: "Next page", "Previous page", "First page".
import { el, errorMessage, message, replace, table } from './dom.js';

/**
 * `load(cursor)` resolves to `{ rows, nextCursor }`; `columns` as for dom.table. The list keeps the
 * cursors of the pages it has shown so that it can go back.
 */
export function pagedList(container, { load, columns, empty, doing, rowClass }) {
  let cursors = [null];
  let nextCursor = null;
  let loadedAt = 0;
  let generation = 0;

  async function show() {
    const mine = ++generation;
    const cursor = cursors[cursors.length - 1];
    let page;
    try {
      page = await load(cursor);
    } catch (error) {
      if (mine === generation) replace(container, errorMessage(error, doing));
      return;
    }
    if (mine !== generation) return;
    loadedAt = Date.now();
    nextCursor = page.nextCursor ?? null;
    const rows = Array.isArray(page.rows) ? page.rows : [];
    const pager = el(
      'div',
      { class: 'pager' },
      el('span', { class: 'muted', text: `Page ${cursors.length} · ${rows.length} shown` }),
      cursors.length > 1
        ? el('button', { type: 'button', class: 'secondary small', text: 'First page', on: { click: first } })
        : null,
      cursors.length > 1
        ? el('button', {
            type: 'button',
            class: 'secondary small',
            text: 'Previous page',
            on: { click: previous },
          })
        : null,
      nextCursor
        ? el('button', { type: 'button', class: 'secondary small', text: 'Next page', on: { click: next } })
        : null,
    );
    replace(
      container,
      rows.length === 0 ? message('info', empty) : table(columns, rows, { rowClass }),
      pager,
    );
  }
  function first() {
    cursors = [null];
    return show();
  }
  function next() {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    return show();
  }
  function previous() {
    if (cursors.length > 1) cursors.pop();
    return show();
  }
  return {
    /** Back to the first page (new filters) and load it. */
    reload: first,
    /** Reloads the page shown. */
    refresh: show,
    /** True on the first page, when nothing was loaded for `ms`. */
    staleFirstPage: (ms) => cursors.length === 1 && Date.now() - loadedAt > ms,
  };
}
