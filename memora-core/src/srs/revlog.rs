//! Review logs: CSV parsing and conversion into FSRS training items.
//!
//! The CSV format is the one of the py-fsrs review-log exports
//! (`card_id,review_rating,review_time,review_duration`, RFC 3339 times, durations in
//! milliseconds). [`parse_revlog_csv`] turns such a file into [`RevlogEntry`] values and reports
//! malformed input with 1-based line numbers ([`RevlogError`]).
//!
//! [`build_items`] converts entries into [`FsrsItem`]s the way fsrs-rs does: per card, reviews
//! sorted by time; a review's *day* is the UTC date after shifting the timestamp by the learner's
//! UTC offset and subtracting the day-rollover hour; every review after the card's first one that
//! falls on a later day than the previous review yields one item whose history is every earlier
//! review of the card (same-day ones included) as `(rating, delta_days)` pairs.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The header line every review-log CSV must start with.
pub const CSV_HEADER: &str = "card_id,review_rating,review_time,review_duration";

/// Seconds in a day.
const SECS_PER_DAY: i64 = 86_400;

/// One logged review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevlogEntry {
    /// Card identifier (any integer; Anki uses the card creation time in ms).
    pub card_id: i64,
    /// Grade 1 (Again) … 4 (Easy).
    pub rating: u8,
    /// When the review happened.
    pub time: DateTime<Utc>,
    /// How long the answer took, in milliseconds.
    pub duration_ms: u32,
}

/// Why a review-log CSV was rejected. Line numbers are 1-based and count the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevlogError {
    /// The input has no header line.
    #[error("line 1: empty input, expected the header `{CSV_HEADER}`")]
    Empty,
    /// The first line is not the expected header.
    #[error("line 1: unexpected header `{found}`, expected `{CSV_HEADER}`")]
    BadHeader {
        /// The header that was found.
        found: String,
    },
    /// A data line does not have exactly four comma-separated fields.
    #[error("line {line}: expected 4 fields, found {found}")]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Number of fields on the line.
        found: usize,
    },
    /// The card id is not an integer.
    #[error("line {line}: invalid card_id `{value}`")]
    CardId {
        /// 1-based line number.
        line: usize,
        /// The offending field.
        value: String,
    },
    /// The rating is not one of 1, 2, 3, 4.
    #[error("line {line}: invalid review_rating `{value}` (expected 1, 2, 3 or 4)")]
    Rating {
        /// 1-based line number.
        line: usize,
        /// The offending field.
        value: String,
    },
    /// The review time is not an RFC 3339 timestamp.
    #[error("line {line}: invalid review_time `{value}`: {reason}")]
    Time {
        /// 1-based line number.
        line: usize,
        /// The offending field.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// The duration is not a non-negative integer number of milliseconds that fits in `u32`.
    #[error("line {line}: invalid review_duration `{value}`")]
    Duration {
        /// 1-based line number.
        line: usize,
        /// The offending field.
        value: String,
    },
}

/// Parses a review-log CSV (header [`CSV_HEADER`], one review per line).
///
/// Leading/trailing whitespace around fields, `\r\n` line endings, a UTF-8 byte-order mark and
/// blank lines are accepted; anything else malformed is an error naming its line.
pub fn parse_revlog_csv(input: &str) -> Result<Vec<RevlogEntry>, RevlogError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut lines = input.lines().enumerate();
    let header = loop {
        match lines.next() {
            None => return Err(RevlogError::Empty),
            Some((_, l)) if l.trim().is_empty() => {}
            Some((_, l)) => break l.trim(),
        }
    };
    let header_ok = header.split(',').map(str::trim).eq(CSV_HEADER.split(','));
    if !header_ok {
        return Err(RevlogError::BadHeader {
            found: header.to_owned(),
        });
    }
    let mut out = Vec::new();
    for (idx, raw) in lines {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        out.push(parse_line(raw, line)?);
    }
    Ok(out)
}

/// Parses one data line.
fn parse_line(raw: &str, line: usize) -> Result<RevlogEntry, RevlogError> {
    let mut fields = [""; 4];
    let mut count = 0usize;
    for f in raw.split(',') {
        if let Some(slot) = fields.get_mut(count) {
            *slot = f.trim();
        }
        count += 1;
    }
    if count != 4 {
        return Err(RevlogError::FieldCount { line, found: count });
    }
    let [id, rating, time, duration] = fields;
    let card_id = id.parse::<i64>().map_err(|_| RevlogError::CardId {
        line,
        value: id.to_owned(),
    })?;
    let rating = match rating.parse::<u8>() {
        Ok(g @ 1..=4) => g,
        _ => {
            return Err(RevlogError::Rating {
                line,
                value: rating.to_owned(),
            });
        }
    };
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|e| RevlogError::Time {
            line,
            value: time.to_owned(),
            reason: e.to_string(),
        })?
        .with_timezone(&Utc);
    let duration_ms = duration.parse::<u32>().map_err(|_| RevlogError::Duration {
        line,
        value: duration.to_owned(),
    })?;
    Ok(RevlogEntry {
        card_id,
        rating,
        time,
        duration_ms,
    })
}

/// One review inside an [`FsrsItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemReview {
    /// Grade 1 (Again) … 4 (Easy).
    pub rating: u8,
    /// Whole learner-local days since the card's previous review (0 for the first review and
    /// for same-day reviews).
    pub delta_t: u32,
}

/// One FSRS training/evaluation item: a card's review history up to and including the review
/// to predict.
///
/// [`FsrsItem::reviews`] holds every review of the card up to the predicted one, oldest first;
/// the last entry is the review to predict (its `delta_t` is the elapsed days, always ≥ 1 for
/// items built by [`build_items`]; its rating gives the label `recalled = rating > 1`), the
/// earlier ones are the history (the first has `delta_t = 0`).
///
/// The items of one card are prefixes of the card's review sequence, so they share it: an item
/// is the shared sequence plus a length. A card with `n` reviews costs `O(n)` memory for all of
/// its items (a copy per item would cost `O(n²)`), and consumers can walk a card's items in
/// order carrying the memory state along ([`FsrsItem::shares_reviews_with`]).
#[derive(Clone)]
pub struct FsrsItem {
    /// Card the item belongs to.
    pub card_id: i64,
    /// Time of the predicted (last) review; items are ordered by it for time-series splits.
    pub time: DateTime<Utc>,
    /// The card's review sequence (shared by the card's items).
    sequence: Arc<[ItemReview]>,
    /// How many reviews of `sequence` this item spans.
    len: usize,
}

impl PartialEq for FsrsItem {
    fn eq(&self, other: &Self) -> bool {
        self.card_id == other.card_id
            && self.time == other.time
            && self.reviews() == other.reviews()
    }
}

impl Eq for FsrsItem {}

impl fmt::Debug for FsrsItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsrsItem")
            .field("card_id", &self.card_id)
            .field("time", &self.time)
            .field("reviews", &self.reviews())
            .finish()
    }
}

impl FsrsItem {
    /// An item with its own review list (history plus the review to predict, oldest first).
    pub fn new(card_id: i64, time: DateTime<Utc>, reviews: Vec<ItemReview>) -> FsrsItem {
        let len = reviews.len();
        FsrsItem {
            card_id,
            time,
            sequence: reviews.into(),
            len,
        }
    }

    /// An item made of the first `len` reviews of a shared sequence (clamped to its length).
    pub fn prefix(
        card_id: i64,
        time: DateTime<Utc>,
        sequence: Arc<[ItemReview]>,
        len: usize,
    ) -> FsrsItem {
        let len = len.min(sequence.len());
        FsrsItem {
            card_id,
            time,
            sequence,
            len,
        }
    }

    /// History plus the review to predict, oldest first.
    pub fn reviews(&self) -> &[ItemReview] {
        &self.sequence[..self.len]
    }

    /// Whether both items are prefixes of one shared review sequence (the items [`build_items`]
    /// made for one card): the shorter one's reviews are then the start of the longer one's.
    pub fn shares_reviews_with(&self, other: &FsrsItem) -> bool {
        Arc::ptr_eq(&self.sequence, &other.sequence)
    }

    /// The whole shared sequence this item is a prefix of.
    pub(crate) fn sequence(&self) -> &[ItemReview] {
        &self.sequence
    }

    /// An identity of the shared sequence (equal for items that share it).
    pub(crate) fn sequence_key(&self) -> usize {
        Arc::as_ptr(&self.sequence).cast::<ItemReview>() as usize
    }

    /// The review to predict (`None` for an empty item).
    pub fn target(&self) -> Option<ItemReview> {
        self.reviews().last().copied()
    }

    /// The reviews before the predicted one.
    pub fn history(&self) -> &[ItemReview] {
        match self.reviews().split_last() {
            Some((_, h)) => h,
            None => &[],
        }
    }

    /// Whether the predicted review was a recall (`rating > 1`).
    pub fn recalled(&self) -> bool {
        self.target().is_some_and(|r| r.rating > 1)
    }

    /// Elapsed days before the predicted review (0 for an empty item).
    pub fn elapsed_days(&self) -> u32 {
        self.target().map_or(0, |r| r.delta_t)
    }

    /// Number of reviews in the history (the benchmark's "review count").
    pub fn prior_reviews(&self) -> usize {
        self.history().len()
    }

    /// Number of lapses in the history: Again ratings given on a later day than the previous
    /// review (`delta_t > 0`).
    pub fn prior_lapses(&self) -> usize {
        self.history()
            .iter()
            .filter(|r| r.rating == 1 && r.delta_t > 0)
            .count()
    }
}

/// Learner-local day number of `time`: the UTC date of `time + offset_minutes − rollover_hour`,
/// counted in days since 1970-01-01.
pub fn day_number(time: DateTime<Utc>, offset_minutes: i32, rollover_hour: u8) -> i64 {
    let secs = time.timestamp() + i64::from(offset_minutes) * 60 - i64::from(rollover_hour) * 3600;
    secs.div_euclid(SECS_PER_DAY)
}

/// Builds FSRS items from review-log entries (fsrs-rs conversion, see the module docs).
///
/// Entries may come in any order; per card they are sorted by time (stably, so equal times keep
/// their input order). `offset_minutes` is the learner's fixed UTC offset (e.g. `120` for UTC+2)
/// and `rollover_hour` the local hour at which a new day starts (Anki's default is 4). The
/// result is sorted by the predicted review's time (ties by card id, then history length). The
/// items of a card share the card's review sequence, so time and memory are linear in the
/// number of entries (plus the sort).
pub fn build_items(
    entries: &[RevlogEntry],
    offset_minutes: i32,
    rollover_hour: u8,
) -> Vec<FsrsItem> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].card_id, entries[i].time));
    let mut items = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let card = entries[order[start]].card_id;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| entries[i].card_id == card)
                .count();
        let mut sequence = Vec::with_capacity(end - start);
        // (prefix length, time) of every review that yields an item
        let mut targets = Vec::new();
        let mut prev_day = None;
        for &i in &order[start..end] {
            let e = &entries[i];
            let day = day_number(e.time, offset_minutes, rollover_hour);
            let delta_t = match prev_day {
                Some(prev) => u32::try_from(day - prev).unwrap_or(u32::MAX),
                None => 0,
            };
            if !sequence.is_empty() && delta_t > 0 {
                targets.push((sequence.len() + 1, e.time));
            }
            sequence.push(ItemReview {
                rating: e.rating,
                delta_t,
            });
            prev_day = Some(day);
        }
        let shared: Arc<[ItemReview]> = sequence.into();
        for (len, time) in targets {
            items.push(FsrsItem::prefix(card, time, Arc::clone(&shared), len));
        }
        start = end;
    }
    items.sort_by_key(|it| (it.time, it.card_id, it.len));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    fn entry(card_id: i64, rating: u8, time: DateTime<Utc>) -> RevlogEntry {
        RevlogEntry {
            card_id,
            rating,
            time,
            duration_ms: 5000,
        }
    }

    #[test]
    fn parses_valid_csv() {
        let csv = "\u{feff}card_id,review_rating,review_time,review_duration\r\n\
                   1711684180217,1,2024-03-29T20:32:32.250000+00:00,25060\r\n\
                   \r\n\
                   7,3,2024-03-30T01:00:00+02:00,0\n";
        let v = parse_revlog_csv(csv).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].card_id, 1_711_684_180_217);
        assert_eq!(v[0].rating, 1);
        assert_eq!(v[0].duration_ms, 25_060);
        assert_eq!(
            v[0].time,
            at(2024, 3, 29, 20, 32) + chrono::TimeDelta::milliseconds(32_250)
        );
        assert_eq!(v[1].time, at(2024, 3, 29, 23, 0));
    }

    #[test]
    fn parse_errors_are_line_numbered() {
        let h = CSV_HEADER;
        let ok = "1,3,2024-03-29T20:32:32+00:00,100";
        let case = |bad: &str| parse_revlog_csv(&format!("{h}\n{ok}\n{bad}\n{ok}\n")).unwrap_err();
        assert_eq!(
            case("1,3,2024-03-29T20:32:32+00:00"),
            RevlogError::FieldCount { line: 3, found: 3 }
        );
        assert_eq!(
            case("1,3,2024-03-29T20:32:32+00:00,1,9"),
            RevlogError::FieldCount { line: 3, found: 5 }
        );
        assert!(matches!(
            case("x,3,2024-03-29T20:32:32+00:00,1"),
            RevlogError::CardId { line: 3, .. }
        ));
        assert!(matches!(
            case("1,5,2024-03-29T20:32:32+00:00,1"),
            RevlogError::Rating { line: 3, .. }
        ));
        assert!(matches!(
            case("1,0,2024-03-29T20:32:32+00:00,1"),
            RevlogError::Rating { line: 3, .. }
        ));
        assert!(matches!(
            case("1,3,yesterday,1"),
            RevlogError::Time { line: 3, .. }
        ));
        assert!(matches!(
            case("1,3,2024-03-29T20:32:32+00:00,-5"),
            RevlogError::Duration { line: 3, .. }
        ));
        assert!(matches!(
            case("1,3,2024-03-29T20:32:32+00:00,"),
            RevlogError::Duration { line: 3, .. }
        ));
        // Blank lines still count towards the line number.
        let e = parse_revlog_csv(&format!("{h}\n\n{ok}\n1,3,bad,1\n")).unwrap_err();
        assert!(matches!(e, RevlogError::Time { line: 4, .. }));
        assert!(
            e.to_string()
                .starts_with("line 4: invalid review_time `bad`"),
            "{e}"
        );
        assert_eq!(parse_revlog_csv(""), Err(RevlogError::Empty));
        assert!(matches!(
            parse_revlog_csv("a,b,c,d\n"),
            Err(RevlogError::BadHeader { .. })
        ));
        assert_eq!(parse_revlog_csv(&format!("{h}\n")), Ok(vec![]));
    }

    #[test]
    fn day_number_uses_offset_and_rollover() {
        // 03:59 UTC with a 4 h rollover still belongs to the previous day.
        let d = day_number(at(2024, 4, 2, 3, 59), 0, 4);
        assert_eq!(d, day_number(at(2024, 4, 1, 12, 0), 0, 0));
        assert_eq!(day_number(at(2024, 4, 2, 4, 0), 0, 4), d + 1);
        // UTC+2: 02:00 UTC is 04:00 local → new day; 01:59 UTC is not.
        assert_eq!(day_number(at(2024, 4, 2, 2, 0), 120, 4), d + 1);
        assert_eq!(day_number(at(2024, 4, 2, 1, 59), 120, 4), d);
        // UTC−5 at midnight rollover: 04:59 UTC is 23:59 on the previous local day.
        assert_eq!(day_number(at(2024, 4, 2, 4, 59), -300, 0), d);
        // Before the epoch the day number is negative (floor division).
        assert_eq!(day_number(at(1969, 12, 31, 23, 0), 0, 0), -1);
    }

    #[test]
    fn builds_items_like_fsrs_rs() {
        let entries = vec![
            // card 2 interleaved and out of order on purpose
            entry(2, 3, at(2024, 4, 5, 10, 0)),
            entry(1, 1, at(2024, 4, 1, 10, 0)),
            entry(1, 3, at(2024, 4, 1, 10, 10)),
            entry(1, 3, at(2024, 4, 2, 3, 0)), // same day (4 h rollover) → no item
            entry(1, 3, at(2024, 4, 2, 9, 0)), // next day → item
            entry(1, 1, at(2024, 4, 6, 9, 0)), // +4 days → item
            entry(1, 3, at(2024, 4, 6, 9, 30)), // same day → no item
            entry(2, 1, at(2024, 4, 2, 10, 0)),
            entry(2, 3, at(2024, 4, 6, 2, 0)), // day of 04-05 → no item
        ];
        let items = build_items(&entries, 0, 4);
        let r = |rating, delta_t| ItemReview { rating, delta_t };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].card_id, 1);
        assert_eq!(items[0].time, at(2024, 4, 2, 9, 0));
        assert_eq!(items[0].reviews(), vec![r(1, 0), r(3, 0), r(3, 0), r(3, 1)]);
        assert_eq!(items[1].card_id, 2);
        assert_eq!(items[1].reviews(), vec![r(1, 0), r(3, 3)]);
        assert_eq!(
            items[2].reviews(),
            vec![r(1, 0), r(3, 0), r(3, 0), r(3, 1), r(1, 4)]
        );
        assert!(!items[2].recalled());
        assert_eq!(items[2].elapsed_days(), 4);
        assert_eq!(items[2].prior_reviews(), 4);
        assert_eq!(items[2].prior_lapses(), 0);
        // With a midnight rollover the 03:00 review is on a new day.
        let items0 = build_items(&entries, 0, 0);
        assert_eq!(items0.len(), 4);
        assert_eq!(items0[0].reviews(), vec![r(1, 0), r(3, 0), r(3, 1)]);
    }

    #[test]
    fn lapses_count_later_day_agains_only() {
        let r = |rating, delta_t| ItemReview { rating, delta_t };
        let item = FsrsItem::new(
            1,
            at(2024, 1, 1, 0, 0),
            vec![r(1, 0), r(1, 0), r(1, 2), r(3, 0), r(1, 5), r(3, 3)],
        );
        assert_eq!(item.prior_lapses(), 2);
        assert_eq!(item.prior_reviews(), 5);
        assert!(item.recalled());
        let empty = FsrsItem::new(1, at(2024, 1, 1, 0, 0), vec![]);
        assert_eq!(empty.history(), &[]);
        assert_eq!(empty.elapsed_days(), 0);
        assert!(!empty.recalled());
    }

    #[test]
    fn a_cards_items_share_one_review_sequence() {
        let entries: Vec<RevlogEntry> = (0..50)
            .map(|d| entry(9, 3, at(2024, 1, 1, 12, 0) + chrono::TimeDelta::days(d)))
            .collect();
        let items = build_items(&entries, 0, 4);
        assert_eq!(items.len(), 49);
        for (k, it) in items.iter().enumerate() {
            assert_eq!(it.reviews().len(), k + 2);
            assert!(it.shares_reviews_with(&items[0]));
            assert_eq!(
                it.sequence().len(),
                50,
                "one sequence of the card's 50 reviews"
            );
        }
        let copy = FsrsItem::new(9, items[3].time, items[3].reviews().to_vec());
        assert_eq!(copy, items[3]);
        assert!(!copy.shares_reviews_with(&items[3]));
        assert_eq!(
            FsrsItem::prefix(9, items[3].time, copy.sequence.clone(), 99),
            copy
        );
    }
}
