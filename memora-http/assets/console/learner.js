// Learner pages: today (level, streak, XP, weekly activity, quests), a
// review session (cards, options, answer, next), the leaderboard and the
// store. The header's stats bar is refreshed from get_full_profile_stats
// after every answer, so XP, level and streak visibly move.

import * as api from './api.js';
import { h, t, heading, table, errorBox, toast, busy, barChart, randomId, fmtDate } from './ui.js';

// ---- stats bar -------------------------------------------------------------

export function showStats(visible) {
  const bar = document.getElementById('stats');
  if (bar) bar.hidden = !visible;
  if (visible) refreshStats();
}

export function resetStats() {
  const bar = document.getElementById('stats');
  if (bar) bar.replaceChildren();
}

function stat(id, label, value, extra) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), h('strong', { id }, String(value)), extra);
}

export async function refreshStats() {
  const bar = document.getElementById('stats');
  if (!bar) return null;
  try {
    const p = await api.call('profile.get_full_profile_stats');
    bar.replaceChildren(
      stat('xp', 'XP', p.totalXP),
      stat('level', 'Level', p.level, t(p.levelTitle, 'span', { class: 'stat-sub' })),
      stat('streak', 'Streak', p.streak + (p.streak === 1 ? ' day' : ' days')),
      h(
        'div',
        { class: 'stat grow' },
        h('label', { for: 'level-progress', class: 'stat-label' }, 'To level ' + (p.level + 1)),
        h('progress', { id: 'level-progress', max: 100, value: p.nextLevelProgress }, p.nextLevelProgress + '%'),
        h('span', { class: 'stat-sub' }, p.xpInLevel + ' / ' + (p.xpInLevel + p.xpToNextLevel) + ' XP'),
      ),
    );
    bar.dataset.xp = String(p.totalXP);
    return p;
  } catch (e) {
    bar.replaceChildren(errorBox(e));
    return null;
  }
}

// ---- today -------------------------------------------------------------

export async function home(main, ctx) {
  const [profile, quests, session] = await Promise.all([
    api.call('profile.get_full_profile_stats'),
    api.call('quests.get_daily_quests'),
    api.call('reviews.get_review_session', { limit: 1 }).catch(() => null),
  ]);
  const due = session ? session.total_due : null;
  const start = h('button', { type: 'button', class: 'primary', id: 'start-review' }, due ? 'Start review (' + due + ' due)' : 'Start review');
  start.addEventListener('click', () => ctx.go('/review'));
  const week = (profile.weeklyActivity || []).map((d) => ({ label: d.day, value: d.xp, highlight: d.isToday }));
  const m = profile.mastery || { new: 0, learning: 0, mature: 0 };
  main.replaceChildren(
    heading('Today'),
    h('p', { class: 'lead' }, 'Hello ', t(profile.fullName), '. ', due === null ? '' : due + ' cards are due for review.'),
    start,
    h(
      'div',
      { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-week' }, h('h2', { id: 'h-week' }, 'XP this week'), barChart('XP earned per day, last 7 days', week, { unit: ' XP' })),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'h-mastery' },
        h('h2', { id: 'h-mastery' }, 'Memory'),
        barChart('Cards by mastery', [
          { label: 'new', value: m.new },
          { label: 'learning', value: m.learning },
          { label: 'mature', value: m.mature },
        ]),
      ),
    ),
    h('section', { 'aria-labelledby': 'h-quests' }, h('h2', { id: 'h-quests' }, 'Daily quests'), questList(quests, ctx)),
  );
}

function questList(quests, ctx) {
  if (!quests.length) return h('p', { class: 'empty' }, 'No quests today.');
  return h(
    'ul',
    { class: 'quests', id: 'quests' },
    quests.map((q) => {
      const pct = q.target ? Math.min(100, Math.round((q.progress / q.target) * 100)) : 0;
      const pid = 'q-' + q.id;
      const claim = q.claimable
        ? h('button', { type: 'button', class: 'primary small' }, 'Claim ' + q.xp_reward + ' XP')
        : null;
      if (claim) {
        claim.addEventListener('click', () =>
          busy(claim, async () => {
            const r = await api.call('quests.claim_quest_reward', { quest_id: q.id });
            toast('+' + r.xp_awarded + ' XP');
            await ctx.refreshStats();
            ctx.go('/');
          }),
        );
      }
      return h(
        'li',
        { class: 'quest' + (q.completed ? ' done' : ''), dataset: { quest: q.id, progress: String(q.progress) } },
        t(q.title, 'strong', { id: pid }),
        t(q.description, 'span', { class: 'muted' }),
        h('progress', { max: q.target || 1, value: q.progress, 'aria-labelledby': pid }, pct + '%'),
        h('span', { class: 'quest-count' }, q.progress + ' / ' + q.target + (q.completed ? ' — done' : '')),
        claim,
      );
    }),
  );
}

// ---- review session --------------------------------------------------------

export async function review(main, ctx) {
  const session = await api.call('reviews.get_review_session', { limit: 10 });
  const cards = session.questions || [];
  const stage = h('div', { id: 'review' });
  const questsSlot = h('section', { 'aria-labelledby': 'h-quests' }, h('h2', { id: 'h-quests' }, 'Daily quests'));
  main.replaceChildren(
    heading('Review'),
    h('p', { class: 'muted' }, session.total_due + ' due' + (session.is_degraded ? ' — the server is in safe mode, sessions are smaller' : '')),
    stage,
    questsSlot,
  );
  const refreshQuests = async () => {
    try {
      const quests = await api.call('quests.get_daily_quests');
      questsSlot.replaceChildren(h('h2', { id: 'h-quests' }, 'Daily quests'), questList(quests, ctx));
    } catch (e) {
      questsSlot.append(errorBox(e));
    }
  };
  refreshQuests();
  let i = 0;
  let xpTotal = 0;
  let answered = 0;
  const show = () => {
    if (i >= cards.length) {
      const again = h('button', { type: 'button', class: 'primary', id: 'review-again' }, 'Load more cards');
      again.addEventListener('click', () => review(main, ctx));
      stage.replaceChildren(
        h(
          'section',
          { class: 'card', id: 'review-done', 'aria-live': 'polite' },
          h('h2', {}, cards.length ? 'Session complete' : 'Nothing due'),
          h('p', {}, answered + ' answered, ' + xpTotal + ' XP earned.'),
          again,
        ),
      );
      again.focus();
      return;
    }
    const card = cards[i];
    const shownAt = performance.now();
    const feedback = h('p', { id: 'feedback', role: 'status', 'aria-live': 'polite' });
    const next = h('button', { type: 'button', class: 'primary', id: 'next', hidden: true }, i + 1 < cards.length ? 'Next card' : 'Finish');
    next.addEventListener('click', () => {
      i += 1;
      show();
    });
    const qid = 'question-' + i;
    const options = (card.options && card.options.length ? card.options : [card.correct_answer]).map((opt) =>
      h('button', { type: 'button', class: 'option', dir: 'auto', dataset: { option: opt } }, opt),
    );
    const section = h(
      'section',
      { class: 'card review-card', dataset: { questionId: card.question_id, state: 'answering' }, 'aria-labelledby': qid },
      h('p', { class: 'muted' }, 'Card ' + (i + 1) + ' of ' + cards.length + ' · ', t(card.subject)),
      h('h2', { id: qid, dir: 'auto', class: 'question' }, card.question),
      h('div', { class: 'options', role: 'group', 'aria-labelledby': qid }, options),
      feedback,
      next,
    );
    for (const b of options) {
      b.addEventListener('click', async () => {
        for (const o of options) o.disabled = true;
        const correct = b.dataset.option === card.correct_answer;
        b.classList.add(correct ? 'right' : 'wrong');
        b.setAttribute('aria-pressed', 'true');
        for (const o of options) if (o.dataset.option === card.correct_answer) o.classList.add('right');
        feedback.textContent = correct ? 'Correct!' : 'Not quite — the answer is “' + card.correct_answer + '”.';
        try {
          const r = await api.call('reviews.submit_review_session', {
            responses: [
              {
                question_id: card.question_id,
                is_correct: correct,
                quality: correct ? 4 : 1,
                time_spent_ms: Math.round(performance.now() - shownAt),
                review_id: 'console-' + randomId(),
              },
            ],
          });
          answered += 1;
          xpTotal += r.xp_earned;
          feedback.textContent += ' +' + r.xp_earned + ' XP · ' + r.remaining_items + ' still due.';
          await ctx.refreshStats();
          refreshQuests();
        } catch (e) {
          feedback.after(errorBox(e));
        }
        section.dataset.state = 'answered';
        next.hidden = false;
        next.focus();
      });
    }
    stage.replaceChildren(section);
    options[0].focus();
  };
  show();
}

// ---- leaderboard -----------------------------------------------------------

export async function leaderboard(main) {
  const select = h(
    'select',
    { id: 'lb-period' },
    ['all_time', 'monthly', 'weekly', 'daily'].map((p) => h('option', { value: p }, p.replace('_', ' '))),
  );
  const slot = h('div');
  const load = async () => {
    slot.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const b = await api.call('leaderboard.get_leaderboard', { period: select.value });
      slot.replaceChildren(
        table('Leaderboard', [
          { label: 'Rank', cell: (r) => String(r.rank ?? '—') },
          { label: 'Learner', cell: (r) => t(r.name ?? r.full_name ?? r.player_id) },
          { label: 'Level', cell: (r) => String(r.level ?? '—') },
          { label: 'XP', cell: (r) => String(r.xp ?? r.total_xp ?? '—') },
        ], b.leaderboard || []),
        h('p', {}, 'Your rank: ' + (b.current_user_rank ?? '—')),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  select.addEventListener('change', load);
  main.replaceChildren(heading('Leaderboard'), h('div', { class: 'field inline' }, h('label', { for: 'lb-period' }, 'Period'), select), slot);
  await load();
}

// ---- store -----------------------------------------------------------------

export async function store(main) {
  const items = await api.call('store.get_store_items');
  const err = h('div');
  main.replaceChildren(
    heading('Store'),
    h('p', { class: 'muted' }, 'A request waits for an administrator’s approval.'),
    err,
    items.length
      ? h(
          'ul',
          { class: 'items' },
          items.map((it) => {
            const buy = h('button', { type: 'button', class: 'primary', dataset: { item: it.id } }, 'Request purchase');
            buy.addEventListener('click', () =>
              busy(buy, async () => {
                const r = await api.call('store.request_purchase', { item_id: it.id });
                toast(r.message || 'Requested');
                buy.textContent = 'Requested (' + r.status + ')';
                buy.disabled = true;
              }, err),
            );
            return h(
              'li',
              { class: 'card' },
              t(it.item_name, 'h2'),
              t(it.description, 'p'),
              h('p', { class: 'price' }, String(it.discounted_price ?? it.price)),
              buy,
            );
          }),
        )
      : h('p', { class: 'empty' }, 'Nothing for sale right now.'),
  );
}

// ---- devices ---------------------------------------------------------------

export async function devices(main) {
  const slot = h('div', { id: 'devices' });
  const err = h('div');
  const load = async () => {
    try {
      const list = await api.call('auth.get_my_devices');
      slot.replaceChildren(
        table('My devices', [
          { label: 'Device', cell: (d) => t(d.device_name || d.device_id) },
          { label: 'Type', cell: (d) => d.device_type },
          { label: 'Last active', cell: (d) => fmtDate(d.last_active) },
          { label: 'Registered', cell: (d) => fmtDate(d.registered_at) },
          { label: '', cell: (d) => (d.current ? 'this session' : '') },
          {
            label: '',
            cell: (d) => {
              const b = h('button', { type: 'button', class: 'small', 'aria-label': 'Sign out ' + d.device_id }, 'Sign out');
              b.addEventListener('click', () =>
                busy(b, async () => {
                  const r = await api.call('auth.revoke_device', { device_id: d.device_id });
                  toast('Signed out ' + r.sessions_ended + ' session(s)');
                  if (r.signed_out) location.reload();
                  else await load();
                }, err),
              );
              return b;
            },
          },
        ], list, 'No devices yet: apps name their device when they sign in.'),
      );
    } catch (e) {
      slot.replaceChildren(errorBox(e));
    }
  };
  main.replaceChildren(
    heading('My devices'),
    h('p', { class: 'muted' }, 'Signing a device out ends every session opened on it, on every server.'),
    err,
    slot,
  );
  await load();
}
