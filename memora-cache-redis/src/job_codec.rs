//! The write-behind queue's job payload (the `job` field of a stream
//! entry): JSON, versioned, durable — a job enqueued by an earlier version
//! is still decoded, so a rolling upgrade or a replayed dead letter never
//! strands an acknowledged answer.
//!
//! * **Version 2** (written whenever it applies): the job's learner and
//!   season once (`u`, `s`), then per record the question, the tracker
//!   state (the card codec's text, [`card_text`], with subject and topic
//!   and its fields separated by `}`, which no id contains and JSON does
//!   not escape), the log fields, and the
//!   state after the answer (`sa`) only when it differs from the tracker's
//!   — which it never does for a job the core built from an answer. It
//!   applies when every record's tracker and log are keyed by the job's
//!   one (learner, season), i.e. every job the core makes (one
//!   submission, one learner); the payload of 50 answers is less than half
//!   of version 1's and decodes without parsing each state twice.
//! * **Version 1**: every record carries both keys and both states in
//!   full. Still written for a job that mixes learners or seasons (the
//!   port allows it) or has no record, and always decoded.
//!
//! Both start with `{"v":<version>,` as written here; a payload written
//! otherwise (spacing) is recognised by parsing its `v` first.

use std::borrow::Cow;

use memora_core::domain::{MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource, TrackerKey};
use memora_core::ids::{JobId, QuestionId, ReviewId, SeasonId, UserId};
use memora_core::ports::PersistJob;
use memora_core::srs::{CardState, Grade, SchedulerKind};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{card_text, codec};

#[derive(Serialize, Deserialize)]
struct WireJob {
    v: u8,
    id: String,
    r: Vec<WireRecord>,
}

#[derive(Serialize, Deserialize)]
struct WireRecord {
    u: String,
    s: String,
    q: String,
    /// Tracker state (card codec).
    t: String,
    rid: String,
    lu: String,
    ls: String,
    lq: String,
    src: String,
    g: u8,
    ok: bool,
    d: u32,
    a: u32,
    at: i64,
    e: u32,
    sch: String,
    /// State after (card codec).
    sa: String,
}

#[derive(Serialize, Deserialize)]
struct WireJobV2<'a> {
    v: u8,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    u: Cow<'a, str>,
    #[serde(borrow)]
    s: Cow<'a, str>,
    #[serde(borrow)]
    r: Vec<WireRecordV2<'a>>,
}

#[derive(Serialize, Deserialize)]
struct WireRecordV2<'a> {
    #[serde(borrow)]
    q: Cow<'a, str>,
    /// Tracker state with subject and topic (card codec).
    #[serde(borrow)]
    t: Cow<'a, str>,
    #[serde(borrow)]
    rid: Cow<'a, str>,
    #[serde(borrow)]
    src: Cow<'a, str>,
    g: u8,
    ok: bool,
    d: u32,
    a: u32,
    at: i64,
    e: u32,
    #[serde(borrow)]
    sch: Cow<'a, str>,
    /// State after the answer (card codec), absent when it is the
    /// tracker's state.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    sa: Option<Cow<'a, str>>,
}

/// Version 2's separator between a card state's fields: no id contains
/// it, and JSON writes it as one byte (the card codec's U+001F takes six,
/// `\u001f`).
const SEP_V2: char = '}';

fn de<T>(r: std::result::Result<T, memora_core::CoreError>) -> Result<T> {
    r.map_err(|e| Error::Decode(e.to_string()))
}

/// Serializes a job: version 2 when every record belongs to the job's one
/// (learner, season), version 1 otherwise.
pub(crate) fn encode_job(job: &PersistJob) -> Result<String> {
    match one_learner(job) {
        Some(key) => encode_v2(job, key),
        None => encode_v1(job),
    }
}

/// The (learner, season) of every record, tracker and log alike, if there
/// is one and the job has a record.
fn one_learner(job: &PersistJob) -> Option<&TrackerKey> {
    let first = &job.records.first()?.tracker.key;
    let same = |k: &TrackerKey| k.user == first.user && k.season == first.season;
    job.records
        .iter()
        .all(|r| same(&r.tracker.key) && r.log.key == r.tracker.key)
        .then_some(first)
}

fn encode_v2(job: &PersistJob, key: &TrackerKey) -> Result<String> {
    let w = WireJobV2 {
        v: 2,
        id: Cow::Borrowed(job.id.as_str()),
        u: Cow::Borrowed(key.user.as_str()),
        s: Cow::Borrowed(key.season.as_str()),
        r: job
            .records
            .iter()
            .map(|rec| {
                let (t, l) = (&rec.tracker, &rec.log);
                WireRecordV2 {
                    q: Cow::Borrowed(t.key.question.as_str()),
                    t: Cow::Owned(card_text::encode_state_with(
                        &t.state,
                        t.subject.as_ref(),
                        t.topic.as_ref(),
                        SEP_V2,
                    )),
                    rid: Cow::Borrowed(l.review_id.as_str()),
                    src: Cow::Borrowed(l.source.as_str()),
                    g: l.grade.as_u8(),
                    ok: l.is_correct,
                    d: l.duration_ms,
                    a: l.attempts,
                    at: codec::micros(l.reviewed_at),
                    e: l.elapsed_days,
                    sch: Cow::Borrowed(l.scheduler.as_str()),
                    sa: (l.state_after != t.state).then(|| {
                        Cow::Owned(card_text::encode_state_with(
                            &l.state_after,
                            None,
                            None,
                            SEP_V2,
                        ))
                    }),
                }
            })
            .collect(),
    };
    serde_json::to_string(&w).map_err(|e| Error::Decode(e.to_string()))
}

fn encode_v1(job: &PersistJob) -> Result<String> {
    let w = WireJob {
        v: 1,
        id: job.id.as_str().to_owned(),
        r: job
            .records
            .iter()
            .map(|rec| {
                let (t, l) = (&rec.tracker, &rec.log);
                WireRecord {
                    u: t.key.user.as_str().to_owned(),
                    s: t.key.season.as_str().to_owned(),
                    q: t.key.question.as_str().to_owned(),
                    t: card_text::encode(t),
                    rid: l.review_id.as_str().to_owned(),
                    lu: l.key.user.as_str().to_owned(),
                    ls: l.key.season.as_str().to_owned(),
                    lq: l.key.question.as_str().to_owned(),
                    src: l.source.as_str().to_owned(),
                    g: l.grade.as_u8(),
                    ok: l.is_correct,
                    d: l.duration_ms,
                    a: l.attempts,
                    at: codec::micros(l.reviewed_at),
                    e: l.elapsed_days,
                    sch: l.scheduler.as_str().to_owned(),
                    sa: card_text::encode_state(&l.state_after, None, None),
                }
            })
            .collect(),
    };
    serde_json::to_string(&w).map_err(|e| Error::Decode(e.to_string()))
}

/// The payload's encoding version.
fn version(raw: &str) -> Result<u8> {
    for (v, head) in [(2u8, "{\"v\":2,"), (1, "{\"v\":1,")] {
        if raw.starts_with(head) {
            return Ok(v);
        }
    }
    #[derive(Deserialize)]
    struct Version {
        v: u8,
    }
    serde_json::from_str::<Version>(raw)
        .map(|x| x.v)
        .map_err(|e| Error::Decode(e.to_string()))
}

/// Parses [`encode_job`]'s output, of either version.
pub(crate) fn decode_job(raw: &str) -> Result<PersistJob> {
    match version(raw)? {
        2 => decode_v2(raw),
        1 => decode_v1(raw),
        v => Err(Error::Decode(format!("job encoding version {v}"))),
    }
}

fn source(s: &str) -> Result<ReviewSource> {
    match s {
        "review" => Ok(ReviewSource::Review),
        "lesson" => Ok(ReviewSource::Lesson),
        s => Err(Error::Decode(format!("review source {s:?}"))),
    }
}

fn grade(g: u8) -> Result<Grade> {
    Grade::from_u8(g).ok_or_else(|| Error::Decode(format!("grade {g}")))
}

/// The log fields both versions' records carry under the same names.
struct LogFields<'a> {
    rid: &'a str,
    src: &'a str,
    g: u8,
    ok: bool,
    d: u32,
    a: u32,
    at: i64,
    e: u32,
    sch: &'a str,
}

/// [`LogFields`] of a record of either version.
macro_rules! log_fields {
    ($r:expr) => {
        LogFields {
            rid: &$r.rid,
            src: &$r.src,
            g: $r.g,
            ok: $r.ok,
            d: $r.d,
            a: $r.a,
            at: $r.at,
            e: $r.e,
            sch: &$r.sch,
        }
    };
}

fn log_entry(f: LogFields<'_>, key: TrackerKey, state_after: CardState) -> Result<ReviewLogEntry> {
    Ok(ReviewLogEntry {
        review_id: de(ReviewId::new(f.rid))?,
        key,
        source: source(f.src)?,
        grade: grade(f.g)?,
        is_correct: f.ok,
        duration_ms: f.d,
        attempts: f.a,
        reviewed_at: codec::time_from_micros(f.at)?,
        elapsed_days: f.e,
        scheduler: de(SchedulerKind::parse(f.sch))?,
        state_after,
    })
}

fn decode_v2(raw: &str) -> Result<PersistJob> {
    let w: WireJobV2<'_> = serde_json::from_str(raw).map_err(|e| Error::Decode(e.to_string()))?;
    let user = de(UserId::new(&w.u))?;
    let season = de(SeasonId::new(&w.s))?;
    let mut records = Vec::with_capacity(w.r.len());
    for r in w.r {
        let question = de(QuestionId::parse(&r.q))?;
        let (state, subject, topic) = card_text::decode_state_with(&r.t, SEP_V2)?;
        let tracker = MemoryTracker {
            key: TrackerKey {
                user: user.clone(),
                season: season.clone(),
                question,
            },
            subject,
            topic,
            state,
        };
        let state_after = match &r.sa {
            Some(sa) => card_text::decode_state_with(sa, SEP_V2)?.0,
            None => tracker.state.clone(),
        };
        let log = log_entry(log_fields!(r), tracker.key.clone(), state_after)?;
        records.push(ReviewRecord { tracker, log });
    }
    Ok(PersistJob {
        id: de(JobId::new(&w.id))?,
        records,
    })
}

fn decode_v1(raw: &str) -> Result<PersistJob> {
    let w: WireJob = serde_json::from_str(raw).map_err(|e| Error::Decode(e.to_string()))?;
    let mut records = Vec::with_capacity(w.r.len());
    for r in w.r {
        let user = de(UserId::new(&r.u))?;
        let season = de(SeasonId::new(&r.s))?;
        let question = de(QuestionId::parse(&r.q))?;
        let tracker = card_text::decode(&user, &season, &question, &r.t)?;
        let (state_after, _, _) = card_text::decode_state(&r.sa)?;
        let key = TrackerKey {
            user: de(UserId::new(&r.lu))?,
            season: de(SeasonId::new(&r.ls))?,
            question: de(QuestionId::parse(&r.lq))?,
        };
        let log = log_entry(log_fields!(r), key, state_after)?;
        records.push(ReviewRecord { tracker, log });
    }
    Ok(PersistJob {
        id: de(JobId::new(&w.id))?,
        records,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use memora_core::ids::TopicId;
    use memora_core::srs::Phase;

    use super::*;

    /// Answer `i` of learner `user`: a tracker and its log entry, as the
    /// core builds them (the log's state after is the tracker's state).
    fn record(user: &str, season: &str, i: u32) -> ReviewRecord {
        let mut tracker: MemoryTracker = codec::tests::row(SchedulerKind::Fsrs6, 3.25, 5.5);
        tracker.key.user = UserId::new(user).unwrap();
        tracker.key.season = SeasonId::new(season).unwrap();
        tracker.key.question = QuestionId::parse(format!("stage-{i:05}:{}", i % 3)).unwrap();
        tracker.topic = (i % 2 == 0).then(|| TopicId::new("topic-7").unwrap());
        tracker.state.stability = 0.1 + f64::from(i) / 7.0;
        tracker.state.phase = Phase::Review;
        let log = ReviewLogEntry {
            review_id: ReviewId::new(format!("rev-{user}-{i:04}")).unwrap(),
            key: tracker.key.clone(),
            source: if i % 5 == 0 {
                ReviewSource::Lesson
            } else {
                ReviewSource::Review
            },
            grade: Grade::from_u8(1 + (i % 4) as u8).unwrap(),
            is_correct: i % 3 != 0,
            duration_ms: 1_000 + i,
            attempts: 1 + i % 2,
            reviewed_at: Utc
                .timestamp_micros(1_800_000_000_000_000 + i64::from(i))
                .unwrap(),
            elapsed_days: i,
            scheduler: SchedulerKind::Fsrs6,
            state_after: tracker.state.clone(),
        };
        ReviewRecord { tracker, log }
    }

    fn job(records: Vec<ReviewRecord>) -> PersistJob {
        PersistJob {
            id: JobId::new("job-0123456789").unwrap(),
            records,
        }
    }

    fn submission(n: u32) -> PersistJob {
        job((0..n)
            .map(|i| record("u|learner-42", "SEASON-2026", i))
            .collect())
    }

    #[test]
    fn a_submission_is_written_as_version_2_and_read_back() {
        let j = submission(50);
        let raw = encode_job(&j).unwrap();
        assert!(raw.starts_with("{\"v\":2,"), "{}", &raw[..40]);
        assert_eq!(decode_job(&raw).unwrap(), j);
        // The learner and season are written once, no record repeats its
        // state.
        assert_eq!(
            raw.matches("u|learner-42").count(),
            1 + 50,
            "the job's user and the review ids"
        );
        assert!(!raw.contains("\"sa\""));
    }

    #[test]
    fn version_2_is_less_than_half_of_version_1() {
        let j = submission(50);
        let (v2, v1) = (encode_job(&j).unwrap(), encode_v1(&j).unwrap());
        assert!(v1.starts_with("{\"v\":1,"));
        assert!(
            v2.len() * 2 < v1.len(),
            "version 2 {} bytes, version 1 {}",
            v2.len(),
            v1.len()
        );
    }

    #[test]
    fn version_1_payloads_still_decode() {
        let j = submission(7);
        assert_eq!(decode_job(&encode_v1(&j).unwrap()).unwrap(), j);
        // Written with other spacing: the version is parsed, not guessed.
        let spaced = encode_v1(&j)
            .unwrap()
            .replacen("{\"v\":1,", "{ \"v\" : 1 ,", 1);
        assert_eq!(decode_job(&spaced).unwrap(), j);
        let spaced2 = encode_job(&j)
            .unwrap()
            .replacen("{\"v\":2,", "{\"v\": 2,", 1);
        assert_eq!(decode_job(&spaced2).unwrap(), j);
    }

    #[test]
    fn a_state_after_unlike_the_tracker_is_kept() {
        let mut j = submission(3);
        j.records[1].log.state_after.reps += 1;
        j.records[1].log.state_after.due = Utc.timestamp_micros(1_900_000_000_000_000).unwrap();
        let raw = encode_job(&j).unwrap();
        assert!(raw.starts_with("{\"v\":2,"));
        assert_eq!(raw.matches("\"sa\"").count(), 1);
        assert_eq!(decode_job(&raw).unwrap(), j);
    }

    #[test]
    fn jobs_of_several_learners_or_keys_are_written_as_version_1() {
        let mut two_learners = submission(3);
        two_learners.records[2] = record("u|someone-else", "SEASON-2026", 2);
        let mut two_seasons = submission(3);
        two_seasons.records[0] = record("u|learner-42", "SEASON-2027", 0);
        let mut log_elsewhere = submission(3);
        log_elsewhere.records[1].log.key.question = QuestionId::parse("stage-99999:1").unwrap();
        for j in [two_learners, two_seasons, log_elsewhere, job(Vec::new())] {
            let raw = encode_job(&j).unwrap();
            assert!(
                raw.starts_with("{\"v\":1,"),
                "{}",
                &raw[..raw.len().min(40)]
            );
            assert_eq!(decode_job(&raw).unwrap(), j);
        }
    }

    #[test]
    fn bad_payloads_are_refused() {
        let good = encode_job(&submission(2)).unwrap();
        for bad in [
            "".to_owned(),
            "{\"v\":3,\"id\":\"j\",\"r\":[]}".to_owned(),
            "{\"id\":\"j\",\"r\":[]}".to_owned(),
            good.replacen("\"src\":\"review\"", "\"src\":\"exam\"", 1),
            good.replacen("\"g\":", "\"g\":9", 1),
            good.replacen("\"u\":\"u|learner-42\"", "\"u\":\"\"", 1),
            good[..good.len() / 2].to_owned(),
        ] {
            assert!(decode_job(&bad).is_err(), "accepted {bad:?}");
        }
    }
}
