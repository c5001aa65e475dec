//! Prediction-quality evaluation of memory models on real review logs.
//!
//! Metrics (srs-benchmark definitions): log loss, RMSE(bins) and AUC ([`log_loss`],
//! [`rmse_bins`], [`auc`]). [`evaluate_items`] runs the fsrs-rs time-series protocol: items in
//! time order, `segment = n / 6`, for `k = 1..=5` train on the first `k·segment` items and test
//! on the next `segment` (a remainder at the end is not tested); metrics are computed over all
//! test predictions pooled. Models compared:
//!
//! * **FSRS-6 fitted** — [`fit`] on each training fold;
//! * **FSRS-6 default** — the default parameters;
//! * **SM-2** — the srs-benchmark rule ([`sm2_recall`]);
//! * **Memora Ladder** — Memora's fixed 1/3/7/14-day ladder ([`ladder_recall`]);
//! * **AVG** — the training fold's mean pass rate.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::fsrs::{FsrsParams, MemoryState, Rating, S_MAX};
use super::optimizer::{FitConfig, fit};
use super::revlog::{FsrsItem, ItemReview, RevlogEntry, build_items};

/// Predictions are clamped to `[PRED_EPS, 1 − PRED_EPS]` before taking logarithms.
pub const PRED_EPS: f64 = 1e-4;

/// Number of test folds of the time-series split.
pub const N_SPLITS: usize = 5;

/// One prediction with the item features RMSE(bins) groups by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Predicted probability of recall.
    pub p: f64,
    /// Whether the review was a recall.
    pub y: bool,
    /// Elapsed days before the review.
    pub elapsed_days: u32,
    /// Number of earlier reviews of the card.
    pub prior_reviews: usize,
    /// Number of earlier lapses (Again on a later day).
    pub prior_lapses: usize,
}

impl Prediction {
    /// A prediction `p` for `item`'s last review.
    pub fn for_item(item: &FsrsItem, p: f64) -> Prediction {
        Prediction {
            p,
            y: item.recalled(),
            elapsed_days: item.elapsed_days(),
            prior_reviews: item.prior_reviews(),
            prior_lapses: item.prior_lapses(),
        }
    }
}

/// Mean binary cross-entropy; predictions are clamped to `[PRED_EPS, 1 − PRED_EPS]`. NaN for
/// an empty slice.
pub fn log_loss(preds: &[Prediction]) -> f64 {
    if preds.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = preds
        .iter()
        .map(|x| {
            let p = x.p.clamp(PRED_EPS, 1.0 - PRED_EPS);
            if x.y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    sum / preds.len() as f64
}

/// `round(a · b^floor(log_b x), digits)` scaled to an integer key (`x ≥ 1`; 0 otherwise).
fn bin_key(x: f64, a: f64, b: f64, scale: f64) -> i64 {
    if x < 1.0 {
        return 0;
    }
    let e = (x.ln() / b.ln()).floor();
    (a * b.powf(e) * scale).round() as i64
}

/// The RMSE(bins) bin of a prediction: `(t_bin·100, n_bin, lapse_bin)` with
/// `t_bin = round(2.48·3.62^⌊log_3.62 t⌋, 2)`, `n_bin = round(1.99·1.89^⌊log_1.89 n⌋)`,
/// `lapse_bin = round(1.65·1.73^⌊log_1.73 lapses⌋)` (0 without lapses).
pub fn bin_of(pred: &Prediction) -> (i64, i64, i64) {
    (
        bin_key(f64::from(pred.elapsed_days), 2.48, 3.62, 100.0),
        bin_key(pred.prior_reviews as f64, 1.99, 1.89, 1.0),
        bin_key(pred.prior_lapses as f64, 1.65, 1.73, 1.0),
    )
}

/// RMSE(bins): `sqrt(Σ_b n_b (mean p_b − mean y_b)² / Σ_b n_b)` over the bins of [`bin_of`].
/// NaN for an empty slice.
pub fn rmse_bins(preds: &[Prediction]) -> f64 {
    if preds.is_empty() {
        return f64::NAN;
    }
    let mut bins: BTreeMap<(i64, i64, i64), (f64, f64, f64)> = BTreeMap::new();
    for x in preds {
        let e = bins.entry(bin_of(x)).or_insert((0.0, 0.0, 0.0));
        e.0 += 1.0;
        e.1 += x.p;
        e.2 += if x.y { 1.0 } else { 0.0 };
    }
    let (mut num, mut den) = (0.0, 0.0);
    for (n, sp, sy) in bins.values() {
        let diff = (sp - sy) / n;
        num += n * diff * diff;
        den += n;
    }
    (num / den).sqrt()
}

/// Area under the ROC curve from ranks (Mann–Whitney U), tied predictions sharing their mean
/// rank. NaN if all outcomes are equal.
pub fn auc(preds: &[Prediction]) -> f64 {
    let n_pos = preds.iter().filter(|x| x.y).count();
    let n_neg = preds.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_by(|&a, &b| preds[a].p.total_cmp(&preds[b].p));
    let mut pos_rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && preds[order[j + 1]].p == preds[order[i]].p {
            j += 1;
        }
        // ranks i+1 ..= j+1 share their mean
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos = order[i..=j].iter().filter(|&&k| preds[k].y).count();
        pos_rank_sum += mean_rank * pos as f64;
        i = j + 1;
    }
    let (np, nn) = (n_pos as f64, n_neg as f64);
    (pos_rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// SM-2 memory (srs-benchmark rule): interval, ease factor and repetition count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sm2 {
    ivl: f64,
    ef: f64,
    reps: u32,
}

impl Sm2 {
    const NEW: Sm2 = Sm2 {
        ivl: 0.0,
        ef: 2.5,
        reps: 0,
    };

    /// One review with grade `rating` (1–4).
    fn step(&mut self, rating: u8) {
        let q = f64::from(rating) + 1.0;
        if q > 2.0 {
            self.ivl = match self.reps {
                0 => 1.0,
                1 => 6.0,
                _ => self.ivl * self.ef,
            };
            self.reps += 1;
        } else {
            self.ivl = 1.0;
            self.reps = 0;
        }
        self.ef = (self.ef + (0.1 - (5.0 - q) * (0.08 + (5.0 - q) * 0.02))).max(1.3);
        self.ivl = (self.ivl + 0.01).round().clamp(1.0, S_MAX);
    }

    fn recall(&self, elapsed_days: u32) -> f64 {
        0.9f64.powf(f64::from(elapsed_days) / self.ivl.max(1.0))
    }
}

/// SM-2 predicted recall for an item (srs-benchmark rule): `q = G + 1`; on a pass (`q > 2`) the
/// interval goes 1, 6, then `ivl·EF`; a fail resets it to 1 and the repetition count to 0; EF
/// (start 2.5, floor 1.3) is updated on every review; `ivl = round(ivl + 0.01)` clamped to
/// `[1, 36500]`; `R = 0.9^(t / ivl)`.
pub fn sm2_recall(item: &FsrsItem) -> f64 {
    let mut m = Sm2::NEW;
    for r in item.history() {
        m.step(r.rating);
    }
    m.recall(item.elapsed_days())
}

/// Interval in days of a Memora ladder level (1 → 1, 2 → 3, 3 → 7, 4 → 14).
fn ladder_interval(level: u8) -> f64 {
    match level {
        2 => 3.0,
        3 => 7.0,
        4 => 14.0,
        _ => 1.0,
    }
}

/// The ladder level after a review with grade `rating` from `level`.
fn ladder_step(level: u8, rating: u8) -> u8 {
    match rating {
        1 => 1,
        2 => level.max(1),
        _ => (level + 1).min(4),
    }
}

fn ladder_recall_at(level: u8, elapsed_days: u32) -> f64 {
    0.9f64.powf(f64::from(elapsed_days) / ladder_interval(level))
}

/// Memora ladder predicted recall for an item: starting at level 0, Good/Easy (a correct answer
/// at a mid duration) moves one level up (max 4), Hard (correct but slow) keeps the level (at
/// least 1), Again resets to 1; `R = 0.9^(t / ivl)` with the level's interval.
pub fn ladder_recall(item: &FsrsItem) -> f64 {
    let level = item
        .history()
        .iter()
        .fold(0u8, |level, r| ladder_step(level, r.rating));
    ladder_recall_at(level, item.elapsed_days())
}

/// The four memory models carried along one card's reviews: each review is one step of each
/// model, so the predictions for all of a card's items cost one walk over the card instead of
/// one replay of the history per item.
struct CardWalk<'a> {
    fitted: &'a FsrsParams,
    defaults: &'a FsrsParams,
    /// Reviews consumed so far.
    done: usize,
    /// FSRS states (fitted, default); `None` before the first review.
    fsrs: [Option<MemoryState>; 2],
    /// A grade outside 1–4 was seen: FSRS predicts nothing (the AVG fallback).
    fsrs_invalid: bool,
    sm2: Sm2,
    ladder: u8,
    lapses: usize,
    /// Model state updates made.
    steps: u64,
}

impl<'a> CardWalk<'a> {
    fn new(fitted: &'a FsrsParams, defaults: &'a FsrsParams) -> Self {
        CardWalk {
            fitted,
            defaults,
            done: 0,
            fsrs: [None, None],
            fsrs_invalid: false,
            sm2: Sm2::NEW,
            ladder: 0,
            lapses: 0,
            steps: 0,
        }
    }

    /// Advances to the end of `history`, whose first `done` reviews are those already walked.
    fn advance(&mut self, history: &[ItemReview]) {
        for r in history.iter().skip(self.done) {
            match Rating::from_u8(r.rating) {
                Some(rating) if !self.fsrs_invalid => {
                    let t = f64::from(r.delta_t);
                    self.fsrs[0] = Some(self.fitted.next_state(self.fsrs[0], t, rating));
                    self.fsrs[1] = Some(self.defaults.next_state(self.fsrs[1], t, rating));
                }
                _ => self.fsrs_invalid = true,
            }
            self.sm2.step(r.rating);
            self.ladder = ladder_step(self.ladder, r.rating);
            if r.rating == 1 && r.delta_t > 0 {
                self.lapses += 1;
            }
            self.steps += 4;
        }
        self.done = self.done.max(history.len());
    }

    /// The five predictions (model order) for `item`, whose history was just walked.
    fn predict(&self, item: &FsrsItem, avg: f64) -> [Prediction; 5] {
        let t = item.elapsed_days();
        let fsrs = |k: usize, params: &FsrsParams| match self.fsrs[k] {
            Some(s) if !self.fsrs_invalid => params.retrievability(f64::from(t), s.stability),
            _ => avg,
        };
        let ps = [
            fsrs(0, self.fitted),
            fsrs(1, self.defaults),
            self.sm2.recall(t),
            ladder_recall_at(self.ladder, t),
            avg,
        ];
        ps.map(|p| Prediction {
            p,
            y: item.recalled(),
            elapsed_days: t,
            prior_reviews: item.history().len(),
            prior_lapses: self.lapses,
        })
    }
}

/// Metrics of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Model name.
    pub model: String,
    /// Mean log loss (lower is better).
    pub log_loss: f64,
    /// RMSE(bins) (lower is better).
    pub rmse_bins: f64,
    /// AUC (higher is better; NaN if undefined).
    pub auc: f64,
    /// Number of test predictions.
    pub n: usize,
}

impl EvalRow {
    /// Computes the metrics of a model's pooled test predictions.
    pub fn from_predictions(model: &str, preds: &[Prediction]) -> EvalRow {
        EvalRow {
            model: model.to_owned(),
            log_loss: log_loss(preds),
            rmse_bins: rmse_bins(preds),
            auc: auc(preds),
            n: preds.len(),
        }
    }
}

/// Result of [`evaluate_revlog`] / [`evaluate_items`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// One row per model, in the order listed in the module docs.
    pub rows: Vec<EvalRow>,
    /// Number of items built from the log.
    pub items: usize,
    /// Memory-model state updates run to make the test predictions (one per
    /// review fed to the FSRS-6 fitted, FSRS-6 default, SM-2 or ladder
    /// model): the deterministic measure of the evaluation's cost.
    pub model_steps: u64,
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| Model | Log loss | RMSE(bins) | AUC | n |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {:.4} | {:.4} | {:.4} | {} |",
                r.model, r.log_loss, r.rmse_bins, r.auc, r.n
            )?;
        }
        Ok(())
    }
}

/// Builds items from a review log ([`build_items`]) and evaluates them ([`evaluate_items`]).
pub fn evaluate_revlog(
    entries: &[RevlogEntry],
    offset_minutes: i32,
    rollover_hour: u8,
    fit_config: &FitConfig,
) -> EvalReport {
    let items = build_items(entries, offset_minutes, rollover_hour);
    evaluate_items(&items, fit_config)
}

/// Model names, in report order.
pub const MODELS: [&str; 5] = [
    "FSRS-6 fitted",
    "FSRS-6 default",
    "SM-2",
    "Memora Ladder",
    "AVG",
];

/// Evaluates the models on `items` with the 5-fold time-series split (see the module docs).
/// Items are put in time order (stable) first. With fewer than 6 items every row has `n = 0`.
///
/// Cost: besides one fit per fold, each fold walks every tested card once from its first review
/// to its last tested one, carrying the four models' memory states along (`CardWalk`), so the
/// evaluation is linear in the length of a card's history (replaying each item's history from
/// the start was quadratic: a card with 10 000 reviews took seconds). Items that do not share a
/// card's sequence (see [`FsrsItem::shares_reviews_with`]) are walked on their own.
pub fn evaluate_items(items: &[FsrsItem], fit_config: &FitConfig) -> EvalReport {
    let mut sorted: Vec<FsrsItem> = items
        .iter()
        .filter(|it| it.reviews().len() >= 2)
        .cloned()
        .collect();
    sorted.sort_by_key(|it| it.time);
    let n = sorted.len();
    let segment = n / (N_SPLITS + 1);
    let defaults = FsrsParams::defaults();
    let mut preds: [Vec<Prediction>; 5] = Default::default();
    let mut model_steps = 0u64;
    for k in 1..=N_SPLITS {
        if segment == 0 {
            break;
        }
        let (train_end, test_end) = (k * segment, (k + 1) * segment);
        let train = &sorted[..train_end];
        let fitted = fit(train, fit_config).params;
        let avg = train.iter().filter(|it| it.recalled()).count() as f64 / train.len() as f64;
        let test = &sorted[train_end..test_end];
        // Walk each shared sequence once, its items by increasing length.
        let mut order: Vec<usize> = (0..test.len()).collect();
        order.sort_by_key(|&i| (test[i].sequence_key(), test[i].reviews().len()));
        let mut fold: Vec<Option<[Prediction; 5]>> = vec![None; test.len()];
        let mut walk: Option<(usize, CardWalk<'_>)> = None;
        for i in order {
            let item = &test[i];
            let key = item.sequence_key();
            if walk.as_ref().is_none_or(|(k, _)| *k != key) {
                if let Some((_, w)) = walk.take() {
                    model_steps += w.steps;
                }
                walk = Some((key, CardWalk::new(&fitted, &defaults)));
            }
            let Some((_, w)) = walk.as_mut() else {
                continue;
            };
            w.advance(item.history());
            fold[i] = Some(w.predict(item, avg));
        }
        if let Some((_, w)) = walk {
            model_steps += w.steps;
        }
        // Predictions in time order, as the items were tested.
        for ps in fold.into_iter().flatten() {
            for (out, p) in preds.iter_mut().zip(ps) {
                out.push(p);
            }
        }
    }
    let rows = MODELS
        .iter()
        .zip(&preds)
        .map(|(name, p)| EvalRow::from_predictions(name, p))
        .collect();
    EvalReport {
        rows,
        items: n,
        model_steps,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fsrs::Rating;
    use super::super::revlog::ItemReview;
    use super::*;
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};

    fn pred(p: f64, y: bool, t: u32, n: usize, lapses: usize) -> Prediction {
        Prediction {
            p,
            y,
            elapsed_days: t,
            prior_reviews: n,
            prior_lapses: lapses,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).single().unwrap()
    }

    fn item(reviews: &[(u8, u32)]) -> FsrsItem {
        FsrsItem::new(
            1,
            t0(),
            reviews
                .iter()
                .map(|&(rating, delta_t)| ItemReview { rating, delta_t })
                .collect(),
        )
    }

    #[test]
    fn log_loss_hand_computed() {
        // −(ln 0.9 + ln 0.8 + ln 0.4) / 3 = (0.1053605 + 0.2231436 + 0.9162907) / 3
        let v = [
            pred(0.9, true, 1, 1, 0),
            pred(0.2, false, 1, 1, 0),
            pred(0.6, false, 1, 1, 0),
        ];
        assert!(
            (log_loss(&v) - 0.414_931_6).abs() < 1e-7,
            "{}",
            log_loss(&v)
        );
        close(
            log_loss(&v),
            -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0,
        );
        // Certain-but-wrong predictions are clamped to 1e-4: −ln(1e-4) = 9.2103404.
        close(log_loss(&[pred(1.0, false, 1, 1, 0)]), -(1e-4f64).ln());
        close(log_loss(&[pred(0.0, true, 1, 1, 0)]), -(1e-4f64).ln());
        assert!(log_loss(&[]).is_nan());
    }

    #[test]
    fn bins_follow_the_benchmark_formula() {
        // t: 2.48·3.62^k rounded to 2 decimals (×100); n: 1.99·1.89^k; lapses: 1.65·1.73^k.
        assert_eq!(bin_of(&pred(0.5, true, 1, 1, 0)), (248, 2, 0));
        assert_eq!(bin_of(&pred(0.5, true, 3, 1, 0)), (248, 2, 0));
        assert_eq!(bin_of(&pred(0.5, true, 4, 2, 1)), (898, 4, 2));
        assert_eq!(bin_of(&pred(0.5, true, 13, 3, 2)), (898, 4, 3));
        // 2.48·3.62² = 32.4989 → 32.50; 1.99·1.89² = 7.108 → 7; 1.65·1.73² = 4.938 → 5
        assert_eq!(bin_of(&pred(0.5, true, 14, 4, 3)), (3250, 7, 5));
    }

    #[test]
    fn rmse_bins_hand_computed() {
        // A (t1,n1,l0) p .9 y1 and B (t3,n1,l0) p .7 y0 share bin (2.48, 2, 0):
        //   mean p .8, mean y .5 → 2·0.3² = 0.18
        // C (t4,n2,l0) p .8 y1 → bin (8.98, 4, 0): 1·0.2² = 0.04
        // D (t4,n3,l1) p .5 y1 → bin (8.98, 4, 2): 1·0.5² = 0.25
        // RMSE = sqrt((0.18 + 0.04 + 0.25) / 4) = sqrt(0.1175) = 0.342782730…
        let v = [
            pred(0.9, true, 1, 1, 0),
            pred(0.7, false, 3, 1, 0),
            pred(0.8, true, 4, 2, 0),
            pred(0.5, true, 4, 3, 1),
        ];
        close(rmse_bins(&v), 0.1175f64.sqrt());
        assert!((rmse_bins(&v) - 0.342_782_73).abs() < 1e-8);
        assert!(rmse_bins(&[]).is_nan());
        // A perfectly calibrated bin scores 0.
        close(
            rmse_bins(&[pred(0.5, true, 2, 1, 0), pred(0.5, false, 2, 1, 0)]),
            0.0,
        );
    }

    #[test]
    fn auc_with_ties() {
        // Sorted: 0.2(−) rank 1; 0.4(+), 0.4(−) ranks 2,3 → 2.5; 0.8(+), 0.8(+) → 4.5 each.
        // Positive rank sum 11.5; U = 11.5 − 3·4/2 = 5.5; AUC = 5.5 / (3·2) = 0.916667.
        let v = [
            pred(0.8, true, 1, 1, 0),
            pred(0.4, false, 1, 1, 0),
            pred(0.2, false, 1, 1, 0),
            pred(0.4, true, 1, 1, 0),
            pred(0.8, true, 1, 1, 0),
        ];
        close(auc(&v), 5.5 / 6.0);
        let all_tied: Vec<_> = v.iter().map(|x| Prediction { p: 0.3, ..*x }).collect();
        close(auc(&all_tied), 0.5);
        let inverted: Vec<_> = v
            .iter()
            .map(|x| Prediction { p: 1.0 - x.p, ..*x })
            .collect();
        close(auc(&inverted), 0.5 / 6.0);
        assert!(auc(&v[..1]).is_nan());
    }

    #[test]
    fn sm2_benchmark_rule() {
        // Good, Good, Good: intervals 1, 6, 6·2.5 = 15 → R(15) = 0.9.
        close(sm2_recall(&item(&[(3, 0), (3, 1), (3, 6), (3, 15)])), 0.9);
        // Again lowers EF to 2.18 and restarts: 1, 6, 6·2.18 = 13.08 → 13.
        let h = [(3, 0), (1, 1), (3, 1), (3, 6), (3, 6), (3, 13)];
        close(sm2_recall(&item(&h)), 0.9);
        close(sm2_recall(&item(&[(3, 0), (3, 2)])), 0.81);
        // Hard (q = 3) is a pass: 1 → 6, EF 2.5 − 0.14.
        close(sm2_recall(&item(&[(2, 0), (2, 1), (3, 6)])), 0.9);
        // EF never drops below 1.3: after many Agains, 1, 6, round(6·1.3 + 0.01) = 8.
        let mut h = vec![(1u8, 0u32); 10];
        h.extend([(3, 1), (3, 1), (3, 6), (3, 8)]);
        close(sm2_recall(&item(&h)), 0.9);
    }

    #[test]
    fn ladder_rule() {
        let h = [(3, 0), (3, 1), (3, 3), (3, 7), (4, 14), (3, 14)];
        close(ladder_recall(&item(&h)), 0.9);
        close(ladder_recall(&item(&[(3, 0), (2, 1), (3, 2)])), 0.81);
        close(ladder_recall(&item(&[(2, 0), (3, 1)])), 0.9);
        close(ladder_recall(&item(&[(4, 0), (4, 1), (1, 3), (3, 1)])), 0.9);
        close(
            ladder_recall(&item(&[(3, 0), (3, 1), (3, 6)])),
            0.9f64.powf(2.0),
        );
    }

    /// Tiny FSRS-6 learner simulation with our own PRNG (xorshift64*).
    fn simulated_items(cards: usize) -> Vec<FsrsItem> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut unit = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut w = *FsrsParams::defaults().as_array();
        w[0] = 1.0;
        w[2] = 8.0;
        w[8] = 1.2;
        w[20] = 0.5;
        let truth = FsrsParams::from_slice(&w).unwrap();
        let mut entries = Vec::new();
        for card in 0..cards {
            let mut day = (card / 4) as i64;
            let first = if unit() < 0.3 {
                Rating::Again
            } else {
                Rating::Good
            };
            let mut s = truth.initial_state(first);
            let mut push = |day: i64, rating: Rating| {
                entries.push(RevlogEntry {
                    card_id: card as i64,
                    rating: rating.as_u8(),
                    time: t0() + TimeDelta::days(day),
                    duration_ms: 4000,
                });
            };
            push(day, first);
            for _ in 0..8 {
                let delta = (s.stability * (0.3 + 2.0 * unit()))
                    .round()
                    .clamp(1.0, 90.0);
                day += delta as i64;
                let rating = if unit() < truth.retrievability(delta, s.stability) {
                    Rating::Good
                } else {
                    Rating::Again
                };
                push(day, rating);
                s = truth.next_state(Some(s), delta, rating);
            }
        }
        build_items(&entries, 0, 4)
    }

    #[test]
    fn time_series_evaluation_on_a_simulated_learner() {
        let items = simulated_items(400);
        let report = evaluate_items(&items, &FitConfig::default());
        assert_eq!(report.items, items.len());
        let names: Vec<&str> = report.rows.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(names, MODELS);
        let tested = 5 * (items.len() / 6);
        assert!(report.rows.iter().all(|r| r.n == tested));
        let row = |name: &str| report.rows.iter().find(|r| r.model == name).unwrap();
        let (fitted, default, avg) = (row("FSRS-6 fitted"), row("FSRS-6 default"), row("AVG"));
        assert!(fitted.log_loss < default.log_loss, "{report}");
        assert!(fitted.log_loss < avg.log_loss, "{report}");
        assert!(fitted.rmse_bins < avg.rmse_bins, "{report}");
        assert!(fitted.auc > 0.6, "{report}");
        assert!(row("SM-2").log_loss > fitted.log_loss);
        let text = report.to_string();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("| Model | Log loss | RMSE(bins) | AUC | n |")
        );
        assert_eq!(lines.next(), Some("|---|---|---|---|---|"));
        let first = lines.next().unwrap();
        assert!(first.starts_with("| FSRS-6 fitted | 0."), "{first}");
        assert!(first.ends_with(&format!(" | {tested} |")), "{first}");
        assert_eq!(text.lines().count(), 2 + MODELS.len());
    }

    #[test]
    fn too_little_data_gives_empty_rows() {
        let e = |day: i64, rating: u8| RevlogEntry {
            card_id: 1,
            rating,
            time: t0() + TimeDelta::days(day),
            duration_ms: 1000,
        };
        let report = evaluate_revlog(&[e(0, 3), e(1, 3), e(4, 1)], 0, 4, &FitConfig::default());
        assert_eq!(report.items, 2);
        assert!(report.rows.iter().all(|r| r.n == 0 && r.log_loss.is_nan()));
        assert!(report.to_string().contains("| AVG | NaN | NaN | NaN | 0 |"));
    }

    #[test]
    fn evaluation_cost_is_linear_in_a_cards_history() {
        // One card reviewed every day or two, 1 500 times: every review after
        // the first is an item whose history is all earlier reviews.
        let n = 1_500usize;
        let mut day = 0i64;
        let entries: Vec<RevlogEntry> = (0..n)
            .map(|i| {
                day += 1 + (i % 2) as i64;
                RevlogEntry {
                    card_id: 7,
                    rating: if i % 5 == 0 { 1 } else { 3 },
                    time: t0() + TimeDelta::days(day),
                    duration_ms: 3000,
                }
            })
            .collect();
        let report = evaluate_revlog(&entries, 0, 4, &FitConfig::default());
        assert_eq!(report.items, n - 1);
        // Four models walk the card at most once per fold: linear, where
        // replaying each test item's history from the start costs ~n²/2.
        let bound = 4 * N_SPLITS as u64 * n as u64;
        assert!(
            report.model_steps <= bound,
            "{} model steps for {n} reviews (linear bound {bound})",
            report.model_steps
        );
        assert!(report.model_steps >= 4 * (n as u64 - n as u64 / 6) - 4 * 6);
    }
}
