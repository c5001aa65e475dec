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
