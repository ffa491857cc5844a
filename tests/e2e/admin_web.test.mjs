// The admin web console (admin-web/) in a real browser (Debian's Chromium,
// driven by playwright-core) against the real control plane, with a data
// plane and the mock provider so keys created in the console serve requests
// and usage shows up: sign-in, tenant/team/key/budget flows, the secret shown
// once, revocation reaching the data plane, usage table and chart, the empty
// state, a validation error next to its field, a tenant viewer without
// mutation controls, and no console errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { startMock, tempDir, ROOT } from './lib/procs.mjs';
import { startControl, startDataplane, writeKey, must, chat, waitKeyWorks, waitUsage, ADMIN_TOKEN, sleep } from './control_lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const MODEL = 'gpt-web';
const STEP_MS = 5000; // every wait in the page is bounded

let dir, mock, cp, dp, ctx, page, userDir;
const consoleErrors = [];
const pageErrors = [];
const shared = {}; // ids and secrets the tests hand on, in order

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (make deps does)`);
  dir = tempDir('sy-web-');
  const keyFile = writeKey(path.join(dir, 'cluster.key'));
  mock = await startMock(['--name', 'web']);
  cp = await startControl(dir, { clusterKeyFile: keyFile, extra: ['--admin-web-dir', path.join(ROOT, 'admin-web')] });
  dp = await startDataplane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: path.join(dir, 'dp'), workers: 1 });
  const provider = await must(cp.api, 'POST', '/providers', {
    name: 'mock', kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'mock-key',
  });
  await must(cp.api, 'POST', '/models', {
    id: MODEL, provider_id: provider.id, upstream_name: 'gpt-4o',
    prices: [{ valid_from: 0, input_per_mtok: 2.5, output_per_mtok: 10 }],
  });
  userDir = tempDir('sy-web-chromium-');
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 15000,
  });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cp.url });
  ctx.setDefaultTimeout(STEP_MS);
  page = ctx.pages()[0] || (await ctx.newPage());
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  if (dp) await dp.proc.stop();
  if (cp) await cp.proc.stop();
  if (mock) await mock.stop();
  if (userDir) rmSync(userDir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function signIn(token) {
  await page.goto(`${cp.url}/admin/`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// The error text shown for the field labelled `label` (its aria-describedby).
async function fieldError(label) {
  const input = page.getByLabel(label).first();
  const errId = (await input.getAttribute('aria-describedby')).split(' ').pop();
  return page.locator(`[id="${errId}"]`);
}

const dialog = () => page.getByRole('dialog');

test('sign-in: a bad token is refused at the field; the good one is kept in sessionStorage only', async () => {
  await signIn('sy-not-a-real-token-0000000000');
  const err = await fieldError('Admin token');
  await err.getByText('This token is not valid').waitFor();
  assert.equal(await page.getByLabel('Admin token').getAttribute('aria-invalid'), 'true');

  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Tenants', level: 1 }).waitFor();
  await page.getByText('Platform admin').waitFor();
  const stored = await page.evaluate(() => ({ s: { ...sessionStorage }, l: { ...localStorage }, url: location.href }));
  assert.ok(Object.values(stored.s).includes(ADMIN_TOKEN), 'token in sessionStorage');
  assert.ok(!Object.values(stored.l).includes(ADMIN_TOKEN), 'token not in localStorage');
  assert.ok(!stored.url.includes(ADMIN_TOKEN), 'token not in the URL');
  // A reload keeps the session (same tab).
  await page.reload();
  await page.getByRole('heading', { name: 'Tenants', level: 1 }).waitFor();
});

test('create a tenant: the API validation error shows next to its field, then it saves', async () => {
  await page.getByRole('button', { name: 'New tenant' }).click();
  const dlg = dialog();
  await dlg.getByLabel('Name').fill('globex <b>&co</b>');
  await dlg.getByLabel('Time zone').fill('Mars/Olympus_Mons');
  await dlg.getByLabel('Requests per minute').fill('600');
  await dlg.getByRole('button', { name: 'Create tenant' }).click();
  const err = await fieldError('Time zone');
  await err.getByText('time_zone is not a known IANA time zone').waitFor();
  assert.equal(await dlg.getByLabel('Time zone').getAttribute('aria-invalid'), 'true');
  // The focus moved to the field the API named.
  assert.equal(await page.evaluate(() => document.activeElement.name), 'time_zone');

  await dlg.getByLabel('Time zone').fill('Europe/Paris');
  await dlg.getByRole('button', { name: 'Create tenant' }).click();
  // The name is rendered as text, never as markup.
  await page.getByRole('heading', { name: 'globex <b>&co</b>', level: 1 }).waitFor();
  assert.equal(await page.locator('main b').count(), 0);
  const m = page.url().match(/\/admin\/tenants\/([^/]+)$/);
  assert.ok(m, page.url());
  shared.tenantId = decodeURIComponent(m[1]);
  const t = await must(cp.api, 'GET', `/tenants/${shared.tenantId}`);
  assert.equal(t.name, 'globex <b>&co</b>');
  assert.equal(t.time_zone, 'Europe/Paris');
  assert.equal(t.rpm, 600);
});

test('a team, then a key: secret shown once with a copy button, works on the data plane, revoked', async () => {
  await page.getByRole('link', { name: 'Teams' }).click();
  // Keyboard: the dialog takes the focus on its first field and Escape closes it.
  await page.getByRole('button', { name: 'New team' }).click();
  await dialog().waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'name');
  await page.keyboard.press('Escape');
  await dialog().waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'New team' }).click();
  await dialog().getByLabel('Name').fill('payments');
  await dialog().getByRole('button', { name: 'Create team' }).click();
  await page.getByRole('cell', { name: 'payments', exact: true }).waitFor();

  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByText('No API keys yet.').waitFor();
  await page.getByRole('button', { name: 'New API key' }).click();
  await dialog().getByLabel('Name').fill('checkout');
  await dialog().getByLabel('Team').selectOption({ label: 'payments' });
  await dialog().getByLabel('Requests per minute').fill('1000');
  await dialog().getByRole('button', { name: 'Create key' }).click();

  const secretBox = dialog().getByLabel('Secret');
  await secretBox.waitFor();
  await dialog().getByText('you will not see it again').waitFor();
  const secret = await secretBox.inputValue();
  assert.match(secret, /^sk-sy-[0-9a-f]{48}$/);
  await dialog().getByRole('button', { name: 'Copy' }).click();
  await dialog().getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await dialog().getByRole('button', { name: 'I have stored it' }).click();
  await dialog().waitFor({ state: 'detached' });

  // Listed by prefix with its team and limit; the secret is gone from the page.
  const row = page.getByRole('row').filter({ hasText: 'checkout' });
  await row.getByText(`${secret.slice(0, 12)}…`).waitFor();
  await row.getByText('payments').waitFor();
  await row.getByText('RPM 1,000').waitFor();
  await row.getByText('active').waitFor();
  assert.ok(!(await page.content()).includes(secret), 'secret still in the DOM');
  assert.ok(!(await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }))).includes(secret));

  // The key serves requests on the data plane (its snapshot arrived).
  await waitKeyWorks(dp.url, secret, MODEL, 5000);
  for (let i = 0; i < 3; i++) assert.equal((await chat(dp.url, secret, MODEL, `request ${i} from the web test`)).status, 200);
  const keys = await must(cp.api, 'GET', `/tenants/${shared.tenantId}/keys`);
  shared.keyId = keys.data.find((k) => k.name === 'checkout').id;

  // Revoke, with confirmation: the console shows it revoked and the data
  // plane refuses it within seconds.
  await row.getByRole('button', { name: 'Revoke key checkout' }).click();
  await dialog().getByText('This cannot be undone').waitFor();
  await dialog().getByRole('button', { name: 'Revoke key' }).click();
  await page.getByRole('row').filter({ hasText: 'checkout' }).getByText('revoked', { exact: true }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Revoke key checkout' }).count(), 0);
  const deadline = Date.now() + 5000;
  let status = 0;
  while (Date.now() < deadline && (status = (await chat(dp.url, secret, MODEL)).status) === 200) await sleep(50);
  assert.equal(status, 401);
  shared.secret = secret;
});

test('usage: the key\'s requests as table rows and bars; a budget shows its spend', async () => {
  const totals = await waitUsage(cp.api, shared.keyId, { requests: 4, prompt_tokens: 1 }, 10000);
  assert.ok(totals && totals.requests >= 4, JSON.stringify(totals));
  const fmt = (n) => '$' + n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: n < 1 ? 4 : 2 });

  await page.getByRole('link', { name: 'Usage' }).click();
  await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
  await page.getByLabel('Tenant').selectOption({ label: 'globex <b>&co</b>' });
  await page.getByLabel('Group by').selectOption('key');
  await page.getByRole('button', { name: 'Show' }).click();
  const row = page.getByRole('row').filter({ hasText: 'checkout' });
  await row.waitFor();
  const cells = await row.getByRole('cell').allTextContents();
  assert.equal(cells[0], `checkout (${shared.secret.slice(0, 12)}…)`);
  assert.equal(cells[1], totals.requests.toLocaleString('en-US'));
  assert.equal(cells[6], totals.total_tokens.toLocaleString('en-US'));
  assert.equal(cells[7], fmt(totals.cost_usd));
  const chart = page.getByRole('img', { name: 'Cost by API key' });
  await chart.waitFor();
  assert.equal(await chart.locator('rect').count(), 1);
  assert.ok(Number(await chart.locator('rect').getAttribute('width')) > 100);
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  await page.evaluate(() => document.getElementById('toasts').replaceChildren()); // transient notes off the picture
  await page.screenshot({ path: path.join(ROOT, 'build', 'admin-web.png'), fullPage: true });

  // A tenant without traffic: the empty state.
  await page.getByLabel('Tenant').selectOption({ label: 'All tenants' });
  await page.getByLabel('From (UTC, inclusive)').fill('2020-01-01');
  await page.getByLabel('To (UTC, inclusive)').fill('2020-01-31');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByText('No usage in this period.').waitFor();

  // A monthly budget on the tenant shows what the period spent.
  await page.goto(`${cp.url}/admin/tenants/${shared.tenantId}/budgets`);
  await page.getByText('No budgets yet.').waitFor();
  await page.getByRole('button', { name: 'New budget' }).click();
  await dialog().getByLabel('Amount (USD)').fill('-5');
  await dialog().getByRole('button', { name: 'Create budget' }).click();
  await (await fieldError('Amount (USD)')).getByText('amount_usd').waitFor();
  await dialog().getByLabel('Amount (USD)').fill('25');
  await dialog().getByLabel('Hard limit: refuse requests once the amount is spent').check();
  await dialog().getByRole('button', { name: 'Create budget' }).click();
  const brow = page.getByRole('row').filter({ hasText: 'Tenant globex' });
  await brow.getByText('$25.00').waitFor();
  await brow.getByText(`${fmt(totals.cost_usd)} (0%)`).waitFor();
  await brow.getByText('hard').waitFor();
  const budgets = await must(cp.api, 'GET', `/budgets?tenant_id=${shared.tenantId}`);
  assert.equal(budgets.data.length, 1);
  assert.deepEqual([budgets.data[0].scope, budgets.data[0].period, budgets.data[0].amount_usd, budgets.data[0].hard],
    ['tenant', 'monthly', 25, true]);
  // Edit: the amount changes in place.
  await brow.getByRole('button', { name: /^Edit budget/ }).click();
  await dialog().getByLabel('Amount (USD)').fill('40');
  await dialog().getByRole('button', { name: 'Save' }).click();
  await page.getByRole('row').filter({ hasText: 'Tenant globex' }).getByText('$40.00').waitFor();
});

test('providers and models: create through the console; nested field errors land on their field', async () => {
  await page.getByRole('link', { name: 'Providers' }).click();
  await page.getByRole('cell', { name: 'mock', exact: true }).waitFor();
  await page.getByRole('button', { name: 'New provider' }).click();
  await dialog().getByLabel('Name').fill('local-llm');
  await dialog().getByLabel('Kind').selectOption('openai-compatible');
  await dialog().getByLabel('Base URL').fill('ftp://127.0.0.1/v1');
  await dialog().getByLabel('API key').fill('upstream-secret');
  await dialog().getByRole('button', { name: 'Create provider' }).click();
  await (await fieldError('Base URL')).getByText('base_url must start with http:// or https://').waitFor();
  await dialog().getByLabel('Base URL').fill(`${mock.url}/v1`);
  await dialog().getByRole('button', { name: 'Create provider' }).click();
  const prow = page.getByRole('row').filter({ hasText: 'local-llm' });
  await prow.getByText('stored, sealed').waitFor();
  assert.ok(!(await page.content()).includes('upstream-secret'));

  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('button', { name: 'New model' }).click();
  await dialog().getByLabel('Model id').fill('local-small');
  await dialog().getByLabel('Provider').selectOption({ label: 'local-llm' });
  await dialog().getByLabel('Upstream name').fill('qwen-7b');
  await dialog().getByLabel('Capabilities').fill('chat, tools');
  await dialog().getByLabel('Price per 1M input tokens (USD)').fill('-1');
  await dialog().getByLabel('Price per 1M output tokens (USD)').fill('0.6');
  await dialog().getByRole('button', { name: 'Create model' }).click();
  await (await fieldError('Price per 1M input tokens (USD)')).getByText('prices[0].input_per_mtok must be a non-negative number').waitFor();
  await dialog().getByLabel('Price per 1M input tokens (USD)').fill('0.15');
  await dialog().getByRole('button', { name: 'Create model' }).click();
  const mrow = page.getByRole('row').filter({ hasText: 'local-small' });
  await mrow.getByText('$0.15 / $0.60').waitFor();
  await mrow.getByText('local-llm').waitFor();
  const m = await must(cp.api, 'GET', '/models/local-small');
  assert.deepEqual(m.capabilities, ['chat', 'tools']);
  assert.equal(m.prices[0].input_per_mtok, 0.15);
});

test('a tenant viewer sees its tenant read-only: no mutation controls anywhere; a tenant admin no tenant controls; a disabled user is signed out', async () => {
  // The platform admin creates the viewer on the Users page; its token is shown once.
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('button', { name: 'New user' }).click();
  await dialog().getByLabel('Name').fill('auditor');
  await dialog().getByLabel('Role').selectOption('tenant_viewer');
  await dialog().getByLabel('Tenant').selectOption({ label: 'globex <b>&co</b>' });
  await dialog().getByRole('button', { name: 'Create user' }).click();
  const tokenBox = dialog().getByLabel('Secret');
  await tokenBox.waitFor();
  const viewerToken = await tokenBox.inputValue();
  assert.ok(viewerToken.length >= 16);
  await dialog().getByRole('button', { name: 'I have stored it' }).click();
  const urow = page.getByRole('row').filter({ hasText: 'auditor' });
  await urow.getByText('Tenant viewer').waitFor();
  await urow.getByText('globex <b>&co</b>').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(viewerToken);
  await page.getByRole('heading', { name: 'globex <b>&co</b>', level: 1 }).waitFor();
  await page.getByText('Tenant viewer').waitFor();
  await page.getByText('Read-only: your role can view this tenant').waitFor();
  const nav = await page.getByRole('navigation', { name: 'Sections', exact: true }).getByRole('link').allTextContents();
  assert.deepEqual(nav, ['My tenant', 'Usage', 'Models', 'Routes', 'Users', 'Audit log']);
  const mutating = /^(new|edit|block|unblock|revoke|delete)/i;
  for (const tab of ['Overview', 'Teams', 'API keys', 'Budgets']) {
    await page.getByRole('link', { name: tab, exact: true }).click();
    await page.locator(`nav.tabs a[aria-current="page"]`).getByText(tab).waitFor();
    await page.locator('main[aria-busy]').waitFor({ state: 'detached' });
    if (tab === 'Teams') await page.getByRole('cell', { name: 'payments', exact: true }).waitFor();
    if (tab === 'API keys') await page.getByRole('cell', { name: 'checkout', exact: true }).waitFor();
    if (tab === 'Budgets') await page.getByText('$40.00').waitFor();
    const buttons = await page.locator('main').getByRole('button').allTextContents();
    assert.deepEqual(buttons.filter((b) => mutating.test(b.trim())), [], `${tab}: ${buttons}`);
  }
  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('cell', { name: MODEL, exact: true }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'New model' }).count(), 0);
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('cell', { name: /^auditor/ }).waitFor();
  assert.deepEqual(await page.locator('main').getByRole('button').allTextContents(), []);

  // A tenant admin manages keys but not the tenant itself.
  const admin = await must(cp.api, 'POST', '/users', { name: 'lead', role: 'tenant_admin', tenant_id: shared.tenantId });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(admin.token);
  await page.getByText('Tenant admin').waitFor();
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByRole('button', { name: 'New API key' }).waitFor();
  assert.equal(await page.getByRole('button', { name: /^(Block|Edit)$/ }).count(), 0);
  assert.equal(await page.getByText('Read-only').count(), 0);

  // Disabled meanwhile: the next API call answers 401 and the console asks
  // for a token again, saying why, with the old one gone from the tab.
  await must(cp.api, 'PATCH', `/users/${admin.id}`, { disabled: true });
  await page.getByRole('link', { name: 'Teams' }).click();
  await page.getByText('Your session ended').waitFor();
  await page.getByLabel('Admin token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test('the audit log pages through the changes, newest first, and filters by object type', async () => {
  for (let i = 0; i < 26; i++) await must(cp.api, 'POST', `/tenants/${shared.tenantId}/teams`, { name: `bulk-${i}` });
  await signIn(ADMIN_TOKEN);
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
  const objects = () => page.locator('main tbody tr td:nth-child(4)').allTextContents();
  // Page 1: the 25 newest, starting with the last team created.
  await page.getByText('Page 1').waitFor();
  let first = await objects();
  assert.equal(first.length, 25);
  const newest = await must(cp.api, 'GET', '/audit?limit=1');
  assert.equal(first[0], `team ${newest.data[0].object_id}`);
  await page.getByRole('button', { name: 'Older →' }).click();
  await page.getByText('Page 2').waitFor();
  const second = await objects();
  assert.ok(second.length > 0 && !second.includes(first[0]));
  await page.getByRole('button', { name: 'Newer' }).click();
  await page.getByText('Page 1').waitFor();
  assert.deepEqual(await objects(), first);

  await page.getByLabel('Object type').selectOption('key');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll('main tbody tr td:nth-child(4)')];
    return cells.length > 0 && cells.every((td) => td.textContent.startsWith('key '));
  }, null, { timeout: STEP_MS });
  const actions = await page.locator('main tbody tr td:nth-child(3)').allTextContents();
  assert.deepEqual(actions, ['revoke', 'create']);
  // The change itself, before and after, on demand.
  const show = page.getByRole('button', { name: `Show the change of key ${shared.keyId}` }).first();
  await show.click();
  assert.equal(await show.getAttribute('aria-expanded'), 'true');
  await page.locator('tr.detail-row:not([hidden]) pre').filter({ hasText: '"revoked_at"' }).last().waitFor();
  assert.equal(await page.getByRole('button', { name: 'Older →' }).isDisabled(), true);
});

test('budget windows start at midnight in the tenant\'s time zone (DST, half-hour offsets, bad zone)', async () => {
  const { periodStart } = await import(pathToFileURL(path.join(ROOT, 'admin-web', 'js', 'time.js')).href);
  const iso = (u) => new Date(u * 1000).toISOString().slice(0, 16);
  assert.equal(iso(periodStart('daily', 'Europe/Paris', Date.UTC(2026, 10, 21, 22, 30))), '2026-11-20T23:00');
  assert.equal(iso(periodStart('daily', 'Asia/Tokyo', Date.UTC(2026, 10, 21, 22, 30))), '2026-11-21T15:00');
  assert.equal(iso(periodStart('monthly', 'America/New_York', Date.UTC(2026, 2, 10, 12))), '2026-03-01T05:00');
  assert.equal(iso(periodStart('daily', 'America/New_York', Date.UTC(2026, 2, 8, 12))), '2026-03-08T05:00');
  assert.equal(iso(periodStart('daily', 'Asia/Kolkata', Date.UTC(2026, 2, 8, 12))), '2026-03-07T18:30');
  assert.equal(iso(periodStart('monthly', 'Bogus/Zone', Date.UTC(2026, 2, 8, 12))), '2026-03-01T00:00');
});

test('no console errors beyond the deliberate 4xx answers, no page errors', () => {
  assert.deepEqual(pageErrors, []);
  // Chromium logs every non-2xx fetch; the deliberate ones are the bad
  // sign-in (401) and the validation errors (400). Anything else fails.
  const unexpected = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of (400|401)/.test(e));
  assert.deepEqual(unexpected, []);
  assert.ok(existsSync(path.join(ROOT, 'build', 'admin-web.png')));
});
