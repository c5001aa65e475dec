//! Operations and administration: cache, archive, seasons, content, users,
//! the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use memora_core::domain::{ContentBundle, Role};
use memora_core::ids::*;
use memora_core::ports::AuditQuery;
use memora_core::services::admin::{
    ChangeSet, ImportMode, ImportReport, ImportRequest, SeasonInput,
};
use memora_core::srs::SchedulerKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, id, method, opt_id};
use crate::api::de;
use crate::api::dto::*;
use crate::error::ApiError;

/// Result of `get_cache_status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatusDto {
    /// A Redis server is connected (false in embedded mode).
    pub redis_connected: bool,
    /// Reviews are served from the database.
    pub is_safe_mode: bool,
    /// Cache memory in MiB.
    pub memory_used_mb: f64,
    /// Keys in the cache.
    pub total_keys: u64,
    /// Keys per season.
    pub keys_by_season: BTreeMap<String, u64>,
    /// Write-behind queue depth (null when unknown).
    pub queue_depth: Option<u64>,
    /// Dead-lettered persistence jobs (null when unknown); see
    /// `list_dead_letters`.
    pub dead_letters: Option<u64>,
    /// Seconds the oldest acknowledged answer not yet in the database has
    /// waited: 0 when everything is persisted (always without Redis), null
    /// when unknown. Dead letters count until replayed or discarded.
    pub persistence_lag_seconds: Option<f64>,
}

method!(
    /// `get_cache_status`.
    GetCacheStatus = "get_cache_status" in "srs", Admin, Read,
    "Cache health and key counts",
    NoArgs => CacheStatusDto,
    |app, ctx, _req| {
        let s = app.admin().get_cache_status(ctx.actor()?).await?;
        Ok(CacheStatusDto {
            redis_connected: s.stats.connected,
            is_safe_mode: s.is_safe_mode,
            memory_used_mb: ((s.stats.memory_used_bytes as f64) / 1_048_576.0 * 100.0).round() / 100.0,
            total_keys: s.stats.total_keys,
            keys_by_season: s.stats.keys_by_season.clone(),
            queue_depth: s.queue_depth,
            dead_letters: s.dead_letters,
            persistence_lag_seconds: s
                .persistence_lag
                .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        })
    }
);

/// Arguments naming a season.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeasonArg {
    /// Season id `SEASON-YYYY[-X]` (also `season`).
    #[serde(alias = "season", deserialize_with = "de::string")]
    pub season_name: String,
}

/// Arguments of `rebuild_season_cache`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RebuildArgs {
    /// Season id `SEASON-YYYY[-X]` (also `season`).
    #[serde(alias = "season", deserialize_with = "de::string")]
    pub season_name: String,
    /// Resume this stale or failed rebuild of the season (from where it
    /// stopped) instead of starting a new one.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub resume_job_id: Option<String>,
}

/// Result of `rebuild_season_cache`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildStartedDto {
    /// `started` or `resumed`.
    pub status: String,
    /// Job id for `get_rebuild_status`.
    pub job_id: String,
    /// Rows to load.
    pub estimated_records: u64,
}

method!(
    /// `rebuild_season_cache`.
    RebuildSeasonCache = "rebuild_season_cache" in "srs", Admin, Write,
    "Rebuild a season's cache in the background (or resume a stale rebuild)",
    RebuildArgs => RebuildStartedDto,
    |app, ctx, req| {
        let season = id(SeasonId::new(req.season_name))?;
        let (job, status) = match req.resume_job_id {
            None => (app.admin().start_season_rebuild(ctx.actor()?, &season).await?, "started"),
            Some(j) => {
                let j = id(JobId::new(j))?;
                let current = app.admin().rebuild_status(ctx.actor()?, &j).await?;
                if current.progress.season != season {
                    return Err(ApiError::bad(format!(
                        "job {j} rebuilds {}, not {season}",
                        current.progress.season
                    )));
                }
                (app.admin().resume_season_rebuild(ctx.actor()?, &j).await?, "resumed")
            }
        };
        let bg = Arc::clone(app);
        let job_id = job.id.clone();
        tokio::spawn(async move {
            if let Err(e) = bg.admin().run_season_rebuild(&job_id).await {
                tracing::error!(job = %job_id, error = %e, "season cache rebuild failed");
            }
        });
        Ok(RebuildStartedDto {
            status: status.into(),
            job_id: job.id.as_str().to_owned(),
            estimated_records: job.estimated,
        })
    }
);

/// Arguments naming a job.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobArg {
    /// Job id.
    #[serde(deserialize_with = "de::string")]
    pub job_id: String,
}

/// Result of `get_rebuild_status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildStatusDto {
    /// Job id.
    pub job_id: String,
    /// Season.
    pub season: String,
    /// `running`, `completed`, `failed` or `stale` (running, but its
    /// process stopped reporting progress: resume it with
    /// `rebuild_season_cache` and `resume_job_id`).
    pub status: String,
    /// The failure, for a failed job.
    pub error: Option<String>,
    /// `rebuild_season_cache` with `resume_job_id` accepts this job.
    pub resumable: bool,
    /// Rows to load.
    pub estimated_records: u64,
    /// Rows loaded.
    pub processed: u64,
    /// Learners loaded.
    pub users: u64,
    /// When it was started (RFC 3339).
    pub started_at: String,
    /// Last progress written (RFC 3339).
    pub updated_at: String,
}

method!(
    /// `get_rebuild_status`.
    GetRebuildStatus = "get_rebuild_status" in "srs", Admin, Read,
    "Progress of a cache rebuild (from any server process)",
    JobArg => RebuildStatusDto,
    |app, ctx, req| {
        let job = id(JobId::new(req.job_id))?;
        let s = app.admin().rebuild_status(ctx.actor()?, &job).await?;
        let p = &s.progress;
        Ok(RebuildStatusDto {
            job_id: p.id.as_str().to_owned(),
            season: p.season.as_str().to_owned(),
            status: s.state().to_owned(),
            error: p.status.strip_prefix("failed: ").map(str::to_owned),
            resumable: s.resumable(),
            estimated_records: p.estimated,
            processed: p.processed,
            users: p.users,
            started_at: p.started_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        })
    }
);

/// Arguments of `trigger_reconciliation`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReconcileArgs {
    /// Trackers to sample (default 10 000).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 100, maximum = 1000000)]
    pub sample_size: Option<u64>,
    /// Season (the active one if absent; also `season_name`).
    #[serde(default, alias = "season_name", deserialize_with = "de::opt_string")]
    pub season: Option<String>,
}

/// Result of `trigger_reconciliation`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileDto {
    /// Entries compared (database rows sampled plus cache entries sampled).
    pub sample_size: u64,
    /// Cache entries older than the database, missing from a cached
    /// schedule, or stale cache-only entries (write-behind lag excluded).
    pub discrepancies_found: u64,
    /// `discrepancies_found / sample_size`.
    pub discrepancy_rate: f64,
    /// Entries corrected from the database.
    pub auto_corrected: u64,
    /// Entries newer in the cache (write-behind lag), kept.
    pub kept_newer_in_cache: u64,
    /// Trackers not cached (loaded on next use).
    pub not_cached: u64,
    /// Entries sampled from the cache side (included in `sample_size`).
    pub cache_sampled: u64,
    /// Cache entries without a database row.
    pub cache_only_found: u64,
    /// Of those, stale ones removed (no write pending for them).
    pub cache_only_removed: u64,
    /// The rate crossed the alert threshold (0.1 %); also exported as
    /// `memora_reconciliation_alerts_total` and logged.
    pub alert_triggered: bool,
}

method!(
    /// `trigger_reconciliation`.
    TriggerReconciliation = "trigger_reconciliation" in "srs", Admin, Write,
    "Compare cache and database and correct",
    ReconcileArgs => ReconcileDto,
    |app, ctx, req| {
        let season = opt_id(req.season, SeasonId::new)?;
        let r = app
            .admin()
            .trigger_reconciliation(ctx.actor()?, req.sample_size, season.as_ref())
            .await?;
        crate::jobs::record_reconciliation(&r, "http");
        Ok(ReconcileDto {
            sample_size: r.sample_size,
            discrepancies_found: r.discrepancies_found,
            discrepancy_rate: r.discrepancy_rate,
            auto_corrected: r.auto_corrected,
            kept_newer_in_cache: r.kept_newer_in_cache,
            not_cached: r.not_cached,
            cache_sampled: r.cache_sampled,
            cache_only_found: r.cache_only_found,
            cache_only_removed: r.cache_only_removed,
            alert_triggered: r.alert_triggered,
        })
    }
);

/// Arguments of `archive_season`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ArchiveArgs {
    /// Season id (also `season`).
    #[serde(alias = "season", deserialize_with = "de::string")]
    pub season_name: String,
    /// Must be true: archiving moves every tracker of the season.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub confirm: Option<bool>,
}

/// Result of `archive_season`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveDto {
    /// Always true.
    pub success: bool,
    /// Always `completed`.
    pub status: String,
    /// Season.
    pub season: String,
    /// Rows archived.
    pub archived_count: u64,
    /// Same as `archived_count`.
    pub records_archived: u64,
    /// Cache keys removed.
    pub cache_keys_deleted: u64,
}

method!(
    /// `archive_season`.
    ArchiveSeason = "archive_season" in "srs", Admin, Write,
    "Archive a finished season (confirm=true)",
    ArchiveArgs => ArchiveDto,
    |app, ctx, req| {
        let season = id(SeasonId::new(req.season_name))?;
        let out = app
            .admin()
            .archive_season(ctx.actor()?, &season, req.confirm.unwrap_or(false))
            .await?;
        Ok(ArchiveDto {
            success: true,
            status: "completed".into(),
            season: season.as_str().to_owned(),
            archived_count: out.records_archived,
            records_archived: out.records_archived,
            cache_keys_deleted: out.cache_keys_deleted,
        })
    }
);

/// Result of `get_archive_status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveStatusDto {
    /// Season.
    pub season: String,
    /// Active.
    pub is_active: bool,
    /// Archived automatically.
    pub auto_archive: bool,
    /// Last day.
    pub end_date: String,
    /// Archived.
    pub archived: bool,
    /// Live rows.
    pub active_records: u64,
    /// Archived rows.
    pub archived_records: u64,
    /// Archived rows past retention.
    pub eligible_for_deletion: u64,
    /// All rows.
    pub total_records: u64,
}

method!(
    /// `get_archive_status`.
    GetArchiveStatus = "get_archive_status" in "srs", Admin, Read,
    "Archive counts of a season",
    SeasonArg => ArchiveStatusDto,
    |app, ctx, req| {
        let season = id(SeasonId::new(req.season_name))?;
        let s = app.admin().get_archive_status(ctx.actor()?, &season).await?;
        Ok(ArchiveStatusDto {
            season: s.season.id.as_str().to_owned(),
            is_active: s.season.is_active,
            auto_archive: s.season.auto_archive,
            end_date: s.season.end_date.to_string(),
            archived: s.season.archived,
            active_records: s.counts.active_records,
            archived_records: s.counts.archived_records,
            eligible_for_deletion: s.counts.eligible_for_deletion,
            total_records: s.counts.active_records + s.counts.archived_records,
        })
    }
);

/// Arguments of `delete_eligible_archived_records`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteArchivedArgs {
    /// Only this season (also `season`).
    #[serde(default, alias = "season", deserialize_with = "de::opt_string")]
    pub season_name: Option<String>,
    /// Must be true.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub confirm: Option<bool>,
}

/// Result of `delete_eligible_archived_records`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedDto {
    /// Always true.
    pub success: bool,
    /// Rows deleted.
    pub deleted_count: u64,
}

method!(
    /// `delete_eligible_archived_records`.
    DeleteEligibleArchivedRecords = "delete_eligible_archived_records" in "srs", Admin, Write,
    "Delete archived rows past retention (confirm=true)",
    DeleteArchivedArgs => DeletedDto,
    |app, ctx, req| {
        let season = opt_id(req.season_name, SeasonId::new)?;
        let n = app
            .admin()
            .delete_eligible_archived_records(ctx.actor()?, season.as_ref(), req.confirm.unwrap_or(false))
            .await?;
        Ok(DeletedDto { success: true, deleted_count: n })
    }
);

/// Arguments naming a user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserArg {
    /// User id (e-mail).
    #[serde(deserialize_with = "de::string")]
    pub user: String,
}

/// Result of `refit_fsrs_params`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefitDto {
    /// Learner.
    pub user: String,
    /// Reviews used.
    pub reviews: u64,
    /// Items used.
    pub items: usize,
    /// Too little history: defaults kept.
    pub fell_back: bool,
    /// Log loss with the old parameters.
    pub loss_before: f64,
    /// Log loss with the new parameters.
    pub loss_after: f64,
    /// The 21 FSRS-6 parameters.
    pub params: Vec<f64>,
}

method!(
    /// `refit_fsrs_params`.
    RefitFsrsParams = "refit_fsrs_params" in "srs", Admin, Write,
    "Fit a learner's FSRS-6 parameters",
    UserArg => RefitDto,
    |app, ctx, req| {
        let user = id(UserId::new(req.user))?;
        let r = app.admin().refit_fsrs_params(ctx.actor()?, &user).await?;
        Ok(RefitDto {
            user: r.user.as_str().to_owned(),
            reviews: r.reviews,
            items: r.items,
            fell_back: r.fell_back,
            loss_before: r.loss_before,
            loss_after: r.loss_after,
            params: r.params.clone(),
        })
    }
);

method!(
    /// `list_seasons`.
    ListSeasons = "list_seasons" in "admin", Admin, Read,
    "All seasons",
    NoArgs => Vec<SeasonDto>,
    |app, ctx, _req| {
        let v = app.admin().list_seasons(ctx.actor()?).await?;
        Ok(v.iter().map(SeasonDto::from).collect())
    }
);

/// Scheduler of a season (case-insensitive; `fsrs6` and `fsrs-6` are
/// accepted for `fsrs`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// The original review ladder.
    Ladder,
    /// FSRS-6.
    Fsrs,
}

impl<'de> Deserialize<'de> for Scheduler {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match SchedulerKind::parse(&s).map_err(serde::de::Error::custom)? {
            SchedulerKind::Ladder => Ok(Scheduler::Ladder),
            SchedulerKind::Fsrs6 => Ok(Scheduler::Fsrs),
        }
    }
}

impl Scheduler {
    fn kind(self) -> Result<SchedulerKind, ApiError> {
        Ok(match self {
            Scheduler::Ladder => SchedulerKind::Ladder,
            Scheduler::Fsrs => SchedulerKind::Fsrs6,
        })
    }
}

/// Arguments of `create_season`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSeasonArgs {
    /// Season id `SEASON-YYYY[-X]` (also `season`).
    #[serde(alias = "season", deserialize_with = "de::string")]
    pub season_name: String,
    /// Title.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub title: Option<String>,
    /// First day.
    #[schema(format = Date, value_type = String)]
    pub start_date: chrono::NaiveDate,
    /// Last day.
    #[schema(format = Date, value_type = String)]
    pub end_date: chrono::NaiveDate,
    /// Scheduler (default ladder).
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    /// FSRS desired retention (0.7–0.99).
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub desired_retention: Option<f64>,
    /// Archive automatically after the end.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub auto_archive: Option<bool>,
}

method!(
    /// `create_season`.
    CreateSeason = "create_season" in "admin", Admin, Write,
    "Create a season and its partition",
    CreateSeasonArgs => SeasonDto,
    |app, ctx, req| {
        let input = SeasonInput {
            id: id(SeasonId::new(req.season_name))?,
            title: req.title,
            start_date: req.start_date,
            end_date: req.end_date,
            scheduler: req.scheduler.map(Scheduler::kind).transpose()?,
            desired_retention: req.desired_retention,
            auto_archive: req.auto_archive.unwrap_or(false),
        };
        let s = app.admin().create_season(ctx.actor()?, &input).await?;
        Ok(SeasonDto::from(&s))
    }
);

method!(
    /// `activate_season`.
    ActivateSeason = "activate_season" in "admin", Admin, Write,
    "Make a season the active one",
    SeasonArg => SeasonDto,
    |app, ctx, req| {
        let season = id(SeasonId::new(req.season_name))?;
        Ok(SeasonDto::from(&app.admin().activate_season(ctx.actor()?, &season).await?))
    }
);

/// Arguments of `update_season`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateSeasonArgs {
    /// Season id (also `season`).
    #[serde(alias = "season", deserialize_with = "de::string")]
    pub season_name: String,
    /// Scheduler.
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    /// FSRS desired retention.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub desired_retention: Option<f64>,
    /// Use the Redis due cache.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enable_redis: Option<bool>,
    /// Archive automatically.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub auto_archive: Option<bool>,
}

method!(
    /// `update_season`.
    UpdateSeason = "update_season" in "admin", Admin, Write,
    "Change season settings",
    UpdateSeasonArgs => SeasonDto,
    |app, ctx, req| {
        let season = id(SeasonId::new(req.season_name))?;
        let s = app
            .admin()
            .update_season_settings(
                ctx.actor()?,
                &season,
                req.scheduler.map(Scheduler::kind).transpose()?,
                req.desired_retention,
                req.enable_redis,
                req.auto_archive,
            )
            .await?;
        Ok(SeasonDto::from(&s))
    }
);

/// How `import_content` treats content the bundle does not list.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportModeArg {
    /// Keep it (the default).
    Merge,
    /// Unpublish every subject, track, unit, topic and lesson not in the
    /// bundle (nothing is deleted).
    Replace,
}

/// Arguments of `import_content`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportArgs {
    /// Content bundle (see docs/CONTENT.md; also `content`; may be a JSON
    /// string): catalog entities to insert or replace, and `unpublish`.
    #[serde(alias = "content", deserialize_with = "de::json_or_string")]
    #[schema(value_type = Object)]
    pub bundle: ContentBundle,
    /// `merge` (default) or `replace`.
    #[serde(default)]
    pub mode: Option<ImportModeArg>,
    /// Report the diff and the validation errors; import nothing.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub dry_run: Option<bool>,
}

/// Entity ids by kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentIdsDto {
    /// Subjects.
    pub subjects: Vec<String>,
    /// Tracks.
    pub tracks: Vec<String>,
    /// Units.
    pub units: Vec<String>,
    /// Topics.
    pub topics: Vec<String>,
    /// Lessons.
    pub lessons: Vec<String>,
    /// Grades.
    pub grades: Vec<String>,
    /// Streams.
    pub streams: Vec<String>,
    /// Academic plans.
    pub plans: Vec<String>,
}

impl From<&ChangeSet> for ContentIdsDto {
    fn from(c: &ChangeSet) -> Self {
        let get = |k: &str| c.get(k).cloned().unwrap_or_default();
        ContentIdsDto {
            subjects: get("subjects"),
            tracks: get("tracks"),
            units: get("units"),
            topics: get("topics"),
            lessons: get("lessons"),
            grades: get("grades"),
            streams: get("streams"),
            plans: get("plans"),
        }
    }
}

/// Result of `import_content`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedDto {
    /// `success` (imported) or `dry_run`.
    pub status: String,
    /// The import was written.
    pub applied: bool,
    /// Catalog version after the call (the new one when applied).
    pub version: u64,
    /// Entities new to the catalog.
    pub added: ContentIdsDto,
    /// Existing entities changed.
    pub changed: ContentIdsDto,
    /// Entities published before and not after (never deleted).
    pub unpublished: ContentIdsDto,
    /// Number of added entities.
    pub added_count: usize,
    /// Number of changed entities.
    pub changed_count: usize,
    /// Number of unpublished entities.
    pub unpublished_count: usize,
    /// Validation errors (a dry run lists them; an import with any is a 400).
    pub errors: Vec<String>,
    /// Subjects in the catalog (after the import, or as it would be).
    pub subjects: usize,
    /// Lessons in the catalog (after the import, or as it would be).
    pub lessons: usize,
}

fn imported(r: ImportReport, dry_run: bool) -> ImportedDto {
    ImportedDto {
        status: if dry_run { "dry_run" } else { "success" }.into(),
        applied: r.applied,
        version: r.version,
        added_count: ImportReport::count(&r.added),
        changed_count: ImportReport::count(&r.changed),
        unpublished_count: ImportReport::count(&r.unpublished),
        added: ContentIdsDto::from(&r.added),
        changed: ContentIdsDto::from(&r.changed),
        unpublished: ContentIdsDto::from(&r.unpublished),
        errors: r.errors,
        subjects: r.subjects,
        lessons: r.lessons,
    }
}

method!(
    /// `import_content`.
    ImportContent = "import_content" in "admin", Admin, Write,
    "Import a content bundle (merge or replace; dry_run previews; new catalog version)",
    ImportArgs => ImportedDto,
    |app, ctx, req| {
        let dry_run = req.dry_run.unwrap_or(false);
        let request = ImportRequest {
            bundle: req.bundle,
            mode: match req.mode {
                Some(ImportModeArg::Replace) => ImportMode::Replace,
                _ => ImportMode::Merge,
            },
            dry_run,
        };
        let r = app.admin().import_content(ctx.actor()?, &request).await?;
        Ok(imported(r, dry_run))
    }
);

/// Result of `get_catalog_version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogVersionDto {
    /// Bumped by every applied import (0 before the first).
    pub version: u64,
}

method!(
    /// `get_catalog_version`.
    GetCatalogVersion = "get_catalog_version" in "admin", Admin, Read,
    "Current content catalog version",
    NoArgs => CatalogVersionDto,
    |app, ctx, _req| {
        Ok(CatalogVersionDto {
            version: app.admin().catalog_version(ctx.actor()?).await?,
        })
    }
);

/// Roles, as a list or a comma-separated string.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RolesArg {
    /// `["Student"]`.
    List(Vec<String>),
    /// `"Student,System Manager"`.
    Csv(String),
}

/// Arguments of `create_user`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserArgs {
    /// User id: an e-mail address (also `user`).
    #[serde(alias = "user", deserialize_with = "de::string")]
    pub email: String,
    /// Full name (also `name`).
    #[serde(alias = "name", deserialize_with = "de::string")]
    pub full_name: String,
    /// Roles: `Student` (default) and/or `System Manager`.
    #[serde(default)]
    pub roles: Option<RolesArg>,
    /// Password (checked for strength; never trimmed; also `new_password`).
    #[serde(default, alias = "new_password")]
    pub password: Option<String>,
}

/// Result of `create_user`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// User id.
    pub name: String,
    /// Full name.
    pub full_name: String,
    /// Roles.
    pub roles: Vec<String>,
}

method!(
    /// `create_user`.
    CreateUser = "create_user" in "admin", Admin, Write,
    "Create a user",
    CreateUserArgs => UserDto,
    |app, ctx, req| {
        if crate::args::Args::query_names(ctx.query.as_deref(), &["password", "new_password"]) {
            return Err(ApiError::bad(
                "send the password in the request body, never in the URL",
            ));
        }
        let user = id(UserId::new(req.email))?;
        let roles = match req.roles {
            None => vec![Role::Student],
            Some(RolesArg::List(v)) => v.iter().map(|r| Role::parse(r.trim())).collect::<Result<Vec<_>, _>>()?,
            Some(RolesArg::Csv(s)) => s.split(',').map(|r| Role::parse(r.trim())).collect::<Result<Vec<_>, _>>()?,
        };
        let u = app
            .auth()
            .create_user(ctx.actor()?, &user, &req.full_name, roles, req.password.as_deref())
            .await?;
        Ok(UserDto {
            name: u.id.as_str().to_owned(),
            full_name: u.full_name.clone(),
            roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        })
    }
);

/// Result of `create_api_key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    /// Key (public part).
    pub api_key: String,
    /// Secret (shown once).
    pub api_secret: String,
}

method!(
    /// `create_api_key`.
    CreateApiKey = "create_api_key" in "admin", Admin, Write,
    "Create an API key (secret shown once)",
    UserArg => ApiKeyDto,
    |app, ctx, req| {
        let user = id(UserId::new(req.user))?;
        let k = app.auth().create_api_key(ctx.actor()?, &user).await?;
        Ok(ApiKeyDto { api_key: k.key, api_secret: k.secret })
    }
);

/// Arguments of `get_audit_log`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AuditArgs {
    /// Only actions starting with this (`subscription.`, `season.archive`).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub action: Option<String>,
    /// Only this actor (a user id, or `<system>` for the server's own work).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub actor: Option<String>,
    /// From this time on (RFC 3339, or a date = its start in UTC).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub since: Option<String>,
    /// Before this time (RFC 3339, or a date = its start in UTC).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub until: Option<String>,
    /// Page before this `seq` (`next_before` of the previous page).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub before: Option<u64>,
    /// Page size (1–500, default 50).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    /// Position in the log (newer events have larger values).
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
    /// Who (`<system>` for the server's own work; null in old records).
    pub actor: Option<String>,
    /// What, e.g. `subscription.suspend`.
    pub action: String,
    /// Details.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageDto {
    /// Events, newest first.
    pub events: Vec<AuditEventDto>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<u64>,
}

fn time_arg(
    name: &str,
    v: Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(s) = v else { return Ok(None) };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            ApiError::bad(format!(
                "argument '{name}': expected an RFC 3339 time or a YYYY-MM-DD date"
            ))
        })
}

method!(
    /// `get_audit_log`.
    GetAuditLog = "get_audit_log" in "admin", Admin, Read,
    "Audit log, newest first (filters; keyset pages)",
    AuditArgs => AuditPageDto,
    |app, ctx, req| {
        let limit = usize::try_from(req.limit.unwrap_or(50)).unwrap_or(usize::MAX);
        let query = AuditQuery {
            action: req.action,
            actor: opt_id(req.actor, UserId::new)?,
            since: time_arg("since", req.since)?,
            until: time_arg("until", req.until)?,
            before: req.before,
            limit,
        };
        let v = app.admin().get_audit_log(ctx.actor()?, &query).await?;
        let next_before = (v.len() == limit).then(|| v.last().map(|r| r.seq)).flatten();
        Ok(AuditPageDto {
            events: v
                .into_iter()
                .map(|r| AuditEventDto {
                    seq: r.seq,
                    at: r.event.at.to_rfc3339(),
                    actor: r.event.actor.map(|a| a.as_str().to_owned()),
                    action: r.event.action,
                    detail: r.event.detail,
                })
                .collect(),
            next_before,
        })
    }
);

/// Arguments of `get_job_runs`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobRunsArgs {
    /// One scheduled job (`reconcile`, `auto_archive`, `retention`,
    /// `fsrs_refit`, `served_purge`, `pending_batches`,
    /// `invalidations_prune`); all of them if absent.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub job: Option<String>,
    /// Runs per job, newest first (1–100, default 10).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

/// One run of a scheduled job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunDto {
    /// The lease's fencing token (grows with every run of the job).
    pub token: u64,
    /// The server process that ran it.
    pub holder: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339); null while running, or if its process died.
    pub finished_at: Option<String>,
    /// Summary, or `failed: …`.
    pub outcome: Option<String>,
}

/// The recent runs of one job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunsDto {
    /// Job name.
    pub job: String,
    /// Newest first.
    pub runs: Vec<JobRunDto>,
}

/// Result of `get_job_runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunsPageDto {
    /// One entry per job asked for.
    pub jobs: Vec<JobRunsDto>,
    /// The process that answered (compare with `holder`).
    pub this_process: String,
}

method!(
    /// `get_job_runs`.
    GetJobRuns = "get_job_runs" in "admin", Admin, Read,
    "Recent runs of the scheduled jobs (one process per run, across every server)",
    JobRunsArgs => JobRunsPageDto,
    |app, ctx, req| {
        let limit = match req.limit.unwrap_or(10) {
            n @ 1..=100 => n as usize,
            n => return Err(ApiError::bad(format!("argument 'limit': {n} is outside 1–100"))),
        };
        let names: Vec<&str> = match req.job.as_deref() {
            None => crate::jobs::JOB_NAMES.to_vec(),
            Some(j) if crate::jobs::JOB_NAMES.contains(&j) => vec![j],
            Some(_) => {
                return Err(ApiError::bad(format!(
                    "argument 'job': unknown job (one of: {})",
                    crate::jobs::JOB_NAMES.join(", ")
                )));
            }
        };
        let mut jobs = Vec::with_capacity(names.len());
        for name in names {
            let runs = app.admin().job_runs(ctx.actor()?, name, limit).await?;
            jobs.push(JobRunsDto {
                job: name.to_owned(),
                runs: runs
                    .into_iter()
                    .map(|r| JobRunDto {
                        token: r.token,
                        holder: r.holder,
                        started_at: r.started_at.to_rfc3339(),
                        finished_at: r.finished_at.map(|t| t.to_rfc3339()),
                        outcome: r.outcome,
                    })
                    .collect(),
            });
        }
        Ok(JobRunsPageDto {
            jobs,
            this_process: app.instance_id().to_owned(),
        })
    }
);

/// Arguments of `get_learning_insight`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InsightArgs {
    /// Season (the active one if absent).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub season: Option<String>,
    /// Days of forecast ahead and of history behind (1–90, default 30).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 90)]
    pub days: Option<u64>,
}

/// Cards due on one subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectCountDto {
    /// Subject (null: none).
    pub subject: Option<String>,
    /// Cards.
    pub cards: u64,
}

/// One day of the due forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct DueDayDto {
    /// UTC day (YYYY-MM-DD); the first also holds the overdue cards.
    pub day: String,
    /// Cards due.
    pub total: u64,
    /// Per subject.
    pub by_subject: Vec<SubjectCountDto>,
}

/// Answers of one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayReviewsDto {
    /// UTC day.
    pub day: String,
    /// Answers.
    pub answers: u64,
    /// Correct answers.
    pub correct: u64,
}

/// Cards by scheduled interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntervalDto {
    /// Longest interval of the bucket (days); null for the open last one.
    pub up_to_days: Option<u32>,
    /// Cards.
    pub cards: u64,
}

/// Predicted against observed recall in one bin.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalibrationDto {
    /// Predicted recall from.
    pub from: f64,
    /// Predicted recall to.
    pub to: f64,
    /// Answers.
    pub answers: u64,
    /// Mean predicted recall.
    pub predicted: f64,
    /// Share answered correctly.
    pub observed: f64,
}

/// Result of `get_learning_insight`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InsightDto {
    /// Season.
    pub season: String,
    /// When computed (RFC 3339).
    pub at: String,
    /// Due load of the coming days.
    pub due_forecast: Vec<DueDayDto>,
    /// Answers per day (days without answers left out).
    pub reviews_per_day: Vec<DayReviewsDto>,
    /// Live cards by scheduled interval.
    pub intervals: Vec<IntervalDto>,
    /// FSRS calibration from the review log (sampled learners).
    pub calibration: Vec<CalibrationDto>,
    /// Answers the calibration is computed from.
    pub calibration_answers: u64,
    /// Learners sampled.
    pub calibration_learners: usize,
    /// Answer-weighted mean |predicted − observed| (null without answers).
    pub calibration_error: Option<f64>,
    /// Per-learner FSRS fits (every learner with a recorded fit).
    pub fits: FitsDto,
}

/// How well the per-learner FSRS fits did.
#[derive(Debug, Serialize, ToSchema)]
pub struct FitsDto {
    /// Learners with a recorded fit.
    pub fitted: u64,
    /// Of which the fit fell back to the default parameters.
    pub fell_back: u64,
    /// Of which their own parameters predict their reviews better than the
    /// defaults.
    pub improved: u64,
    /// Mean log loss with the default parameters (null without fits).
    pub mean_loss_before: Option<f64>,
    /// Mean log loss with the stored parameters.
    pub mean_loss_after: Option<f64>,
}

method!(
    /// `get_learning_insight`.
    GetLearningInsight = "get_learning_insight" in "admin", Admin, Read,
    "Due forecast, answers per day, intervals and FSRS calibration of a season",
    InsightArgs => InsightDto,
    |app, ctx, req| {
        let season = opt_id(req.season, SeasonId::new)?;
        let days = match req.days.unwrap_or(30) {
            n @ 1..=90 => n as u32,
            n => return Err(ApiError::bad(format!("argument 'days': {n} is outside 1–90"))),
        };
        let i = app
            .admin()
            .learning_insight(ctx.actor()?, season.as_ref(), days)
            .await?;
        Ok(InsightDto {
            season: i.season.to_string(),
            at: i.at.to_rfc3339(),
            due_forecast: i
                .due_forecast
                .into_iter()
                .map(|d| DueDayDto {
                    day: d.day.to_string(),
                    total: d.total,
                    by_subject: d
                        .by_subject
                        .into_iter()
                        .map(|(s, n)| SubjectCountDto {
                            subject: s.map(|s| s.to_string()),
                            cards: n,
                        })
                        .collect(),
                })
                .collect(),
            reviews_per_day: i
                .reviews_per_day
                .into_iter()
                .map(|d| DayReviewsDto {
                    day: d.day.to_string(),
                    answers: d.answers,
                    correct: d.correct,
                })
                .collect(),
            intervals: i
                .intervals
                .into_iter()
                .map(|b| IntervalDto {
                    up_to_days: b.up_to_days,
                    cards: b.cards,
                })
                .collect(),
            calibration: i
                .calibration
                .into_iter()
                .map(|b| CalibrationDto {
                    from: b.from,
                    to: b.to,
                    answers: b.answers,
                    predicted: b.predicted,
                    observed: b.observed,
                })
                .collect(),
            calibration_answers: i.calibration_answers,
            calibration_learners: i.calibration_learners,
            calibration_error: i.calibration_error,
            fits: FitsDto {
                fitted: i.fits.fitted,
                fell_back: i.fits.fell_back,
                improved: i.fits.improved,
                mean_loss_before: i.fits.mean_loss_before,
                mean_loss_after: i.fits.mean_loss_after,
            },
        })
    }
);

/// The device policy of the caller's institution.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePolicyDto {
    /// At most this many registered devices per player.
    pub max_devices: usize,
    /// What registering one more does: `sign-out-oldest` or `refuse`.
    pub on_limit: String,
    /// `institution` (its own policy) or `server` (the server default,
    /// `MEMORA_MAX_DEVICES` / `MEMORA_DEVICE_LIMIT`).
    pub source: String,
}

fn device_policy_dto(app: &memora_core::Memora) -> DevicePolicyDto {
    let p = app.auth().device_policy();
    DevicePolicyDto {
        max_devices: p.max_devices,
        on_limit: p.on_limit.as_str().to_owned(),
        source: if app.auth().has_own_device_policy() {
            "institution"
        } else {
            "server"
        }
        .to_owned(),
    }
}

method!(
    /// `get_device_policy`.
    GetDevicePolicy = "get_device_policy" in "admin", Admin, Read,
    "The device policy of the caller's institution",
    NoArgs => DevicePolicyDto,
    |app, ctx, _req| {
        ctx.actor()?.require_admin()?;
        Ok(device_policy_dto(app))
    }
);

/// Arguments of `set_device_policy`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetDevicePolicyArgs {
    /// At most this many registered devices per player (1–1000).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub max_devices: Option<u64>,
    /// `sign-out-oldest` (default) or `refuse`.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub on_limit: Option<String>,
    /// Return to the server default (the other arguments must be absent).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub reset: Option<bool>,
}

method!(
    /// `set_device_policy`.
    SetDevicePolicy = "set_device_policy" in "admin", Admin, Write,
    "Set the device policy of the caller's institution (every server process applies it within a second)",
    SetDevicePolicyArgs => DevicePolicyDto,
    |app, ctx, req| {
        let policy = match (req.reset.unwrap_or(false), req.max_devices, req.on_limit) {
            (true, None, None) => None,
            (true, _, _) => {
                return Err(ApiError::bad("reset takes no other argument"));
            }
            (false, None, _) => {
                return Err(ApiError::bad("argument 'max_devices' is required (or reset=true)"));
            }
            (false, Some(n), limit) => Some(memora_core::domain::DevicePolicy {
                max_devices: usize::try_from(n).unwrap_or(usize::MAX),
                on_limit: match limit {
                    Some(l) => memora_core::domain::DeviceLimitAction::parse(&l)?,
                    None => memora_core::domain::DeviceLimitAction::SignOutOldest,
                },
            }),
        };
        app.auth().set_device_policy(ctx.actor()?, policy).await?;
        Ok(device_policy_dto(app))
    }
);

/// Subject ids, as a list or a comma-separated string.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SubjectsArg {
    /// `["science", "history"]`.
    List(Vec<String>),
    /// `"science,history"`.
    Csv(String),
}

/// Arguments of `adopt_shared_content`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdoptArgs {
    /// Subjects of the shared library to adopt (default: every published
    /// one). A JSON list, or a comma-separated string.
    #[serde(default)]
    pub subjects: Option<SubjectsArg>,
    /// Report what would change; write nothing.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub dry_run: Option<bool>,
}

method!(
    /// `adopt_shared_content`.
    AdoptSharedContent = "adopt_shared_content" in "admin", Admin, Write,
    "Copy subjects of the shared library (the home institution's published catalog) into the caller's institution, to customise there",
    AdoptArgs => ImportedDto,
    |_app, ctx, req| {
        let platform = ctx.platform()?;
        let subjects = match req.subjects {
            None => Vec::new(),
            Some(SubjectsArg::List(v)) => v,
            Some(SubjectsArg::Csv(s)) => s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect(),
        }
        .into_iter()
        .map(SubjectId::new)
        .collect::<Result<Vec<_>, _>>()?;
        let dry_run = req.dry_run.unwrap_or(false);
        let r = platform
            .adopt_shared_content(ctx.actor()?, &ctx.institution, &subjects, dry_run)
            .await?;
        Ok(imported(r, dry_run))
    }
);
