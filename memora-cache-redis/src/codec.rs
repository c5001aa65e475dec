//! The wire form of one cached card (the value in a schedule's state hash):
//! binary, 13 bytes of header the Lua scripts read, then a tail only Rust
//! reads. Two forms, one per schedule layout:
//!
//! | bytes | layout 3 (ids, a dictionary per schedule) | layout 5 (numbers, [`Names::Labels`]) |
//! |---|---|---|
//! | 0 | flags | flags |
//! | 1–8 | `last_review` | `last_review` |
//! | 9–12 | subject, topic: `u16` LE indexes into the schedule's dictionary (`0`: none) | subject: `u32` LE label number (`0`: none) |
//! | 13– | tail | topic label number (varint, `0`: none), then the tail |
//!
//! * flags: bits 0–1 mastery bucket (`0` new, `1` learning, `2` mature,
//!   `3` none), bit 2 `last_review` present, bit 3 FSRS (else ladder),
//!   bits 4–5 phase code;
//! * `last_review`: Unix µs as a little-endian `f64` (exact: < 2^53), `0`
//!   when absent;
//! * tail: varints `step`, `reps`, `lapses`, `scheduled_days`; then
//!   `stability` and `difficulty`, each one byte when it is a whole number
//!   0–127 (the ladder's level and its zero difficulty), else `0x80` and
//!   the `f64` LE.
//!
//! The due time is not in the value: it is the card's score in its sorted
//! set, and readers return it beside the value. Layout 3's dictionary
//! indexes are the schedule's own (its marker maps them to subject and
//! topic ids): Rust writes `0` there and the scripts put the schedule's
//! index in. Layout 5's numbers are global ([`crate::Numbering`]): Rust
//! writes the whole value and the scripts only read the subject.
//! A ladder card is 20 bytes (21 in layout 5 without a topic) and an FSRS
//! card 36 (37) while `reps`, `lapses`, `step` and `scheduled_days` stay
//! under 128.

use chrono::{DateTime, Utc};
use memora_core::domain::{MemoryTracker, TrackerKey};
use memora_core::ids::{QuestionId, SeasonId, SubjectId, TopicId, UserId};
use memora_core::srs::{CardState, MasteryBucket, Phase, SchedulerKind};

use crate::error::{Error, Result};

/// Field separator of the text encodings that remain (served-set ledger).
pub(crate) const SEP: char = '\u{1f}';

/// Header bytes the scripts read.
pub(crate) const HEADER: usize = 13;

/// Unix microseconds of a time.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| Error::Decode(format!("time {us}")))
}

/// Inverse of [`micros`].
pub(crate) fn time_from_micros(us: i64) -> Result<DateTime<Utc>> {
    from_micros(us)
}

/// The chunk hash of a question id, computed the same way by the scripts
/// (`hq` in Lua): `h = (h * 31 + byte) mod 2^31 - 1` over its bytes, exact
/// in a Lua double.
pub(crate) fn hq(q: &str) -> u64 {
    q.bytes()
        .fold(0u64, |h, b| (h * 31 + u64::from(b)) % 2_147_483_647)
}

fn varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn float(out: &mut Vec<u8>, x: f64) {
    if (0.0..=127.0).contains(&x) && x.fract() == 0.0 && x.is_sign_positive() {
        out.push(x as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// How a value names its card's subject and topic (`0`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// Layout 3: indexes into the schedule's dictionary.
    Dictionary(u16, u16),
    /// Layout 5: label numbers ([`crate::Numbering`]).
    Labels(u32, u32),
}

/// Encodes a card state naming its subject and topic by `names`.
pub(crate) fn encode_state(s: &CardState, names: Names) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    encode_state_into(&mut out, s, s.mastery(), names);
    out
}

/// [`encode_state`], appended to `out`, with the state's mastery bucket
/// already computed (`s.mastery()`).
pub(crate) fn encode_state_into(
    out: &mut Vec<u8>,
    s: &CardState,
    mastery: Option<MasteryBucket>,
    names: Names,
) {
    let bucket = mastery.map_or(3u8, |b| b.code() as u8);
    let flags = bucket
        | (u8::from(s.last_review.is_some()) << 2)
        | (u8::from(s.kind == SchedulerKind::Fsrs6) << 3)
        | ((s.phase.code() as u8 & 3) << 4);
    out.push(flags);
    let lr = s.last_review.map_or(0.0, |t| micros(t) as f64);
    out.extend_from_slice(&lr.to_le_bytes());
    match names {
        Names::Dictionary(subject, topic) => {
            out.extend_from_slice(&subject.to_le_bytes());
            out.extend_from_slice(&topic.to_le_bytes());
        }
        Names::Labels(subject, topic) => {
            out.extend_from_slice(&subject.to_le_bytes());
            varint(out, topic);
        }
    }
    varint(out, s.step);
    varint(out, s.reps);
    varint(out, s.lapses);
    varint(out, s.scheduled_days);
    float(out, s.stability);
    float(out, s.difficulty);
}

/// Encodes a row's state for layout 3 (the scripts fill in the
/// dictionary indexes).
pub(crate) fn encode(row: &MemoryTracker) -> Vec<u8> {
    encode_state(&row.state, Names::Dictionary(0, 0))
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::Decode(format!("card value: bad {what} at byte {}", self.at))
    }
    fn byte(&mut self, what: &str) -> Result<u8> {
        let b = *self.raw.get(self.at).ok_or_else(|| self.bad(what))?;
        self.at += 1;
        Ok(b)
    }
    fn f64(&mut self, what: &str) -> Result<f64> {
        let bytes: [u8; 8] = self
            .raw
            .get(self.at..self.at + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| self.bad(what))?;
        self.at += 8;
        Ok(f64::from_le_bytes(bytes))
    }
    fn varint(&mut self, what: &str) -> Result<u32> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| self.bad(what));
            }
        }
        Err(self.bad(what))
    }
    fn float(&mut self, what: &str) -> Result<f64> {
        match self.byte(what)? {
            0x80 => self.f64(what),
            b if b < 0x80 => Ok(f64::from(b)),
            _ => Err(self.bad(what)),
        }
    }
}

/// The header fields of a layout-3 value: (subject index, topic index).
#[cfg(test)]
pub(crate) fn dictionary_indexes(raw: &[u8]) -> Result<(u16, u16)> {
    if raw.len() < HEADER {
        return Err(Error::Decode(format!("card value of {} bytes", raw.len())));
    }
    Ok((
        u16::from_le_bytes([raw[9], raw[10]]),
        u16::from_le_bytes([raw[11], raw[12]]),
    ))
}

/// Decodes a value whose score is `due_us`: its state and its subject and
/// topic (indexes or numbers, by `labels`: whether it is layout 5's).
pub(crate) fn decode_state(raw: &[u8], due_us: i64, labels: bool) -> Result<(CardState, Names)> {
    if raw.len() < HEADER {
        return Err(Error::Decode(format!("card value of {} bytes", raw.len())));
    }
    let mut r = Reader { raw, at: 0 };
    let flags = r.byte("flags")?;
    let lr = r.f64("last_review")?;
    let names = if labels {
        let subject = u32::from_le_bytes([raw[9], raw[10], raw[11], raw[12]]);
        r.at = HEADER;
        Names::Labels(subject, r.varint("topic")?)
    } else {
        r.at = HEADER;
        Names::Dictionary(
            u16::from_le_bytes([raw[9], raw[10]]),
            u16::from_le_bytes([raw[11], raw[12]]),
        )
    };
    let step = r.varint("step")?;
    let reps = r.varint("reps")?;
    let lapses = r.varint("lapses")?;
    let scheduled_days = r.varint("scheduled_days")?;
    let stability = r.float("stability")?;
    let difficulty = r.float("difficulty")?;
    if r.at != raw.len() {
        return Err(r.bad("length"));
    }
    let last_review = if flags & 4 != 0 {
        if lr.fract() != 0.0 || !(i64::MIN as f64..i64::MAX as f64).contains(&lr) {
            return Err(Error::Decode(format!("last_review {lr}")));
        }
        Some(from_micros(lr as i64)?)
    } else {
        None
    };
    let state = CardState {
        kind: if flags & 8 != 0 {
            SchedulerKind::Fsrs6
        } else {
            SchedulerKind::Ladder
        },
        phase: Phase::from_code(i16::from((flags >> 4) & 3))
            .ok_or_else(|| Error::Decode(format!("flags {flags}")))?,
        step,
        stability,
        difficulty,
        reps,
        lapses,
        last_review,
        due: from_micros(due_us)?,
        scheduled_days,
    };
    Ok((state, names))
}

/// The row of `key` from its state and the subject and topic named.
pub(crate) fn tracker(
    key: TrackerKey,
    state: CardState,
    subject: Option<&str>,
    topic: Option<&str>,
) -> Result<MemoryTracker> {
    let bad = |e: memora_core::CoreError| Error::Decode(e.to_string());
    Ok(MemoryTracker {
        key,
        subject: subject.map(SubjectId::new).transpose().map_err(bad)?,
        topic: topic.map(TopicId::new).transpose().map_err(bad)?,
        state,
    })
}

/// Decodes a layout-3 value of `(user, season, question)` whose score is
/// `due_us`, with the subject and topic its indexes name.
#[cfg(test)]
pub(crate) fn decode(
    key: TrackerKey,
    raw: &[u8],
    due_us: i64,
    subject: Option<&str>,
    topic: Option<&str>,
) -> Result<MemoryTracker> {
    let (state, _) = decode_state(raw, due_us, false)?;
    tracker(key, state, subject, topic)
}

/// The key of `(user, season, question)`.
pub(crate) fn key(user: &UserId, season: &SeasonId, question: &QuestionId) -> TrackerKey {
    TrackerKey {
        user: user.clone(),
        season: season.clone(),
        question: question.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A card of every field set (also the text codec's test card).
    pub(crate) fn row(kind: SchedulerKind, stability: f64, difficulty: f64) -> MemoryTracker {
        MemoryTracker {
            key: TrackerKey {
                user: UserId::new("u|1").unwrap(),
                season: SeasonId::new("SEASON-2026").unwrap(),
                question: QuestionId::parse("stage:3").unwrap(),
            },
            subject: Some(SubjectId::new("sub|ject").unwrap()),
            topic: None,
            state: CardState {
                kind,
                phase: Phase::Relearning,
                step: 2,
                stability,
                difficulty,
                reps: 300,
                lapses: 1,
                last_review: Some(Utc.timestamp_micros(1_700_000_000_123_456).unwrap()),
                due: Utc.timestamp_micros(1_800_000_000_000_001).unwrap(),
                scheduled_days: 100_000,
            },
        }
    }

    #[test]
    fn round_trips_and_is_small() {
        for (r, len) in [
            // 300 reps and 100 000 days take 2 + 3 varint bytes.
            (row(SchedulerKind::Ladder, 3.0, 0.0), 22),
            (row(SchedulerKind::Fsrs6, 0.1 + 0.2, 7.123456789012345), 38),
            (row(SchedulerKind::Fsrs6, -0.0, 128.0), 38),
            (row(SchedulerKind::Fsrs6, f64::INFINITY, 1e300), 38),
        ] {
            let enc = encode_state(&r.state, Names::Dictionary(7, 0));
            assert_eq!(enc.len(), len, "{r:?}");
            assert_eq!(dictionary_indexes(&enc).unwrap(), (7, 0));
            let back = decode(
                r.key.clone(),
                &enc,
                micros(r.state.due),
                Some("sub|ject"),
                None,
            )
            .unwrap();
            assert_eq!(back, r);
            assert_eq!(
                back.state.stability.to_bits(),
                r.state.stability.to_bits(),
                "-0.0 and 0.0 stay apart"
            );
        }
        let mut none = row(SchedulerKind::Ladder, 0.0, 0.0);
        none.state.last_review = None;
        none.subject = None;
        let enc = encode(&none);
        let back = decode(none.key.clone(), &enc, micros(none.state.due), None, None).unwrap();
        assert_eq!(back, none);
    }

    #[test]
    fn label_numbers_round_trip() {
        for (r, names, len) in [
            // A subject number takes the dictionary's four header bytes,
            // a topic number one varint byte below 128.
            (
                row(SchedulerKind::Ladder, 3.0, 0.0),
                Names::Labels(70_000, 0),
                23,
            ),
            (
                row(SchedulerKind::Fsrs6, 0.1 + 0.2, 7.5),
                Names::Labels(u32::MAX, 300),
                40,
            ),
        ] {
            let enc = encode_state(&r.state, names);
            assert_eq!(enc.len(), len, "{names:?}");
            let (state, back) = decode_state(&enc, micros(r.state.due), true).unwrap();
            assert_eq!((state, back), (r.state.clone(), names));
            // Read as layout 3 it is damaged or other names, never these.
            assert_ne!(
                decode_state(&enc, micros(r.state.due), false).ok(),
                Some((r.state.clone(), names))
            );
        }
    }

    #[test]
    fn rejects_damaged_values() {
        let r = row(SchedulerKind::Fsrs6, 2.5, 5.0);
        let enc = encode(&r);
        for cut in [0, 5, HEADER, enc.len() - 1] {
            assert!(decode(r.key.clone(), &enc[..cut], 0, None, None).is_err());
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(decode(r.key.clone(), &long, 0, None, None).is_err());
    }

    #[test]
    fn chunk_hash_is_stable() {
        // Pinned: the Lua scripts compute the same numbers.
        assert_eq!(hq(""), 0);
        assert_eq!(hq("a"), 97);
        assert_eq!(hq("ab"), 97 * 31 + 98);
        assert_eq!(hq("bench-st00001:2"), 211_427_329);
    }
}
