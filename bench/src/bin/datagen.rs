//! Data generator for the HTTP benchmarks: loads a realistic population
//! into PostgreSQL — a content catalog whose questions match the bulk
//! loader's ids, `--players` × `--questions` tracker rows with review-log
//! history and due dates spread from 30 days ago to 60 days ahead, an
//! active season, and `--login-users` accounts that can log in (all with the
//! same password). The cache is filled lazily (rehydration) or with
//! `memora cache rebuild`. Parameterised, so 100 K, 1 M and 100 M-row runs
//! use the same tool.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::{AuthStore, ContentStore, PasswordHasher, ProfileStore, SeasonStore};
use memora_store_postgres::{BENCH_SUBJECTS, PgStore, bench_question, bench_user};
use sqlx::Connection;

#[derive(Parser, Debug)]
#[command(about = "Load a benchmark population into PostgreSQL")]
struct Args {
    /// Database URL (created if missing).
    #[arg(
        long,
        env = "MEMORA_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/memora_bench"
    )]
    url: String,
    /// Players.
    #[arg(long, default_value_t = 100_000)]
    players: usize,
    /// Questions per player.
    #[arg(long, default_value_t = 100)]
    questions: usize,
    /// Players that get a login (user row + password).
    #[arg(long, default_value_t = 2000)]
    login_users: usize,
    /// Password of the login users.
    #[arg(long, env = "MEMORA_BENCH_PASSWORD", default_value = "bench-password")]
    password: String,
    /// Season.
    #[arg(long, default_value = "SEASON-2026")]
    season: String,
    /// Drop and recreate the database first.
    #[arg(long)]
    fresh: bool,
    /// Resume a load that was cut off (lost connection, server restart):
    /// keep the rows of the players loaded completely and load the rest,
    /// exactly as an uninterrupted run would have.
    #[arg(long, conflicts_with = "fresh")]
    resume: bool,
}

fn catalog(questions: usize) -> anyhow::Result<Catalog> {
    let stages = questions.div_ceil(4);
    let subjects = BENCH_SUBJECTS;
    let mut c = Catalog::default();
    for s in 0..subjects {
        c.subjects.push(Subject {
            id: SubjectId::new(format!("bench-subj{s}"))?,
            title: format!("Bench subject {s}"),
            icon: None,
            is_published: true,
            is_paid: false,
        });
        c.tracks.push(Track {
            id: TrackId::new(format!("bench-track{s}"))?,
            subject: SubjectId::new(format!("bench-subj{s}"))?,
            name: "Main".into(),
            is_default: true,
            unlock_level: 0,
            icon: None,
            description: None,
            is_linear: false,
            is_published: true,
            is_paid: false,
            is_sold_separately: false,
        });
        c.units.push(Unit {
            id: UnitId::new(format!("bench-unit{s}"))?,
            subject: SubjectId::new(format!("bench-subj{s}"))?,
            track: TrackId::new(format!("bench-track{s}"))?,
            title: format!("Unit {s}"),
            order: 0,
            structure: UnitStructure::LessonBased,
            is_linear_topics: false,
            is_free_preview: true,
            is_published: true,
        });
    }
    // One lesson per 5 stages; each stage is a Matching stage of 4 pairs, so
    // question q = stage q/4, pair q%4 — exactly the bulk loader's ids, filed
    // under the subject the loader gives them (`bench_subject`; pinned by
    // the test below).
    for l in 0..stages.div_ceil(5) {
        let s = l % subjects;
        let mut lesson_stages = Vec::new();
        for st in (l * 5)..((l + 1) * 5).min(stages) {
            lesson_stages.push(Stage {
                id: StageId::new(format!("bench-st{st:05}"))?,
                title: "Matching".into(),
                config: StageConfig::Matching {
                    instruction: None,
                    pairs: (0..4)
                        .map(|k| MatchPair {
                            id: Some(k.to_string()),
                            left: format!("answer {st}-{k}"),
                            right: format!("prompt {st}-{k}"),
                        })
                        .collect(),
                },
            });
        }
        c.lessons.push(Lesson {
            id: LessonId::new(format!("bench-l{l:05}"))?,
            title: format!("Bench lesson {l}"),
            unit: UnitId::new(format!("bench-unit{s}"))?,
            topic: None,
            xp_reward: 40,
            order: l as i32,
            is_published: true,
            stages: lesson_stages,
        });
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (base, db) = args
        .url
        .rsplit_once('/')
        .context("database URL has no database name")?;
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    if args.fresh {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(db)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await?;
    }
    let store = PgStore::connect(&args.url, 8).await?;
    store.migrate().await?;
    let t = Instant::now();
    let cat = catalog(args.questions)?;
    memora_core::services::ContentIndex::build(cat.clone())?;
    store.import_catalog(&cat).await?;
    let season = SeasonId::new(&args.season)?;
    let first = if args.resume {
        let first = store.bulk_resume_point(&season).await?;
        eprintln!("resuming at player {first} of {}", args.players);
        first
    } else {
        0
    };
    let report = store
        .bulk_load_from(&season, first, args.players, args.questions, true, 2026)
        .await?;
    store.activate_season(&season).await?;
    eprintln!(
        "loaded {} tracker rows and {} review-log rows in {:.1} s",
        report.trackers,
        report.reviews,
        report.elapsed.as_secs_f64()
    );
    // A real argon2 hash (the server's hasher), computed once for all users.
    let hash = memora_http::security::Argon2Hasher
        .hash(&args.password)
        .await?;
    for i in 0..args.login_users.min(args.players) {
        let id = UserId::new(bench_user(i))?;
        let user = User {
            id: id.clone(),
            full_name: format!("Bench {i}"),
            roles: vec![Role::Student],
            enabled: true,
        };
        if store.get_user(&id).await?.is_none() {
            store.create_user(&user, Some(&hash)).await?;
            let mut p = PlayerProfile::new(id, user.full_name.clone());
            p.season = Some(season.clone());
            store.upsert_profile(&p).await?;
        }
    }
    eprintln!(
        "{} login users (password from --password); questions look like {}; total {:.1} s",
        args.login_users.min(args.players),
        bench_question(0),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use memora_store_postgres::bench_subject;

    /// The loader files question q's tracker under `bench_subject(q)` and no
    /// topic: the catalog must say the same, or every answer in a benchmark
    /// moves its card to another subject (work no real answer does).
    #[test]
    fn the_catalog_files_each_question_where_the_loader_does() {
        let cat = catalog(200).expect("catalog");
        memora_core::services::ContentIndex::build(cat.clone()).expect("valid");
        for q in 0..200 {
            let (stage, pair) = bench_question(q)
                .split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .expect("stage:pair");
            let lesson = cat
                .lessons
                .iter()
                .find(|l| l.stages.iter().any(|s| s.id.as_str() == stage))
                .expect("the stage is in a lesson");
            assert_eq!(lesson.topic, None, "question {q}");
            let unit = cat
                .units
                .iter()
                .find(|u| u.id == lesson.unit)
                .expect("unit");
            assert_eq!(
                unit.subject.as_str(),
                format!("bench-subj{}", bench_subject(q)),
                "question {q} (pair {pair})"
            );
        }
    }
}
