//! Serialized values for Redis' `RESTORE`: a load writes each key of a new
//! schedule generation with one `RESTORE` instead of `ZADD`/`HSET` of its
//! entries, so Redis parses one argument per key instead of two per entry
//! and never searches a chunk for a duplicate (docs/PERFORMANCE.md,
//! "Rehydration").
//!
//! The payload is the format `DUMP` returns: one RDB object (a type byte
//! and its body), the RDB version as two little-endian bytes, and the
//! CRC-64 (Jones polynomial, as Redis computes it) of everything before it,
//! little-endian. Only the two oldest collection types are written — a
//! hash as `RDB_TYPE_HASH` (4) and a sorted set as `RDB_TYPE_ZSET_2` (5),
//! readable since Redis 4 — under RDB version 9, which every Redis since 5
//! (and Valkey) accepts. Redis then picks the key's encoding exactly as if
//! the entries had been added by commands (`listpack` while the collection
//! is within `*-max-listpack-*`), so memory and behaviour do not depend on
//! how the key was written; a test compares `DUMP` of both.
//!
//! A server that refuses the payload (an older version, an ACL without
//! `RESTORE`) makes the adapter fall back to commands ([`crate::due`]).

use crc::{CRC_64_REDIS, Crc, Table};

/// `RDB_TYPE_HASH`: a length, then field and value strings.
const TYPE_HASH: u8 = 4;
/// `RDB_TYPE_ZSET_2`: a length, then per entry the member string and the
/// score as a little-endian IEEE-754 double.
const TYPE_ZSET_2: u8 = 5;
/// RDB version written in the footer; a server accepts versions up to its
/// own (Redis 5 and 6: 9; 7.0: 10; later: higher).
const RDB_VERSION: u16 = 9;

/// Table-driven 16 bytes at a time (a load checksums megabytes).
static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// Appends an RDB length (6-, 14-, 32- or 64-bit form, big-endian past the
/// first byte).
fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push((len & 0xff) as u8);
    } else if let Ok(l) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends an RDB string (its length, then its bytes, uncompressed).
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The `RESTORE` payload of a hash of `entries` (fields must be distinct;
/// Redis refuses an empty collection, so callers skip empty keys).
pub(crate) fn hash<'a, I>(entries: I) -> Vec<u8>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut out = Vec::with_capacity(16 + entries.len() * 40);
    out.push(TYPE_HASH);
    put_len(&mut out, entries.len());
    for (field, value) in entries {
        put_str(&mut out, field);
        put_str(&mut out, value);
    }
    finish(out)
}

/// The `RESTORE` payload of a sorted set of `(score, member)` entries, in
/// any order (members must be distinct). Scores are whole numbers (Unix
/// µs), exact as doubles below 2⁵³ like the `ZADD` arguments they replace.
pub(crate) fn zset<'a, I>(entries: I) -> Vec<u8>
where
    I: ExactSizeIterator<Item = (i64, &'a [u8])>,
{
    let mut out = Vec::with_capacity(16 + entries.len() * 32);
    out.push(TYPE_ZSET_2);
    put_len(&mut out, entries.len());
    for (score, member) in entries {
        put_str(&mut out, member);
        out.extend_from_slice(&(score as f64).to_le_bytes());
    }
    finish(out)
}

/// `RDB_TYPE_HASH_LISTPACK`: the hash's `listpack`, as one string.
const TYPE_HASH_LISTPACK: u8 = 16;
/// `RDB_TYPE_ZSET_LISTPACK`: the sorted set's `listpack`, as one string.
const TYPE_ZSET_LISTPACK: u8 = 17;
/// RDB version of the `listpack` types (Redis 7.0).
const RDB_VERSION_LISTPACK: u16 = 10;
/// Redis' default `hash-max-listpack-entries`, `zset-max-listpack-entries`
/// and `*-max-listpack-value`: a collection within them is written as a
/// `listpack`, as commands would leave it under the default configuration
/// (a server configured lower converts a longer one on load).
const HASH_LISTPACK_ENTRIES: usize = 512;
const ZSET_LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;

/// A `listpack` (Redis' compact encoding of small collections) under
/// construction, following the format's specification: a 6-byte header
/// (total bytes, element count), entries of `<encoding><data><backlen>`,
/// and a terminator byte.
struct Listpack {
    buf: Vec<u8>,
    count: usize,
}

impl Listpack {
    fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes + 7);
        buf.extend_from_slice(&[0; 6]);
        Listpack { buf, count: 0 }
    }

    /// Appends the entry length `l` so the entry can be walked backwards:
    /// big-endian 7-bit groups, every byte but the first flagged 0x80.
    fn backlen(&mut self, l: usize) {
        let groups = match l {
            0..=127 => 1,
            128..=16_382 => 2,
            16_383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        for g in (0..groups).rev() {
            let b = ((l >> (7 * g)) & 0x7f) as u8;
            self.buf.push(if g == groups - 1 { b } else { b | 0x80 });
        }
    }

    fn int(&mut self, v: i64) {
        let start = self.buf.len();
        match v {
            0..=127 => self.buf.push(v as u8),
            -4096..=4095 => {
                let u = (v & 0x1fff) as u16;
                self.buf.push(0xc0 | (u >> 8) as u8);
                self.buf.push((u & 0xff) as u8);
            }
            -32_768..=32_767 => {
                self.buf.push(0xf1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8_388_608..=8_388_607 => {
                self.buf.push(0xf2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            _ if i32::try_from(v).is_ok() => {
                self.buf.push(0xf3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                self.buf.push(0xf4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.backlen(self.buf.len() - start);
        self.count += 1;
    }

    /// Appends a string; one that is the canonical decimal form of a 64-bit
    /// integer is stored as that integer, as Redis does.
    fn string(&mut self, s: &[u8]) {
        if let Some(v) = canonical_int(s) {
            return self.int(v);
        }
        let start = self.buf.len();
        let len = s.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.push(0xe0 | (len >> 8) as u8);
            self.buf.push((len & 0xff) as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.backlen(self.buf.len() - start);
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        let count = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// `s` as an integer if it is one's canonical decimal form (no sign but a
/// leading `-`, no leading zero, within 64 bits).
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    match digits {
        [b'0'] if digits.len() == s.len() => return Some(0),
        [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn listpack_payload(kind: u8, lp: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(lp.len() + 16);
    out.push(kind);
    put_str(&mut out, &lp);
    out.extend_from_slice(&RDB_VERSION_LISTPACK.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// [`hash`] as a `listpack` (RDB version 10: Redis 7.0 and later), if the
/// hash is small enough for that encoding.
pub(crate) fn hash_listpack<'a, I>(entries: I) -> Option<Vec<u8>>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    if entries.len() > HASH_LISTPACK_ENTRIES
        || entries
            .clone()
            .any(|(f, v)| f.len() > LISTPACK_VALUE || v.len() > LISTPACK_VALUE)
    {
        return None;
    }
    let mut lp = Listpack::with_capacity(entries.len() * 40);
    for (field, value) in entries {
        lp.string(field);
        lp.string(value);
    }
    Some(listpack_payload(TYPE_HASH_LISTPACK, lp.finish()))
}

/// [`zset`] as a `listpack`, if small enough for that encoding; the
/// entries must come sorted by score, then member bytes, as a sorted set's
/// `listpack` keeps them. `None` too for a score beyond ±2⁵² (Unix µs
/// of year 2112), whose stored form Redis decides.
pub(crate) fn zset_listpack<'a, I>(entries: I) -> Option<Vec<u8>>
where
    I: ExactSizeIterator<Item = (i64, &'a [u8])> + Clone,
{
    // Redis prints a whole score with its integer routine (and a
    // `listpack` then stores the integer) strictly between -(2⁵² - 1) and
    // 2⁵²; beyond, the form depends on its floating-point printing, which
    // this does not reproduce: such a set goes in the plain format.
    const WHOLE: i64 = 1 << 52;
    let printed_as_integer = |s: i64| s > -(WHOLE - 1) && s < WHOLE;
    if entries.len() > ZSET_LISTPACK_ENTRIES
        || entries
            .clone()
            .any(|(score, m)| m.len() > LISTPACK_VALUE || !printed_as_integer(score))
    {
        return None;
    }
    let mut lp = Listpack::with_capacity(entries.len() * 32);
    for (score, member) in entries {
        lp.string(member);
        lp.int(score);
    }
    Some(listpack_payload(TYPE_ZSET_LISTPACK, lp.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_redis_crc64() {
        // The check value Redis' own crc64 test uses.
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn lengths_use_the_smallest_rdb_form() {
        let enc = |n| {
            let mut v = Vec::new();
            put_len(&mut v, n);
            v
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(63), [0x3f]);
        assert_eq!(enc(64), [0x40, 0x40]);
        assert_eq!(enc(16_383), [0x7f, 0xff]);
        assert_eq!(enc(16_384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(enc(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn strings_that_are_canonical_integers_are_integers() {
        for (s, v) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-5", Some(-5)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("007", None),
            ("-0", None),
            ("+5", None),
            ("-", None),
            ("", None),
            ("12a", None),
            (" 1", None),
        ] {
            assert_eq!(canonical_int(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn listpack_entries_follow_the_format() {
        // Each value, then the bytes Redis writes for it (its DUMP of a
        // sorted set holding it shows the same entries).
        let cases: [(i64, &[u8]); 7] = [
            (5, &[0x05, 0x01]),
            (-3, &[0xdf, 0xfd, 0x02]),
            (4095, &[0xcf, 0xff, 0x02]),
            (-32_768, &[0xf1, 0x00, 0x80, 0x03]),
            (8_388_607, &[0xf2, 0xff, 0xff, 0x7f, 0x04]),
            (-2_147_483_648, &[0xf3, 0, 0, 0, 0x80, 0x05]),
            (1 << 40, &[0xf4, 0, 0, 0, 0, 0, 1, 0, 0, 0x09]),
        ];
        for (v, bytes) in cases {
            let mut lp = Listpack::with_capacity(0);
            lp.int(v);
            assert_eq!(&lp.buf[6..], bytes, "{v}");
        }
        let mut lp = Listpack::with_capacity(0);
        lp.string(b"abc");
        lp.string(&[b'x'; 64]);
        let out = lp.finish();
        assert_eq!(&out[6..11], &[0x83, b'a', b'b', b'c', 0x04]);
        // 64 bytes: the 12-bit length form; the entry's 66 bytes.
        assert_eq!(&out[11..13], &[0xe0, 64]);
        assert_eq!(out[77], 66);
        assert_eq!(out.last(), Some(&0xff));
        assert_eq!(&out[..4], &(out.len() as u32).to_le_bytes());
        assert_eq!(&out[4..6], &2u16.to_le_bytes());
        let mut lp = Listpack::with_capacity(0);
        lp.backlen(200);
        assert_eq!(lp.buf[6..], [0x01, 0x80 | 72]);
    }

    #[test]
    fn large_collections_are_not_listpacks() {
        let long = [b'q'; 65];
        assert!(hash_listpack([(&long[..], &b"v"[..])].iter().copied()).is_none());
        let many: Vec<(i64, Vec<u8>)> = (0..129).map(|i| (i, i.to_string().into_bytes())).collect();
        assert!(zset_listpack(many.iter().map(|(s, m)| (*s, &m[..]))).is_none());
        assert!(zset_listpack(many[..128].iter().map(|(s, m)| (*s, &m[..]))).is_some());
        assert!(zset_listpack([(1i64 << 52, &b"m"[..])].iter().copied()).is_none());
        assert!(zset_listpack([((1i64 << 52) - 1, &b"m"[..])].iter().copied()).is_some());
        assert!(zset_listpack([(-(1i64 << 52) + 1, &b"m"[..])].iter().copied()).is_none());
        assert!(zset_listpack([(-(1i64 << 52) + 2, &b"m"[..])].iter().copied()).is_some());
        assert!(zset_listpack([(i64::MIN, &b"m"[..])].iter().copied()).is_none());
    }

    #[test]
    fn a_payload_ends_with_version_and_checksum() {
        let p = hash([(&b"f"[..], &b"v"[..])].into_iter());
        assert_eq!(&p[..6], &[TYPE_HASH, 1, 1, b'f', 1, b'v']);
        assert_eq!(&p[6..8], &RDB_VERSION.to_le_bytes());
        assert_eq!(&p[8..], &CRC64.checksum(&p[..8]).to_le_bytes());
        let z = zset([(3, &b"m"[..])].into_iter());
        assert_eq!(&z[..4], &[TYPE_ZSET_2, 1, 1, b'm']);
        assert_eq!(&z[4..12], &3f64.to_le_bytes());
    }
}
