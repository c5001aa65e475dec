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
    // Pushed piece by piece (integers through `itoa`): `format!` with a
    // dozen separators cost ~5 000 instructions per answer, 5 % of the
    // server's work per submission (callgrind). Same bytes as before
    // (`the_encoding_is_the_formatted_one`).
    let mut out = String::with_capacity(80);
    out.push('1');
    out.push(sep);
    if let Some(t) = s.last_review {
        push_int(&mut out, micros(t));
    }
    out.push(sep);
    push_int(&mut out, micros(s.due));
    out.push(sep);
    out.push_str(subject.map(|x| x.as_str()).unwrap_or_default());
    out.push(sep);
    out.push_str(topic.map(|x| x.as_str()).unwrap_or_default());
    out.push(sep);
    out.push_str(match s.kind {
        SchedulerKind::Ladder => "l",
        SchedulerKind::Fsrs6 => "f",
    });
    out.push(sep);
    push_int(&mut out, s.phase.code());
    out.push(sep);
    push_int(&mut out, s.step);
    out.push(sep);
    push_float(&mut out, s.stability);
    out.push(sep);
    push_float(&mut out, s.difficulty);
    out.push(sep);
    push_int(&mut out, s.reps);
    out.push(sep);
    push_int(&mut out, s.lapses);
    out.push(sep);
    push_int(&mut out, s.scheduled_days);
    out.push(sep);
    out.push('m');
    if let Some(b) = s.mastery() {
        push_int(&mut out, b.code());
    }
    out
}

/// Appends an integer's decimal form.
pub(crate) fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a float as `Display` writes it (shortest round trip); a whole
/// number below 2^53 (every ladder level and difficulty) is written as the
/// integer it is, which is the same text.
fn push_float(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 && !(x == 0.0 && x.is_sign_negative())
    {
        push_int(out, x as i64);
    } else {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = write!(out, "{x}");
    }
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

    /// The encoding as `format!` wrote it before the encoder pushed its
    /// pieces (the reference the bytes must still match: jobs and cached
    /// values written by either version are read by both).
    fn formatted(
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

    #[test]
    fn the_encoding_is_the_formatted_one() {
        let floats = [
            0.0,
            -0.0,
            1.0,
            4.0,
            0.1 + 0.2,
            7.123456789012345,
            1e-9,
            123456.75,
            -2.5,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e16,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        let subject = SubjectId::new("bench-subj3").unwrap();
        let topic = TopicId::new("t-1").unwrap();
        let base = crate::codec::tests::row(SchedulerKind::Fsrs6, 1.0, 5.0).state;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..2000 {
            let mut s = base.clone();
            s.kind = if i % 2 == 0 {
                SchedulerKind::Ladder
            } else {
                SchedulerKind::Fsrs6
            };
            s.phase = [
                Phase::New,
                Phase::Learning,
                Phase::Review,
                Phase::Relearning,
            ][i % 4];
            s.step = (next() % 300) as u32;
            s.stability = floats[i % floats.len()];
            s.difficulty = if i % 3 == 0 {
                f64::from_bits(next() >> 2)
            } else {
                floats[(i / 3) % floats.len()]
            };
            s.reps = next() as u32;
            s.lapses = (next() % 50) as u32;
            s.scheduled_days = (next() % 40_000) as u32;
            s.last_review = (i % 5 != 0).then(|| {
                s.due - chrono::Duration::microseconds((next() % 1_000_000_000_000) as i64)
            });
            let (sj, tp) = match i % 3 {
                0 => (None, None),
                1 => (Some(&subject), None),
                _ => (Some(&subject), Some(&topic)),
            };
            for sep in [SEP, '}'] {
                assert_eq!(
                    encode_state_with(&s, sj, tp, sep),
                    formatted(&s, sj, tp, sep),
                    "state {s:?}"
                );
            }
        }
    }
}
