// Switchyard admin console: sign-in, layout and client-side routing under
// /admin/ (the control plane answers every extension-less path with
// index.html).
import { h, clear, link } from './dom.js';
import { api, request, session, setUnauthorizedHandler, ApiError } from './api.js';
import { form } from './forms.js';
import { tenantsView } from './views/tenants.js';
import { tenantView } from './views/tenant.js';
import { usageView } from './views/usage.js';
import { providersView, modelsView } from './views/catalog.js';
import { routesView } from './views/routes.js';
import { auditView } from './views/audit.js';
import { usersView } from './views/users.js';

const root = document.getElementById('app');

// The signed-in identity: {user_id, role, tenant_id} from GET /me.
export const ctx = {
  me: null,
  get platform() { return this.me?.role === 'platform_admin'; },
  // May the caller change objects of tenantId?
  canWrite(tenantId) {
    if (!this.me) return false;
    if (this.me.role === 'platform_admin') return true;
    return this.me.role === 'tenant_admin' && tenantId === this.me.tenant_id;
  },
};

const ROLE_NAMES = { platform_admin: 'Platform admin', tenant_admin: 'Tenant admin', tenant_viewer: 'Tenant viewer' };

const routes = [
  [/^\/admin\/?$/, () => (ctx.platform ? tenantsView() : tenantView(ctx.me.tenant_id, 'overview'))],
  [/^\/admin\/tenants\/?$/, () => tenantsView()],
  [/^\/admin\/tenants\/([^/]+)\/?$/, (m) => tenantView(decodeURIComponent(m[1]), 'overview')],
  [/^\/admin\/tenants\/([^/]+)\/(teams|keys|budgets)\/?$/, (m) => tenantView(decodeURIComponent(m[1]), m[2])],
  [/^\/admin\/usage\/?$/, () => usageView()],
  [/^\/admin\/providers\/?$/, () => providersView()],
  [/^\/admin\/models\/?$/, () => modelsView()],
  [/^\/admin\/routes\/?$/, () => routesView()],
  [/^\/admin\/audit\/?$/, () => auditView()],
  [/^\/admin\/users\/?$/, () => usersView()],
];

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function navItems() {
  const items = [];
  if (ctx.platform) items.push(['/admin/tenants', 'Tenants']);
  else items.push([`/admin/tenants/${encodeURIComponent(ctx.me.tenant_id)}`, 'My tenant']);
  items.push(['/admin/usage', 'Usage']);
  if (ctx.platform) items.push(['/admin/providers', 'Providers']);
  items.push(['/admin/models', 'Models'], ['/admin/routes', 'Routes'], ['/admin/users', 'Users'], ['/admin/audit', 'Audit log']);
  return items;
}

let main = null;
let nav = null;

function shell() {
  clear(root);
  main = h('main', { id: 'main', tabindex: '-1' });
  nav = h('nav', { class: 'sidenav', 'aria-label': 'Sections' });
  const me = ctx.me;
  root.append(
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '/admin/', 'data-link': true }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'S'), 'Switchyard'),
      h('span', { class: 'brand-sub' }, 'Admin console'),
      h('div', { class: 'topbar-right' },
        h('span', { class: 'whoami' }, h('span', { class: 'role-pill' }, ROLE_NAMES[me.role] || me.role),
          me.tenant_id ? h('span', { class: 'muted' }, ` · ${me.tenant_id}`) : null),
        h('button', { type: 'button', class: 'btn btn-ghost', onClick: signOut }, 'Sign out'))),
    h('div', { class: 'layout' }, nav, main));
}

function renderNav() {
  clear(nav);
  const here = location.pathname;
  nav.append(h('ul', null, navItems().map(([href, label]) => {
    const active = here === href || here.startsWith(href + '/') || (href === '/admin/tenants' && here === '/admin/');
    return h('li', null, h('a', { href, 'data-link': true, 'aria-current': active ? 'page' : null }, label));
  })));
}

let renderSeq = 0;
async function render() {
  if (!ctx.me) return;
  const mine = ++renderSeq;
  renderNav();
  const path = location.pathname;
  let view = null;
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (m) {
      view = fn(m);
      break;
    }
  }
  clear(main);
  main.setAttribute('aria-busy', 'true');
  if (!view) {
    main.append(h('h1', null, 'Page not found'), h('p', null, 'No such page. ', link('/admin/', 'Go to the start page.')));
    main.removeAttribute('aria-busy');
    return;
  }
  try {
    const node = await view;
    if (mine !== renderSeq) return;
    clear(main);
    main.append(node);
  } catch (err) {
    if (mine !== renderSeq) return;
    clear(main);
    main.append(h('h1', null, 'Something went wrong'), errorBox(err));
  } finally {
    main.removeAttribute('aria-busy');
  }
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Switchyard admin` : 'Switchyard admin';
}

export function errorBox(err) {
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status}${err.code ? `, ${err.code}` : ''})` : '';
  return h('div', { class: 'callout callout-error', role: 'alert' }, err.message, status);
}

// Re-renders the current page (after a mutation).
export function refresh() {
  return render();
}

function signOut() {
  session.clear();
  ctx.me = null;
  showSignIn();
}

function showSignIn(message) {
  clear(root);
  const f = form([
    { name: 'token', label: 'Admin token', type: 'password', required: true, autocomplete: 'current-password',
      help: 'Kept in this tab only (sessionStorage) and sent as a Bearer token.' },
  ], {
    submitLabel: 'Sign in',
    onSubmit: async ({ token }) => {
      let me;
      try {
        me = await request('GET', '/me', undefined, { token });
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          err.param = 'token';
          err.message = 'This token is not valid (unknown, revoked or disabled).';
        }
        throw err;
      }
      session.set(token);
      ctx.me = me;
      start();
    },
  });
  root.append(h('div', { class: 'signin' },
    h('div', { class: 'signin-card' },
      h('div', { class: 'brand brand-lg' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'S'), 'Switchyard'),
      h('h1', null, 'Sign in to the admin console'),
      message ? h('div', { class: 'callout callout-warn', role: 'alert' }, message) : null,
      f.el)));
  root.removeAttribute('aria-busy');
  f.fields[0].input.focus();
}

function start() {
  shell();
  root.removeAttribute('aria-busy');
  render();
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[data-link]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
  main?.focus({ preventScroll: true });
});
window.addEventListener('popstate', render);

setUnauthorizedHandler(() => {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  session.clear();
  ctx.me = null;
  showSignIn('Your session ended: the token is no longer valid. Sign in again.');
});

async function boot() {
  if (!session.token()) return showSignIn();
  try {
    ctx.me = await api.get('/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // handler showed the sign-in
    return showSignIn(err.message);
  }
  start();
}

boot();
