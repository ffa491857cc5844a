// Pieces shared by the views.
import { h } from '../dom.js';

export function pageHeader(title, { subtitle, actions = [], crumbs } = {}) {
  return h('div', { class: 'page-head' },
    crumbs ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, crumbs) : null,
    h('div', { class: 'page-head-row' },
      h('div', null, h('h1', null, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
      h('div', { class: 'page-actions' }, actions)));
}

export function button(label, onClick, { kind = '', small = false, label: aria } = {}) {
  return h('button', {
    type: 'button',
    class: ['btn', kind && `btn-${kind}`, small && 'btn-sm'].filter(Boolean).join(' '),
    'aria-label': aria,
    onClick,
  }, label);
}

// A "Load more" control for cursor-paginated lists: fetchPage(cursor)
// resolves {data, has_more, next_cursor}; onRows(rows) renders them.
export function moreButton(page, fetchPage, onRows) {
  if (!page.has_more) return null;
  let cursor = page.next_cursor;
  const btn = button('Load more', async () => {
    btn.disabled = true;
    const next = await fetchPage(cursor);
    onRows(next.data);
    cursor = next.next_cursor;
    btn.disabled = false;
    if (!next.has_more) btn.remove();
  });
  return h('div', { class: 'more' }, btn);
}

export const TIME_ZONES = (() => {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC'];
  }
})();

export function tzDatalist(id) {
  return h('datalist', { id }, TIME_ZONES.map((z) => h('option', { value: z })));
}
