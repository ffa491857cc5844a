// The audit log, newest first, page by page (cursor), with filters.
import { h, fmtTimeMs, clear } from '../dom.js';
import { api, qs } from '../api.js';
import { errorBox } from '../app.js';
import { pageHeader } from './common.js';
import { field } from '../forms.js';

const TYPES = ['', 'tenant', 'team', 'key', 'provider', 'model', 'route', 'budget', 'user', 'admin_token'];
const PAGE = 25;

export async function auditView() {
  const type = field({ name: 'object_type', label: 'Object type', type: 'select', value: '', options: TYPES.map((t) => [t, t || 'Any']) });
  const objectId = field({ name: 'object_id', label: 'Object id', placeholder: 'ten_…' });
  const out = h('div', { 'aria-live': 'polite' });
  const cursors = [null]; // cursor of each page shown so far
  let index = 0;

  async function load() {
    const page = await api.get('/audit' + qs({ limit: PAGE, cursor: cursors[index], object_type: type.input.value, object_id: objectId.input.value.trim() }));
    clear(out);
    const cols = [
      { label: 'Time', class: 'nowrap', cell: (e) => fmtTimeMs(e.ts_ms) },
      { label: 'Actor', cell: (e) => [h('code', null, e.actor_id), h('div', { class: 'small muted' }, e.actor_role)] },
      { label: 'Action', cell: (e) => h('span', { class: `action action-${e.action}` }, e.action) },
      { label: 'Object', cell: (e) => [e.object_type, ' ', h('code', null, e.object_id)] },
      { label: 'Tenant', cell: (e) => (e.tenant_id ? h('code', null, e.tenant_id) : h('span', { class: 'muted' }, '—')) },
    ];
    clear(out);
    if (!page.data.length) {
      out.append(h('p', { class: 'empty-state' }, 'No audit events match.'));
    } else {
      // Each event row has a toggle for a full-width row with the object
      // before and after the change.
      const body = h('tbody');
      for (const e of page.data) {
        const detail = h('tr', { class: 'detail-row', hidden: true },
          h('td', { colspan: cols.length + 1 }, h('div', { class: 'diff' },
            h('div', null, h('div', { class: 'small muted' }, 'Before'), h('pre', null, e.before ? JSON.stringify(e.before, null, 2) : '—')),
            h('div', null, h('div', { class: 'small muted' }, 'After'), h('pre', null, e.after ? JSON.stringify(e.after, null, 2) : '—')))));
        const toggle = h('button', {
          type: 'button', class: 'btn btn-sm', 'aria-expanded': 'false', 'aria-label': `Show the change of ${e.object_type} ${e.object_id}`,
          onClick: () => {
            detail.hidden = !detail.hidden;
            toggle.setAttribute('aria-expanded', String(!detail.hidden));
            toggle.textContent = detail.hidden ? 'Show' : 'Hide';
          },
        }, 'Show');
        body.append(h('tr', null, cols.map((c) => h('td', { class: c.class }, c.cell(e))), h('td', { class: 'actions' }, toggle)), detail);
      }
      out.append(h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('caption', { class: 'sr-only' }, 'Audit events'),
        h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c.label)), h('th', { scope: 'col', class: 'actions' }, 'Change'))),
        body)));
    }
    const prev = h('button', { type: 'button', class: 'btn', disabled: index === 0, onClick: () => { index--; run(); } }, '← Newer');
    const next = h('button', { type: 'button', class: 'btn', disabled: !page.has_more, onClick: () => { cursors[index + 1] = page.next_cursor; index++; run(); } }, 'Older →');
    out.append(h('div', { class: 'pager' }, prev, h('span', { class: 'muted' }, `Page ${index + 1}`), next));
  }
  async function run() {
    try {
      await load();
    } catch (err) {
      clear(out);
      out.append(errorBox(err));
    }
  }
  const filters = h('form', { class: 'filters', 'aria-label': 'Audit filters' }, type.wrap, objectId.wrap,
    h('div', { class: 'field field-button' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Filter')));
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); cursors.length = 1; index = 0; run(); });
  await run();
  return h('section', null, pageHeader('Audit log', { subtitle: 'Every change, who made it and the object before and after. Newest first.' }), filters, out);
}
