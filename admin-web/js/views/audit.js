// The audit log, newest first, page by page (cursor), with filters.
import { h, table, fmtTimeMs, clear } from '../dom.js';
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
      { label: 'Time', cell: (e) => fmtTimeMs(e.ts_ms) },
      { label: 'Actor', cell: (e) => [h('code', null, e.actor_id), h('div', { class: 'small muted' }, e.actor_role)] },
      { label: 'Action', cell: (e) => h('span', { class: `action action-${e.action}` }, e.action) },
      { label: 'Object', cell: (e) => [e.object_type, ' ', h('code', null, e.object_id)] },
      { label: 'Tenant', cell: (e) => (e.tenant_id ? h('code', null, e.tenant_id) : h('span', { class: 'muted' }, '—')) },
      { label: 'Change', cell: (e) => h('details', null, h('summary', null, 'Before / after'),
        h('div', { class: 'diff' },
          h('pre', null, e.before ? JSON.stringify(e.before, null, 2) : '—'),
          h('pre', null, e.after ? JSON.stringify(e.after, null, 2) : '—'))) },
    ];
    const prev = h('button', { type: 'button', class: 'btn', disabled: index === 0, onClick: () => { index--; run(); } }, '← Newer');
    const next = h('button', { type: 'button', class: 'btn', disabled: !page.has_more, onClick: () => { cursors[index + 1] = page.next_cursor; index++; run(); } }, 'Older →');
    out.append(table(cols, page.data, { empty: 'No audit events match.', caption: 'Audit events' }),
      h('div', { class: 'pager' }, prev, h('span', { class: 'muted' }, `Page ${index + 1}`), next));
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
