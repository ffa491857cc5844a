// Tenant isolation, table-driven over every operation of the admin API's
// OpenAPI document: a tenant admin (and a tenant viewer) of tenant A gets
// 404 or 403 for every object of tenant B on every endpoint, sees none of
// B's objects in any list, and changes nothing of B. A new route missing
// from the table fails the test, so the table stays complete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from './lib/procs.mjs';
import { startControl, adminClient, must } from './control_lib.mjs';

let cp, A, B, shared;

async function tenantWorld(api, name, providerId) {
  const tenant = await must(api, 'POST', '/tenants', { name });
  const team = await must(api, 'POST', `/tenants/${tenant.id}/teams`, { name: 'eng' });
  const key = await must(api, 'POST', `/tenants/${tenant.id}/keys`, { name: 'k', team_id: team.id });
  const budget = await must(api, 'POST', '/budgets', {
    scope: 'team', scope_id: team.id, period: 'monthly', amount_usd: 50,
  });
  const route = await must(api, 'POST', '/routes', {
    alias: 'tenant-fast', tenant_id: tenant.id, rules: [{ targets: [{ model_id: 'iso-model', provider_id: providerId }] }],
  });
  const admin = await must(api, 'POST', '/users', { name: `${name}-admin`, role: 'tenant_admin', tenant_id: tenant.id });
  const viewer = await must(api, 'POST', '/users', { name: `${name}-viewer`, role: 'tenant_viewer', tenant_id: tenant.id });
  return { tenant, team, key, budget, route, admin, viewer };
}

before(async () => {
  cp = await startControl(tempDir('sy-iso-'));
  const provider = await must(cp.api, 'POST', '/providers', {
    name: 'iso-p', kind: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'k',
  });
  const model = await must(cp.api, 'POST', '/models', {
    id: 'iso-model', provider_id: provider.id, upstream_name: 'gpt-4o',
    prices: [{ input_per_mtok: 1, output_per_mtok: 2 }],
  });
  const globalRoute = await must(cp.api, 'POST', '/routes', {
    alias: 'auto', rules: [{ targets: [{ model_id: model.id }] }],
  });
  shared = { provider, model, globalRoute };
  A = await tenantWorld(cp.api, 'tenant-a', provider.id);
  B = await tenantWorld(cp.api, 'tenant-b', provider.id);
});

after(async () => {
  if (cp) await cp.proc.stop();
});

const DENY = [403, 404];

// For each documented operation: requests that aim at tenant B (or at
// platform objects), and what a tenant role of A must get. 'list' means a
// 200 whose data holds none of B's objects; 'allow' marks platform-wide
// objects that tenants may read (models, the caller's own identity).
function table() {
  const b = B;
  const x = (url, body, expect = DENY) => ({ url, body, expect });
  return {
    'GET /tenants': [x('/tenants', undefined, 'list')],
    'POST /tenants': [x('/tenants', { name: 'evil' }, [403])],
    'GET /tenants/{id}': [x(`/tenants/${b.tenant.id}`, undefined, [404])],
    'PATCH /tenants/{id}': [x(`/tenants/${b.tenant.id}`, { name: 'pwned' }, [404])],
    'DELETE /tenants/{id}': [x(`/tenants/${b.tenant.id}`, undefined, [404])],
    'GET /tenants/{id}/teams': [x(`/tenants/${b.tenant.id}/teams`, undefined, [404])],
    'POST /tenants/{id}/teams': [x(`/tenants/${b.tenant.id}/teams`, { name: 'evil' }, [404])],
    'GET /teams/{id}': [x(`/teams/${b.team.id}`, undefined, [404])],
    'PATCH /teams/{id}': [x(`/teams/${b.team.id}`, { name: 'pwned' }, [404])],
    'DELETE /teams/{id}': [x(`/teams/${b.team.id}`, undefined, [404])],
    'GET /tenants/{id}/keys': [x(`/tenants/${b.tenant.id}/keys`, undefined, [404])],
    'POST /tenants/{id}/keys': [
      x(`/tenants/${b.tenant.id}/keys`, { name: 'evil' }, [404]),
      // A key in A's tenant may not be attached to B's team either.
      x(`/tenants/${A.tenant.id}/keys`, { name: 'evil', team_id: b.team.id }, DENY),
    ],
    'GET /keys/{id}': [x(`/keys/${b.key.id}`, undefined, [404])],
    'PATCH /keys/{id}': [
      x(`/keys/${b.key.id}`, { name: 'pwned' }, [404]),
      x(`/keys/${A.key.id}`, { team_id: b.team.id }, DENY),
    ],
    'DELETE /keys/{id}': [x(`/keys/${b.key.id}`, undefined, [404])],
    'GET /providers': [x('/providers', undefined, [403])],
    'POST /providers': [x('/providers', { name: 'evil', kind: 'openai', base_url: 'http://e' }, [403])],
    'GET /providers/{id}': [x(`/providers/${shared.provider.id}`, undefined, [403])],
    'PATCH /providers/{id}': [x(`/providers/${shared.provider.id}`, { base_url: 'http://evil' }, [403])],
    'DELETE /providers/{id}': [x(`/providers/${shared.provider.id}`, undefined, [403])],
    'GET /models': [x('/models', undefined, 'allow')],
    'POST /models': [x('/models', { id: 'evil', provider_id: shared.provider.id, upstream_name: 'e' }, [403])],
    'GET /models/{id}': [x(`/models/${shared.model.id}`, undefined, 'allow')],
    'PATCH /models/{id}': [x(`/models/${shared.model.id}`, { upstream_name: 'evil' }, [403])],
    'DELETE /models/{id}': [x(`/models/${shared.model.id}`, undefined, [403])],
    'POST /models/{id}/prices': [x(`/models/${shared.model.id}/prices`, { input_per_mtok: 0, output_per_mtok: 0 }, [403])],
    'GET /routes': [x('/routes', undefined, 'list'), x(`/routes?tenant_id=${b.tenant.id}`, undefined, [404])],
    'POST /routes': [
      x('/routes', { alias: 'evil', tenant_id: b.tenant.id, rules: [{ targets: [{ model_id: 'iso-model' }] }] }, [404]),
      x('/routes', { alias: 'evil', tenant_id: null, rules: [{ targets: [{ model_id: 'iso-model' }] }] }, [403]),
    ],
    'GET /routes/{id}': [x(`/routes/${b.route.id}`, undefined, [404])],
    'PATCH /routes/{id}': [
      x(`/routes/${b.route.id}`, { max_attempts: 1 }, [404]),
      x(`/routes/${shared.globalRoute.id}`, { max_attempts: 1 }, [403]),
    ],
    'DELETE /routes/{id}': [
      x(`/routes/${b.route.id}`, undefined, [404]),
      x(`/routes/${shared.globalRoute.id}`, undefined, [403]),
    ],
    'GET /budgets': [x('/budgets', undefined, 'list'), x(`/budgets?tenant_id=${b.tenant.id}`, undefined, [404])],
    'POST /budgets': [
      x('/budgets', { scope: 'tenant', scope_id: b.tenant.id, period: 'daily', amount_usd: 0 }, [404]),
      x('/budgets', { scope: 'team', scope_id: b.team.id, period: 'daily', amount_usd: 0 }, [404]),
      x('/budgets', { scope: 'key', scope_id: b.key.id, period: 'daily', amount_usd: 0 }, [404]),
    ],
    'GET /budgets/{id}': [x(`/budgets/${b.budget.id}`, undefined, [404])],
    'PATCH /budgets/{id}': [x(`/budgets/${b.budget.id}`, { amount_usd: 1e6 }, [404])],
    'DELETE /budgets/{id}': [x(`/budgets/${b.budget.id}`, undefined, [404])],
    'GET /users': [x('/users', undefined, 'list'), x(`/users?tenant_id=${b.tenant.id}`, undefined, [404])],
    'POST /users': [
      x('/users', { name: 'evil', role: 'tenant_admin', tenant_id: b.tenant.id }, [404]),
      x('/users', { name: 'evil2', role: 'platform_admin' }, [403]),
    ],
    'GET /users/{id}': [x(`/users/${b.admin.id}`, undefined, [404])],
    'PATCH /users/{id}': [x(`/users/${b.admin.id}`, { disabled: true }, [404])],
    'POST /users/{id}/tokens': [x(`/users/${b.admin.id}/tokens`, { revoke_existing: true }, [404])],
    'DELETE /users/{id}': [x(`/users/${b.admin.id}`, undefined, [404])],
    'GET /usage': [
      x(`/usage?tenant=${b.tenant.id}`, undefined, [404]),
      x(`/usage?team=${b.team.id}`, undefined, [404]),
      x(`/usage?key=${b.key.id}`, undefined, [404]),
    ],
    'GET /audit': [x('/audit?limit=1000', undefined, 'list'), x(`/audit?tenant_id=${b.tenant.id}`, undefined, [404])],
    'GET /stats': [x('/stats', undefined, [403])],
    'GET /me': [x('/me', undefined, 'allow')],
    'GET /openapi.json': [x('/openapi.json', undefined, 'allow')],
    'GET /healthz': [x('/healthz', undefined, 'allow')],
  };
}

function bIds() {
  return [B.tenant.id, B.team.id, B.key.id, B.budget.id, B.route.id, B.admin.id, B.viewer.id];
}

async function snapshotB() {
  const api = cp.api;
  return JSON.stringify([
    await must(api, 'GET', `/tenants/${B.tenant.id}`),
    await must(api, 'GET', `/teams/${B.team.id}`),
    await must(api, 'GET', `/keys/${B.key.id}`),
    await must(api, 'GET', `/budgets/${B.budget.id}`),
    await must(api, 'GET', `/routes/${B.route.id}`),
    await must(api, 'GET', `/users/${B.admin.id}`),
    (await must(api, 'GET', `/tenants/${B.tenant.id}/keys`)).data,
    (await must(api, 'GET', `/tenants/${B.tenant.id}/teams`)).data,
    await must(api, 'GET', `/providers/${shared.provider.id}`),
    await must(api, 'GET', `/models/${shared.model.id}`),
    await must(api, 'GET', `/routes/${shared.globalRoute.id}`),
  ]);
}

for (const role of ['admin', 'viewer']) {
  test(`tenant ${role} of A gets 404/403 for every object of B on every endpoint`, async (t) => {
    const doc = await (await fetch(`${cp.url}/admin/v1/openapi.json`)).json();
    const tbl = table();
    const ops = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of Object.keys(item)) ops.push(`${m.toUpperCase()} ${p.replace(/^\/admin\/v1/, '')}`);
    }
    const missing = ops.filter((op) => !tbl[op]);
    assert.deepEqual(missing, [], 'operations without isolation cases');

    const before = await snapshotB();
    const api = adminClient(cp.url, A[role].token);
    // Sanity: the role works on its own tenant, so refusals below mean isolation.
    assert.equal((await api('GET', `/tenants/${A.tenant.id}`)).status, 200);
    assert.equal((await api('GET', `/teams/${A.team.id}`)).status, 200);

    let checked = 0;
    for (const op of ops) {
      const method = op.split(' ')[0];
      for (const c of tbl[op]) {
        const r = await api(method, c.url, c.body);
        const what = `${role}: ${method} ${c.url} -> ${r.status} ${r.text.slice(0, 200)}`;
        if (c.expect === 'list' || c.expect === 'allow') {
          assert.equal(r.status, 200, what);
          for (const id of bIds()) assert.ok(!r.text.includes(id), `${what}: shows B's ${id}`);
        } else {
          assert.ok(c.expect.includes(r.status), what);
          assert.ok(['permission_error', 'not_found_error'].includes(r.body.error.type), what);
        }
        checked++;
      }
    }
    t.diagnostic(`${checked} requests over ${ops.length} operations`);
    // Nothing of B (or of the platform) changed, and A's role left no audit
    // record on B.
    assert.equal(await snapshotB(), before);
    // B's own admin is unaffected (not disabled, token not rotated away).
    assert.equal((await adminClient(cp.url, B.admin.token)('GET', '/me')).status, 200);
    const audit = await must(cp.api, 'GET', `/audit?tenant_id=${B.tenant.id}&limit=1000`);
    assert.ok(audit.data.every((e) => e.actor_role === 'platform_admin'), JSON.stringify(audit.data[0]));
  });
}
