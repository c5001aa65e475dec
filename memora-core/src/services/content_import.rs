//! Content import (`import_content`): modes, unpublishing, catalog
//! versions and dry runs.
//!
//! * **Modes.** `merge` inserts or replaces the bundle's entities by id and
//!   leaves everything else as it is. `replace` does the same and then
//!   unpublishes every subject, track, unit, topic and lesson of the
//!   catalog that the bundle does not list. A bundle may also name content
//!   to unpublish (`unpublish`), in either mode.
//! * **Unpublish, never delete.** Trackers, review logs, gameplay sessions,
//!   served-set entries and purchase grants refer to content ids for as
//!   long as learners have history, and question ids are derived from stage
//!   ids: deleting a lesson would orphan that history and a later re-import
//!   under the same id would silently re-attach it. Unpublished content is
//!   not served, listed or answerable (the served-set checks already treat
//!   it as absent) but stays in the store, so an import can publish it
//!   again. Grades, streams and plans have no published flag and learner
//!   profiles refer to them: they are merged in both modes.
//! * **Versions.** Every applied import makes a new catalog version
//!   (`ContentStore::import_catalog` bumps it in the import's transaction).
//! * **Dry runs** compute the same diff and validation as an import —
//!   added, changed and unpublished ids per kind, and every validation
//!   error — and write nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};

use super::ContentIndex;
use super::admin::{AdminService, check_bundle_text, merge_catalog};

/// How an import treats content the bundle does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Keep it.
    #[default]
    Merge,
    /// Unpublish it (subjects, tracks, units, topics, lessons).
    Replace,
}

/// `import_content` input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportRequest {
    /// Entities to insert or replace and ids to unpublish.
    pub bundle: ContentBundle,
    /// Merge or replace.
    pub mode: ImportMode,
    /// Report what would change; write nothing.
    pub dry_run: bool,
}

/// Entity ids by kind (`subjects`, `tracks`, `units`, `topics`, `lessons`,
/// `grades`, `streams`, `plans`), each list sorted; every kind is present.
pub type ChangeSet = BTreeMap<&'static str, Vec<String>>;

/// `import_content` output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportReport {
    /// The import was written (false for dry runs and refused bundles).
    pub applied: bool,
    /// The catalog version after the call: the new one when applied, the
    /// current one otherwise.
    pub version: u64,
    /// Entities new to the catalog.
    pub added: ChangeSet,
    /// Existing entities the bundle changes (an entity it unpublishes is
    /// listed under `unpublished` only).
    pub changed: ChangeSet,
    /// Entities published before and not after.
    pub unpublished: ChangeSet,
    /// Validation errors (an import with any is refused).
    pub errors: Vec<String>,
    /// Subjects in the catalog after the import (or as it would be).
    pub subjects: usize,
    /// Lessons in the catalog after the import (or as it would be).
    pub lessons: usize,
}

impl ImportReport {
    /// Number of ids in a change set.
    pub fn count(set: &ChangeSet) -> usize {
        set.values().map(Vec::len).sum()
    }
}

const KINDS: [&str; 8] = [
    "subjects", "tracks", "units", "topics", "lessons", "grades", "streams", "plans",
];

/// A catalog entity, keyed by its id.
trait Entity: Clone + PartialEq {
    fn key(&self) -> &str;
    /// Same content (plans ignore their version, which imports bump).
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

/// A content entity with a published flag.
trait Publishable: Entity {
    fn published(&self) -> bool;
    fn unpublish(&mut self);
}

macro_rules! entity {
    ($($t:ty),*) => {$(
        impl Entity for $t {
            fn key(&self) -> &str {
                self.id.as_str()
            }
        }
    )*};
}
entity!(Subject, Track, Unit, Topic, Lesson, Grade, Stream);

impl Entity for AcademicPlan {
    fn key(&self) -> &str {
        self.id.as_str()
    }
    fn same(&self, other: &Self) -> bool {
        AcademicPlan {
            version: other.version,
            ..self.clone()
        } == *other
    }
}

macro_rules! publishable {
    ($($t:ty),*) => {$(
        impl Publishable for $t {
            fn published(&self) -> bool {
                self.is_published
            }
            fn unpublish(&mut self) {
                self.is_published = false;
            }
        }
    )*};
}
publishable!(Subject, Track, Unit, Topic, Lesson);

/// The diff of one kind: added and changed entities of the bundle.
fn diff_kind<T: Entity>(
    kind: &'static str,
    current: &[T],
    bundle: &[T],
    report: &mut ImportReport,
) {
    for b in bundle {
        match current.iter().find(|c| c.key() == b.key()) {
            None => push(&mut report.added, kind, b.key()),
            Some(c) if !c.same(b) => push(&mut report.changed, kind, b.key()),
            Some(_) => {}
        }
    }
}

/// Adds the unpublishing of one kind to the bundle: the ids listed in
/// `unpublish` and, in replace mode, everything the bundle leaves out.
/// Records what ends up unpublished, and the listing errors.
fn unpublish_kind<T: Publishable, I: AsRef<str>>(
    kind: &'static str,
    current: &[T],
    bundle: &mut Vec<T>,
    listed: &[I],
    mode: ImportMode,
    report: &mut ImportReport,
) {
    let in_bundle: HashSet<String> = bundle.iter().map(|b| b.key().to_owned()).collect();
    let mut targets: Vec<&T> = Vec::new();
    for id in listed {
        let id = id.as_ref();
        if in_bundle.contains(id) {
            report.errors.push(format!(
                "unpublish.{kind}: {id} is also in the bundle; leave it out of one of them"
            ));
        } else if let Some(c) = current.iter().find(|c| c.key() == id) {
            targets.push(c);
        } else {
            report
                .errors
                .push(format!("unpublish.{kind}: {id} does not exist"));
        }
    }
    if mode == ImportMode::Replace {
        targets.extend(current.iter().filter(|c| !in_bundle.contains(c.key())));
    }
    let mut seen = HashSet::new();
    for c in targets {
        if c.published() && seen.insert(c.key().to_owned()) {
            let mut off = c.clone();
            off.unpublish();
            bundle.push(off);
        }
    }
    // Whatever was published and is not after the import, whatever the
    // cause (listed, left out by `replace`, or sent unpublished).
    for b in bundle.iter().filter(|b| !b.published()) {
        if current.iter().any(|c| c.key() == b.key() && c.published()) {
            push(&mut report.unpublished, kind, b.key());
            if let Some(v) = report.changed.get_mut(kind) {
                v.retain(|x| x != b.key());
            }
        }
    }
}

fn push(set: &mut ChangeSet, kind: &'static str, id: &str) {
    set.entry(kind).or_default().push(id.to_owned());
}

/// The bundle as it will be written (unpublishing included) and its report.
fn plan_import(current: &Catalog, request: &ImportRequest) -> (Catalog, ImportReport) {
    let mut report = ImportReport::default();
    for kind in KINDS {
        report.added.insert(kind, Vec::new());
        report.changed.insert(kind, Vec::new());
        report.unpublished.insert(kind, Vec::new());
    }
    if let Err(e) = check_bundle_text(&request.bundle.catalog) {
        report.errors.push(e.to_string());
    }
    let mut b = request.bundle.catalog.clone();
    let u = &request.bundle.unpublish;
    diff_kind("subjects", &current.subjects, &b.subjects, &mut report);
    diff_kind("tracks", &current.tracks, &b.tracks, &mut report);
    diff_kind("units", &current.units, &b.units, &mut report);
    diff_kind("topics", &current.topics, &b.topics, &mut report);
    diff_kind("lessons", &current.lessons, &b.lessons, &mut report);
    diff_kind("grades", &current.grades, &b.grades, &mut report);
    diff_kind("streams", &current.streams, &b.streams, &mut report);
    diff_kind("plans", &current.plans, &b.plans, &mut report);
    let mode = request.mode;
    unpublish_kind(
        "subjects",
        &current.subjects,
        &mut b.subjects,
        &u.subjects,
        mode,
        &mut report,
    );
    unpublish_kind(
        "tracks",
        &current.tracks,
        &mut b.tracks,
        &u.tracks,
        mode,
        &mut report,
    );
    unpublish_kind(
        "units",
        &current.units,
        &mut b.units,
        &u.units,
        mode,
        &mut report,
    );
    unpublish_kind(
        "topics",
        &current.topics,
        &mut b.topics,
        &u.topics,
        mode,
        &mut report,
    );
    unpublish_kind(
        "lessons",
        &current.lessons,
        &mut b.lessons,
        &u.lessons,
        mode,
        &mut report,
    );
    for set in [
        &mut report.added,
        &mut report.changed,
        &mut report.unpublished,
    ] {
        for ids in set.values_mut() {
            ids.sort();
            ids.dedup();
        }
    }
    (b, report)
}

impl AdminService {
    /// `import_content`: computes the import's diff against the current
    /// catalog and validates the result as a whole (text, references,
    /// unpublish lists). A dry run returns that report and writes nothing;
    /// otherwise an import with errors is refused (400, nothing written)
    /// and a valid one is stored with a new catalog version, audited and
    /// re-indexed. See the module docs for modes and unpublishing.
    pub async fn import_content(
        &self,
        actor: &Actor,
        request: &ImportRequest,
    ) -> CoreResult<ImportReport> {
        actor.require_admin()?;
        let current = self.content.load_catalog().await?;
        let version = self.content.catalog_version().await?;
        let (write, mut report) = plan_import(&current, request);
        let merged = merge_catalog(current, write.clone());
        report.subjects = merged.subjects.len();
        report.lessons = merged.lessons.len();
        if let Err(e) = ContentIndex::build(merged) {
            report.errors.push(e.to_string());
        }
        report.version = version;
        if request.dry_run {
            return Ok(report);
        }
        if !report.errors.is_empty() {
            return Err(CoreError::invalid(format!(
                "content bundle refused, nothing imported: {}",
                report.errors.join("; ")
            )));
        }
        report.version = self.content.import_catalog(&write).await?;
        report.applied = true;
        self.shared
            .audit(
                actor,
                "content.import",
                serde_json::json!({
                    "version": report.version,
                    "mode": match request.mode {
                        ImportMode::Merge => "merge",
                        ImportMode::Replace => "replace",
                    },
                    "added": ImportReport::count(&report.added),
                    "changed": ImportReport::count(&report.changed),
                    "unpublished": ImportReport::count(&report.unpublished),
                }),
            )
            .await;
        self.shared
            .publish(crate::ports::Invalidation::Catalog)
            .await;
        let _: Arc<ContentIndex> = self.shared.reload_catalog().await?;
        Ok(report)
    }

    /// `get_catalog_version`: the current catalog version (0 before the
    /// first import).
    pub async fn catalog_version(&self, actor: &Actor) -> CoreResult<u64> {
        actor.require_admin()?;
        Ok(self.content.catalog_version().await?)
    }
}
