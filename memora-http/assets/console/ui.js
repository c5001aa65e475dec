// Small DOM helpers. Server text only ever becomes text nodes or attribute
// values (never markup parsed from a string), so nothing the API returns
// can run as markup; the Content-Security-Policy forbids inline script on
// top of that.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h('button', {class: 'x', onclick}, 'text', child…) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Text that may be Arabic or English: the browser picks the direction. */
export function t(text, tag = 'span', attrs = {}) {
  return h(tag, { dir: 'auto', ...attrs }, text ?? '');
}

/** A page heading that receives focus after navigation. */
export function heading(text) {
  return h('h1', { tabindex: '-1', id: 'page-title' }, text);
}

/** A table: columns [{label, cell: row => Node|string}]. */
export function table(caption, columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h(
        'tbody',
        {},
        rows.map((r) =>
          h(
            'tr',
            {},
            columns.map((c) => h('td', { 'data-label': c.label }, c.cell(r))),
          ),
        ),
      ),
    ),
  );
}

/** An error message for a failed call (role=alert: read out at once). */
export function errorBox(err) {
  const type = err && err.type ? err.type + ': ' : '';
  return h('p', { class: 'error', role: 'alert' }, type + (err && err.message ? err.message : String(err)));
}

let toastTimer = null;
/** A short status message in the live region. */
export function toast(message) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 4000);
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || 'f-' + Math.random().toString(36).slice(2, 9);
  input.id = id;
  const hintEl = hint ? h('small', { id: id + '-hint' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', id + '-hint');
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

/** Runs `fn` with the button disabled; shows the error next to it. */
export async function busy(button, fn, errorSlot) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (errorSlot) errorSlot.replaceChildren();
  try {
    return await fn();
  } catch (e) {
    if (errorSlot) errorSlot.replaceChildren(errorBox(e));
    else toast('Failed: ' + e.message);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function yesNo(b) {
  return b ? 'yes' : 'no';
}

/**
 * A bar chart as inline SVG (no library): bars [{label, value}].
 * The SVG has a title and a text alternative listing the values.
 */
export function barChart(title, bars, { unit = '', height = 160, values = true } = {}) {
  const width = 420;
  const pad = { top: 16, bottom: 34, left: 8, right: 8 };
  const max = Math.max(1, ...bars.map((b) => b.value));
  const slot = (width - pad.left - pad.right) / Math.max(1, bars.length);
  const inner = height - pad.top - pad.bottom;
  const id = 'chart-' + Math.random().toString(36).slice(2, 9);
  const summary = bars.map((b) => b.label + ': ' + b.value + unit).join(', ');
  return h(
    'figure',
    { class: 'chart' },
    s(
      'svg',
      { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': id, class: 'chart-svg' },
      s('title', { id }, title + ' — ' + summary),
      bars.map((b, i) => {
        const bh = Math.round((b.value / max) * inner);
        const x = pad.left + i * slot + slot * 0.15;
        const y = pad.top + inner - bh;
        return s(
          'g',
          {},
          s('rect', { x, y, width: slot * 0.7, height: Math.max(bh, 1), class: b.highlight ? 'bar hl' : 'bar', rx: 3 }),
          values ? s('text', { x: x + slot * 0.35, y: y - 4, class: 'bar-value', 'text-anchor': 'middle' }, String(b.value)) : null,
          s('text', { x: x + slot * 0.35, y: height - 12, class: 'bar-label', 'text-anchor': 'middle' }, b.label),
        );
      }),
      s('line', { x1: pad.left, x2: width - pad.right, y1: pad.top + inner, y2: pad.top + inner, class: 'axis' }),
    ),
    h('figcaption', {}, title),
  );
}

/** A random id for review answers (idempotency keys). */
export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
