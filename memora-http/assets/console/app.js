// Entry point: session, role-aware navigation and hash routing.
//
// Pages are hash routes (#/review, #/admin/seasons), so the server serves
// one shell. The navigation shows only the pages of the caller's role; an
// admin route opened by a student renders a refusal and calls nothing (the
// server would refuse the calls anyway: roles are enforced there).

import * as api from './api.js';
import { h, heading, errorBox, field, busy, t } from './ui.js';
import * as learner from './learner.js';
import * as admin from './admin.js';

const ADMIN_ROLE = 'System Manager';

const LEARNER_PAGES = [
  { path: '/', title: 'Today', render: learner.home },
  { path: '/review', title: 'Review', render: learner.review },
  { path: '/leaderboard', title: 'Leaderboard', render: learner.leaderboard },
  { path: '/store', title: 'Store', render: learner.store },
  { path: '/devices', title: 'Devices', render: learner.devices },
];

const ADMIN_PAGES = [
  { path: '/admin/operations', title: 'Operations', render: admin.operations },
  { path: '/admin/insight', title: 'Insight', render: admin.insight },
  { path: '/admin/purchases', title: 'Purchases', render: admin.purchases },
  { path: '/admin/subscriptions', title: 'Subscriptions', render: admin.subscriptions },
  { path: '/admin/seasons', title: 'Seasons', render: admin.seasons },
  { path: '/admin/content', title: 'Content', render: admin.content },
  { path: '/admin/store', title: 'Store items', render: admin.storeItems },
  { path: '/admin/users', title: 'Users', render: admin.users },
  { path: '/admin/archive', title: 'Archive', render: admin.archive },
  { path: '/admin/audit', title: 'Audit log', render: admin.audit },
  { path: '/admin/institution', title: 'Institution', render: admin.institution },
];

// The platform operator (a System Manager of the home institution) also
// manages the institutions.
const OPERATOR_PAGES = [
  { path: '/admin/institutions', title: 'Institutions', render: admin.institutions },
];

const state = { user: null, name: '', roles: [], isAdmin: false, institution: null };
// Pages register timers here; they are stopped when the page changes.
let cleanups = [];

function onLeave(fn) {
  cleanups.push(fn);
}

function currentPath() {
  const p = location.hash.replace(/^#/, '');
  return p.startsWith('/') ? p : '/';
}

export function go(path) {
  if (currentPath() === path) route();
  else location.hash = '#' + path;
}

function isOperator() {
  return state.isAdmin && state.institution && state.institution.institution === 'default';
}

function pages() {
  if (!state.isAdmin) return LEARNER_PAGES;
  return isOperator() ? ADMIN_PAGES.concat(OPERATOR_PAGES) : ADMIN_PAGES;
}

function renderNav() {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!state.user) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const path = currentPath();
  nav.replaceChildren(
    h(
      'ul',
      {},
      pages().map((p) =>
        h(
          'li',
          {},
          h('a', { href: '#' + p.path, 'aria-current': p.path === path ? 'page' : false }, p.title),
        ),
      ),
    ),
  );
  const out = h('button', { type: 'button', class: 'link', id: 'logout' }, 'Sign out');
  out.addEventListener('click', async () => {
    await api.logout().catch(() => {});
    state.user = null;
    learner.resetStats();
    go('/');
    route();
  });
  who.replaceChildren(
    t(state.name || state.user, 'span', { class: 'who-name' }),
    t(state.institution ? state.institution.name : '', 'span', { class: 'role', id: 'institution-name' }),
    h('span', { class: 'role', id: 'role' }, state.isAdmin ? ADMIN_ROLE : 'Student'),
    out,
  );
}

function loginPage(main) {
  const err = h('div', { id: 'login-error' });
  const usr = h('input', { type: 'email', name: 'usr', autocomplete: 'username', required: true, id: 'login-usr' });
  const pwd = h('input', { type: 'password', name: 'pwd', autocomplete: 'current-password', required: true, id: 'login-pwd' });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'page-title' },
    field('E-mail', usr),
    field('Password', pwd),
    submit,
    err,
    h('p', { class: 'muted' }, 'Demo accounts: student@demo.memora and admin@demo.memora (password: MEMORA_DEMO_PASSWORD, or the one the server printed at start-up).'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      await api.login(usr.value.trim(), pwd.value);
      await loadSession();
      route();
    }, err);
  });
  main.replaceChildren(heading('Sign in to Memora'), form);
  usr.focus();
}

async function loadSession() {
  const user = await api.currentUser();
  if (!user) {
    state.user = null;
    return;
  }
  const info = await api.call('profile.get_player_login_info');
  state.user = user;
  state.name = info.full_name || user;
  state.roles = info.roles || [];
  state.isAdmin = state.roles.includes(ADMIN_ROLE);
  // Older servers have no institutions: the console then shows none.
  state.institution = await api.call('platform.get_my_institution').catch(() => null);
}

async function route() {
  for (const fn of cleanups.splice(0)) {
    try { fn(); } catch { /* a page's cleanup must not stop navigation */ }
  }
  const main = document.getElementById('main');
  const path = currentPath();
  main.dataset.route = path;
  main.setAttribute('aria-busy', 'true');
  try {
    if (!state.user) {
      learner.showStats(false);
      renderNav();
      loginPage(main);
      return;
    }
    renderNav();
    learner.showStats(!state.isAdmin);
    if (path.startsWith('/admin') && !state.isAdmin) {
      main.replaceChildren(
        heading('Not allowed'),
        h('p', { class: 'error', role: 'alert', id: 'refused' }, 'This page is for System Managers. Your account (' + state.user + ') cannot open it, and the server refuses its calls.'),
        h('p', {}, h('a', { href: '#/' }, 'Back to your learning')),
      );
      focusTitle();
      return;
    }
    let page = pages().find((p) => p.path === path);
    if (!page && state.isAdmin && path === '/') page = ADMIN_PAGES[0];
    if (!page) {
      main.replaceChildren(heading('Page not found'), h('p', {}, h('a', { href: '#/' }, 'Home')));
      focusTitle();
      return;
    }
    document.title = page.title + ' · Memora';
    main.replaceChildren(heading(page.title), h('p', { class: 'muted' }, 'Loading…'));
    focusTitle();
    const ctx = { state, go, onLeave, refreshStats: learner.refreshStats };
    await page.render(main, ctx);
    focusTitle();
  } catch (e) {
    main.append(errorBox(e));
  } finally {
    main.removeAttribute('aria-busy');
  }
}

function focusTitle() {
  const title = document.getElementById('page-title');
  if (title) title.focus({ preventScroll: false });
}

window.addEventListener('hashchange', route);

(async () => {
  try {
    await loadSession();
  } catch (e) {
    document.getElementById('main').replaceChildren(heading('Memora'), errorBox(e));
    return;
  }
  route();
})();
