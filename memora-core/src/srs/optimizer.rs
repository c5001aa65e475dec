//! Per-learner FSRS-6 parameter optimization.
//!
//! [`fit`] estimates the 21 FSRS-6 parameters from a learner's [`FsrsItem`]s by minimising the
//! recency-weighted binary cross-entropy between the model's predicted retrievability for each
//! item's last review and its outcome (`recalled = rating > 1`), plus an L2 pull toward the
//! initial parameters scaled by the per-parameter spread of fitted parameters over the
//! srs-benchmark collections ([`PARAMS_STDDEV`]).
//!
//! Pipeline (fsrs-rs-style, written from the published description):
//! 1. items with a history and a later-day last review are kept (`used_items`); below
//!    `min_items` the defaults are returned (`fell_back`);
//! 2. the initial stabilities `w0..w3` are curve-fitted on the first-day outcomes (items whose
//!    history lies entirely on the card's first day), grades without data are filled from the
//!    defaults shifted by the fitted grades' average log-ratio, and made non-decreasing; below
//!    `s0_only_below` items this is the result;
//! 3. all parameters are trained from there with Adam (cosine-annealed learning rate, shuffled
//!    mini-batches of whole cards, parameter clamps after every step) — deterministic for a
//!    given [`FitConfig::seed`];
//! 4. if the fitted parameters do not beat the defaults on the training loss, the defaults are
//!    returned (`fell_back`).
//!
//! Gradients are exact and computed in forward mode: each model step propagates the tangents
//! `∂S/∂w` and `∂D/∂w` from hand-derived partial derivatives. Items are compiled into a flat
//! program in which the items of one card share their common history prefix, so one pass costs
//! about one model step per distinct review rather than one per item and history entry. Memory is
//! the program (at most one entry per item review) plus a stack of tangents as deep as the
//! longest history; nothing is allocated per iteration.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::fsrs::{
    D_MAX, D_MIN, DEFAULT_PARAMETERS, FSRS6_PARAM_COUNT, FsrsParams, Rating, S_MAX, S_MIN,
};
use super::revlog::FsrsItem;

const N: usize = FSRS6_PARAM_COUNT;

/// Per-parameter standard deviation of fitted FSRS-6 parameters (fsrs-rs), used to scale the
/// L2 pull toward the initial parameters.
pub const PARAMS_STDDEV: [f64; FSRS6_PARAM_COUNT] = [
    6.43, 9.66, 17.58, 27.85, 0.57, 0.28, 0.6, 0.12, 0.39, 0.18, 0.33, 0.3, 0.09, 0.16, 0.57, 0.25,
    1.03, 0.31, 0.32, 0.14, 0.27,
];

/// Predictions are clamped to `[P_EPS, 1 - P_EPS]` inside the training loss.
const P_EPS: f64 = 1e-4;

/// Optimizer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitConfig {
    /// Passes over the data; default 5.
    pub epochs: usize,
    /// Items per mini-batch (whole cards are kept together, so batches hold at least this many
    /// items except the last one of an epoch); default 512.
    pub batch_size: usize,
    /// Initial Adam learning rate (cosine-annealed to 0 over the run); default 0.04.
    pub learning_rate: f64,
    /// Strength of the L2 pull toward the initial parameters, in units of one full pass over
    /// the data (fsrs-rs `gamma`); default 1.
    pub gamma: f64,
    /// Seed of the mini-batch shuffling; the same seed and items give identical parameters.
    pub seed: u64,
    /// Below this many usable items the defaults are returned; default 8.
    pub min_items: usize,
    /// Below this many usable items only `w0..w3` are fitted; default 64.
    pub s0_only_below: usize,
    /// Number of relearning steps the learner uses (bounds w17/w18); default 1.
    pub num_relearning_steps: usize,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 512,
            learning_rate: 0.04,
            gamma: 1.0,
            seed: 2023,
            min_items: 8,
            s0_only_below: 64,
            num_relearning_steps: 1,
        }
    }
}

/// Outcome of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitResult {
    /// The fitted (or default) parameters.
    pub params: FsrsParams,
    /// Number of items that could be used (history present, last review on a later day,
    /// grades 1–4).
    pub used_items: usize,
    /// Recency-weighted mean log loss of the default parameters on the used items.
    pub loss_before: f64,
    /// Recency-weighted mean log loss of [`FitResult::params`] on the used items.
    pub loss_after: f64,
    /// `true` if the defaults were returned: too few items, or fitting did not beat them.
    pub fell_back: bool,
}

/// Predicted probability of recall for an item's last review: the history is run through the
/// model and `R(t, S)` is evaluated at the last review's elapsed days.
///
/// Returns `None` for an item without history or with a grade outside 1–4.
pub fn predict_recall(params: &FsrsParams, item: &FsrsItem) -> Option<f64> {
    let target = item.target()?;
    let mut state = None;
    for r in item.history() {
        let rating = Rating::from_u8(r.rating)?;
        state = Some(params.next_state(state, f64::from(r.delta_t), rating));
    }
    let state = state?;
    Some(params.retrievability(f64::from(target.delta_t), state.stability))
}

/// Recency weight of the `i`-th of `n` items in time order: `0.25 + 0.75·(i/(n−1))^3`.
pub fn recency_weight(i: usize, n: usize) -> f64 {
    if n <= 1 {
        return 1.0;
    }
    let x = i as f64 / (n - 1) as f64;
    0.25 + 0.75 * x * x * x
}

/// Recency-weighted mean log loss of `params` on the usable items (see [`FitResult`]); NaN if
/// none is usable. Useful to compare stored parameters with freshly fitted ones.
pub fn weighted_log_loss(params: &FsrsParams, items: &[FsrsItem]) -> f64 {
    let prog = Program::compile(items, &usable_indices(items));
    prog.mean_loss(params.as_array())
}

/// Fits FSRS-6 parameters to `items` (see the module docs for the procedure).
pub fn fit(items: &[FsrsItem], config: &FitConfig) -> FitResult {
    let usable = usable_indices(items);
    let prog = Program::compile(items, &usable);
    let defaults = DEFAULT_PARAMETERS;
    let loss_before = prog.mean_loss(&defaults);
    let fallback = |loss: f64| FitResult {
        params: FsrsParams::defaults(),
        used_items: usable.len(),
        loss_before,
        loss_after: loss,
        fell_back: true,
    };
    if usable.is_empty() || usable.len() < config.min_items {
        return fallback(loss_before);
    }
    let nrs = config.num_relearning_steps;
    let mut init = defaults;
    init[..4].copy_from_slice(&initial_stability(items, &usable));
    let init = clamp_params(&init, &defaults, nrs);
    let w = if usable.len() < config.s0_only_below {
        init
    } else {
        train_adam(&prog, &init, config)
    };
    let loss_after = prog.mean_loss(&w);
    let improved = loss_after <= loss_before;
    if !improved {
        return fallback(loss_before);
    }
    let params = match FsrsParams::from_slice(&w) {
        Ok(p) => p.clamped(nrs),
        Err(_) => return fallback(loss_before),
    };
    FitResult {
        params,
        used_items: usable.len(),
        loss_before,
        loss_after,
        fell_back: false,
    }
}

/// Indices of items the optimizer can use.
fn usable_indices(items: &[FsrsItem]) -> Vec<usize> {
    // Grades are checked once per shared review sequence (the first one outside 1–4), not once
    // per item: a card's items are prefixes of one sequence, and rescanning each item's
    // history would be quadratic in the card's length.
    let mut first_bad: HashMap<usize, usize> = HashMap::new();
    items
        .iter()
        .enumerate()
        .filter(|(_, it)| {
            let bad = *first_bad.entry(it.sequence_key()).or_insert_with(|| {
                it.sequence()
                    .iter()
                    .position(|r| !(1..=4).contains(&r.rating))
                    .unwrap_or(usize::MAX)
            });
            it.reviews().len() >= 2 && it.elapsed_days() >= 1 && it.reviews().len() <= bad
        })
        .map(|(i, _)| i)
        .collect()
}

/// Applies the model's parameter clamps; non-finite entries are replaced by `fallback`'s.
fn clamp_params(w: &[f64; N], fallback: &[f64; N], nrs: usize) -> [f64; N] {
    let mut v = *w;
    for (x, f) in v.iter_mut().zip(fallback) {
        if !x.is_finite() {
            *x = *f;
        }
    }
    match FsrsParams::from_slice(&v) {
        Ok(p) => *p.clamped(nrs).as_array(),
        Err(_) => *fallback,
    }
}

// ---------------------------------------------------------------------------------------------
// Initial stability (w0..w3)

/// Log-space pull of each fitted initial stability toward its default, in pseudo-observations.
const S0_PRIOR: f64 = 2.0;

/// Curve-fits `w0..w3` on items whose history lies entirely on the card's first day.
fn initial_stability(items: &[FsrsItem], usable: &[usize]) -> [f64; 4] {
    // (elapsed days, count, recalls) per first grade
    let mut groups: [Vec<(u32, f64, f64)>; 4] = Default::default();
    for &i in usable {
        let it = &items[i];
        let h = it.history();
        if h.iter().skip(1).any(|r| r.delta_t > 0) {
            continue;
        }
        let (Some(first), Some(target)) = (h.first(), it.target()) else {
            continue;
        };
        let g = &mut groups[usize::from(first.rating - 1)];
        let y = if target.rating > 1 { 1.0 } else { 0.0 };
        match g.iter_mut().find(|e| e.0 == target.delta_t) {
            Some(e) => {
                e.1 += 1.0;
                e.2 += y;
            }
            None => g.push((target.delta_t, 1.0, y)),
        }
    }
    let decay = DEFAULT_PARAMETERS[20];
    let factor = 0.9f64.powf(-1.0 / decay) - 1.0;
    let mut fitted = [None; 4];
    for (g, data) in groups.iter().enumerate() {
        if data.is_empty() {
            continue;
        }
        let prior = DEFAULT_PARAMETERS[g].ln();
        let objective = |x: f64| {
            let s = x.exp();
            let mut l = S0_PRIOR * (x - prior) * (x - prior);
            for &(t, n, k) in data {
                let r = (1.0 + factor * f64::from(t) / s)
                    .powf(-decay)
                    .clamp(P_EPS, 1.0 - P_EPS);
                l -= k * r.ln() + (n - k) * (1.0 - r).ln();
            }
            l
        };
        let count: f64 = data.iter().map(|e| e.1).sum();
        fitted[g] = Some((minimize_1d(objective, 0.001f64.ln(), 100f64.ln()), count));
    }
    // Grades without data: default shifted by the fitted grades' mean log-ratio.
    let (mut num, mut den) = (0.0, 0.0);
    for (g, f) in fitted.iter().enumerate() {
        if let Some((x, n)) = f {
            num += n * (x - DEFAULT_PARAMETERS[g].ln());
            den += n;
        }
    }
    let shift = if den > 0.0 { num / den } else { 0.0 };
    let mut s0 = [0.0; 4];
    for (g, out) in s0.iter_mut().enumerate() {
        let x = match fitted[g] {
            Some((x, _)) => x,
            None => DEFAULT_PARAMETERS[g].ln() + shift,
        };
        *out = x.exp().clamp(0.001, 100.0);
    }
    for g in 1..4 {
        s0[g] = s0[g].max(s0[g - 1]);
    }
    s0
}

/// Minimises a 1-D function on `[lo, hi]`: grid search, then golden-section refinement.
fn minimize_1d(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    const GRID: usize = 48;
    let step = (hi - lo) / GRID as f64;
    let mut best = (lo, f(lo));
    for k in 1..=GRID {
        let x = lo + step * k as f64;
        let v = f(x);
        if v < best.1 {
            best = (x, v);
        }
    }
    let (mut a, mut b) = ((best.0 - step).max(lo), (best.0 + step).min(hi));
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - phi * (b - a);
    let mut d = a + phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..40 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + phi * (b - a);
            fd = f(d);
        }
    }
    let x = (a + b) / 2.0;
    if f(x) <= best.1 { x } else { best.0 }
}

// ---------------------------------------------------------------------------------------------
// Adam

/// Small deterministic PRNG (splitmix64) for shuffling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (`n > 0`), by rejection to avoid modulo bias.
    fn below(&mut self, n: usize) -> usize {
        let n64 = n as u64;
        let zone = u64::MAX - u64::MAX % n64;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n64) as usize;
            }
        }
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Trains all parameters with mini-batch Adam starting from (and pulled toward) `init`.
fn train_adam(prog: &Program, init: &[f64; N], config: &FitConfig) -> [f64; N] {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const ADAM_EPS: f64 = 1e-8;
    let nrs = config.num_relearning_steps;
    let total = prog.n_targets.max(1) as f64;
    let batch = config.batch_size.max(1);
    let steps_per_epoch = prog.n_targets.div_ceil(batch).max(1);
    let total_steps = (config.epochs * steps_per_epoch).max(1) as f64;
    let mut rng = SplitMix64(config.seed);
    let mut order: Vec<usize> = (0..prog.segments.len()).collect();
    let mut scratch = prog.scratch();
    let mut w = *init;
    let (mut m, mut v) = ([0.0; N], [0.0; N]);
    let mut step = 0usize;
    let mut grad = [0.0; N];
    let mut apply =
        |grad: &mut [f64; N], batch_targets: usize, w: &mut [f64; N], step: &mut usize| {
            let scale = config.gamma * batch_targets as f64 / total;
            for k in 0..N {
                grad[k] += scale * 2.0 * (w[k] - init[k]) / (PARAMS_STDDEV[k] * PARAMS_STDDEV[k]);
            }
            *step += 1;
            let progress = ((*step - 1) as f64 / total_steps).min(1.0);
            let lr = config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            let t = *step as i32;
            let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
            for k in 0..N {
                let g = grad[k];
                if !g.is_finite() {
                    continue;
                }
                m[k] = BETA1 * m[k] + (1.0 - BETA1) * g;
                v[k] = BETA2 * v[k] + (1.0 - BETA2) * g * g;
                w[k] -= lr * (m[k] / c1) / ((v[k] / c2).sqrt() + ADAM_EPS);
            }
            *w = clamp_params(w, init, nrs);
            *grad = [0.0; N];
        };
    for _ in 0..config.epochs {
        rng.shuffle(&mut order);
        let mut pre = Pre::new(&w);
        let mut in_batch = 0usize;
        for &seg in &order {
            let (start, end, targets) = prog.segments[seg];
            prog.run::<true>(&pre, start, end, &mut scratch, &mut grad);
            in_batch += targets;
            if in_batch >= batch {
                apply(&mut grad, in_batch, &mut w, &mut step);
                pre = Pre::new(&w);
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            apply(&mut grad, in_batch, &mut w, &mut step);
        }
    }
    w
}

// ---------------------------------------------------------------------------------------------
// Compiled items and the differentiable model

/// One instruction of a compiled item set.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Apply a review at history depth `depth` (1 = the card's first review) on top of the
    /// state at `depth - 1`.
    Node {
        depth: u32,
        rating: u8,
        delta_t: u32,
    },
    /// Predict a review `t` days after the state at `depth`, with outcome `y` and weight.
    Target {
        depth: u32,
        t: f64,
        y: f64,
        weight: f64,
    },
}

/// Items compiled into a flat program; consecutive items of a card share their history prefix.
struct Program {
    ops: Vec<Op>,
    /// `(first op, end op, number of targets)` per card (or run of prefix-sharing items).
    segments: Vec<(usize, usize, usize)>,
    max_depth: usize,
    n_targets: usize,
    total_weight: f64,
}

/// Working memory for running a program: one state (and tangents) per history depth.
struct Scratch {
    slots: Vec<Slot>,
}

/// Model state at one depth with its tangents w.r.t. the 21 parameters.
#[derive(Debug, Clone, Copy)]
struct Slot {
    s: f64,
    d: f64,
    ts: [f64; N],
    td: [f64; N],
}

const EMPTY_SLOT: Slot = Slot {
    s: 1.0,
    d: 5.0,
    ts: [0.0; N],
    td: [0.0; N],
};

impl Program {
    /// Compiles the items at `usable` (all must be usable): recency weights follow the items'
    /// time order; items are grouped by card and sorted so that shared history prefixes are
    /// computed once.
    fn compile(items: &[FsrsItem], usable: &[usize]) -> Program {
        let n = usable.len();
        let mut by_time: Vec<usize> = (0..n).collect();
        by_time.sort_by_key(|&k| items[usable[k]].time);
        let mut weight = vec![0.0; n];
        for (rank, &k) in by_time.iter().enumerate() {
            weight[k] = recency_weight(rank, n);
        }
        let mut order: Vec<usize> = (0..n).collect();
        // Histories in lexicographic order per card. Items sharing a sequence are prefixes of
        // one another, so their order is their length's (no O(history) comparison).
        let history_order = |ia: &FsrsItem, ib: &FsrsItem| {
            if ia.shares_reviews_with(ib) {
                ia.reviews().len().cmp(&ib.reviews().len())
            } else {
                ia.history().cmp(ib.history())
            }
        };
        order.sort_by(|&a, &b| {
            let (ia, ib) = (&items[usable[a]], &items[usable[b]]);
            ia.card_id
                .cmp(&ib.card_id)
                .then_with(|| history_order(ia, ib))
        });
        let mut ops = Vec::new();
        let mut segments = Vec::new();
        let mut max_depth = 0usize;
        let mut total_weight = 0.0;
        let mut prev: Option<&FsrsItem> = None;
        let mut seg_start = 0usize;
        let mut seg_targets = 0usize;
        for &k in &order {
            let it = &items[usable[k]];
            let h = it.history();
            let mut common = match prev {
                Some(p) if p.card_id == it.card_id && p.shares_reviews_with(it) => {
                    p.history().len().min(h.len())
                }
                Some(p) if p.card_id == it.card_id => p
                    .history()
                    .iter()
                    .zip(h)
                    .take_while(|(a, b)| a == b)
                    .count(),
                _ => 0,
            };
            if common == 0 && seg_targets > 0 {
                segments.push((seg_start, ops.len(), seg_targets));
                seg_start = ops.len();
                seg_targets = 0;
            }
            while common < h.len() {
                let r = h[common];
                common += 1;
                ops.push(Op::Node {
                    depth: common as u32,
                    rating: r.rating,
                    delta_t: r.delta_t,
                });
            }
            max_depth = max_depth.max(h.len());
            let y = if it.recalled() { 1.0 } else { 0.0 };
            ops.push(Op::Target {
                depth: h.len() as u32,
                t: f64::from(it.elapsed_days()),
                y,
                weight: weight[k],
            });
            total_weight += weight[k];
            seg_targets += 1;
            prev = Some(it);
        }
        if seg_targets > 0 {
            segments.push((seg_start, ops.len(), seg_targets));
        }
        Program {
            ops,
            segments,
            max_depth,
            n_targets: n,
            total_weight,
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            slots: vec![EMPTY_SLOT; self.max_depth + 1],
        }
    }

    /// Weighted mean log loss of parameter vector `w` over all targets (NaN if none).
    fn mean_loss(&self, w: &[f64; N]) -> f64 {
        if self.n_targets == 0 {
            return f64::NAN;
        }
        let pre = Pre::new(w);
        let mut scratch = self.scratch();
        let mut grad = [0.0; N];
        let loss = self.run::<false>(&pre, 0, self.ops.len(), &mut scratch, &mut grad);
        loss / self.total_weight
    }

    /// Runs ops `start..end` (which must begin at a segment start), returning the weighted
    /// log-loss sum and, if `GRAD`, adding its gradient to `grad`.
    fn run<const GRAD: bool>(
        &self,
        pre: &Pre,
        start: usize,
        end: usize,
        scratch: &mut Scratch,
        grad: &mut [f64; N],
    ) -> f64 {
        let mut loss = 0.0;
        let slots = &mut scratch.slots;
        for op in &self.ops[start..end] {
            match *op {
                Op::Node {
                    depth,
                    rating,
                    delta_t,
                } => {
                    let depth = depth as usize;
                    if depth <= 1 {
                        pre.first::<GRAD>(rating, &mut slots[1]);
                    } else {
                        let (lo, hi) = slots.split_at_mut(depth);
                        pre.step::<GRAD>(&lo[depth - 1], rating, delta_t, &mut hi[0]);
                    }
                }
                Op::Target {
                    depth,
                    t,
                    y,
                    weight,
                } => {
                    loss += weight * pre.target::<GRAD>(&slots[depth as usize], t, y, weight, grad);
                }
            }
        }
        loss
    }
}

/// Parameter-derived constants for one parameter vector.
struct Pre {
    w: [f64; N],
    /// Curve factor `0.9^(−1/w20) − 1`.
    factor: f64,
    /// `∂factor/∂w20`.
    dfactor: f64,
    exp_w8: f64,
    /// Unclamped `D0(Easy) = w4 − e^(3·w5) + 1`.
    d0_easy: f64,
    /// `∂D0(Easy)/∂w5`.
    d0_easy_dw5: f64,
    /// Short-term multiplier `e^(w17·(G − 3 + w18))` per grade.
    short_mult: [f64; 4],
    /// Post-lapse cap factor `e^(−w17·w18)`.
    cap: f64,
}

impl Pre {
    fn new(w: &[f64; N]) -> Pre {
        let ln09 = 0.9f64.ln();
        let base = (-ln09 / w[20]).exp();
        let e3 = (3.0 * w[5]).exp();
        let mut short_mult = [0.0; 4];
        for (g, m) in short_mult.iter_mut().enumerate() {
            *m = (w[17] * (g as f64 + 1.0 - 3.0 + w[18])).exp();
        }
        Pre {
            w: *w,
            factor: base - 1.0,
            dfactor: base * ln09 / (w[20] * w[20]),
            exp_w8: w[8].exp(),
            d0_easy: w[4] - e3 + 1.0,
            d0_easy_dw5: -3.0 * e3,
            short_mult,
            cap: (-w[17] * w[18]).exp(),
        }
    }

    /// Retrievability `t` days after stability `s`, with `∂R/∂s` and `∂R/∂w20`.
    #[inline]
    fn recall(&self, t: f64, s: f64) -> (f64, f64, f64) {
        let w20 = self.w[20];
        let u = 1.0 + self.factor * t / s;
        let r = u.powf(-w20);
        let dr_ds = r * w20 * self.factor * t / (s * s * u);
        let dr_dw20 = r * (-u.ln() - w20 * (t / s) * self.dfactor / u);
        (r, dr_ds, dr_dw20)
    }

    /// State after a card's first review.
    #[inline]
    fn first<const GRAD: bool>(&self, rating: u8, out: &mut Slot) {
        let w = &self.w;
        let g = usize::from(rating.clamp(1, 4));
        let raw_s = w[g - 1];
        out.s = raw_s.clamp(S_MIN, S_MAX);
        let e = (w[5] * (g as f64 - 1.0)).exp();
        let raw_d = w[4] - e + 1.0;
        out.d = raw_d.clamp(D_MIN, D_MAX);
        if GRAD {
            out.ts = [0.0; N];
            out.td = [0.0; N];
            if (S_MIN..=S_MAX).contains(&raw_s) {
                out.ts[g - 1] = 1.0;
            }
            if (D_MIN..=D_MAX).contains(&raw_d) {
                out.td[4] = 1.0;
                out.td[5] = -(g as f64 - 1.0) * e;
            }
        }
    }

    /// One review on top of `prev` (FSRS-6 `step()`), with tangent propagation if `GRAD`.
    #[inline]
    fn step<const GRAD: bool>(&self, prev: &Slot, rating: u8, delta_t: u32, out: &mut Slot) {
        let w = &self.w;
        let g = usize::from(rating.clamp(1, 4));
        let gf = g as f64;
        let (s, d) = (prev.s, prev.d);
        // ∂S'/∂S, ∂S'/∂D and ∂S'/∂w (direct).
        let mut a_s;
        let mut a_d = 0.0;
        let mut ls = [0.0; N];
        let new_s;
        if delta_t == 0 {
            let inc = self.short_mult[g - 1] * s.powf(-w[19]);
            if g >= 2 && inc < 1.0 {
                new_s = s;
                a_s = 1.0;
            } else {
                new_s = s * inc;
                a_s = (1.0 - w[19]) * inc;
                if GRAD {
                    ls[17] = (gf - 3.0 + w[18]) * new_s;
                    ls[18] = w[17] * new_s;
                    ls[19] = -s.ln() * new_s;
                }
            }
        } else {
            let (r, dr_ds, dr_dw20) = self.recall(f64::from(delta_t), s);
            if g == 1 {
                let dpow = d.powf(-w[12]);
                let sp1 = (s + 1.0).powf(w[13]);
                let ex = (w[14] * (1.0 - r)).exp();
                let long = w[11] * dpow * (sp1 - 1.0) * ex;
                let capped = s * self.cap;
                if long <= capped {
                    new_s = long;
                    let da_dr = -w[14] * long;
                    a_s = w[11] * dpow * w[13] * sp1 / (s + 1.0) * ex + da_dr * dr_ds;
                    a_d = -w[12] * long / d;
                    if GRAD {
                        ls[11] = dpow * (sp1 - 1.0) * ex;
                        ls[12] = -d.ln() * long;
                        ls[13] = w[11] * dpow * sp1 * (s + 1.0).ln() * ex;
                        ls[14] = (1.0 - r) * long;
                        ls[20] = da_dr * dr_dw20;
                    }
                } else {
                    new_s = capped;
                    a_s = self.cap;
                    if GRAD {
                        ls[17] = -w[18] * capped;
                        ls[18] = -w[17] * capped;
                    }
                }
            } else {
                let hp = if g == 2 { w[15] } else { 1.0 };
                let eb = if g == 4 { w[16] } else { 1.0 };
                let spw = s.powf(-w[9]);
                let e = (w[10] * (1.0 - r)).exp();
                let core = self.exp_w8 * spw * (e - 1.0); // K / ((11 − D)·HP·EB)
                let k = core * (11.0 - d) * hp * eb;
                new_s = s * (1.0 + k);
                let base = self.exp_w8 * (11.0 - d) * spw * hp * eb;
                let dk_dr = -w[10] * base * e;
                a_s = 1.0 + k + s * (-w[9] * k / s + dk_dr * dr_ds);
                a_d = -s * core * hp * eb;
                if GRAD {
                    ls[8] = s * k;
                    ls[9] = -s * s.ln() * k;
                    ls[10] = s * base * e * (1.0 - r);
                    if g == 2 {
                        ls[15] = s * core * (11.0 - d) * eb;
                    }
                    if g == 4 {
                        ls[16] = s * core * (11.0 - d) * hp;
                    }
                    ls[20] = s * dk_dr * dr_dw20;
                }
            }
        }
        if (S_MIN..=S_MAX).contains(&new_s) {
            out.s = new_s;
        } else {
            out.s = if new_s.is_nan() {
                S_MIN
            } else {
                new_s.clamp(S_MIN, S_MAX)
            };
            a_s = 0.0;
            a_d = 0.0;
            ls = [0.0; N];
        }
        // Difficulty: linear damping, mean reversion toward the unclamped D0(Easy), clamp.
        let delta = -w[6] * (gf - 3.0);
        let damped = d + delta * (10.0 - d) / 9.0;
        let raw_d = w[7] * self.d0_easy + (1.0 - w[7]) * damped;
        out.d = raw_d.clamp(D_MIN, D_MAX);
        if GRAD {
            let in_range = (D_MIN..=D_MAX).contains(&raw_d);
            let b_d = if in_range {
                (1.0 - w[7]) * (1.0 - delta / 9.0)
            } else {
                0.0
            };
            let prev_tangents = prev.ts.iter().zip(&prev.td).zip(&ls);
            for ((ots, otd), ((pts, ptd), l)) in
                out.ts.iter_mut().zip(&mut out.td).zip(prev_tangents)
            {
                *ots = a_s * pts + a_d * ptd + l;
                *otd = b_d * ptd;
            }
            if in_range {
                out.td[4] += w[7];
                out.td[5] += w[7] * self.d0_easy_dw5;
                out.td[6] += (1.0 - w[7]) * (-(gf - 3.0) * (10.0 - d) / 9.0);
                out.td[7] += self.d0_easy - damped;
            }
        }
    }

    /// Log loss of predicting outcome `y` `t` days after `slot`; adds `weight·∂loss/∂w` to
    /// `grad` if `GRAD`.
    #[inline]
    fn target<const GRAD: bool>(
        &self,
        slot: &Slot,
        t: f64,
        y: f64,
        weight: f64,
        grad: &mut [f64; N],
    ) -> f64 {
        let (r, dr_ds, dr_dw20) = self.recall(t, slot.s);
        let p = r.clamp(P_EPS, 1.0 - P_EPS);
        let loss = -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        if GRAD && r > P_EPS && r < 1.0 - P_EPS {
            let gp = weight * (p - y) / (p * (1.0 - p));
            let gs = gp * dr_ds;
            for (g, ts) in grad.iter_mut().zip(&slot.ts) {
                *g += gs * ts;
            }
            grad[20] += gp * dr_dw20;
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::super::revlog::{ItemReview, RevlogEntry, build_items};
    use super::*;
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).single().unwrap()
    }

    fn unit(rng: &mut SplitMix64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn item(card_id: i64, day: i64, reviews: &[(u8, u32)]) -> FsrsItem {
        FsrsItem::new(
            card_id,
            t0() + TimeDelta::days(day),
            reviews
                .iter()
                .map(|&(rating, delta_t)| ItemReview { rating, delta_t })
                .collect(),
        )
    }

    /// Random items exercising every branch: all grades, same-day reviews, lapses (capped and
    /// not), long and short intervals; consecutive items of a card share prefixes.
    fn random_items(seed: u64, cards: usize) -> Vec<FsrsItem> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::new();
        for card in 0..cards {
            let mut reviews = vec![(1 + rng.below(4) as u8, 0u32)];
            let mut day = 0i64;
            for _ in 0..(2 + rng.below(12)) {
                let delta = match rng.below(4) {
                    0 => 0,
                    1 => 1 + rng.below(3) as u32,
                    _ => 1 + rng.below(60) as u32,
                };
                let rating = 1 + rng.below(4) as u8;
                reviews.push((rating, delta));
                day += i64::from(delta);
                if delta > 0 {
                    out.push(item(card as i64, day, &reviews));
                }
            }
        }
        out
    }

    fn random_params(rng: &mut SplitMix64) -> [f64; N] {
        // Interior points of the clamp box, away from the bounds.
        let mut w = DEFAULT_PARAMETERS;
        for (k, x) in w.iter_mut().enumerate() {
            let f = 0.6 + 0.8 * unit(rng);
            *x = match k {
                7 => 0.05 + 0.5 * unit(rng),
                15 => 0.2 + 0.6 * unit(rng),
                19 => 0.05 + 0.5 * unit(rng),
                20 => 0.15 + 0.5 * unit(rng),
                12 => 0.02 + 0.2 * unit(rng),
                _ => *x * f,
            };
        }
        clamp_params(&w, &DEFAULT_PARAMETERS, 1)
    }

    fn loss_and_grad(prog: &Program, w: &[f64; N]) -> (f64, [f64; N]) {
        let mut scratch = prog.scratch();
        let mut grad = [0.0; N];
        let loss = prog.run::<true>(&Pre::new(w), 0, prog.ops.len(), &mut scratch, &mut grad);
        (loss, grad)
    }

    #[test]
    fn recency_weights() {
        assert_eq!(recency_weight(0, 1), 1.0);
        assert_eq!(recency_weight(0, 5), 0.25);
        assert_eq!(recency_weight(4, 5), 1.0);
        assert!((recency_weight(2, 5) - (0.25 + 0.75 * 0.125)).abs() < 1e-15);
    }

    #[test]
    fn compiled_program_matches_the_model() {
        let items = random_items(7, 60);
        let usable = usable_indices(&items);
        assert_eq!(usable.len(), items.len());
        let prog = Program::compile(&items, &usable);
        let item_steps: usize = items.iter().map(|it| it.history().len()).sum();
        let nodes = prog
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Node { .. }))
            .count();
        assert!(
            nodes * 3 < item_steps,
            "prefixes are shared: {nodes} vs {item_steps}"
        );
        let mut rng = SplitMix64(11);
        for _ in 0..20 {
            let w = random_params(&mut rng);
            let params = FsrsParams::from_slice(&w).unwrap();
            let n = items.len();
            let mut expected = 0.0;
            let mut total = 0.0;
            for (rank, it) in items.iter().enumerate() {
                // items are generated in card order, not time order: rank them by time
                let r = items.iter().filter(|o| o.time < it.time).count()
                    + items[..rank].iter().filter(|o| o.time == it.time).count();
                let weight = recency_weight(r, n);
                let p = predict_recall(&params, it)
                    .unwrap()
                    .clamp(P_EPS, 1.0 - P_EPS);
                let y = if it.recalled() { 1.0 } else { 0.0 };
                expected -= weight * (y * p.ln() + (1.0 - y) * (1.0 - p).ln());
                total += weight;
            }
            let got = prog.mean_loss(&w);
            assert!(
                (got - expected / total).abs() < 1e-10 * got.abs().max(1.0),
                "{got} vs {}",
                expected / total
            );
            let (sum, _) = loss_and_grad(&prog, &w);
            assert!((sum / prog.total_weight - got).abs() < 1e-12);
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let items = random_items(3, 40);
        let prog = Program::compile(&items, &usable_indices(&items));
        let mut rng = SplitMix64(5);
        for _ in 0..10 {
            let w = random_params(&mut rng);
            let (_, grad) = loss_and_grad(&prog, &w);
            for k in 0..N {
                let h = 1e-6 * w[k].abs().max(1e-2);
                let (mut wp, mut wm) = (w, w);
                wp[k] += h;
                wm[k] -= h;
                let fd = (loss_and_grad(&prog, &wp).0 - loss_and_grad(&prog, &wm).0) / (2.0 * h);
                let tol = 1e-5 * fd.abs().max(grad[k].abs()).max(1e-2);
                assert!(
                    (fd - grad[k]).abs() < tol,
                    "w{k}: analytic {} vs numeric {fd} (w = {w:?})",
                    grad[k]
                );
            }
        }
    }

    #[test]
    fn fit_is_deterministic_per_seed() {
        let items = random_items(9, 150);
        let config = FitConfig {
            seed: 42,
            ..FitConfig::default()
        };
        let a = fit(&items, &config);
        let b = fit(&items, &config);
        assert_eq!(a, b);
        assert!(!a.fell_back);
        let c = fit(&items, &FitConfig { seed: 43, ..config });
        assert_ne!(a.params, c.params, "the seed drives the batch order");
    }

    #[test]
    fn small_data_falls_back_or_fits_s0_only() {
        let items = random_items(1, 200);
        let none = fit(&items[..7], &FitConfig::default());
        assert!(none.fell_back);
        assert_eq!(none.used_items, 7);
        assert_eq!(none.params, FsrsParams::defaults());
        let few = fit(&items[..40], &FitConfig::default());
        assert_eq!(few.used_items, 40);
        if !few.fell_back {
            assert_eq!(few.params.as_array()[4..], DEFAULT_PARAMETERS[4..]);
            assert_ne!(few.params.as_array()[..4], DEFAULT_PARAMETERS[..4]);
            assert!(few.loss_after <= few.loss_before);
        }
        // Unusable items (no history, same-day target, bad grade) are skipped.
        let mut mixed = items[..10].to_vec();
        mixed.push(item(999, 1, &[(3, 1)]));
        mixed.push(item(999, 1, &[(3, 0), (3, 0)]));
        mixed.push(item(999, 1, &[(3, 0), (5, 2)]));
        assert_eq!(fit(&mixed, &FitConfig::default()).used_items, 10);
        let empty = fit(&[], &FitConfig::default());
        assert!(empty.fell_back && empty.used_items == 0 && empty.loss_before.is_nan());
    }

    #[test]
    fn minimize_1d_finds_the_minimum() {
        let x = minimize_1d(|x| (x - 1.234) * (x - 1.234) + 3.0, -5.0, 5.0);
        assert!((x - 1.234).abs() < 1e-6, "{x}");
        let edge = minimize_1d(|x| x, -2.0, 3.0);
        assert!((edge + 2.0).abs() < 1e-6, "{edge}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = SplitMix64(1);
        let mut v: Vec<usize> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    /// Simulates a learner whose memory follows FSRS-6 with parameters `truth`: each card is
    /// answered on its first day (an Again is followed by a same-day Good), then reviewed after
    /// jittered intervals around the desired-retention interval; recall is drawn from R.
    fn simulate(truth: &FsrsParams, cards: usize, days: i64, seed: u64) -> Vec<RevlogEntry> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::new();
        for card in 0..cards {
            let start = (card as i64 * days) / (2 * cards as i64);
            let mut day = start;
            let first = match unit(&mut rng) {
                u if u < 0.35 => Rating::Again,
                u if u < 0.45 => Rating::Hard,
                u if u < 0.9 => Rating::Good,
                _ => Rating::Easy,
            };
            let at =
                |day: i64, minute: i64| t0() + TimeDelta::days(day) + TimeDelta::minutes(minute);
            let push = |out: &mut Vec<RevlogEntry>, day, minute, rating: Rating| {
                out.push(RevlogEntry {
                    card_id: card as i64,
                    rating: rating.as_u8(),
                    time: at(day, minute),
                    duration_ms: 5000,
                });
            };
            push(&mut out, day, 0, first);
            let mut state = truth.initial_state(first);
            if first == Rating::Again {
                push(&mut out, day, 10, Rating::Good);
                state = truth.next_state(Some(state), 0.0, Rating::Good);
            }
            loop {
                let dr = 0.45 + 0.5 * unit(&mut rng);
                let ivl = truth.interval_days(state.stability, dr) * (0.5 + unit(&mut rng));
                let delta = ivl.round().clamp(1.0, 365.0);
                day += delta as i64;
                if day >= days {
                    break;
                }
                let r = truth.retrievability(delta, state.stability);
                let rating = if unit(&mut rng) < r {
                    match unit(&mut rng) {
                        u if u < 0.1 => Rating::Hard,
                        u if u < 0.9 => Rating::Good,
                        _ => Rating::Easy,
                    }
                } else {
                    Rating::Again
                };
                push(&mut out, day, 0, rating);
                state = truth.next_state(Some(state), delta, rating);
                if rating == Rating::Again {
                    push(&mut out, day, 10, Rating::Good);
                    state = truth.next_state(Some(state), 0.0, Rating::Good);
                }
            }
        }
        out
    }

    #[test]
    fn recovers_parameters_of_a_simulated_learner() {
        let mut w = DEFAULT_PARAMETERS;
        w[..4].copy_from_slice(&[0.8, 2.5, 6.0, 20.0]);
        w[8] = 1.4;
        w[20] = 0.45;
        let truth = FsrsParams::from_slice(&w).unwrap();
        let entries = simulate(&truth, 1500, 300, 77);
        let items = build_items(&entries, 0, 4);
        assert!(items.len() > 5000, "{}", items.len());
        let true_loss = weighted_log_loss(&truth, &items);

        // Default schedule: clearly better than the defaults, close to the truth.
        let quick = fit(&items, &FitConfig::default());
        assert!(!quick.fell_back);
        assert!(quick.loss_after < quick.loss_before - 0.01, "{quick:?}");
        assert!(
            quick.loss_after < true_loss + 0.002,
            "{} vs {true_loss}",
            quick.loss_after
        );

        // Run to convergence: the generating parameters are recovered approximately.
        let long = fit(
            &items,
            &FitConfig {
                epochs: 20,
                ..FitConfig::default()
            },
        );
        assert!(
            long.loss_after <= true_loss + 0.0005,
            "{} vs {true_loss}",
            long.loss_after
        );
        let got = long.params.as_array();
        for g in 0..4 {
            let ratio = got[g] / w[g];
            assert!((0.5..2.0).contains(&ratio), "w{g}: {} vs {}", got[g], w[g]);
        }
        assert!(
            (got[20] - w[20]).abs() < 0.1,
            "decay {} vs {}",
            got[20],
            w[20]
        );
        let default_decay = DEFAULT_PARAMETERS[20];
        assert!((got[20] - w[20]).abs() < (default_decay - w[20]).abs() / 2.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn fitted_params_are_finite_and_clamped(seed in any::<u64>(), cards in 1usize..120) {
            let items = random_items(seed, cards);
            let r = fit(&items, &FitConfig { epochs: 2, ..FitConfig::default() });
            let w = r.params.as_array();
            prop_assert!(w.iter().all(|x| x.is_finite()));
            prop_assert_eq!(&r.params, &r.params.clone().clamped(1));
            if !r.fell_back {
                prop_assert!(r.loss_after <= r.loss_before);
            }
        }
    }
}
