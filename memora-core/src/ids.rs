//! Typed identifiers. Every id is a validated, non-empty, trimmed string of
//! bounded length without control characters, so a `UserId` can never be
//! passed where a `LessonId` is expected and no id can smuggle separators into
//! cache keys. Question ids have structure (`<stage>` or `<stage>:<n>`) and
//! get their own type.
//!
//! Ids are immutable, so each holds its text as an `Arc<str>`: a clone (and
//! the core clones ids freely — into records, keys, jobs and replies) is a
//! reference-count increment, not an allocation and a copy. Submitting 50
//! answers clones a few hundred ids; as `String`s those clones were the
//! largest single share of the server's allocations (docs/PERFORMANCE.md).

use std::fmt;
use std::sync::Arc;

use crate::error::CoreError;

/// Longest id accepted anywhere (Frappe names are VARCHAR(140)).
pub const MAX_ID_LEN: usize = 140;

fn validate_id<'a>(kind: &str, raw: &'a str) -> Result<&'a str, CoreError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(CoreError::invalid(format!("{kind} must not be empty")));
    }
    if s.len() > MAX_ID_LEN {
        return Err(CoreError::invalid(format!(
            "{kind} is longer than {MAX_ID_LEN} characters"
        )));
    }
    if has_forbidden_char(s) {
        return Err(CoreError::invalid(format!(
            "{kind} contains a forbidden character"
        )));
    }
    Ok(s)
}

/// Whether `s` holds a control character (Unicode `Cc`: U+0000–U+001F,
/// U+007F–U+009F) or a brace. Byte by byte: in UTF-8 the ASCII ones are
/// single bytes and U+0080–U+009F are `C2 80`–`C2 9F`, and no other
/// character's encoding contains those sequences.
fn has_forbidden_char(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c < 0x20
            || c == 0x7f
            || c == b'{'
            || c == b'}'
            || (c == 0xc2 && b.get(i + 1).is_some_and(|&n| (0x80..=0x9f).contains(&n)))
    })
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps a raw id.
            pub fn new(raw: impl AsRef<str>) -> Result<Self, CoreError> {
                validate_id($kind, raw.as_ref()).map(|s| Self(Arc::from(s)))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The text as an owned `String` (a copy).
            pub fn into_string(self) -> String {
                self.0.as_ref().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by the id can be searched by its text (hash, order
        /// and equality are the text's).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A user (login identity, usually an e-mail address).
    UserId, "user"
);
impl UserId {
    /// The reserved id of the system caller
    /// ([`Actor::system`](crate::domain::Actor::system)):
    /// [`SYSTEM_USER_ID`](crate::domain::SYSTEM_USER_ID).
    pub fn system() -> Self {
        UserId(Arc::from(crate::domain::SYSTEM_USER_ID))
    }
    /// Whether this is the reserved id of the system caller.
    pub fn is_system(&self) -> bool {
        &*self.0 == crate::domain::SYSTEM_USER_ID
    }
}

string_id!(
    /// A subject (e.g. "History of Jordan").
    SubjectId, "subject"
);
string_id!(
    /// A learning track inside a subject.
    TrackId, "track"
);
string_id!(
    /// A unit inside a track.
    UnitId, "unit"
);
string_id!(
    /// A topic inside a topic-based unit.
    TopicId, "topic"
);
string_id!(
    /// A lesson.
    LessonId, "lesson"
);
string_id!(
    /// A stage (one row of a lesson's stages).
    StageId, "stage"
);
string_id!(
    /// An academic grade.
    GradeId, "grade"
);
string_id!(
    /// An academic stream.
    StreamId, "stream"
);
string_id!(
    /// An academic plan.
    PlanId, "plan"
);
string_id!(
    /// A store sales item (bundle).
    SalesItemId, "sales item"
);
string_id!(
    /// A purchase request.
    PurchaseRequestId, "purchase request"
);
string_id!(
    /// A player subscription.
    SubscriptionId, "subscription"
);
string_id!(
    /// A review-log entry's idempotency key. Clients may supply one per
    /// answer; otherwise the server derives one.
    ReviewId, "review id"
);
string_id!(
    /// A persistence job (one acknowledged batch of answers).
    JobId, "job id"
);
string_id!(
    /// A gameplay session.
    SessionId, "session id"
);

/// A season (academic year), e.g. `SEASON-2026` or `SEASON-2026-TAWJIHI`.
/// The pattern is enforced because the name becomes a partition value and a
/// cache-key segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeasonId(Arc<str>);

impl SeasonId {
    /// Validates `^SEASON-\d{4}(-[A-Z0-9_]+)?$`.
    pub fn new(raw: impl AsRef<str>) -> Result<Self, CoreError> {
        let s = raw.as_ref().trim();
        let bad = || {
            CoreError::invalid(format!(
                "season name '{s}' must look like SEASON-2026 or SEASON-2026-TAWJIHI"
            ))
        };
        let rest = s.strip_prefix("SEASON-").ok_or_else(bad)?;
        let (year, suffix) = match rest.split_once('-') {
            Some((y, suf)) => (y, Some(suf)),
            None => (rest, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if let Some(suf) = suffix {
            if suf.is_empty()
                || suf.len() > 40
                || !suf
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad());
            }
        }
        Ok(Self(Arc::from(s)))
    }
    /// The season name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for SeasonId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SeasonId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SeasonId::new(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SeasonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of one reviewable item: a whole stage (`<stage>`) or one element
/// of a stage (`<stage>:<n>`, the n-th Reveal highlight or Matching pair,
/// 0-based). Parsing splits at the last `:`; a suffix that is not a number
/// makes the whole text the stage id (as the original did).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuestionId {
    raw: Arc<str>,
    stage_len: usize,
    index: Option<u32>,
}

impl QuestionId {
    /// Parses and validates a question id.
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, CoreError> {
        let s = validate_id("question_id", raw.as_ref())?;
        let (stage_len, index) = match s.rsplit_once(':') {
            Some((stage, idx)) if !stage.is_empty() => match idx.parse::<u32>() {
                Ok(n) if !idx.starts_with('+') => (stage.len(), Some(n)),
                _ => (s.len(), None),
            },
            _ => (s.len(), None),
        };
        Ok(Self {
            raw: Arc::from(s),
            stage_len,
            index,
        })
    }
    /// Builds `<stage>:<index>` (or `<stage>`).
    pub fn of(stage: &StageId, index: Option<u32>) -> Self {
        let raw: Arc<str> = match index {
            Some(i) => Arc::from(format!("{}:{i}", stage.as_str())),
            None => Arc::clone(&stage.0),
        };
        Self {
            stage_len: stage.as_str().len(),
            raw,
            index,
        }
    }
    /// The stage part.
    pub fn stage_str(&self) -> &str {
        &self.raw[..self.stage_len]
    }
    /// The element index, if any.
    pub fn index(&self) -> Option<u32> {
        self.index
    }
    /// The full id text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A subject or a topic: what a cached card is filed under, numbered by
/// [`CatalogNumbers`](crate::ports::CatalogNumbers) in a number space of
/// its own (subjects and topics share it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// A subject.
    Subject(SubjectId),
    /// A topic.
    Topic(TopicId),
}

impl Label {
    /// The label as one string: `s:<subject>` or `t:<topic>` (what the
    /// stores keep).
    pub fn key(&self) -> String {
        match self {
            Label::Subject(s) => format!("s:{s}"),
            Label::Topic(t) => format!("t:{t}"),
        }
    }

    /// Inverse of [`Label::key`].
    pub fn from_key(key: &str) -> Result<Self, CoreError> {
        match key.split_at_checked(2) {
            Some(("s:", id)) => SubjectId::new(id).map(Label::Subject),
            Some(("t:", id)) => TopicId::new(id).map(Label::Topic),
            _ => Err(CoreError::invalid(format!("label {key:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_through_their_keys() {
        for l in [
            Label::Subject(SubjectId::new("math").unwrap()),
            Label::Topic(TopicId::new("s:x").unwrap()),
        ] {
            assert_eq!(Label::from_key(&l.key()).unwrap(), l);
        }
        assert_eq!(
            Label::Subject(SubjectId::new("a").unwrap()).key(),
            "s:a",
            "subjects and topics never share a key"
        );
        for bad in ["", "s", "s:", "x:a", "t: "] {
            assert!(Label::from_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_byte_scan_agrees_with_the_character_classes() {
        let reference = |s: &str| s.chars().any(|c| c.is_control() || c == '{' || c == '}');
        let mut samples: Vec<String> = vec![
            "plain".into(),
            "é à ü".into(),
            "\u{85}".into(),
            "\u{9f}x".into(),
            "\u{a0}".into(),
            "\u{7f}".into(),
            "\u{80}".into(),
            "\u{100}".into(),
            "日本\u{1f}".into(),
            "{".into(),
            "a}".into(),
            "\u{2028}".into(),
        ];
        for c in (0u32..0x800).chain([0xfeff, 0x1_f600]) {
            if let Some(ch) = char::from_u32(c) {
                samples.push(format!("a{ch}b"));
            }
        }
        for s in &samples {
            assert_eq!(has_forbidden_char(s), reference(s), "{s:?}");
        }
    }

    #[test]
    fn ids_reject_empty_and_control_characters() {
        assert!(UserId::new("  ").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("a{b}").is_err());
        assert!(UserId::new("x".repeat(141)).is_err());
        assert_eq!(UserId::new(" s@x.io ").unwrap().as_str(), "s@x.io");
    }

    #[test]
    fn season_names_follow_the_pattern() {
        assert!(SeasonId::new("SEASON-2026").is_ok());
        assert!(SeasonId::new("SEASON-2026-TAWJIHI").is_ok());
        assert!(SeasonId::new("SEASON-2026-A_1").is_ok());
        for bad in [
            "2026",
            "SEASON-26",
            "SEASON-2026-",
            "SEASON-2026-low",
            "season-2026",
            "SEASON-20x6",
        ] {
            assert!(SeasonId::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn question_ids_split_at_the_last_colon() {
        let q = QuestionId::parse("st-1:3").unwrap();
        assert_eq!(q.stage_str(), "st-1");
        assert_eq!(q.index(), Some(3));
        let q = QuestionId::parse("a:b:2").unwrap();
        assert_eq!(q.stage_str(), "a:b");
        assert_eq!(q.index(), Some(2));
        let q = QuestionId::parse("st-1:x").unwrap();
        assert_eq!(q.stage_str(), "st-1:x");
        assert_eq!(q.index(), None);
        let q = QuestionId::parse("st-9").unwrap();
        assert_eq!(q.stage_str(), "st-9");
        assert_eq!(q.index(), None);
        assert!(QuestionId::parse("").is_err());
        let built = QuestionId::of(&StageId::new("s").unwrap(), Some(0));
        assert_eq!(built, QuestionId::parse("s:0").unwrap());
    }
}
