//! Content import modes: merge, explicit unpublishing, replace; a catalog
//! version per import; dry runs that report the diff and the validation
//! errors without applying anything.

use chrono::{TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::services::Config;
use memora_core::services::admin::{ImportMode, ImportReport, ImportRequest};
use memora_core::{CoreError, Memora};

struct H {
    app: Memora,
    info: DemoInfo,
    admin: Actor,
    student: Actor,
}

async fn harness() -> H {
    let backend = InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, "demo-password").await.unwrap();
    H {
        admin: Actor::admin(info.admin.clone()),
        student: Actor::student(info.student.clone()),
        app,
        info,
    }
}

impl H {
    async fn catalog(&self) -> Catalog {
        self.app.ports().content.load_catalog().await.unwrap()
    }

    async fn version(&self) -> u64 {
        self.app.admin().catalog_version(&self.admin).await.unwrap()
    }

    async fn import(
        &self,
        bundle: ContentBundle,
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportReport, CoreError> {
        self.app
            .admin()
            .import_content(
                &self.admin,
                &ImportRequest {
                    bundle,
                    mode,
                    dry_run,
                },
            )
            .await
    }
}

fn ids(report: &std::collections::BTreeMap<&'static str, Vec<String>>, kind: &str) -> Vec<String> {
    report.get(kind).cloned().unwrap_or_default()
}

fn lesson(c: &Catalog, id: &str) -> Lesson {
    c.lessons
        .iter()
        .find(|l| l.id.as_str() == id)
        .cloned()
        .unwrap()
}

/// A copy of `hist-l3` under a new id (stage ids renamed: they are unique
/// across lessons).
fn new_lesson(c: &Catalog, id: &str) -> Lesson {
    let mut l = lesson(c, "hist-l3");
    l.id = LessonId::new(id).unwrap();
    l.title = "New lesson".into();
    for s in &mut l.stages {
        s.id = StageId::new(format!("{id}-{}", s.id)).unwrap();
    }
    l
}

#[tokio::test]
async fn a_dry_run_reports_the_diff_and_changes_nothing_then_the_import_gets_a_version() {
    let h = harness().await;
    let before = h.catalog().await;
    let v0 = h.version().await;
    assert!(v0 >= 1, "the demo import has a version");
    let mut changed = lesson(&before, "hist-l3");
    changed.title = "Islamic Era (revised)".into();
    let bundle = ContentBundle {
        catalog: Catalog {
            lessons: vec![
                changed.clone(),
                new_lesson(&before, "hist-l9"),
                lesson(&before, "hist-l1"),
            ],
            ..Default::default()
        },
        unpublish: ContentIds::default(),
    };
    let dry = h
        .import(bundle.clone(), ImportMode::Merge, true)
        .await
        .unwrap();
    assert!(!dry.applied);
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert_eq!(ids(&dry.added, "lessons"), vec!["hist-l9"]);
    assert_eq!(ids(&dry.changed, "lessons"), vec!["hist-l3"]);
    assert!(dry.unpublished.values().all(Vec::is_empty));
    assert_eq!(dry.version, v0, "a dry run makes no version");
    assert_eq!(h.catalog().await, before, "a dry run changes nothing");
    assert_eq!(h.version().await, v0);

    let done = h.import(bundle, ImportMode::Merge, false).await.unwrap();
    assert!(done.applied);
    assert_eq!(done.version, v0 + 1);
    assert_eq!(h.version().await, v0 + 1);
    assert_eq!(ids(&done.added, "lessons"), vec!["hist-l9"]);
    let after = h.catalog().await;
    assert_eq!(lesson(&after, "hist-l3").title, "Islamic Era (revised)");
    assert_eq!(after.lessons.len(), before.lessons.len() + 1);
}

#[tokio::test]
async fn unpublishing_hides_content_but_keeps_learner_history() {
    let h = harness().await;
    let v0 = h.version().await;
    let q = QuestionId::parse("hist-l1-rv:0").unwrap();
    let has_tracker = || async {
        !h.app
            .ports()
            .trackers
            .get_trackers(&h.info.student, &h.info.season, std::slice::from_ref(&q))
            .await
            .unwrap()
            .is_empty()
    };
    assert!(has_tracker().await, "the demo student learned hist-l1");
    let bundle = ContentBundle {
        catalog: Catalog::default(),
        unpublish: ContentIds {
            lessons: vec![LessonId::new("hist-l1").unwrap()],
            ..Default::default()
        },
    };
    let r = h.import(bundle, ImportMode::Merge, false).await.unwrap();
    assert_eq!(ids(&r.unpublished, "lessons"), vec!["hist-l1"]);
    assert_eq!(r.version, v0 + 1);
    assert!(
        h.app
            .learning()
            .get_lesson_details(&h.student, &LessonId::new("hist-l1").unwrap())
            .await
            .is_err(),
        "an unpublished lesson is not handed out"
    );
    assert!(
        has_tracker().await,
        "unpublished, not deleted: trackers stay"
    );
    let kept = lesson(&h.catalog().await, "hist-l1");
    assert!(!kept.is_published);
    assert!(!kept.stages.is_empty());
}

#[tokio::test]
async fn replace_mode_unpublishes_what_the_bundle_leaves_out() {
    let h = harness().await;
    let before = h.catalog().await;
    let history = SubjectId::new("history").unwrap();
    let units: Vec<Unit> = before
        .units
        .iter()
        .filter(|u| u.subject == history)
        .cloned()
        .collect();
    let unit_ids: Vec<&UnitId> = units.iter().map(|u| &u.id).collect();
    let bundle = ContentBundle {
        catalog: Catalog {
            subjects: before
                .subjects
                .iter()
                .filter(|s| s.id == history)
                .cloned()
                .collect(),
            tracks: before
                .tracks
                .iter()
                .filter(|t| t.subject == history)
                .cloned()
                .collect(),
            topics: before
                .topics
                .iter()
                .filter(|t| unit_ids.contains(&&t.unit))
                .cloned()
                .collect(),
            lessons: before
                .lessons
                .iter()
                .filter(|l| unit_ids.contains(&&l.unit))
                .cloned()
                .collect(),
            units,
            ..Default::default()
        },
        unpublish: ContentIds::default(),
    };
    let dry = h
        .import(bundle.clone(), ImportMode::Replace, true)
        .await
        .unwrap();
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert!(dry.added.values().all(Vec::is_empty));
    assert!(dry.changed.values().all(Vec::is_empty), "{:?}", dry.changed);
    assert_eq!(ids(&dry.unpublished, "subjects"), vec!["science"]);
    assert_eq!(ids(&dry.unpublished, "tracks"), vec!["sci-main"]);
    assert_eq!(ids(&dry.unpublished, "units"), vec!["sci-u1", "sci-u2"]);
    assert_eq!(ids(&dry.unpublished, "topics"), vec!["sci-t1", "sci-t2"]);
    assert_eq!(
        ids(&dry.unpublished, "lessons"),
        vec!["sci-l1", "sci-l2", "sci-l3", "sci-l4", "sci-l5"]
    );
    assert_eq!(h.catalog().await, before);

    let done = h.import(bundle, ImportMode::Replace, false).await.unwrap();
    assert!(done.applied);
    let after = h.catalog().await;
    assert_eq!(
        after.subjects.len(),
        before.subjects.len(),
        "nothing deleted"
    );
    assert!(
        after
            .subjects
            .iter()
            .all(|s| s.is_published == (s.id == history))
    );
    let subjects = h.app.learning().get_subjects(&h.student).await.unwrap();
    assert!(
        subjects.iter().all(|s| s.id == history),
        "science is hidden"
    );
    // Replacing again with the same bundle unpublishes nothing more.
    let again = h
        .import(
            ContentBundle {
                catalog: Catalog::default(),
                unpublish: ContentIds::default(),
            },
            ImportMode::Merge,
            true,
        )
        .await
        .unwrap();
    assert!(again.unpublished.values().all(Vec::is_empty));
}

#[tokio::test]
async fn invalid_bundles_are_reported_by_a_dry_run_and_refused_otherwise() {
    let h = harness().await;
    let before = h.catalog().await;
    let v0 = h.version().await;
    let mut orphan = new_lesson(&before, "hist-l8");
    orphan.unit = UnitId::new("no-such-unit").unwrap();
    let bundle = ContentBundle {
        catalog: Catalog {
            lessons: vec![orphan, lesson(&before, "hist-l2")],
            ..Default::default()
        },
        unpublish: ContentIds {
            lessons: vec![
                LessonId::new("ghost-lesson").unwrap(),
                LessonId::new("hist-l2").unwrap(),
            ],
            ..Default::default()
        },
    };
    let dry = h
        .import(bundle.clone(), ImportMode::Merge, true)
        .await
        .unwrap();
    assert!(!dry.applied);
    let all = dry.errors.join("\n");
    assert!(all.contains("ghost-lesson"), "{all}");
    assert!(
        all.contains("hist-l2"),
        "in the bundle and unpublished: {all}"
    );
    assert!(all.contains("no-such-unit"), "{all}");
    assert!(
        matches!(
            h.import(bundle, ImportMode::Merge, false).await,
            Err(CoreError::Invalid(_))
        ),
        "a real import of an invalid bundle is a 400"
    );
    assert_eq!(h.catalog().await, before);
    assert_eq!(h.version().await, v0);
    assert!(matches!(
        h.app.admin().catalog_version(&h.student).await,
        Err(CoreError::Forbidden(_))
    ));
}
