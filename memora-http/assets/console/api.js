// The console's only way to the server: the public method API, exactly as
// any client uses it (docs/API.md). Writes from a cookie session need the
// CSRF token that `login` and `get_logged_user` return; it is kept in memory
// only (never in storage), so a reload asks `get_logged_user` for it again.

let csrf = null;

/** An error answer of the API (Frappe's envelope: exc_type + exception). */
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function post(path, args) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (csrf) headers['x-frappe-csrf-token'] = csrf;
  let res;
  try {
    res = await fetch('/api/method/' + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers,
      body: JSON.stringify(args || {}),
    });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', 'The server cannot be reached (' + e.message + ').');
  }
  const token = res.headers.get('x-frappe-csrf-token');
  if (token) csrf = token;
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const type = (body && body.exc_type) || 'HTTPError';
    const message = (body && body.exception) || res.status + ' ' + res.statusText;
    throw new ApiError(res.status, type, message);
  }
  return body;
}

/** Calls `memora.api.<module>.<name>` (or a full `frappe.…` / `memora.…`
 *  path) and returns `message`. */
export async function call(name, args) {
  const path = /^(frappe|memora)\./.test(name) ? name : 'memora.api.' + name;
  const body = await post(path, args);
  return body && Object.prototype.hasOwnProperty.call(body, 'message') ? body.message : body;
}

/** Logs in; returns Frappe's flat login body. */
export async function login(usr, pwd) {
  csrf = null;
  const body = await post('login', { usr, pwd });
  if (body && body.csrf_token) csrf = body.csrf_token;
  return body;
}

/** Ends the session (the server clears the cookie). */
export async function logout() {
  try {
    await post('logout', {});
  } finally {
    csrf = null;
  }
}

/** The logged-in user, or null (also fetches the CSRF token). */
export async function currentUser() {
  try {
    return await call('frappe.auth.get_logged_user');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/** Prometheus text of /metrics as a map name{labels} → value, or null when
 *  the operator protected or moved it (MEMORA_METRICS_TOKEN / _BIND). */
export async function metrics() {
  try {
    const res = await fetch('/metrics', { credentials: 'same-origin' });
    if (!res.ok) return null;
    const out = new Map();
    for (const line of (await res.text()).split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return out;
  } catch {
    return null;
  }
}

/** /readyz: database and cache health (200 or 503, JSON either way). */
export async function ready() {
  try {
    const res = await fetch('/readyz', { credentials: 'same-origin' });
    return await res.json();
  } catch {
    return null;
  }
}
