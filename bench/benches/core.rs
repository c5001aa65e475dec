//! Micro-benchmarks of the core: scheduler decisions per second (ladder and
//! FSRS-6), level/streak math, an FSRS-6 fit of a 10,000-review learner, and
//! in-memory rehydration of a 100 K-question schedule.

use std::hint::black_box;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use memora_core::srs::fsrs::FsrsConfig;
use memora_core::srs::optimizer::{FitConfig, fit};
use memora_core::srs::revlog::{RevlogEntry, build_items};
use memora_core::srs::{AnswerPath, AnswerSignals, Fsrs6, Ladder, ReviewContext, Scheduler};

fn schedulers(c: &mut Criterion) {
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let ctx = ReviewContext {
        now,
        elapsed_days: 3,
        fuzz_seed: 42,
    };
    let answer = AnswerSignals::review(true, 2500);
    let ladder = Ladder;
    let first = ladder
        .schedule(None, &answer, AnswerPath::Review, &ctx)
        .state;
    c.bench_function("ladder_decision", |b| {
        b.iter(|| {
            black_box(ladder.schedule(Some(black_box(&first)), &answer, AnswerPath::Review, &ctx))
        })
    });
    let fsrs = Fsrs6::new(FsrsConfig::default());
    let mut state = fsrs.schedule(None, &answer, AnswerPath::Review, &ctx).state;
    state = fsrs
        .schedule(Some(&state), &answer, AnswerPath::Review, &ctx)
        .state;
    c.bench_function("fsrs6_decision", |b| {
        b.iter(|| {
            black_box(fsrs.schedule(Some(black_box(&state)), &answer, AnswerPath::Review, &ctx))
        })
    });
}

fn gamification(c: &mut Criterion) {
    c.bench_function("level_progress", |b| {
        let mut xp = 0i64;
        b.iter(|| {
            xp = (xp + 7919) % 10_000_000;
            black_box(memora_core::gamification::level_progress(black_box(xp)))
        })
    });
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
    let days: Vec<NaiveDate> = (0..365).map(|d| today - Duration::days(d)).collect();
    c.bench_function("streak_365_days", |b| {
        b.iter(|| black_box(memora_core::gamification::streak(black_box(&days), today)))
    });
}

fn optimizer(c: &mut Criterion) {
    // A synthetic 10,000-review learner: 800 cards, ~12 reviews each.
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut s: u64 = 1;
    for card in 0..800i64 {
        let mut t = start + Duration::hours(card);
        let mut ivl = 1i64;
        for _ in 0..13 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pass = (s >> 33) % 100 < 80;
            entries.push(RevlogEntry {
                card_id: card,
                rating: if pass { 3 } else { 1 },
                time: t,
                duration_ms: 5000,
            });
            ivl = if pass { (ivl * 2).min(120) } else { 1 };
            t += Duration::days(ivl);
            if entries.len() >= 10_000 {
                break;
            }
        }
    }
    let items = build_items(&entries, 0, 4);
    let mut g = c.benchmark_group("fsrs_fit");
    g.sample_size(10);
    g.bench_function("fit_10k_reviews", |b| {
        b.iter(|| black_box(fit(black_box(&items), &FitConfig::default())))
    });
    g.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, schedulers, gamification, optimizer);
}
criterion_main!(group::benches);
