// DOM helpers. Every value reaches the page as a text node or an attribute
// set through setAttribute: nothing from the API is ever parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function setProps(el, props) {
  let value;
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'value') value = v;
    else if (k === 'checked') el.checked = true;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP, unlike a style attribute
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  return value;
}

export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h('button', {class: 'btn', onClick: fn}, 'Save'): an element with
// attributes, listeners and text/element children.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  const value = setProps(el, props);
  append(el, children);
  if (value !== undefined) el.value = String(value); // after <option>s exist
  return el;
}

export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Formatting

const intFmt = new Intl.NumberFormat('en-US');
export const fmtInt = (n) => (n === undefined || n === null ? '—' : intFmt.format(n));

export function fmtUsd(n) {
  if (n === undefined || n === null) return '—';
  const digits = n !== 0 && Math.abs(n) < 1 ? 4 : 2;
  return '$' + n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: digits });
}

export function fmtTime(unixSeconds) {
  if (!unixSeconds) return '—';
  return new Date(unixSeconds * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function fmtTimeMs(ms) {
  if (!ms) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export const fmtLimit = (n) => (n ? intFmt.format(n) : 'unlimited');

export function badge(text, kind = 'neutral') {
  return h('span', { class: `badge badge-${kind}` }, text);
}

export function link(href, ...children) {
  return h('a', { href, 'data-link': true }, ...children);
}

// A data table: columns are {label, cell(row) -> node|string, class}.
export function table(columns, rows, { empty = 'Nothing here yet.', caption, footer } = {}) {
  if (!rows.length) return h('p', { class: 'empty-state' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data' },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', null, columns.map((c) => h('td', { class: c.class }, c.cell(r)))))),
      footer ? h('tfoot', null, h('tr', null, columns.map((c) => h('td', { class: c.class }, footer(c))))) : null));
}

export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast toast-${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}
