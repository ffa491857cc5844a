// The admin API client. The token lives in sessionStorage only (gone when
// the tab closes), travels only in the Authorization header, and is never
// logged or put in a URL.

const TOKEN_KEY = 'switchyard.adminToken';
const BASE = '/admin/v1';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthorized = null;
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// An error answer of the API: {error: {message, type, param, code}}.
export class ApiError extends Error {
  constructor(status, body, text) {
    const e = (body && body.error) || {};
    super(e.message || (text ? `HTTP ${status}: ${text.slice(0, 200)}` : `HTTP ${status}`));
    this.status = status;
    this.type = e.type || null;
    this.param = e.param || null;
    this.code = e.code || null;
  }
}

export async function request(method, path, body, { token = session.token() } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, { error: { message: `The control plane cannot be reached (${e.message}).`, type: 'network_error' } });
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (res.status === 401 && onUnauthorized && token === session.token()) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, json, text);
  return json;
}

export const api = {
  get: (p) => request('GET', p),
  post: (p, b) => request('POST', p, b ?? {}),
  patch: (p, b) => request('PATCH', p, b ?? {}),
  del: (p) => request('DELETE', p),
};

// '?a=1&b=x' from an object, skipping empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

// Every item of a list endpoint, following next_cursor (bounded).
export async function listAll(path, params = {}, max = 2000) {
  const out = [];
  let cursor = null;
  do {
    const page = await api.get(path + qs({ ...params, limit: 200, cursor }));
    out.push(...page.data);
    cursor = page.has_more ? page.next_cursor : null;
  } while (cursor && out.length < max);
  return out;
}
