//! The text form of one card in the write-behind queue's job payloads
//! (durable: a job enqueued by an earlier version is still decoded), and
//! of the cached card in schedule layout version 1.
//!
//! Version 1, fields separated by U+001F (ids cannot contain control
//! characters, so no escaping is needed):
//!
//! `1␟last_review_µs␟due_µs␟subject␟topic␟kind␟phase␟step␟stability␟difficulty␟reps␟lapses␟scheduled_days␟m<bucket>`
//!
//! The last field is the card's mastery bucket as the core defines it
//! (`m0` new, `m1` learning, `m2` mature, `m` none): the scripts keep a
//! schedule's mastery counts from it without knowing the rule. Values
//! written before it existed (13 fields) still decode; the scripts treat
//! their bucket as unknown.
//!
//! `last_review`, `due` and `subject` come first and at fixed positions so
//! the Lua scripts can read them with one pattern match (newer-wins and
//! subject-set maintenance). Empty text means `None`. Times are Unix
//! microseconds — exact for PostgreSQL timestamps and still exactly
//! representable as a Lua/Redis double (< 2^53). Floats use Rust's shortest
//! round-trip formatting, so decode(encode(x)) == x.

use memora_core::domain::{MemoryTracker, TrackerKey};
use memora_core::ids::{QuestionId, SeasonId, SubjectId, TopicId, UserId};
use memora_core::srs::{CardState, Phase, SchedulerKind};

use crate::error::{Error, Result};

use crate::codec::{SEP, micros, time_from_micros as from_micros};

/// Encodes the state part of a row.
pub(crate) fn encode(row: &MemoryTracker) -> String {
    encode_state(&row.state, row.subject.as_ref(), row.topic.as_ref())
}

/// Encodes a card state with its subject and topic.
pub(crate) fn encode_state(
    s: &CardState,
    subject: Option<&SubjectId>,
    topic: Option<&TopicId>,
) -> String {
    encode_state_with(s, subject, topic, SEP)
}

/// [`encode_state`] with another field separator (`sep` must be a
/// character no id contains: a control character, `{` or `}`).
pub(crate) fn encode_state_with(
    s: &CardState,
    subject: Option<&SubjectId>,
    topic: Option<&TopicId>,
    sep: char,
) -> String {
    let kind = match s.kind {
        SchedulerKind::Ladder => "l",
        SchedulerKind::Fsrs6 => "f",
    };
    let lr = s
        .last_review
        .map(|t| micros(t).to_string())
        .unwrap_or_default();
    let bucket = s
        .mastery()
        .map(|b| b.code().to_string())
        .unwrap_or_default();
    format!(
        "1{sep}{lr}{sep}{}{sep}{}{sep}{}{sep}{kind}{sep}{}{sep}{}{sep}{}{sep}{}{sep}{}{sep}{}{sep}{}{sep}m{bucket}",
        micros(s.due),
        subject.map(|x| x.as_str()).unwrap_or_default(),
        topic.map(|x| x.as_str()).unwrap_or_default(),
        s.phase.code(),
        s.step,
        s.stability,
        s.difficulty,
        s.reps,
        s.lapses,
        s.scheduled_days,
    )
}

fn num<T: std::str::FromStr>(f: &str, what: &str) -> Result<T> {
    f.parse()
        .map_err(|_| Error::Decode(format!("bad {what}: {f:?}")))
}

/// Decodes a cached value back into the row of `(user, season, question)`.
pub(crate) fn decode(
    user: &UserId,
    season: &SeasonId,
    question: &QuestionId,
    raw: &str,
) -> Result<MemoryTracker> {
    let (state, subject, topic) = decode_state(raw)?;
    Ok(MemoryTracker {
        key: TrackerKey {
            user: user.clone(),
            season: season.clone(),
            question: question.clone(),
        },
        subject,
        topic,
        state,
    })
}

/// Decodes [`encode_state`]'s output.
pub(crate) fn decode_state(raw: &str) -> Result<(CardState, Option<SubjectId>, Option<TopicId>)> {
    decode_state_with(raw, SEP)
}

/// Decodes [`encode_state_with`]'s output of the same separator.
pub(crate) fn decode_state_with(
    raw: &str,
    sep: char,
) -> Result<(CardState, Option<SubjectId>, Option<TopicId>)> {
    let f: Vec<&str> = raw.split(sep).collect();
    let tail_ok = match f.len() {
        13 => true,
        14 => f[13].starts_with('m'),
        _ => false,
    };
    if !tail_ok || f[0] != "1" {
        return Err(Error::Decode(format!("unknown card encoding {raw:?}")));
    }
    let bad = |e: memora_core::CoreError| Error::Decode(e.to_string());
    let last_review = if f[1].is_empty() {
        None
    } else {
        Some(from_micros(num(f[1], "last_review")?)?)
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let state = CardState {
        kind: match f[5] {
            "l" => SchedulerKind::Ladder,
            "f" => SchedulerKind::Fsrs6,
            k => return Err(Error::Decode(format!("scheduler {k:?}"))),
        },
        phase: Phase::from_code(num(f[6], "phase")?)
            .ok_or_else(|| Error::Decode(format!("phase {:?}", f[6])))?,
        step: num(f[7], "step")?,
        stability: num(f[8], "stability")?,
        difficulty: num(f[9], "difficulty")?,
        reps: num(f[10], "reps")?,
        lapses: num(f[11], "lapses")?,
        last_review,
        due: from_micros(num(f[2], "due")?)?,
        scheduled_days: num(f[12], "scheduled_days")?,
    };
    Ok((
        state,
        opt(f[3]).map(SubjectId::new).transpose().map_err(bad)?,
        opt(f[4]).map(TopicId::new).transpose().map_err(bad)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let row = crate::codec::tests::row(SchedulerKind::Fsrs6, 0.1 + 0.2, 7.123456789012345);
        let enc = encode(&row);
        let back = decode(&row.key.user, &row.key.season, &row.key.question, &enc).unwrap();
        assert_eq!(back, row);
        assert!(
            decode(
                &row.key.user,
                &row.key.season,
                &row.key.question,
                "2\u{1f}x"
            )
            .is_err()
        );
    }
}
