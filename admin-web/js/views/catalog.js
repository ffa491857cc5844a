// Providers and models: read-only lists plus create (platform admins).
import { h, table, badge, fmtTime, fmtUsd, fmtLimit, toast } from '../dom.js';
import { api, listAll } from '../api.js';
import { formDialog } from '../forms.js';
import { ctx, refresh } from '../app.js';
import { pageHeader, button } from './common.js';

const KINDS = [['openai', 'OpenAI'], ['anthropic', 'Anthropic'], ['gemini', 'Gemini'], ['openai-compatible', 'OpenAI-compatible (self-hosted)']];

export async function providersView() {
  const providers = await listAll('/providers');
  const cols = [
    { label: 'Name', cell: (p) => p.name },
    { label: 'Kind', cell: (p) => p.kind },
    { label: 'Base URL', cell: (p) => h('code', { class: 'wrap' }, p.base_url) },
    { label: 'Credential', cell: (p) => (p.has_api_key ? badge('stored, sealed', 'ok') : badge('none', 'neutral')) },
    { label: 'Timeouts (connect / first byte / total)', cell: (p) => [p.connect_timeout_ms, p.first_byte_timeout_ms, p.total_timeout_ms].map((v) => (v ? `${v} ms` : 'default')).join(' / ') },
    { label: 'Created', cell: (p) => fmtTime(p.created_at) },
  ];
  return h('section', null,
    pageHeader('Providers', {
      subtitle: 'Upstream APIs. Credentials are write-only and sealed at rest.',
      actions: ctx.platform ? [button('New provider', async () => {
        const saved = await formDialog('New provider', [
          { name: 'name', label: 'Name', required: true },
          { name: 'kind', label: 'Kind', type: 'select', value: 'openai', options: KINDS },
          { name: 'base_url', label: 'Base URL', required: true, placeholder: 'https://api.openai.com/v1' },
          { name: 'api_key', label: 'API key', type: 'password', autocomplete: 'new-password', help: 'Write-only: never shown again.' },
          { name: 'connect_timeout_ms', label: 'Connect timeout (ms)', type: 'number', min: 0, help: 'Empty = default' },
          { name: 'first_byte_timeout_ms', label: 'First byte timeout (ms)', type: 'number', min: 0, help: 'Empty = default' },
        ], { submitLabel: 'Create provider', onSubmit: (v) => api.post('/providers', v) });
        if (saved) { toast(`Provider ${saved.name} created.`); refresh(); }
      }, { kind: 'primary' })] : [],
    }),
    table(cols, providers, { empty: 'No providers yet.', caption: 'Providers' }));
}

function currentPrice(m) {
  const now = Date.now() / 1000;
  const live = (m.prices || []).filter((p) => (p.valid_from || 0) <= now).sort((a, b) => (b.valid_from || 0) - (a.valid_from || 0));
  return live[0] || null;
}

export async function modelsView() {
  const [models, providers] = await Promise.all([
    listAll('/models'),
    ctx.platform ? listAll('/providers') : Promise.resolve([]),
  ]);
  const pname = new Map(providers.map((p) => [p.id, p.name]));
  const cols = [
    { label: 'Model', cell: (m) => h('code', null, m.id) },
    { label: 'Provider', cell: (m) => pname.get(m.provider_id) || m.provider_id },
    { label: 'Upstream name', cell: (m) => m.upstream_name },
    { label: 'Context', class: 'num', cell: (m) => (m.context_window ? m.context_window.toLocaleString('en-US') : '—') },
    { label: 'Capabilities', cell: (m) => (m.capabilities || []).map((c) => badge(c, 'neutral')) },
    { label: 'Cluster limits', cell: (m) => (m.rpm || m.tpm ? `RPM ${fmtLimit(m.rpm)} · TPM ${fmtLimit(m.tpm)}` : h('span', { class: 'muted' }, 'none')) },
    { label: 'Price in / out per 1M tokens', class: 'num', cell: (m) => { const p = currentPrice(m); return p ? `${fmtUsd(p.input_per_mtok)} / ${fmtUsd(p.output_per_mtok)}` : h('span', { class: 'muted' }, 'no price'); } },
  ];
  return h('section', null,
    pageHeader('Models', {
      subtitle: 'The names clients ask for, their upstream and their dated prices.',
      actions: ctx.platform ? [button('New model', async () => {
        if (!providers.length) { toast('Create a provider first.', 'error'); return; }
        const saved = await formDialog('New model', [
          { name: 'id', label: 'Model id', required: true, placeholder: 'gpt-4o', help: 'The name clients use.' },
          { name: 'provider_id', label: 'Provider', type: 'select', value: providers[0].id, options: providers.map((p) => [p.id, p.name]) },
          { name: 'upstream_name', label: 'Upstream name', required: true, help: 'The provider\'s own name for it.' },
          { name: 'context_window', label: 'Context window (tokens)', type: 'number', min: 0 },
          { name: 'capabilities', label: 'Capabilities', list: true, placeholder: 'chat, tools, vision', help: 'chat, embeddings, tools, vision, json_schema' },
          { name: 'prices[0].input_per_mtok', label: 'Price per 1M input tokens (USD)', type: 'number', min: 0, step: 'any', required: true },
          { name: 'prices[0].output_per_mtok', label: 'Price per 1M output tokens (USD)', type: 'number', min: 0, step: 'any', required: true },
          { name: 'prices[0].cached_input_per_mtok', label: 'Price per 1M cached input tokens (USD)', type: 'number', min: 0, step: 'any' },
        ], { submitLabel: 'Create model', onSubmit: (v) => api.post('/models', v), wide: true });
        if (saved) { toast(`Model ${saved.id} created.`); refresh(); }
      }, { kind: 'primary' })] : [],
    }),
    table(cols, models, { empty: 'No models yet.', caption: 'Models' }));
}
