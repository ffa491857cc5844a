// Forms and dialogs: labelled fields, values typed for the API, API errors
// shown next to the field they name (error.param), native <dialog> for focus
// handling and Escape.
import { h, clear } from './dom.js';
import { ApiError } from './api.js';

let seq = 0;

// spec: {name, label, type: text|number|password|select|checkbox|date|textarea,
//        value, options: [[value, label]], required, help, min, max, step,
//        placeholder, empty: 'omit'|'null'|'zero', list: true (comma list)}
export function field(spec) {
  const id = `f${++seq}`;
  const errId = `${id}-err`;
  const helpId = spec.help ? `${id}-help` : null;
  const describedBy = [helpId, errId].filter(Boolean).join(' ');
  let input;
  const common = { id, name: spec.name, 'aria-describedby': describedBy, required: spec.required };
  if (spec.type === 'select') {
    input = h('select', { ...common, value: spec.value ?? '' },
      spec.options.map(([v, l]) => h('option', { value: v }, l)));
  } else if (spec.type === 'checkbox') {
    input = h('input', { ...common, type: 'checkbox', checked: !!spec.value });
  } else if (spec.type === 'textarea') {
    input = h('textarea', { ...common, rows: 3, placeholder: spec.placeholder, value: spec.value ?? '' });
  } else {
    input = h('input', {
      ...common,
      type: spec.type || 'text',
      value: spec.value ?? '',
      min: spec.min, max: spec.max, step: spec.step,
      placeholder: spec.placeholder,
      autocomplete: spec.autocomplete || 'off',
      spellcheck: 'false',
    });
  }
  const error = h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' });
  const label = h('label', { for: id, class: spec.required ? 'required' : null }, spec.label);
  const wrap = spec.type === 'checkbox'
    ? h('div', { class: 'field field-check' }, h('div', { class: 'check-row' }, input, label),
      spec.help ? h('p', { class: 'help', id: helpId }, spec.help) : null, error)
    : h('div', { class: 'field' }, label, input,
      spec.help ? h('p', { class: 'help', id: helpId }, spec.help) : null, error);
  return { spec, input, error, wrap };
}

function readValue(f) {
  const { spec, input } = f;
  if (spec.type === 'checkbox') return input.checked;
  const raw = input.value.trim();
  if (raw === '') {
    if (spec.empty === 'null') return null;
    if (spec.empty === 'zero') return 0;
    if (spec.empty === 'empty') return spec.list ? [] : '';
    return undefined;
  }
  if (spec.type === 'number') return Number(raw);
  if (spec.type === 'date') return Math.floor(Date.parse(raw + 'T00:00:00Z') / 1000);
  if (spec.list) return raw.split(',').map((s) => s.trim()).filter(Boolean);
  return raw;
}

// Builds a <form> of fields. onSubmit(values) may throw an ApiError: its
// param is matched to a field (exact name, or the field the path starts
// with); anything else shows above the buttons.
export function form(specs, { submitLabel = 'Save', onSubmit, onCancel, extra } = {}) {
  const fields = specs.map(field);
  const formError = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, submitLabel);
  const el = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'fields' }, fields.map((f) => f.wrap)),
    extra || null,
    formError,
    h('div', { class: 'form-actions' },
      onCancel ? h('button', { type: 'button', class: 'btn', onClick: onCancel }, 'Cancel') : null,
      submit));

  function resetErrors() {
    formError.hidden = true;
    clear(formError);
    for (const f of fields) {
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
      f.wrap.classList.remove('has-error');
    }
  }

  function showError(err) {
    const param = err instanceof ApiError ? err.param : null;
    let target = null;
    if (param) {
      target = fields.find((f) => f.spec.name === param) ||
        fields.find((f) => param.startsWith(f.spec.name + '.') || param.startsWith(f.spec.name + '['));
    }
    if (target) {
      target.error.textContent = err.message;
      target.input.setAttribute('aria-invalid', 'true');
      target.wrap.classList.add('has-error');
      target.input.focus();
    } else {
      formError.hidden = false;
      formError.append(h('strong', null, 'Could not save. '), err.message,
        param ? h('span', { class: 'muted' }, ` (field: ${param})`) : null);
      formError.focus();
    }
  }

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    resetErrors();
    // Client-side checks only for what the browser knows for sure; the API
    // validates everything and names the field.
    for (const f of fields) {
      if (f.spec.required && f.spec.type !== 'checkbox' && f.input.value.trim() === '') {
        f.error.textContent = `${f.spec.label} is required.`;
        f.input.setAttribute('aria-invalid', 'true');
        f.wrap.classList.add('has-error');
        f.input.focus();
        return;
      }
    }
    const values = {};
    for (const f of fields) {
      if (f.spec.readOnly) continue;
      const v = readValue(f);
      if (v !== undefined) setPath(values, f.spec.name, v);
    }
    submit.disabled = true;
    el.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(values);
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
      el.removeAttribute('aria-busy');
    }
  });
  return { el, fields, showError };
}

// 'prices[0].input_per_mtok' -> values.prices[0].input_per_mtok
function setPath(obj, path, value) {
  const parts = path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '');
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = /^\d+$/.test(parts[i + 1]) ? [] : {};
    o[parts[i]] = o[parts[i]] ?? next;
    o = o[parts[i]];
  }
  o[parts[parts.length - 1]] = value;
}

function dialogShell(title, { wide = false } = {}) {
  const titleId = `d${++seq}`;
  const dlg = h('dialog', { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-labelledby': titleId });
  const body = h('div', { class: 'dialog-body' });
  dlg.append(h('header', { class: 'dialog-head' },
    h('h2', { id: titleId }, title),
    h('button', { type: 'button', class: 'btn-icon', 'aria-label': 'Close', onClick: () => dlg.close() }, '×')), body);
  document.body.append(dlg);
  dlg.addEventListener('close', () => dlg.remove());
  return { dlg, body };
}

// A dialog with a form; resolves with onSubmit's result, or null if closed.
export function formDialog(title, specs, { submitLabel = 'Save', onSubmit, intro, wide, setup } = {}) {
  return new Promise((resolve) => {
    const { dlg, body } = dialogShell(title, { wide });
    let result = null;
    const f = form(specs, {
      submitLabel,
      onCancel: () => dlg.close(),
      onSubmit: async (values) => {
        result = await onSubmit(values);
        dlg.close();
      },
    });
    if (intro) body.append(h('p', { class: 'dialog-intro' }, intro));
    body.append(f.el);
    if (setup) setup(Object.fromEntries(f.fields.map((x) => [x.spec.name, x.input])));
    dlg.addEventListener('close', () => resolve(result));
    dlg.showModal();
    const first = f.fields.find((x) => !x.input.disabled);
    if (first) first.input.focus();
  });
}

export function confirmDialog(title, message, { confirmLabel = 'Confirm', danger = false } = {}) {
  return new Promise((resolve) => {
    const { dlg, body } = dialogShell(title);
    let ok = false;
    const cancel = h('button', { type: 'button', class: 'btn', onClick: () => dlg.close() }, 'Cancel');
    body.append(h('p', null, message), h('div', { class: 'form-actions' }, cancel,
      h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', onClick: () => { ok = true; dlg.close(); } }, confirmLabel)));
    dlg.addEventListener('close', () => resolve(ok));
    dlg.showModal();
    cancel.focus();
  });
}

// Shows a secret once, with a copy button. The value lives only in this
// dialog's input and is dropped when it closes.
export function secretDialog(title, secret, note) {
  return new Promise((resolve) => {
    const { dlg, body } = dialogShell(title, { wide: true });
    const out = h('input', { type: 'text', readonly: true, class: 'secret', 'aria-label': 'Secret', value: secret });
    const status = h('span', { class: 'copy-status', role: 'status' });
    const copy = h('button', {
      type: 'button', class: 'btn btn-primary',
      onClick: async () => {
        try {
          await navigator.clipboard.writeText(out.value);
          status.textContent = 'Copied.';
        } catch {
          out.select();
          status.textContent = document.execCommand('copy') ? 'Copied.' : 'Select the text and copy it.';
        }
      },
    }, 'Copy');
    body.append(
      h('div', { class: 'callout callout-warn', role: 'note' },
        h('strong', null, 'Copy this secret now: you will not see it again. '), note),
      h('div', { class: 'secret-row' }, out, copy), status,
      h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'btn', onClick: () => dlg.close() }, 'I have stored it')));
    dlg.addEventListener('close', () => {
      out.value = '';
      resolve();
    });
    dlg.showModal();
    out.focus();
    out.select();
  });
}
