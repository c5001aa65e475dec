//! The demo dataset: two subjects with tracks, lesson- and topic-based
//! units, twelve published lessons covering all five stage types, grades,
//! streams and plans, one active season, a store, an admin, and a student
//! whose history leaves questions due now in both subjects. Loaded by the
//! embedded server and usable by any embedding application or test.

use chrono::{Datelike, Duration};

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::services::Memora;
use crate::srs::{AnswerPath, AnswerSignals, Ladder, ReviewContext, Scheduler};

/// Demo student login.
pub const DEMO_STUDENT: &str = "student@demo.memora";
/// Demo admin login.
pub const DEMO_ADMIN: &str = "admin@demo.memora";

/// The second institution of the embedded demo (see
/// [`crate::services::platform`]): same catalog, its own accounts, learners
/// and leaderboards.
pub const DEMO_SECOND_INSTITUTION: &str = "northside";
/// Its student's login.
pub const NORTHSIDE_STUDENT: &str = "student@northside.memora";
/// Its manager's login.
pub const NORTHSIDE_ADMIN: &str = "admin@northside.memora";

/// The accounts a demo dataset is seeded with.
#[derive(Debug, Clone, Copy)]
pub struct DemoAccounts<'a> {
    /// Admin login and display name.
    pub admin: (&'a str, &'a str),
    /// Student login and display name.
    pub student: (&'a str, &'a str),
}

impl DemoAccounts<'static> {
    /// The home institution's demo accounts.
    pub const HOME: DemoAccounts<'static> = DemoAccounts {
        admin: (DEMO_ADMIN, "Demo Admin"),
        student: (DEMO_STUDENT, "Demo Student"),
    };
}

/// What `seed_demo` created.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoInfo {
    /// Active season.
    pub season: SeasonId,
    /// Student id.
    pub student: UserId,
    /// Admin id.
    pub admin: UserId,
    /// Questions due now for the student.
    pub due_now: usize,
}

fn reveal(id: &str, sentence: &str, words: &[&str]) -> CoreResult<Stage> {
    Ok(Stage {
        id: StageId::new(id)?,
        title: "Reveal".into(),
        config: StageConfig::Reveal {
            image: None,
            sentence: sentence.into(),
            highlights: words
                .iter()
                .map(|w| Highlight {
                    word: (*w).into(),
                    explanation: None,
                    id: None,
                })
                .collect(),
        },
    })
}

fn matching(id: &str, pairs: &[(&str, &str)]) -> CoreResult<Stage> {
    Ok(Stage {
        id: StageId::new(id)?,
        title: "Matching".into(),
        config: StageConfig::Matching {
            instruction: Some("Match the pairs".into()),
            pairs: pairs
                .iter()
                .enumerate()
                .map(|(i, (l, r))| MatchPair {
                    id: Some(format!("{}", i + 1)),
                    left: (*l).into(),
                    right: (*r).into(),
                })
                .collect(),
        },
    })
}

fn extra_stage(id: &str, kind: usize, words: &[&str]) -> CoreResult<Stage> {
    let config = match kind % 3 {
        0 => StageConfig::FillBlank {
            instruction: Some("Fill the blank".into()),
            sentence: format!("{} is linked to {{{}}}.", words[0], words[1]),
            blanks: vec![words[1].into()],
            distractors: vec![words[2].into(), "none".into()],
        },
        1 => StageConfig::SentenceBuilder {
            instruction: Some("Build the sentence".into()),
            sentence: words.join(" "),
            words: words.iter().map(|w| (*w).into()).collect(),
        },
        _ => StageConfig::Quiz(serde_json::json!({
            "question": format!("Which word belongs with {}?", words[0]),
            "options": [words[1], words[2], "none"],
            "correct_answer": words[1],
        })),
    };
    Ok(Stage {
        id: StageId::new(id)?,
        title: config.type_name().into(),
        config,
    })
}

struct LessonSpec<'a> {
    id: &'a str,
    title: &'a str,
    unit: &'a str,
    topic: Option<&'a str>,
    words: [&'a str; 3],
    pairs: [(&'a str, &'a str); 3],
}

fn lesson(spec: &LessonSpec<'_>, order: i32) -> CoreResult<Lesson> {
    let [a, b, c] = spec.words;
    Ok(Lesson {
        id: LessonId::new(spec.id)?,
        title: spec.title.into(),
        unit: UnitId::new(spec.unit)?,
        topic: spec.topic.map(TopicId::new).transpose()?,
        xp_reward: 40,
        order,
        is_published: true,
        stages: vec![
            reveal(
                &format!("{}-rv", spec.id),
                &format!("{a}, {b} and {c} are key ideas of {}.", spec.title),
                &spec.words,
            )?,
            matching(&format!("{}-mt", spec.id), &spec.pairs)?,
            extra_stage(&format!("{}-x", spec.id), order as usize, &spec.words)?,
        ],
    })
}

/// The demo catalog for `season`.
pub fn demo_catalog(season: &SeasonId) -> CoreResult<Catalog> {
    let subject = |sid: &str, title: &str, paid: bool| -> CoreResult<Subject> {
        Ok(Subject {
            id: SubjectId::new(sid)?,
            title: title.into(),
            icon: None,
            is_published: true,
            is_paid: paid,
        })
    };
    let track = |tid: &str, sid: &str, name: &str| -> CoreResult<Track> {
        Ok(Track {
            id: TrackId::new(tid)?,
            subject: SubjectId::new(sid)?,
            name: name.into(),
            is_default: true,
            unlock_level: 0,
            icon: None,
            description: None,
            is_linear: true,
            is_published: true,
            is_paid: false,
            is_sold_separately: false,
        })
    };
    let unit = |uid: &str,
                sid: &str,
                tid: &str,
                title: &str,
                s: UnitStructure,
                order: i32,
                free: bool|
     -> CoreResult<Unit> {
        Ok(Unit {
            id: UnitId::new(uid)?,
            subject: SubjectId::new(sid)?,
            track: TrackId::new(tid)?,
            title: title.into(),
            order,
            structure: s,
            is_linear_topics: true,
            is_free_preview: free,
            is_published: true,
        })
    };
    let topic = |tid: &str, uid: &str, title: &str, order: i32| -> CoreResult<Topic> {
        Ok(Topic {
            id: TopicId::new(tid)?,
            unit: UnitId::new(uid)?,
            title: title.into(),
            description: None,
            order,
            is_linear: true,
            is_free_preview: false,
            is_published: true,
        })
    };
    let specs = [
        LessonSpec {
            id: "hist-l1",
            title: "Ancient Jordan",
            unit: "hist-u1",
            topic: None,
            words: ["Petra", "Nabataeans", "Jerash"],
            pairs: [
                ("Petra", "rose city"),
                ("Jerash", "Gerasa"),
                ("Amman", "Philadelphia"),
            ],
        },
        LessonSpec {
            id: "hist-l2",
            title: "Roman Era",
            unit: "hist-u1",
            topic: None,
            words: ["Decapolis", "Umm Qais", "Gadara"],
            pairs: [
                ("Gadara", "Umm Qais"),
                ("Decapolis", "ten cities"),
                ("Pella", "Tabaqat Fahl"),
            ],
        },
        LessonSpec {
            id: "hist-l3",
            title: "Islamic Era",
            unit: "hist-u1",
            topic: None,
            words: ["Umayyads", "Qasr Amra", "desert castles"],
            pairs: [
                ("Qasr Amra", "frescoes"),
                ("Umayyads", "Damascus"),
                ("Qasr Kharana", "fortress"),
            ],
        },
        LessonSpec {
            id: "hist-l4",
            title: "Great Arab Revolt",
            unit: "hist-u2",
            topic: Some("hist-t1"),
            words: ["1916", "Sharif Hussein", "Aqaba"],
            pairs: [
                ("1916", "revolt begins"),
                ("Aqaba", "1917 battle"),
                ("Hejaz", "railway"),
            ],
        },
        LessonSpec {
            id: "hist-l5",
            title: "Emirate of Transjordan",
            unit: "hist-u2",
            topic: Some("hist-t1"),
            words: ["1921", "Abdullah I", "Transjordan"],
            pairs: [
                ("1921", "emirate founded"),
                ("Abdullah I", "first emir"),
                ("Amman", "capital"),
            ],
        },
        LessonSpec {
            id: "hist-l6",
            title: "Independence",
            unit: "hist-u2",
            topic: Some("hist-t2"),
            words: ["1946", "independence", "kingdom"],
            pairs: [
                ("1946", "independence"),
                ("1952", "constitution"),
                ("1955", "UN membership"),
            ],
        },
        LessonSpec {
            id: "hist-l7",
            title: "Modern Jordan",
            unit: "hist-u2",
            topic: Some("hist-t2"),
            words: ["Hussein", "1999", "Abdullah II"],
            pairs: [
                ("1999", "Abdullah II"),
                ("1994", "peace treaty"),
                ("1989", "elections"),
            ],
        },
        LessonSpec {
            id: "sci-l1",
            title: "Cells",
            unit: "sci-u1",
            topic: Some("sci-t1"),
            words: ["nucleus", "membrane", "cytoplasm"],
            pairs: [
                ("nucleus", "control centre"),
                ("mitochondria", "energy"),
                ("ribosome", "proteins"),
            ],
        },
        LessonSpec {
            id: "sci-l2",
            title: "Photosynthesis",
            unit: "sci-u1",
            topic: Some("sci-t1"),
            words: ["chlorophyll", "glucose", "oxygen"],
            pairs: [
                ("chlorophyll", "green pigment"),
                ("glucose", "sugar"),
                ("stomata", "pores"),
            ],
        },
        LessonSpec {
            id: "sci-l3",
            title: "Forces",
            unit: "sci-u1",
            topic: Some("sci-t2"),
            words: ["newton", "gravity", "friction"],
            pairs: [
                ("newton", "unit of force"),
                ("gravity", "attraction"),
                ("friction", "resistance"),
            ],
        },
        LessonSpec {
            id: "sci-l4",
            title: "Energy",
            unit: "sci-u1",
            topic: Some("sci-t2"),
            words: ["joule", "kinetic", "potential"],
            pairs: [
                ("joule", "unit of energy"),
                ("kinetic", "motion"),
                ("potential", "position"),
            ],
        },
        LessonSpec {
            id: "sci-l5",
            title: "Atoms",
            unit: "sci-u2",
            topic: None,
            words: ["proton", "neutron", "electron"],
            pairs: [
                ("proton", "positive"),
                ("electron", "negative"),
                ("neutron", "neutral"),
            ],
        },
    ];
    let lessons = specs
        .iter()
        .enumerate()
        .map(|(i, s)| lesson(s, i as i32))
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(Catalog {
        subjects: vec![
            subject("history", "تاريخ الأردن", false)?,
            subject("science", "Science", true)?,
        ],
        tracks: vec![
            track("hist-main", "history", "Main track")?,
            track("sci-main", "science", "Main track")?,
        ],
        units: vec![
            unit(
                "hist-u1",
                "history",
                "hist-main",
                "Ancient to Islamic",
                UnitStructure::LessonBased,
                1,
                false,
            )?,
            unit(
                "hist-u2",
                "history",
                "hist-main",
                "The Modern State",
                UnitStructure::TopicBased,
                2,
                false,
            )?,
            unit(
                "sci-u1",
                "science",
                "sci-main",
                "Life and Forces",
                UnitStructure::TopicBased,
                1,
                true,
            )?,
            unit(
                "sci-u2",
                "science",
                "sci-main",
                "Matter",
                UnitStructure::LessonBased,
                2,
                false,
            )?,
        ],
        topics: vec![
            topic("hist-t1", "hist-u2", "Revolt and Emirate", 1)?,
            topic("hist-t2", "hist-u2", "Kingdom", 2)?,
            topic("sci-t1", "sci-u1", "Living Things", 1)?,
            topic("sci-t2", "sci-u1", "Physics Basics", 2)?,
        ],
        lessons,
        grades: vec![
            Grade {
                id: GradeId::new("G12")?,
                name: "Grade 12".into(),
                valid_streams: vec![StreamId::new("SCI")?, StreamId::new("LIT")?],
            },
            Grade {
                id: GradeId::new("G10")?,
                name: "Grade 10".into(),
                valid_streams: vec![],
            },
        ],
        streams: vec![
            Stream {
                id: StreamId::new("SCI")?,
                name: "Scientific".into(),
            },
            Stream {
                id: StreamId::new("LIT")?,
                name: "Literary".into(),
            },
        ],
        plans: vec![
            AcademicPlan {
                id: PlanId::new("plan-g12-sci")?,
                title: "Grade 12 Scientific".into(),
                grade: GradeId::new("G12")?,
                stream: Some(StreamId::new("SCI")?),
                season: season.clone(),
                subjects: vec![
                    PlanSubject {
                        subject: SubjectId::new("history")?,
                        display_name: Some("تاريخ الأردن".into()),
                        is_mandatory: true,
                        selection: UnitSelection::AllUnits,
                    },
                    PlanSubject {
                        subject: SubjectId::new("science")?,
                        display_name: None,
                        is_mandatory: true,
                        selection: UnitSelection::AllUnits,
                    },
                ],
                version: 1,
            },
            AcademicPlan {
                id: PlanId::new("plan-g10")?,
                title: "Grade 10".into(),
                grade: GradeId::new("G10")?,
                stream: None,
                season: season.clone(),
                subjects: vec![PlanSubject {
                    subject: SubjectId::new("history")?,
                    display_name: None,
                    is_mandatory: true,
                    selection: UnitSelection::AllUnits,
                }],
                version: 1,
            },
        ],
    })
}

/// Loads the demo dataset through `app`'s ports. Idempotent only on an
/// empty backend (it fails with a conflict if the demo users exist).
pub async fn seed_demo(app: &Memora, password: &str) -> CoreResult<DemoInfo> {
    seed_demo_as(app, password, DemoAccounts::HOME).await
}

/// [`seed_demo`] with other accounts (an institution's demo: the admin
/// account is created only if it does not exist yet, since creating an
/// institution already creates its manager).
pub async fn seed_demo_as(
    app: &Memora,
    password: &str,
    accounts: DemoAccounts<'_>,
) -> CoreResult<DemoInfo> {
    let ports = app.ports();
    let now = chrono::SubsecRound::trunc_subsecs(ports.clock.now(), 6);
    let season_id = SeasonId::new(format!("SEASON-{}", now.year()))?;
    let catalog = demo_catalog(&season_id)?;
    crate::services::ContentIndex::build(catalog.clone())?;
    ports.content.import_catalog(&catalog).await?;
    app.learning().reload_catalog().await?;

    let admin_id = UserId::new(accounts.admin.0)?;
    let student_id = UserId::new(accounts.student.0)?;
    if app.auth().get_user(&admin_id).await?.is_none() {
        app.auth()
            .create_user(
                &Actor::system(),
                &admin_id,
                accounts.admin.1,
                vec![Role::SystemManager],
                Some(password),
            )
            .await?;
    }
    let admin = Actor::admin(admin_id.clone());
    let mut season = Season::new(
        season_id.clone(),
        "Academic year (demo)",
        (now - Duration::days(120)).date_naive(),
        (now + Duration::days(240)).date_naive(),
    )?;
    season.is_active = false;
    ports.seasons.create_season(&season).await?;
    app.admin().activate_season(&admin, &season_id).await?;

    app.auth()
        .create_user(
            &Actor::system(),
            &student_id,
            accounts.student.1,
            vec![Role::Student],
            Some(password),
        )
        .await?;
    let student = Actor::student(student_id.clone());
    app.gamification()
        .set_academic_profile(
            &student,
            &GradeId::new("G12")?,
            Some(&StreamId::new("SCI")?),
            Some(&season_id),
        )
        .await?;

    for (sid, name, price, grants) in [
        (
            "item-science",
            "Science — full year",
            2500,
            vec![AccessGrant::Subject(SubjectId::new("science")?)],
        ),
        (
            "item-all",
            "Everything bundle",
            4000,
            vec![
                AccessGrant::Subject(SubjectId::new("science")?),
                AccessGrant::Subject(SubjectId::new("history")?),
            ],
        ),
    ] {
        ports
            .commerce
            .upsert_sales_item(&SalesItem {
                id: SalesItemId::new(sid)?,
                name: name.into(),
                description: Some(format!("{name} for {season_id}")),
                price,
                discounted_price: None,
                image: None,
                sku: Some(sid.to_uppercase()),
                season: season_id.clone(),
                target_grade: None,
                target_streams: vec![],
                contents: grants,
                is_active: true,
            })
            .await?;
    }

    // History: the student met every Reveal/Matching element of the first
    // lessons of both subjects some days ago; the ladder makes them due now.
    let idx = app.learning().catalog().await?;
    let mut records = Vec::new();
    let lessons = [
        "hist-l1", "hist-l2", "hist-l4", "sci-l1", "sci-l2", "sci-l3",
    ];
    for (li, lid) in lessons.iter().enumerate() {
        let lesson = idx
            .lesson(&LessonId::new(*lid)?)
            .ok_or_else(|| CoreError::Internal(format!("demo lesson {lid} missing")))?;
        let unit = idx
            .unit(&lesson.unit)
            .ok_or_else(|| CoreError::Internal("demo unit missing".into()))?;
        for stage in lesson.stages.iter().take(2) {
            let n = stage.config.element_count().unwrap_or(0) as u32;
            for e in 0..n {
                let q = QuestionId::of(&stage.id, Some(e));
                let reviewed =
                    now - Duration::days(3 + (li as i64 % 3)) - Duration::hours(i64::from(e));
                let ctx = ReviewContext {
                    now: reviewed,
                    elapsed_days: 0,
                    fuzz_seed: 0,
                };
                // Correct but slow → level 1, due one day later: due now.
                let out = Ladder.schedule(
                    None,
                    &AnswerSignals::review(true, 7000),
                    AnswerPath::Review,
                    &ctx,
                );
                let key = TrackerKey {
                    user: student_id.clone(),
                    season: season_id.clone(),
                    question: q,
                };
                let tracker = MemoryTracker {
                    key: key.clone(),
                    subject: Some(unit.subject.clone()),
                    topic: lesson.topic.clone(),
                    state: out.state.clone(),
                };
                records.push(ReviewRecord {
                    log: ReviewLogEntry {
                        review_id: ReviewId::new(format!("demo-{}", records.len()))?,
                        key,
                        source: ReviewSource::Lesson,
                        grade: out.grade,
                        is_correct: true,
                        duration_ms: 7000,
                        attempts: 1,
                        reviewed_at: reviewed,
                        elapsed_days: 0,
                        scheduler: crate::srs::SchedulerKind::Ladder,
                        state_after: out.state,
                    },
                    tracker,
                });
            }
        }
    }
    let due_now = records
        .iter()
        .filter(|r| r.tracker.state.due <= now)
        .count();
    ports.trackers.persist_batch(&records).await?;

    // Three days of activity for a visible streak and weekly chart: the
    // three learner days before today, by the learner's own day boundary
    // (time zone and rollover hour), so "today" is empty whatever the hour.
    let profile = ports
        .profiles
        .get_profile(&student_id)
        .await?
        .unwrap_or_else(|| PlayerProfile::new(student_id.clone(), accounts.student.1));
    let day = crate::services::shared::Shared::day_boundary_at(&profile, now);
    let today = day.local_day(now);
    for d in 1..=3i64 {
        let at = now - Duration::days(d);
        ports
            .activity
            .record_session(&GameplaySession {
                id: SessionId::new(format!("demo-gs-{d}"))?,
                user: student_id.clone(),
                kind: SessionKind::Lesson,
                lesson: Some(LessonId::new(lessons[d as usize])?),
                subject: Some(SubjectId::new(if d == 3 { "science" } else { "history" })?),
                topic: None,
                xp_earned: 40 * d,
                score: 90,
                completed: true,
                created_at: at,
                local_day: today - Duration::days(d),
                raw_data: serde_json::json!({"demo": true}),
            })
            .await?;
    }
    Ok(DemoInfo {
        season: season_id,
        student: student_id,
        admin: admin_id,
        due_now,
    })
}
