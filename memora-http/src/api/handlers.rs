//! One function per API method: parse → call the use case → render.

use std::sync::Arc;

use memora_core::domain::*;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::*;
use memora_core::services::admin::SeasonInput;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::services::sessions::{Interaction, LessonSubmission};
use memora_core::services::store::{PurchaseDecision, PurchaseOutcome};
use memora_core::srs::{AnswerSignals, SchedulerKind};
use memora_core::{CoreError, Memora};
use serde_json::{Value, json};

use super::views;
use super::{Call, MethodSpec};
use crate::args::{Args, as_bool, as_i64, as_u64};
use crate::error::ApiError;

type R = Result<Value, ApiError>;

fn id<T>(parsed: Result<T, CoreError>) -> Result<T, ApiError> {
    parsed.map_err(ApiError::from)
}

fn opt_id<T>(
    args: &Args,
    names: &[&str],
    f: fn(String) -> Result<T, CoreError>,
) -> Result<Option<T>, ApiError> {
    args.opt_str_any(names)?
        .map(f)
        .transpose()
        .map_err(ApiError::from)
}

fn req_id<T>(
    args: &Args,
    names: &[&str],
    f: fn(String) -> Result<T, CoreError>,
) -> Result<T, ApiError> {
    id(f(args.req_str(names)?))
}

fn actor<'a>(call: &'a Call<'a>) -> Result<&'a Actor, ApiError> {
    call.actor.ok_or(ApiError::Core(CoreError::Unauthenticated))
}

/// Runs one method.
pub async fn dispatch(app: &Arc<Memora>, spec: &MethodSpec, call: Call<'_>) -> R {
    let a = call.args;
    match spec.name {
        "get_subjects" => {
            let v = app.learning().get_subjects(actor(&call)?).await?;
            Ok(Value::Array(v.iter().map(views::subject_basic).collect()))
        }
        "get_my_subjects" => {
            let v = app.learning().get_subjects(actor(&call)?).await?;
            Ok(Value::Array(v.iter().map(views::subject_mine).collect()))
        }
        "get_game_tracks" => {
            let subject = req_id(a, &["subject"], SubjectId::new)?;
            let v = app.learning().get_game_tracks(&subject).await?;
            Ok(Value::Array(v.iter().map(views::track).collect()))
        }
        "get_map_data" => {
            let subject = opt_id(a, &["subject"], SubjectId::new)?;
            let track = opt_id(a, &["track"], TrackId::new)?;
            let map = app
                .learning()
                .get_map_data(actor(&call)?, subject.as_ref(), track.as_ref())
                .await?;
            Ok(Value::Array(
                map.iter()
                    .map(|m| {
                        json!({
                            "subject_id": m.subject.id.as_str(),
                            "title": m.subject.title,
                            "units": m.units.iter().map(|u| views::unit_node(u, false)).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ))
        }
        "get_track_details" => {
            let subject = opt_id(a, &["subject"], SubjectId::new)?;
            let track = opt_id(a, &["track"], TrackId::new)?;
            let linear = a.opt_bool("is_track_linear")?;
            let d = app
                .learning()
                .get_track_details(actor(&call)?, subject.as_ref(), track.as_ref(), linear)
                .await?;
            Ok(json!({
                "subject": {"id": d.subject.id.as_str(), "title": d.subject.title},
                "track": d.track.as_ref().map(views::track).unwrap_or_else(|| json!({})),
                "units": d.units.iter().map(|u| {
                    let mut v = views::unit_node(u, true);
                    if let Some(o) = v.as_object_mut() { o.remove("topics"); o.remove("style"); }
                    v
                }).collect::<Vec<_>>(),
            }))
        }
        "get_topic_details" => {
            let topic = a.req_str(&["topic_id", "topic"])?;
            let d = app
                .learning()
                .get_topic_details(actor(&call)?, &topic)
                .await?;
            Ok(json!({
                "topic_id": d.topic_id,
                "title": d.title,
                "description": d.description,
                "is_locked_premium": d.is_locked_premium,
                "lessons": d.lessons.iter().map(|l| views::lesson_node(l, false)).collect::<Vec<_>>(),
            }))
        }
        "get_unit_topics" => {
            let unit = req_id(a, &["unit_id", "unit"], UnitId::new)?;
            let d = app.learning().get_unit_topics(actor(&call)?, &unit).await?;
            Ok(json!({
                "unit_title": d.unit_title,
                "topics": d.topics.iter().map(|t| {
                    let mut v = views::topic_node(t, true);
                    if let Some(o) = v.as_object_mut() {
                        if let Some(stats) = o.get_mut("stats").and_then(|s| s.as_object_mut()) {
                            stats.remove("total");
                            stats.remove("completed");
                        }
                    }
                    v
                }).collect::<Vec<_>>(),
            }))
        }
        "get_lesson_details" => {
            let lesson = id(LessonId::new(
                a.opt_str_any(&["lesson_id", "lesson"])?
                    .ok_or_else(|| ApiError::bad("Lesson ID is missing"))?,
            ))?;
            let d = app
                .learning()
                .get_lesson_details(actor(&call)?, &lesson)
                .await?;
            Ok(json!({
                "name": d.lesson.id.as_str(),
                "title": d.lesson.title,
                "xp_reward": d.lesson.xp_reward,
                "stages": d.lesson.stages.iter().map(views::stage).collect::<Vec<_>>(),
            }))
        }
        "submit_session" => submit_session(app, &call).await,
        "get_review_session" => {
            let limit = a.opt_u64("limit")?;
            let q = ReviewQuery {
                subject: opt_id(a, &["subject"], SubjectId::new)?,
                topic: opt_id(a, &["topic_id", "topic"], TopicId::new)?,
                limit: limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
            };
            let s = app.reviews().get_review_session(actor(&call)?, &q).await?;
            Ok(json!({
                "questions": s.questions.iter().map(views::card).collect::<Vec<_>>(),
                "total_due": s.total_due,
                "is_degraded": s.is_degraded,
                "season": s.season.as_ref().map(|x| x.as_str()).unwrap_or(""),
            }))
        }
        "submit_review_session" => submit_review(app, &call).await,
        "get_persistence_status" => {
            let job = req_id(a, &["job_id"], JobId::new)?;
            let s = app
                .reviews()
                .get_persistence_status(actor(&call)?, &job)
                .await?;
            let mut v = json!({"job_id": job.as_str(), "status": s.as_str()});
            if let memora_core::ports::JobStatus::Failed(reason) = &s {
                v["error"] = json!(reason);
            }
            Ok(v)
        }
        "get_player_profile" => {
            let p = app.gamification().get_player_profile(actor(&call)?).await?;
            Ok(json!({
                "xp": p.total_xp,
                "gems": p.gems,
                "current_grade": p.grade.as_ref().map(|g| g.as_str()),
                "current_stream": p.stream.as_ref().map(|s| s.as_str()),
                "season": p.season.as_ref().map(|s| s.as_str()),
                "time_zone": p.time_zone,
            }))
        }
        "get_full_profile_stats" => {
            let subject = opt_id(a, &["subject"], SubjectId::new)?;
            let s = app
                .gamification()
                .get_full_profile_stats(actor(&call)?, subject.as_ref())
                .await?;
            Ok(json!({
                "fullName": s.profile.full_name,
                "avatarUrl": s.profile.avatar,
                "level": s.level.level,
                "levelTitle": s.level_title,
                "nextLevelProgress": s.level.next_level_progress,
                "xpInLevel": s.level.xp_in_level,
                "xpToNextLevel": s.level.xp_to_next_level,
                "streak": s.streak,
                "gems": s.profile.gems,
                "totalXP": s.xp,
                "totalLearned": s.mastery.total(),
                "weeklyActivity": s.weekly.iter().map(|d| json!({
                    "day": d.day_label,
                    "full_date": d.date.to_string(),
                    "xp": d.xp,
                    "isToday": d.is_today,
                })).collect::<Vec<_>>(),
                "mastery": views::mastery(&s.mastery),
            }))
        }
        "get_player_login_info" => {
            let who = actor(&call)?;
            let p = app.gamification().get_player_profile(who).await?;
            Ok(json!({
                "total_xp": p.total_xp,
                "current_grade": p.grade.as_ref().map(|g| g.as_str()),
                "current_stream": p.stream.as_ref().map(|s| s.as_str()),
                "season": p.season.as_ref().map(|s| s.as_str()),
                "email": who.user.as_str(),
                "full_name": p.full_name,
                "roles": who.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "is_logged_in": true,
            }))
        }
        "set_time_zone" => {
            let tz = a.req_str(&["time_zone", "tz"])?;
            let hour = a
                .opt_u64("rollover_hour")?
                .map(|h| u8::try_from(h).map_err(|_| ApiError::bad("rollover_hour must be 0..=23")))
                .transpose()?;
            let p = app
                .gamification()
                .set_time_zone(actor(&call)?, &tz, hour)
                .await?;
            Ok(json!({
                "status": "success",
                "time_zone": p.time_zone,
                "rollover_hour": p.rollover_hour,
                "pending_time_zone": p.pending_zone.as_ref().map(|z| z.time_zone.clone()),
                "pending_rollover_hour": p.pending_zone.as_ref().map(|z| z.rollover_hour),
                "pending_effective_at": p.pending_zone.as_ref().map(|z| z.effective_at.to_rfc3339()),
            }))
        }
        "get_daily_quests" => {
            let subject = opt_id(a, &["subject"], SubjectId::new)?;
            let q = app
                .gamification()
                .get_daily_quests(actor(&call)?, subject.as_ref())
                .await?;
            Ok(Value::Array(q.iter().map(views::quest).collect()))
        }
        "claim_quest_reward" => {
            let quest = a.req_str(&["quest_id"])?;
            let out = app
                .gamification()
                .claim_quest_reward(actor(&call)?, &quest)
                .await?;
            Ok(
                json!({"status": "success", "quest": views::quest(&out.quest), "xp_awarded": out.xp_awarded}),
            )
        }
        "get_leaderboard" => {
            let period = match a.opt_str("period")? {
                Some(p) => LeaderboardPeriod::parse(&p).map_err(|_| {
                    ApiError::bad(format!(
                        "period must be one of daily, weekly, monthly, all_time (got '{p}')"
                    ))
                })?,
                None => LeaderboardPeriod::AllTime,
            };
            let subject = opt_id(a, &["subject"], SubjectId::new)?;
            let b = app
                .gamification()
                .get_leaderboard(actor(&call)?, subject.as_ref(), period)
                .await?;
            let rows: Vec<Value> = b.rows.iter().map(views::leaderboard_row).collect();
            Ok(json!({
                "period": b.period.as_str(),
                "leaderboard": rows,
                "rankings": rows,
                "userRank": views::leaderboard_row(&b.me),
                "current_user_rank": b.me.rank,
            }))
        }
        "get_academic_masters" => {
            let m = app.gamification().get_academic_masters().await?;
            Ok(json!({
                "grades": m.grades.iter().map(|g| json!({
                    "id": g.grade.id.as_str(),
                    "name": g.grade.name,
                    "allowed_streams": g.grade.valid_streams.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "allowed_seasons": g.allowed_seasons.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "streams": m.streams.iter().map(|s| json!({"name": s.id.as_str(), "stream_name": s.name})).collect::<Vec<_>>(),
                "seasons": m.seasons.iter().map(|s| json!({"name": s.id.as_str(), "title": s.title})).collect::<Vec<_>>(),
            }))
        }
        "set_academic_profile" => {
            let grade = req_id(a, &["grade"], GradeId::new)?;
            let stream = opt_id(a, &["stream"], StreamId::new)?;
            let season = opt_id(a, &["season", "academic_year"], SeasonId::new)?;
            let p = app
                .gamification()
                .set_academic_profile(actor(&call)?, &grade, stream.as_ref(), season.as_ref())
                .await?;
            Ok(json!({
                "status": "success",
                "message": "Academic profile saved successfully",
                "profile_updated": true,
                "season": p.season.as_ref().map(|s| s.as_str()),
            }))
        }
        "get_store_items" => {
            let v = app.commerce().get_store_items(actor(&call)?).await?;
            Ok(Value::Array(v.iter().map(views::sales_item).collect()))
        }
        "request_purchase" => {
            let item = req_id(a, &["item_id", "item"], SalesItemId::new)?;
            let out = app
                .commerce()
                .request_purchase(
                    actor(&call)?,
                    &item,
                    a.opt_str("payment_method")?,
                    a.opt_str("transaction_id")?,
                )
                .await?;
            Ok(match out {
                PurchaseOutcome::Created(r) => json!({
                    "status": "success",
                    "message": "تم إرسال طلبك! سيتم تفعيل الاشتراك بعد مراجعة الإدارة.",
                    "purchase_id": r.id.as_str(),
                }),
                PurchaseOutcome::AlreadyPending(r) => json!({
                    "status": "pending",
                    "message": "لديك طلب قيد المراجعة لهذه الباقة بالفعل.",
                    "purchase_id": r.id.as_str(),
                }),
            })
        }
        "list_purchase_requests" => {
            let status = match a
                .opt_str("status")?
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None => None,
                Some("pending") => Some(PurchaseStatus::Pending),
                Some("approved") => Some(PurchaseStatus::Approved),
                Some("rejected") => Some(PurchaseStatus::Rejected),
                Some(other) => return Err(ApiError::bad(format!("unknown status '{other}'"))),
            };
            let v = app
                .commerce()
                .list_purchase_requests(actor(&call)?, status)
                .await?;
            Ok(Value::Array(v.iter().map(views::purchase).collect()))
        }
        "approve_purchase_request" | "reject_purchase_request" => {
            let req = req_id(a, &["request_id", "name"], PurchaseRequestId::new)?;
            let decision = if spec.name.starts_with("approve") {
                PurchaseDecision::Approve
            } else {
                PurchaseDecision::Reject
            };
            let (r, sub) = app
                .commerce()
                .decide_purchase(actor(&call)?, &req, decision)
                .await?;
            Ok(json!({
                "status": r.status.as_str(),
                "request": views::purchase(&r),
                "subscription_id": sub.as_ref().map(|s| s.id.as_str()),
            }))
        }
        "get_user_access_keys" => {
            let (keys, version) = app.commerce().get_user_access_keys(actor(&call)?).await?;
            Ok(json!({
                "subjects": keys.subjects.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "tracks": keys.tracks.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "is_global": u8::from(keys.is_global),
                "plan_version": version,
            }))
        }
        "get_student_plan_version" => {
            let who = actor(&call)?;
            let user = opt_id(a, &["user"], UserId::new)?.unwrap_or_else(|| who.user.clone());
            Ok(json!(
                app.commerce().get_student_plan_version(who, &user).await?
            ))
        }
        "get_plan_version" => {
            let grade = req_id(a, &["grade"], GradeId::new)?;
            let season = req_id(a, &["season", "academic_year"], SeasonId::new)?;
            let stream = opt_id(a, &["stream"], StreamId::new)?;
            Ok(
                json!({"version": app.commerce().get_plan_version(&grade, &season, stream.as_ref()).await?}),
            )
        }
        "get_cache_status" => {
            let s = app.admin().get_cache_status(actor(&call)?).await?;
            Ok(json!({
                "redis_connected": s.stats.connected,
                "is_safe_mode": s.is_safe_mode,
                "memory_used_mb": ((s.stats.memory_used_bytes as f64) / 1_048_576.0 * 100.0).round() / 100.0,
                "total_keys": s.stats.total_keys,
                "keys_by_season": s.stats.keys_by_season,
                "queue_depth": s.queue_depth,
            }))
        }
        "rebuild_season_cache" => {
            let season = req_id(a, &["season_name", "season"], SeasonId::new)?;
            let job = app
                .admin()
                .start_season_rebuild(actor(&call)?, &season)
                .await?;
            let bg = Arc::clone(app);
            let job_id = job.id.clone();
            tokio::spawn(async move {
                if let Err(e) = bg.admin().run_season_rebuild(&job_id).await {
                    tracing::error!(job = %job_id, error = %e, "season cache rebuild failed");
                }
            });
            Ok(
                json!({"status": "started", "job_id": job.id.as_str(), "estimated_records": job.estimated}),
            )
        }
        "get_rebuild_status" => {
            let job = req_id(a, &["job_id"], JobId::new)?;
            let p = app.admin().rebuild_progress(&job).ok_or_else(|| {
                ApiError::Core(CoreError::not_found(format!("job {job} not found")))
            })?;
            Ok(json!({
                "job_id": p.id.as_str(), "season": p.season.as_str(), "status": p.status,
                "estimated_records": p.estimated, "processed": p.processed, "users": p.users,
            }))
        }
        "trigger_reconciliation" => {
            let sample = a.opt_u64("sample_size")?;
            let season = opt_id(a, &["season", "season_name"], SeasonId::new)?;
            let r = app
                .admin()
                .trigger_reconciliation(actor(&call)?, sample, season.as_ref())
                .await?;
            Ok(json!({
                "sample_size": r.sample_size,
                "discrepancies_found": r.discrepancies_found,
                "discrepancy_rate": r.discrepancy_rate,
                "auto_corrected": r.auto_corrected,
                "kept_newer_in_cache": r.kept_newer_in_cache,
                "not_cached": r.not_cached,
                "alert_triggered": r.alert_triggered,
            }))
        }
        "archive_season" => {
            let season = req_id(a, &["season_name", "season"], SeasonId::new)?;
            let confirm = a.opt_bool("confirm")?.unwrap_or(false);
            let out = app
                .admin()
                .archive_season(actor(&call)?, &season, confirm)
                .await?;
            Ok(json!({
                "success": true,
                "status": "completed",
                "season": season.as_str(),
                "archived_count": out.records_archived,
                "records_archived": out.records_archived,
                "cache_keys_deleted": out.cache_keys_deleted,
            }))
        }
        "get_archive_status" => {
            let season = req_id(a, &["season_name", "season"], SeasonId::new)?;
            let s = app
                .admin()
                .get_archive_status(actor(&call)?, &season)
                .await?;
            Ok(json!({
                "season": s.season.id.as_str(),
                "is_active": s.season.is_active,
                "auto_archive": s.season.auto_archive,
                "end_date": s.season.end_date.to_string(),
                "archived": s.season.archived,
                "active_records": s.counts.active_records,
                "archived_records": s.counts.archived_records,
                "eligible_for_deletion": s.counts.eligible_for_deletion,
                "total_records": s.counts.active_records + s.counts.archived_records,
            }))
        }
        "delete_eligible_archived_records" => {
            let season = opt_id(a, &["season_name", "season"], SeasonId::new)?;
            let confirm = a.opt_bool("confirm")?.unwrap_or(false);
            let n = app
                .admin()
                .delete_eligible_archived_records(actor(&call)?, season.as_ref(), confirm)
                .await?;
            Ok(json!({"success": true, "deleted_count": n}))
        }
        "refit_fsrs_params" => {
            let user = req_id(a, &["user"], UserId::new)?;
            let r = app.admin().refit_fsrs_params(actor(&call)?, &user).await?;
            Ok(json!({
                "user": r.user.as_str(), "reviews": r.reviews, "items": r.items,
                "fell_back": r.fell_back, "loss_before": r.loss_before, "loss_after": r.loss_after,
                "params": r.params,
            }))
        }
        "list_seasons" => {
            let v = app.admin().list_seasons(actor(&call)?).await?;
            Ok(Value::Array(v.iter().map(views::season).collect()))
        }
        "create_season" => {
            let input = SeasonInput {
                id: req_id(a, &["season_name", "season"], SeasonId::new)?,
                title: a.opt_str("title")?,
                start_date: date(a, "start_date")?,
                end_date: date(a, "end_date")?,
                scheduler: a
                    .opt_str("scheduler")?
                    .map(|s| SchedulerKind::parse(&s))
                    .transpose()?,
                desired_retention: a.opt_f64("desired_retention")?,
                auto_archive: a.opt_bool("auto_archive")?.unwrap_or(false),
            };
            let s = app.admin().create_season(actor(&call)?, &input).await?;
            Ok(views::season(&s))
        }
        "activate_season" => {
            let season = req_id(a, &["season_name", "season"], SeasonId::new)?;
            Ok(views::season(
                &app.admin().activate_season(actor(&call)?, &season).await?,
            ))
        }
        "update_season" => {
            let season = req_id(a, &["season_name", "season"], SeasonId::new)?;
            let s = app
                .admin()
                .update_season_settings(
                    actor(&call)?,
                    &season,
                    a.opt_str("scheduler")?
                        .map(|s| SchedulerKind::parse(&s))
                        .transpose()?,
                    a.opt_f64("desired_retention")?,
                    a.opt_bool("enable_redis")?,
                    a.opt_bool("auto_archive")?,
                )
                .await?;
            Ok(views::season(&s))
        }
        "import_content" => {
            let bundle = a
                .opt_json(&["bundle", "content"])?
                .ok_or_else(|| ApiError::bad("missing required argument 'bundle'"))?;
            let catalog: Catalog = serde_json::from_value(bundle)
                .map_err(|e| ApiError::bad(format!("invalid content bundle: {e}")))?;
            let idx = app.admin().import_content(actor(&call)?, &catalog).await?;
            Ok(json!({
                "status": "success",
                "subjects": idx.catalog().subjects.len(),
                "lessons": idx.catalog().lessons.len(),
            }))
        }
        "create_user" => {
            let user = req_id(a, &["email", "user"], UserId::new)?;
            let name = a.req_str(&["full_name", "name"])?;
            let roles = match a.opt_json(&["roles"]).ok().flatten() {
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|r| {
                        r.as_str()
                            .map(Role::parse)
                            .unwrap_or_else(|| Err(CoreError::invalid("role must be a string")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => match a.opt_str("roles")? {
                    Some(s) => s
                        .split(',')
                        .map(|r| Role::parse(r.trim()))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => vec![Role::Student],
                },
            };
            let pwd = a.opt_secret(&["password", "new_password"])?;
            let u = app
                .auth()
                .create_user(actor(&call)?, &user, &name, roles, pwd.as_deref())
                .await?;
            Ok(
                json!({"name": u.id.as_str(), "full_name": u.full_name, "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()}),
            )
        }
        "create_api_key" => {
            let user = req_id(a, &["user"], UserId::new)?;
            let k = app.auth().create_api_key(actor(&call)?, &user).await?;
            Ok(json!({"api_key": k.key, "api_secret": k.secret}))
        }
        other => Err(ApiError::UnknownMethod(format!(
            "method {other} is not implemented"
        ))),
    }
}

fn date(a: &Args, name: &str) -> Result<chrono::NaiveDate, ApiError> {
    let s = a.req_str(&[name])?;
    chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|_| ApiError::bad(format!("argument '{name}' must be a date YYYY-MM-DD")))
}

fn obj<'v>(v: &'v Value, what: &str) -> Result<&'v serde_json::Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::bad(format!("'{what}' must be an object")))
}

fn field_u32(
    o: &serde_json::Map<String, Value>,
    names: &[&str],
    what: &str,
) -> Result<Option<u32>, ApiError> {
    // The original treated a missing or falsy time as 3000 ms.
    for n in names {
        match o.get(*n) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                let x = as_u64(v).ok_or_else(|| {
                    ApiError::bad(format!("'{what}.{n}' must be a non-negative integer"))
                })?;
                return Ok(Some(
                    u32::try_from(x.min(u64::from(u32::MAX))).unwrap_or(u32::MAX),
                ));
            }
        }
    }
    Ok(None)
}

fn question(o: &serde_json::Map<String, Value>, what: &str) -> Result<QuestionId, ApiError> {
    let raw = o
        .get("question_id")
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| ApiError::bad(format!("'{what}.question_id' is required")))?;
    id(QuestionId::parse(raw))
}

async fn submit_review(app: &Arc<Memora>, call: &Call<'_>) -> R {
    let a = call.args;
    let session = a.opt_json(&["session_data"])?;
    let session_obj = session
        .as_ref()
        .map(|s| obj(s, "session_data"))
        .transpose()?;
    let list = |name: &str| -> Option<Value> {
        session_obj
            .and_then(|o| o.get(name).cloned())
            .or_else(|| a.opt_json(&[name]).ok().flatten())
    };
    let mut answers = Vec::new();
    if let Some(raw) = list("answers") {
        let items = raw
            .as_array()
            .ok_or_else(|| ApiError::bad("'answers' must be a list"))?;
        for (i, item) in items.iter().enumerate() {
            let what = format!("answers[{i}]");
            let o = obj(item, &what)?;
            let correct = match o.get("is_correct") {
                None | Some(Value::Null) => false,
                Some(v) => as_bool(v).ok_or_else(|| {
                    ApiError::bad(format!("'{what}.is_correct' must be a boolean"))
                })?,
            };
            let ms = field_u32(
                o,
                &["time_spent_ms", "duration_ms", "response_time_ms"],
                &what,
            )?
            .unwrap_or(0);
            answers.push(AnswerInput {
                question_id: question(o, &what)?,
                signals: AnswerSignals::review(correct, ms),
                review_id: o
                    .get("review_id")
                    .and_then(|v| v.as_str())
                    .map(ReviewId::new)
                    .transpose()?,
            });
        }
    } else if let Some(raw) = list("responses") {
        let items = raw
            .as_array()
            .ok_or_else(|| ApiError::bad("'responses' must be a list"))?;
        for (i, item) in items.iter().enumerate() {
            let what = format!("responses[{i}]");
            let o = obj(item, &what)?;
            let quality = o
                .get("quality")
                .and_then(as_u64)
                .filter(|q| *q <= 5)
                .ok_or_else(|| ApiError::bad(format!("'{what}.quality' must be an integer 0–5")))?;
            let ms = field_u32(
                o,
                &["response_time_ms", "duration_ms", "time_spent_ms"],
                &what,
            )?
            .unwrap_or(0);
            answers.push(AnswerInput {
                question_id: question(o, &what)?,
                signals: AnswerSignals::with_quality(quality as u8, ms),
                review_id: o
                    .get("review_id")
                    .and_then(|v| v.as_str())
                    .map(ReviewId::new)
                    .transpose()?,
            });
        }
    } else {
        return Err(ApiError::bad(
            "missing answers: send session_data.answers[] or responses[]",
        ));
    }
    let meta = session_obj
        .and_then(|o| o.get("session_meta"))
        .or_else(|| a.value("session_meta"))
        .cloned();
    let meta = match meta {
        Some(Value::String(s)) => Some(
            serde_json::from_str::<Value>(&s)
                .map_err(|_| ApiError::bad("'session_meta' is not valid JSON"))?,
        ),
        other => other,
    };
    let meta_str = |k: &str| {
        meta.as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let combo = session_obj
        .and_then(|o| o.get("total_combo"))
        .or_else(|| a.value("total_combo"))
        .map(|v| {
            as_u64(v).ok_or_else(|| ApiError::bad("'total_combo' must be a non-negative integer"))
        })
        .transpose()?;
    let sub = ReviewSubmission {
        answers,
        subject: meta_str("subject").map(SubjectId::new).transpose()?,
        topic: meta_str("topic")
            .or_else(|| meta_str("topic_id"))
            .map(TopicId::new)
            .transpose()?,
        claimed_combo: combo.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
    };
    let out = app
        .reviews()
        .submit_review_session(actor(call)?, &sub)
        .await?;
    Ok(json!({
        "status": "success",
        "processed": out.processed,
        "replayed": out.replayed,
        "xp_earned": out.xp_earned,
        "remaining_items": out.remaining_items,
        "new_stability_counts": views::mastery(&out.mastery),
        "persistence_job_id": out.job_id.as_str(),
        "persistence_status": out.job_status.as_str(),
    }))
}

async fn submit_session(app: &Arc<Memora>, call: &Call<'_>) -> R {
    let a = call.args;
    let meta = a.opt_json(&["session_meta"])?.unwrap_or(Value::Null);
    let lesson = meta
        .get("lesson_id")
        .or_else(|| meta.get("lesson"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or(a.opt_str("lesson_id")?)
        .ok_or_else(|| ApiError::bad("Missing lesson_id"))?;
    let results = a
        .opt_json(&["gamification_results"])?
        .unwrap_or(Value::Null);
    let num = |k: &str| -> Result<Option<i64>, ApiError> {
        match results.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_i64(v).map(Some).ok_or_else(|| {
                ApiError::bad(format!("'gamification_results.{k}' must be an integer"))
            }),
        }
    };
    let interactions_raw = a
        .opt_json(&["interactions"])?
        .unwrap_or(Value::Array(vec![]));
    let items = interactions_raw
        .as_array()
        .ok_or_else(|| ApiError::bad("'interactions' must be a list"))?;
    let mut interactions = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let what = format!("interactions[{i}]");
        let o = obj(item, &what)?;
        if o.get("question_id")
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        {
            continue; // the original skipped items without a question id
        }
        interactions.push(Interaction {
            question_id: question(o, &what)?,
            duration_ms: field_u32(o, &["duration_ms", "time_spent_ms"], &what)?,
            attempts: field_u32(o, &["attempts_count", "attempts"], &what)?,
            is_correct: match o.get("is_correct") {
                None | Some(Value::Null) => None,
                Some(v) => Some(as_bool(v).ok_or_else(|| {
                    ApiError::bad(format!("'{what}.is_correct' must be a boolean"))
                })?),
            },
        });
    }
    let sub = LessonSubmission {
        lesson: id(LessonId::new(lesson))?,
        claimed_xp: num("xp_earned")?,
        score: num("score")?,
        interactions,
        raw: json!({"interactions": interactions_raw, "gamification_results": results}),
    };
    let out = app.learning().submit_session(actor(call)?, &sub).await?;
    Ok(json!({
        "status": "success",
        "message": "Session Saved ✅",
        "xp_earned": out.xp_earned,
        "completed": out.completed,
        "persistence_job_id": out.job.as_ref().map(|(j, _)| j.as_str()),
        "persistence_status": out.job.as_ref().map(|(_, s)| s.as_str()),
    }))
}
