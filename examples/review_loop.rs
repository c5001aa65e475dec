//! A scripted week of reviews, embedding memora-core with its in-memory
//! adapters and a manual clock: each day the demo student asks for the due
//! cards, answers them (about 80 % correct, varied speed), and the example
//! prints the due counts and the intervals the ladder chose.
//!
//! Run with `cargo run --example review_loop`.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::seed_demo;
use memora_core::domain::Actor;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::services::Config;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::srs::{AnswerSignals, stable_hash};
use memora_core::{CoreError, Memora};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), CoreError> {
    let backend = InMemoryBackend::new();
    let start = Utc
        .with_ymd_and_hms(2026, 9, 7, 16, 0, 0)
        .single()
        .ok_or_else(|| CoreError::Internal("bad start date".into()))?;
    let clock = ManualClock::new(start);
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    let app = Memora::new(ports, Config::default());
    let demo = seed_demo(&app, "example-password").await?;
    let student = Actor::student(demo.student.clone());
    println!(
        "season {} — {} questions due at start\n",
        demo.season, demo.due_now
    );
    println!("day  due  answered  correct  xp   next intervals (days → cards)");

    for day in 1..=7 {
        let session = app
            .reviews()
            .get_review_session(
                &student,
                &ReviewQuery {
                    limit: Some(50),
                    ..Default::default()
                },
            )
            .await?;
        let due = session.total_due;
        let answers: Vec<AnswerInput> = session
            .questions
            .iter()
            .map(|card| {
                let h = stable_hash(&[card.id.as_str()], day);
                AnswerInput {
                    question_id: card.id.clone(),
                    signals: AnswerSignals::review(h % 10 < 8, 1000 + (h % 7000) as u32),
                    review_id: None,
                }
            })
            .collect();
        let (answered, correct, xp) = if answers.is_empty() {
            (0, 0, 0)
        } else {
            let correct = answers.iter().filter(|a| a.signals.is_correct).count();
            let out = app
                .reviews()
                .submit_review_session(
                    &student,
                    &ReviewSubmission {
                        answers: answers.clone(),
                        ..Default::default()
                    },
                )
                .await?;
            (out.processed, correct, out.xp_earned)
        };
        let ids: Vec<_> = answers.iter().map(|a| a.question_id.clone()).collect();
        let rows = app
            .ports()
            .trackers
            .get_trackers(&demo.student, &demo.season, &ids)
            .await?;
        let mut hist: BTreeMap<i64, usize> = BTreeMap::new();
        for r in rows {
            *hist
                .entry((r.state.due - clock.now_utc()).num_days())
                .or_default() += 1;
        }
        let hist: Vec<String> = hist.iter().map(|(d, n)| format!("{d}→{n}")).collect();
        println!(
            "{day:>3}  {due:>3}  {answered:>8}  {correct:>7}  {xp:>3}  {}",
            hist.join(" ")
        );
        clock.advance(Duration::days(1));
    }
    let stats = app
        .gamification()
        .get_full_profile_stats(&student, None)
        .await?;
    println!(
        "\nafter a week: {} XP, level {} ({}), streak {} days, mastery new/learning/mature = {}/{}/{}",
        stats.xp,
        stats.level.level,
        stats.level_title,
        stats.streak,
        stats.mastery.new,
        stats.mastery.learning,
        stats.mastery.mature
    );
    Ok(())
}

trait NowUtc {
    fn now_utc(&self) -> chrono::DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> chrono::DateTime<Utc> {
        use memora_core::ports::Clock;
        self.now()
    }
}
