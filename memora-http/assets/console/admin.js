// System Manager pages. Each action is one API call; destructive ones need
// a typed confirmation (archive, retention, discarding) before the button
// is enabled, and the server still checks role, CSRF and `confirm=true`.

import * as api from './api.js';
import { h, t, heading, table, errorBox, toast, busy, field, fmtDate, yesNo, barChart } from './ui.js';

/** A long server id, small and wrappable. */
function idCell(id) {
  return h('code', { class: 'id' }, id);
}

function button(label, attrs = {}) {
  return h('button', { type: 'button', ...attrs }, label);
}

function refreshButton(onclick) {
  const b = button('Refresh', { class: 'small' });
  b.addEventListener('click', onclick);
  return b;
}

function section(id, title, ...children) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function kv(pairs) {
  return h(
    'dl',
    { class: 'kv' },
    pairs.map(([k, v, id]) => [h('dt', {}, k), h('dd', id ? { id } : {}, v instanceof Node ? v : String(v))]),
  );
}

// ---- purchases ---------------------------------------------------------------

export async function purchases(main) {
  const filter = h(
    'select',
    { id: 'purchase-filter' },
    ['Pending', 'Approved', 'Rejected', ''].map((s) => h('option', { value: s }, s || 'All')),
  );
  const slot = h('div', { id: 'purchases' });
  const err = h('div');
  const load = async () => {
    const args = filter.value ? { status: filter.value } : {};
    try {
      const rows = await api.call('store.list_purchase_requests', args);
      slot.replaceChildren(
        table('Purchase requests', [
          { label: 'Request', cell: (r) => idCell(r.name) },
          { label: 'Learner', cell: (r) => t(r.user) },
          { label: 'Item', cell: (r) => r.sales_item },
          { label: 'Price', cell: (r) => String(r.price) },
          { label: 'Requested', cell: (r) => fmtDate(r.creation) },
          { label: 'Status', cell: (r) => h('span', { class: 'badge ' + r.status.toLowerCase() }, r.status) },
          {
            label: 'Decision',
            cell: (r) => {
              if (r.status !== 'Pending') return r.decided_by ? 'by ' + r.decided_by : '—';
              const ok = button('Approve', { class: 'primary small', 'aria-label': 'Approve ' + r.name + ' from ' + r.user, dataset: { approve: r.name } });
              const no = button('Reject', { class: 'danger small', 'aria-label': 'Reject ' + r.name + ' from ' + r.user, dataset: { reject: r.name } });
              ok.addEventListener('click', () =>
                busy(ok, async () => {
                  const res = await api.call('store.approve_purchase_request', { request_id: r.name });
                  toast('Approved ' + r.name + (res.subscription_id ? ': subscription ' + res.subscription_id : ''));
                  await load();
                }, err),
              );
              no.addEventListener('click', () =>
                busy(no, async () => {
                  await api.call('store.reject_purchase_request', { request_id: r.name });
                  toast('Rejected ' + r.name);
                  await load();
                }, err),
              );
              return h('span', { class: 'actions' }, ok, no);
            },
          },
        ], rows, 'No purchase requests.'),
        h('p', {}, h('a', { href: '#/admin/subscriptions' }, 'See subscriptions')),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  filter.addEventListener('change', load);
  main.replaceChildren(
    heading('Purchases'),
    h('div', { class: 'toolbar' }, field('Status', filter), refreshButton(load)),
    err,
    slot,
  );
  await load();
}

// ---- subscriptions -----------------------------------------------------------

export async function subscriptions(main) {
  const user = h('input', { type: 'search', placeholder: 'learner e-mail' });
  const status = h('select', {}, ['', 'active', 'suspended', 'expired'].map((s) => h('option', { value: s }, s || 'any')));
  const slot = h('div', { id: 'subscriptions' });
  const err = h('div');
  const more = button('More', { class: 'small', hidden: true });
  let after = null;
  let rows = [];
  const change = async (b, method, sub) => {
    await busy(b, async () => {
      await api.call('store.' + method, { subscription_id: sub.id });
      toast(method.replace('_subscription', '') + ': ' + sub.id);
      await load(true);
    }, err);
  };
  const render = () => {
    slot.replaceChildren(
      table('Subscriptions', [
        { label: 'Learner', cell: (r) => t(r.user) },
        { label: 'Season', cell: (r) => r.season },
        { label: 'Kind', cell: (r) => r.kind },
        { label: 'Grants', cell: (r) => r.grants.map((g) => g.subject || g.track || g.type).join(', ') },
        { label: 'Status', cell: (r) => h('span', { class: 'badge ' + r.status }, r.status + (r.in_force ? ' · in force' : '')) },
        { label: 'Created', cell: (r) => fmtDate(r.created_at) },
        { label: 'Subscription / request', cell: (r) => [idCell(r.id), r.source_request ? [h('br'), idCell(r.source_request)] : null] },
        {
          label: 'Actions',
          cell: (r) => {
            const out = h('span', { class: 'actions' });
            if (r.status === 'active') {
              const b = button('Suspend', { class: 'small' });
              b.addEventListener('click', () => change(b, 'suspend_subscription', r));
              out.append(b);
            }
            if (r.status === 'suspended') {
              const b = button('Resume', { class: 'small' });
              b.addEventListener('click', () => change(b, 'resume_subscription', r));
              out.append(b);
            }
            if (r.status !== 'expired') {
              const b = button('Expire…', { class: 'danger small' });
              b.addEventListener('click', () => {
                if (window.confirm('Expire ' + r.id + ' for good? Access stops at once.')) change(b, 'expire_subscription', r);
              });
              out.append(b);
            }
            return out;
          },
        },
      ], rows, 'No subscriptions.'),
    );
    more.hidden = !after;
  };
  const load = async (reset = true) => {
    if (reset) {
      after = null;
      rows = [];
    }
    const args = { limit: 50 };
    if (user.value.trim()) args.user = user.value.trim();
    if (status.value) args.status = status.value;
    if (after) args.after = after;
    try {
      const page = await api.call('store.list_subscriptions', args);
      rows = rows.concat(page.subscriptions);
      after = page.next_after || null;
      render();
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { class: 'toolbar' }, field('Learner', user), field('Status', status), button('Filter', { type: 'submit', class: 'small' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(true);
  });
  main.replaceChildren(heading('Subscriptions'), form, err, slot, more);
  await load(true);
}

// ---- seasons and cache rebuild ---------------------------------------------

export async function seasons(main, ctx) {
  const slot = h('div', { id: 'seasons' });
  const err = h('div');
  const progress = h('div', { id: 'rebuild', 'aria-live': 'polite' });
  const rebuild = async (b, season) => {
    const job = await busy(b, () => api.call('srs.rebuild_season_cache', { season_name: season }), err);
    if (!job) return;
    const bar = h('progress', { id: 'rebuild-progress', max: 100, value: 0, 'aria-labelledby': 'rebuild-label' }, '0%');
    const label = h('span', { id: 'rebuild-label' }, 'Rebuilding ' + season + '…');
    const detail = h('span', { id: 'rebuild-detail', class: 'muted' });
    const box = h('div', { class: 'card', dataset: { job: job.job_id, status: job.status } }, h('h3', {}, 'Cache rebuild ' + job.job_id), label, bar, detail);
    progress.replaceChildren(box);
    let stopped = false;
    ctx.onLeave(() => {
      stopped = true;
    });
    const poll = async () => {
      if (stopped) return;
      try {
        const st = await api.call('srs.get_rebuild_status', { job_id: job.job_id });
        const total = Math.max(st.estimated_records, st.processed);
        let pct = total ? Math.floor((st.processed / total) * 100) : 0;
        if (st.status === 'completed') pct = 100;
        bar.value = pct;
        bar.textContent = pct + '%';
        box.dataset.status = st.status;
        label.textContent = season + ': ' + st.status + ' — ' + pct + ' %';
        detail.textContent = ' ' + st.processed + ' of ' + st.estimated_records + ' rows, ' + st.users + ' learners' + (st.error ? ' — ' + st.error : '');
        if (st.status === 'running') setTimeout(poll, 500);
        else toast('Rebuild ' + st.status);
      } catch (e) {
        box.append(errorBox(e));
      }
    };
    poll();
  };
  const load = async () => {
    try {
      const list = await api.call('admin.list_seasons');
      slot.replaceChildren(
        table('Seasons', [
          { label: 'Season', cell: (r) => r.season_name },
          { label: 'Title', cell: (r) => t(r.title) },
          { label: 'Dates', cell: (r) => r.start_date + ' → ' + r.end_date },
          { label: 'Scheduler', cell: (r) => r.scheduler },
          { label: 'State', cell: (r) => (r.archived ? 'archived' : r.is_active ? 'active' : 'inactive') },
          {
            label: 'Actions',
            cell: (r) => {
              const out = h('span', { class: 'actions' });
              if (!r.is_active && !r.archived) {
                const a = button('Activate', { class: 'small', dataset: { activate: r.season_name } });
                a.addEventListener('click', () =>
                  busy(a, async () => {
                    await api.call('admin.activate_season', { season_name: r.season_name });
                    toast(r.season_name + ' is now active');
                    await load();
                  }, err),
                );
                out.append(a);
              }
              if (!r.archived) {
                const b = button('Rebuild cache', { class: 'small', dataset: { rebuild: r.season_name } });
                b.addEventListener('click', () => rebuild(b, r.season_name));
                out.append(b);
              }
              return out;
            },
          },
        ], list, 'No seasons yet: create one below.'),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  const name = h('input', { required: true, pattern: 'SEASON-[0-9]{4}(-[A-Za-z0-9]+)?', placeholder: 'SEASON-2027' });
  const title = h('input', {});
  const start = h('input', { type: 'date', required: true });
  const end = h('input', { type: 'date', required: true });
  const sched = h('select', {}, h('option', { value: 'ladder' }, 'ladder'), h('option', { value: 'fsrs' }, 'FSRS-6'));
  const create = button('Create season', { type: 'submit', class: 'primary' });
  const createErr = h('div');
  const form = h(
    'form',
    { class: 'card form-grid', 'aria-labelledby': 'h-create' },
    h('h2', { id: 'h-create' }, 'New season'),
    field('Season id', name, 'SEASON-YYYY'),
    field('Title', title),
    field('Starts', start),
    field('Ends', end),
    field('Scheduler', sched),
    create,
    createErr,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(create, async () => {
      const args = { season_name: name.value.trim(), start_date: start.value, end_date: end.value, scheduler: sched.value };
      if (title.value.trim()) args.title = title.value.trim();
      await api.call('admin.create_season', args);
      toast('Created ' + args.season_name);
      form.reset();
      await load();
    }, createErr);
  });
  main.replaceChildren(heading('Seasons'), err, slot, progress, form);
  await load();
}

// ---- operations ------------------------------------------------------------

export async function operations(main, ctx) {
  const health = h('div', { id: 'ops-health' });
  const letters = h('div', { id: 'dead-letters' });
  const recon = h('div', { id: 'reconcile' });
  const jobs = h('div', { id: 'job-runs' });
  const err = h('div');
  const loadJobs = async () => {
    try {
      const page = await api.call('admin.get_job_runs', { limit: 1 });
      const rows = page.jobs.map((j) => ({ job: j.job, run: j.runs[0] || null }));
      jobs.replaceChildren(
        h('p', { class: 'muted' }, 'Each job runs once per period across every server process (this one: ', idCell(page.this_process), ').'),
        table('Scheduled jobs', [
          { label: 'Job', cell: (r) => r.job },
          { label: 'Last start', cell: (r) => (r.run ? fmtDate(r.run.started_at) : 'never') },
          { label: 'End', cell: (r) => (r.run ? (r.run.finished_at ? fmtDate(r.run.finished_at) : 'running or interrupted') : '—') },
          { label: 'Process', cell: (r) => (r.run ? idCell(r.run.holder) : '—') },
          { label: 'Run', cell: (r) => (r.run ? '#' + r.run.token : '—') },
          { label: 'Outcome', cell: (r) => t(r.run && r.run.outcome ? r.run.outcome : '—') },
        ], rows, 'No scheduled jobs.'),
      );
    } catch (e) {
      jobs.replaceChildren(errorBox(e));
    }
  };
  const loadHealth = async () => {
    try {
      const [cache, ready, m] = await Promise.all([api.call('srs.get_cache_status'), api.ready(), api.metrics()]);
      const hits = m ? m.get('memora_cache_hits_total') ?? 0 : null;
      const misses = m ? m.get('memora_cache_misses_total') ?? 0 : null;
      const rate = m && hits + misses > 0 ? Math.round((hits / (hits + misses)) * 1000) / 10 + ' %' : '—';
      const seasons = Object.entries(cache.keys_by_season || {}).map(([k, v]) => k + ': ' + v).join(', ') || '—';
      health.replaceChildren(
        h(
          'div',
          { class: 'tiles' },
          tile('Cache', cache.redis_connected ? 'Redis connected' : 'in-process (no Redis)', cache.redis_connected ? 'ok' : 'info', 'tile-cache'),
          tile('Safe mode', cache.is_safe_mode ? 'ON — reviews served from the database' : 'off', cache.is_safe_mode ? 'bad' : 'ok', 'tile-safe-mode'),
          tile('Write-behind queue', String(cache.queue_depth ?? '—') + ' pending', (cache.queue_depth || 0) > 1000 ? 'warn' : 'ok', 'tile-queue'),
          tile('Dead letters', String(cache.dead_letters ?? '—'), (cache.dead_letters || 0) > 0 ? 'bad' : 'ok', 'tile-dead'),
          tile(
            'Persistence lag',
            cache.persistence_lag_seconds == null ? 'unknown' : cache.persistence_lag_seconds.toFixed(1) + ' s',
            cache.persistence_lag_seconds == null ? 'info' : cache.persistence_lag_seconds > 60 ? 'bad' : cache.persistence_lag_seconds > 5 ? 'warn' : 'ok',
            'tile-lag',
          ),
          tile('Database', ready ? ready.database : 'unknown', ready && ready.database === 'ok' ? 'ok' : 'bad', 'tile-db'),
          tile('Cache hit rate', rate, 'info', 'tile-hits'),
        ),
        kv([
          ['Memory used', cache.memory_used_mb + ' MB'],
          ['Keys', cache.total_keys + ' (' + seasons + ')'],
          ['Hits / misses (rehydrations)', m ? hits + ' / ' + misses : '/metrics is protected or on another address'],
          ['Cache failures', m ? String(m.get('memora_cache_failures_total') ?? 0) : '—'],
          ['Requests served in safe mode', m ? String(m.get('memora_safe_mode_requests_total') ?? 0) : '—'],
          ['Breakers', ready && ready.breakers ? Object.entries(ready.breakers).map(([k, v]) => k + ' ' + v).join(', ') : '—'],
        ]),
      );
    } catch (e) {
      health.replaceChildren(errorBox(e));
    }
  };
  const loadLetters = async () => {
    try {
      const page = await api.call('srs.list_dead_letters', { limit: 100 });
      const all = button('Replay all', { class: 'small', disabled: page.total === 0 });
      all.addEventListener('click', () =>
        busy(all, async () => {
          const r = await api.call('srs.replay_dead_letters', { all: true });
          toast('Replayed ' + r.replayed);
          await Promise.all([loadLetters(), loadHealth()]);
        }, err),
      );
      letters.replaceChildren(
        h('p', {}, page.total + ' dead letter(s). ', all),
        table('Dead letters', [
          { label: 'Id', cell: (r) => idCell(r.id) },
          { label: 'Learner', cell: (r) => t(r.user ?? '—') },
          { label: 'Season', cell: (r) => r.season ?? '—' },
          { label: 'Answers', cell: (r) => String(r.records) },
          { label: 'Attempts', cell: (r) => String(r.attempts) },
          { label: 'Error', cell: (r) => t(r.error) },
          { label: 'Failed', cell: (r) => fmtDate(r.failed_at) },
          {
            label: '',
            cell: (r) => {
              const b = button('Replay', { class: 'small', 'aria-label': 'Replay ' + r.id });
              b.addEventListener('click', () =>
                busy(b, async () => {
                  await api.call('srs.replay_dead_letters', { dead_letter_id: r.id });
                  toast('Replayed ' + r.id);
                  await Promise.all([loadLetters(), loadHealth()]);
                }, err),
              );
              return b;
            },
          },
        ], page.dead_letters, 'No dead letters: every acknowledged answer was persisted or is queued.'),
      );
    } catch (e) {
      letters.replaceChildren(errorBox(e));
    }
  };
  const run = button('Run reconciliation', { class: 'primary', id: 'run-reconcile' });
  run.addEventListener('click', () =>
    busy(run, async () => {
      const r = await api.call('srs.trigger_reconciliation', {});
      recon.replaceChildren(
        h('p', { role: 'status', class: r.alert_triggered ? 'error' : 'ok' }, r.alert_triggered ? 'ALERT: discrepancy rate above 0.1 %' : 'Cache and database agree within the threshold.'),
        kv([
          ['Sampled', r.sample_size],
          ['Discrepancies', r.discrepancies_found + ' (' + (r.discrepancy_rate * 100).toFixed(3) + ' %)'],
          ['Corrected', r.auto_corrected],
          ['Kept (newer in cache)', r.kept_newer_in_cache],
          ['Not cached', r.not_cached],
          ['Cache-only found / removed', r.cache_only_found + ' / ' + r.cache_only_removed],
        ]),
      );
    }, recon),
  );
  main.replaceChildren(
    heading('Operations'),
    h('div', { class: 'toolbar' }, refreshButton(() => Promise.all([loadHealth(), loadLetters(), loadJobs()])), h('span', { class: 'muted' }, 'Refreshes every 5 s.')),
    err,
    section('h-health', 'Health', health),
    section('h-dead', 'Write-behind dead letters', letters),
    section('h-jobs', 'Scheduled jobs', jobs),
    section('h-recon', 'Reconciliation', h('p', { class: 'muted' }, 'Samples cache entries and database rows and corrects what disagrees.'), run, recon),
    h('p', {}, 'See also: ', h('a', { href: '#/admin/audit' }, 'audit log'), ', ', h('a', { href: '#/admin/seasons' }, 'season cache rebuild'), ', ', h('a', { href: '#/admin/archive' }, 'archive and retention'), '.'),
  );
  await Promise.all([loadHealth(), loadLetters(), loadJobs()]);
  const timer = setInterval(() => {
    loadHealth();
    loadJobs();
  }, 5000);
  ctx.onLeave(() => clearInterval(timer));
}

function tile(label, value, tone, id) {
  return h('div', { class: 'tile ' + tone, id }, h('span', { class: 'tile-label' }, label), h('strong', {}, value));
}

// ---- audit log ---------------------------------------------------------------

export async function audit(main) {
  const action = h('input', { type: 'search', placeholder: 'e.g. subscription.' });
  const actor = h('input', { type: 'search', placeholder: 'e-mail' });
  const slot = h('div', { id: 'audit' });
  const older = button('Older', { class: 'small', hidden: true });
  let before = null;
  let rows = [];
  const load = async (reset) => {
    if (reset) {
      rows = [];
      before = null;
    }
    const args = { limit: 50 };
    if (action.value.trim()) args.action = action.value.trim();
    if (actor.value.trim()) args.actor = actor.value.trim();
    if (before !== null) args.before = before;
    try {
      const page = await api.call('admin.get_audit_log', args);
      rows = rows.concat(page.events);
      before = page.next_before ?? null;
      slot.replaceChildren(
        table('Audit log', [
          { label: '#', cell: (r) => String(r.seq) },
          { label: 'When', cell: (r) => fmtDate(r.at) },
          { label: 'Who', cell: (r) => t(r.actor ?? '—') },
          { label: 'Action', cell: (r) => r.action },
          { label: 'Detail', cell: (r) => t(JSON.stringify(r.detail), 'code') },
        ], rows, 'No events match.'),
      );
      older.hidden = before === null;
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  older.addEventListener('click', () => load(false));
  const form = h('form', { class: 'toolbar' }, field('Action prefix', action), field('Actor', actor), button('Filter', { type: 'submit', class: 'small' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(true);
  });
  main.replaceChildren(heading('Audit log'), form, slot, older);
  await load(true);
}

// ---- content import --------------------------------------------------------

export async function content(main) {
  const file = h('input', { type: 'file', accept: 'application/json,.json', id: 'import-file' });
  const mode = h('select', { id: 'import-mode' }, h('option', { value: 'merge' }, 'merge (default)'), h('option', { value: 'replace' }, 'replace'));
  const preview = button('Preview changes (dry run)', { class: 'primary', id: 'import-preview' });
  const apply = button('Apply import', { class: 'danger', id: 'import-apply', disabled: true });
  const out = h('div', { id: 'import-result', 'aria-live': 'polite' });
  const err = h('div');
  let bundle = null;
  const version = await api.call('admin.get_catalog_version').catch(() => null);
  const read = async () => {
    const f = file.files && file.files[0];
    if (!f) throw new Error('Choose a JSON bundle first.');
    try {
      return JSON.parse(await f.text());
    } catch (e) {
      throw new Error('The file is not valid JSON: ' + e.message);
    }
  };
  const ids = (o) => Object.entries(o || {}).filter(([, v]) => v.length).map(([k, v]) => h('li', {}, k + ': ', t(v.join(', '))));
  const show = (r) => {
    const parts = [
      h('h3', {}, r.applied ? 'Imported — catalog version ' + r.version : 'Dry run — nothing written yet'),
      kv([
        ['Added', r.added_count],
        ['Changed', r.changed_count],
        ['Unpublished', r.unpublished_count],
        ['Catalog after', r.subjects + ' subjects, ' + r.lessons + ' lessons'],
      ]),
      r.added_count ? h('details', { open: true }, h('summary', {}, 'Added'), h('ul', {}, ids(r.added))) : null,
      r.changed_count ? h('details', { open: true }, h('summary', {}, 'Changed'), h('ul', {}, ids(r.changed))) : null,
      r.unpublished_count ? h('details', { open: true }, h('summary', {}, 'Unpublished'), h('ul', {}, ids(r.unpublished))) : null,
      r.errors.length
        ? h('div', { role: 'alert', class: 'error' }, h('strong', {}, r.errors.length + ' error(s) — fix the file before importing:'), h('ul', {}, r.errors.map((e) => t(e, 'li'))))
        : null,
    ];
    out.replaceChildren(...parts.filter(Boolean));
  };
  file.addEventListener('change', () => {
    apply.disabled = true;
    bundle = null;
    out.replaceChildren();
  });
  mode.addEventListener('change', () => {
    apply.disabled = true;
  });
  preview.addEventListener('click', () =>
    busy(preview, async () => {
      apply.disabled = true;
      bundle = await read();
      const r = await api.call('admin.import_content', { bundle, mode: mode.value, dry_run: true });
      show(r);
      apply.disabled = r.errors.length > 0;
    }, err),
  );
  apply.addEventListener('click', () =>
    busy(apply, async () => {
      const r = await api.call('admin.import_content', { bundle, mode: mode.value, dry_run: false });
      show(r);
      toast('Imported: catalog version ' + r.version);
      apply.disabled = true;
    }, err),
  );
  main.replaceChildren(
    heading('Content import'),
    h('p', { class: 'muted' }, 'Current catalog version: ' + (version ? version.version : '—') + '. Bundles are described in docs/CONTENT.md. A preview shows what would change; Apply is enabled only after a clean preview of the same file.'),
    h('div', { class: 'card form-grid' }, field('Bundle (JSON)', file), field('Mode', mode, 'replace unpublishes what the bundle leaves out'), h('div', { class: 'actions' }, preview, apply)),
    err,
    out,
  );
}

// ---- store items -------------------------------------------------------------

export async function storeItems(main) {
  const slot = h('div', { id: 'store-items' });
  const err = h('div');
  const load = async () => {
    try {
      const items = await api.call('store.list_store_items');
      slot.replaceChildren(
        table('Store items', [
          { label: 'Item', cell: (r) => r.id },
          { label: 'Name', cell: (r) => t(r.item_name) },
          { label: 'Season', cell: (r) => r.season },
          { label: 'Price', cell: (r) => String(r.price) + (r.discounted_price != null ? ' → ' + r.discounted_price : '') },
          { label: 'Contents', cell: (r) => r.contents.map((c) => c.subject || c.track || c.type).join(', ') },
          { label: 'On sale', cell: (r) => yesNo(r.is_active) },
          {
            label: '',
            cell: (r) => {
              if (!r.is_active) return '—';
              const b = button('Unpublish', { class: 'small' });
              b.addEventListener('click', () =>
                busy(b, async () => {
                  await api.call('store.unpublish_store_item', { item_id: r.id });
                  toast('Unpublished ' + r.id);
                  await load();
                }, err),
              );
              return b;
            },
          },
        ], items, 'No store items.'),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  main.replaceChildren(heading('Store items'), err, slot);
  await load();
}

// ---- users and API keys -------------------------------------------------------

export async function users(main) {
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const name = h('input', { required: true });
  const role = h('select', {}, h('option', { value: 'Student' }, 'Student'), h('option', { value: 'System Manager' }, 'System Manager'));
  const pwd = h('input', { type: 'password', autocomplete: 'new-password' });
  const create = button('Create user', { type: 'submit', class: 'primary' });
  const createOut = h('div', { 'aria-live': 'polite' });
  const userForm = h(
    'form',
    { class: 'card form-grid', 'aria-labelledby': 'h-user' },
    h('h2', { id: 'h-user' }, 'New user'),
    field('E-mail', email),
    field('Full name', name),
    field('Role', role),
    field('Password', pwd, 'Optional; 8+ characters and hard to guess. Without one, set it later with memora user set-password.'),
    create,
    createOut,
  );
  userForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(create, async () => {
      const args = { email: email.value.trim(), full_name: name.value.trim(), roles: [role.value] };
      if (pwd.value) args.password = pwd.value;
      const u = await api.call('admin.create_user', args);
      createOut.replaceChildren(h('p', { class: 'ok', role: 'status' }, 'Created ', t(u.name), ' (' + u.roles.join(', ') + ').'));
      userForm.reset();
    }, createOut);
  });
  const keyUser = h('input', { type: 'email', required: true });
  const mk = button('Create API key', { type: 'submit', class: 'primary' });
  const keyOut = h('div', { 'aria-live': 'polite' });
  const keyForm = h(
    'form',
    { class: 'card form-grid', 'aria-labelledby': 'h-key' },
    h('h2', { id: 'h-key' }, 'API key'),
    field('For user', keyUser),
    mk,
    keyOut,
  );
  keyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(mk, async () => {
      const k = await api.call('admin.create_api_key', { user: keyUser.value.trim() });
      keyOut.replaceChildren(
        h('p', { role: 'status' }, 'Copy the secret now: it is shown once.'),
        kv([
          ['Authorization', h('code', {}, 'token ' + k.api_key + ':' + k.api_secret)],
        ]),
      );
    }, keyOut);
  });
  main.replaceChildren(heading('Users and API keys'), h('div', { class: 'grid' }, userForm, keyForm));
}

// ---- archive and retention -------------------------------------------------------

export async function archive(main) {
  const list = await api.call('admin.list_seasons');
  const season = h('select', { id: 'archive-season' }, list.map((s) => h('option', { value: s.season_name }, s.season_name + (s.is_active ? ' (active)' : s.archived ? ' (archived)' : ''))));
  const status = h('div', { id: 'archive-status' });
  const err = h('div');
  const typed = h('input', { id: 'archive-confirm', autocomplete: 'off' });
  const go = button('Archive season', { class: 'danger', disabled: true, id: 'archive-go' });
  const typedDel = h('input', { id: 'retention-confirm', autocomplete: 'off' });
  const del = button('Delete eligible archived records', { class: 'danger', disabled: true, id: 'retention-go' });
  const loadStatus = async () => {
    if (!season.value) return;
    try {
      const s = await api.call('srs.get_archive_status', { season_name: season.value });
      status.replaceChildren(
        kv([
          ['Active', yesNo(s.is_active)],
          ['Archived', yesNo(s.archived)],
          ['Ends', s.end_date],
          ['Live records', s.active_records],
          ['Archived records', s.archived_records],
          ['Past retention (deletable)', s.eligible_for_deletion],
        ]),
      );
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  const sync = () => {
    go.disabled = typed.value !== season.value || !season.value;
    del.disabled = typedDel.value !== 'DELETE ' + season.value;
  };
  season.addEventListener('change', () => {
    typed.value = '';
    typedDel.value = '';
    sync();
    loadStatus();
  });
  typed.addEventListener('input', sync);
  typedDel.addEventListener('input', sync);
  go.addEventListener('click', () =>
    busy(go, async () => {
      const r = await api.call('srs.archive_season', { season_name: season.value, confirm: true });
      toast('Archived ' + r.records_archived + ' records of ' + r.season);
      typed.value = '';
      await loadStatus();
    }, err).then(sync),
  );
  del.addEventListener('click', () =>
    busy(del, async () => {
      const r = await api.call('srs.delete_eligible_archived_records', { season_name: season.value, confirm: true });
      toast('Deleted ' + r.deleted_count + ' archived records');
      typedDel.value = '';
      await loadStatus();
    }, err).then(sync),
  );
  main.replaceChildren(
    heading('Archive and retention'),
    h('div', { class: 'toolbar' }, field('Season', season)),
    section('h-arch-status', 'Status', status),
    err,
    section(
      'h-arch',
      'Archive a finished season',
      h('p', { class: 'muted' }, 'Moves its learner memory out of the live tables and drops its cache. The active season cannot be archived.'),
      field('Type the season id to confirm', typed),
      go,
    ),
    section(
      'h-ret',
      'Retention',
      h('p', { class: 'muted' }, 'Deletes archived records past their retention period. This cannot be undone.'),
      field('Type DELETE and the season id (e.g. “DELETE SEASON-2025”)', typedDel),
      del,
    ),
  );
  sync();
  await loadStatus();
}

// ---- learning insight ----------------------------------------------------------

export async function insight(main) {
  const days = h('select', { id: 'insight-days' }, [7, 30, 90].map((d) => h('option', { value: String(d), selected: d === 30 }, d + ' days')));
  const slot = h('div', { id: 'insight' });
  const pct = (x) => Math.round(x * 1000) / 10 + ' %';
  const load = async () => {
    slot.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await api.call('admin.get_learning_insight', { days: Number(days.value) });
      const forecast = r.due_forecast.map((d, i) => ({
        label: i % 5 === 0 ? d.day.slice(5) : '',
        value: d.total,
        highlight: i === 0,
      }));
      const subjects = [...new Set(r.due_forecast.flatMap((d) => d.by_subject.map((b) => b.subject ?? '—')))];
      const week = r.due_forecast.slice(0, 7);
      const intervalLabel = (b) => (b.up_to_days == null ? '> 365 d' : '≤ ' + b.up_to_days + ' d');
      slot.replaceChildren(
        section('h-forecast', 'Due load (next ' + r.due_forecast.length + ' days)',
          barChart('Cards due per day (today includes the overdue)', forecast, { values: false }),
          table('Due per subject, next 7 days', [
            { label: 'Subject', cell: (sub) => t(sub) },
            ...week.map((d) => ({
              label: d.day.slice(5),
              cell: (sub) => String((d.by_subject.find((b) => (b.subject ?? '—') === sub) || { cards: 0 }).cards),
            })),
          ], subjects, 'Nothing is due.'),
        ),
        section('h-per-day', 'Answers per day',
          barChart('Answers per day', r.reviews_per_day.map((d) => ({ label: d.day.slice(5), value: d.answers })), { values: r.reviews_per_day.length <= 14 }),
          table('Answers per day', [
            { label: 'Day', cell: (d) => d.day },
            { label: 'Answers', cell: (d) => String(d.answers) },
            { label: 'Correct', cell: (d) => pct(d.answers ? d.correct / d.answers : 0) },
          ], r.reviews_per_day.slice().reverse(), 'No answers in this period.'),
        ),
        section('h-intervals', 'Scheduled intervals',
          barChart('Live cards by scheduled interval', r.intervals.map((b) => ({ label: intervalLabel(b), value: b.cards })))),
        section('h-calibration', 'FSRS calibration',
          h('p', { class: 'muted', id: 'calibration-summary' },
            r.calibration_answers
              ? r.calibration_answers + ' FSRS reviews of ' + r.calibration_learners + ' sampled learners; mean gap between predicted and observed recall ' + pct(r.calibration_error ?? 0) + '.'
              : 'No FSRS-scheduled reviews with a previous review yet in ' + r.calibration_learners + ' sampled learners (ladder seasons have no recall prediction).'),
          table('Predicted against observed recall', [
            { label: 'Predicted', cell: (b) => pct(b.from) + '–' + pct(b.to) },
            { label: 'Answers', cell: (b) => String(b.answers) },
            { label: 'Mean predicted', cell: (b) => pct(b.predicted) },
            { label: 'Observed', cell: (b) => pct(b.observed) },
          ], r.calibration, 'No data yet.'),
        ),
        section('h-fits', 'Per-learner FSRS fits',
          r.fits.fitted
            ? kv([
                ['Learners fitted', r.fits.fitted, 'fits-fitted'],
                ['Own parameters better than the defaults', r.fits.improved],
                ['Fell back to the defaults', r.fits.fell_back],
                ['Mean log loss, defaults → own', r.fits.mean_loss_before == null ? 'not enough reviews to evaluate' : r.fits.mean_loss_before.toFixed(4) + ' → ' + r.fits.mean_loss_after.toFixed(4)],
              ])
            : h('p', { class: 'muted', id: 'fits-fitted' }, 'No learner has been fitted yet (the nightly re-fit needs ' + 'enough reviews per learner).'),
        ),
        h('p', { class: 'muted' }, 'Season ' + r.season + ', computed ' + fmtDate(r.at) + '.'),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  days.addEventListener('change', load);
  main.replaceChildren(
    heading('Learning insight'),
    h('div', { class: 'field inline' }, h('label', { for: 'insight-days' }, 'Period'), days),
    slot,
  );
  await load();
}

// ---- institution (every manager) and institutions (the platform operator) ----

/** The caller's institution: its device policy, and (outside the home
 *  institution) adopting subjects of the shared library. */
export async function institution(main, ctx) {
  const mine = ctx.state.institution || (await api.call('platform.get_my_institution'));
  const policy = await api.call('admin.get_device_policy');
  const max = h('input', { type: 'number', min: '1', max: '1000', value: String(policy.max_devices), id: 'policy-max', required: true });
  const onLimit = h(
    'select',
    { id: 'policy-on-limit' },
    [['sign-out-oldest', 'Sign the least recently active device out'], ['refuse', 'Refuse the new device']].map(([v, label]) =>
      h('option', { value: v, selected: v === policy.on_limit }, label),
    ),
  );
  const policyOut = h('div', { 'aria-live': 'polite', id: 'policy-out' });
  const source = h('span', { id: 'policy-source' }, policy.source === 'institution' ? 'this institution’s own' : 'the server default');
  const save = button('Save policy', { type: 'submit', class: 'primary', id: 'policy-save' });
  const reset = button('Use the server default', { id: 'policy-reset' });
  const policyForm = h(
    'form',
    { class: 'card form-grid', 'aria-labelledby': 'h-policy' },
    h('h2', { id: 'h-policy' }, 'Devices per learner'),
    h('p', { class: 'muted' }, 'In force: ', source, '. Every server applies a change within a second.'),
    field('Most devices', max),
    field('One more device', onLimit),
    h('span', { class: 'actions' }, save, reset),
    policyOut,
  );
  const show = (p) => {
    source.textContent = p.source === 'institution' ? 'this institution’s own' : 'the server default';
    max.value = String(p.max_devices);
    onLimit.value = p.on_limit;
    policyOut.replaceChildren(h('p', { class: 'ok', role: 'status' }, 'Saved: at most ' + p.max_devices + ' devices, then ' + p.on_limit + '.'));
  };
  policyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, async () => show(await api.call('admin.set_device_policy', { max_devices: Number(max.value), on_limit: onLimit.value })), policyOut);
  });
  reset.addEventListener('click', () => busy(reset, async () => show(await api.call('admin.set_device_policy', { reset: true })), policyOut));

  const parts = [
    heading(mine.name),
    kv([['Institution', h('code', {}, mine.institution), 'institution-id'], ['Status', mine.status || 'active']]),
    h('div', { class: 'grid' }, policyForm),
  ];
  if (mine.institution !== 'default') {
    const subjects = h('input', { id: 'adopt-subjects', placeholder: 'science, history (empty: every subject)' });
    const preview = button('Preview', { type: 'submit', class: 'primary', id: 'adopt-preview' });
    const apply = button('Adopt', { id: 'adopt-apply', disabled: true });
    const out = h('div', { 'aria-live': 'polite', id: 'adopt-out' });
    const args = () => ({ subjects: subjects.value.split(',').map((x) => x.trim()).filter(Boolean) });
    const report = (r) =>
      kv([
        ['Subjects added', (r.added.subjects || []).join(', ') || '—'],
        ['Lessons added', String((r.added.lessons || []).length)],
        ['Entities changed', String(r.changed_count)],
        ['Catalog version', String(r.version)],
      ]);
    const form = h(
      'form',
      { class: 'card form-grid', 'aria-labelledby': 'h-adopt' },
      h('h2', { id: 'h-adopt' }, 'Shared library'),
      h('p', { class: 'muted' }, 'Copy subjects of the platform’s shared library into this institution’s catalog. The copy is yours: hide, reorder or extend it with a content import. Adopting again brings back the library’s version.'),
      field('Subjects', subjects),
      h('span', { class: 'actions' }, preview, apply),
      out,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(preview, async () => {
        const r = await api.call('admin.adopt_shared_content', { ...args(), dry_run: true });
        const problems = r.errors || [];
        out.replaceChildren(
          h('p', { role: 'status' }, problems.length ? 'The import would be refused:' : 'Preview (nothing written yet):'),
          problems.length ? h('ul', { class: 'error' }, problems.map((e) => h('li', {}, e))) : report(r),
        );
        apply.disabled = problems.length > 0;
      }, out);
    });
    apply.addEventListener('click', () =>
      busy(apply, async () => {
        const r = await api.call('admin.adopt_shared_content', args());
        out.replaceChildren(h('p', { class: 'ok', role: 'status' }, 'Adopted.'), report(r));
        apply.disabled = true;
      }, out),
    );
    parts[2].append(form);
  }
  main.replaceChildren(...parts);
}

/** The platform operator: every institution, create, suspend, resume. */
export async function institutions(main) {
  const slot = h('div', { id: 'institutions' });
  const err = h('div');
  const load = async () => {
    const list = await api.call('platform.get_institutions');
    slot.replaceChildren(
      table('Institutions', [
        { label: 'Institution', cell: (i) => idCell(i.institution) },
        { label: 'Name', cell: (i) => t(i.name) },
        { label: 'Status', cell: (i) => h('span', { class: 'badge ' + (i.status === 'active' ? 'approved' : 'rejected') }, i.status) },
        { label: 'Created', cell: (i) => fmtDate(i.created_at) },
        {
          label: '',
          cell: (i) => {
            if (i.institution === 'default') return 'home';
            const suspend = i.status === 'active';
            const b = button(suspend ? 'Suspend' : 'Resume', {
              class: (suspend ? 'danger' : 'primary') + ' small',
              'aria-label': (suspend ? 'Suspend ' : 'Resume ') + i.institution,
              dataset: { institution: i.institution },
            });
            b.addEventListener('click', () =>
              busy(b, async () => {
                await api.call(suspend ? 'platform.suspend_institution' : 'platform.resume_institution', { institution: i.institution });
                toast((suspend ? 'Suspended ' : 'Resumed ') + i.institution);
                await load();
              }, err),
            );
            return b;
          },
        },
      ], list),
    );
  };
  const id = h('input', { id: 'inst-id', required: true, pattern: '[a-z][a-z0-9-]{1,31}', autocomplete: 'off' });
  const name = h('input', { id: 'inst-name', required: true });
  const manager = h('input', { id: 'inst-manager', type: 'email', required: true, autocomplete: 'off' });
  const managerName = h('input', { id: 'inst-manager-name', required: true });
  const pwd = h('input', { id: 'inst-manager-password', type: 'password', required: true, autocomplete: 'new-password' });
  const create = button('Create institution', { type: 'submit', class: 'primary', id: 'inst-create' });
  const out = h('div', { 'aria-live': 'polite', id: 'inst-out' });
  const form = h(
    'form',
    { class: 'card form-grid', 'aria-labelledby': 'h-new-inst' },
    h('h2', { id: 'h-new-inst' }, 'New institution'),
    field('Id', id, '2–32 characters: a–z, 0–9 and -, starting with a letter.'),
    field('Name', name),
    field('Manager e-mail', manager, 'Unique across the platform; signs in with no institution to choose.'),
    field('Manager name', managerName),
    field('Manager password', pwd),
    create,
    out,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(create, async () => {
      const i = await api.call('platform.create_institution', {
        institution: id.value.trim(),
        name: name.value.trim(),
        manager: manager.value.trim(),
        manager_full_name: managerName.value.trim(),
        manager_password: pwd.value,
      });
      out.replaceChildren(h('p', { class: 'ok', role: 'status' }, 'Created ', t(i.institution), '; its manager can sign in now.'));
      form.reset();
      await load();
    }, out);
  });
  main.replaceChildren(heading('Institutions'), err, h('section', { class: 'card' }, slot), form);
  await load();
}
