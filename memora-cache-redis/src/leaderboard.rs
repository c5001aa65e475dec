//! [`RedisLeaderboard`]: XP leaderboards on sorted sets.
//!
//! One board per (scope, bucket): `<ns>lb:{g:<bucket>}` (global) or
//! `<ns>lb:{s:<subject>:<bucket>}` (subject), with its "built" marker
//! `…:built` under the same hash tag. Buckets are the core's period keys
//! (`d:2026-11-22`, `w:2026-W47`, `m:2026-11`, `all`); period buckets expire
//! (day 3 days, week 15 days, month 63 days after their last write).
//!
//! Tie rule: scores are stored **negated** (`-xp`). Redis orders a sorted
//! set by (score asc, member asc), so the natural `ZRANGE`/`ZRANK` order is
//! exactly the store's order: XP desc, then user id asc — no tie encoding,
//! no extra lookups. Players with XP ≤ 0 (score ≥ 0) are excluded from
//! rankings, as in the store.
//!
//! A board answers only once built ([`RedisLeaderboard::rebuild`] or
//! [`RedisLeaderboard::fill`]); XP added to an unbuilt board is dropped (the
//! next rebuild reads it from the store), so a board never shows a partial
//! ranking as if it were complete.

use async_trait::async_trait;
use chrono::NaiveDate;
use memora_core::PortResult;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::{SubjectId, UserId};
use memora_core::ports::{ActivityStore, BoardEntry, BoardQuery, LeaderboardCache};
use redis::Script;

use crate::config::RedisConfig;
use crate::conn::RedisConn;
use crate::error::{Error, Result};

/// Lua helper shared by `add_xp` and the fast path's commit
/// ([`crate::fast`]): `board_add(board, built, -xp, ttl_ms, user)` adds to
/// a built board (an unbuilt one drops the XP) and refreshes its TTL.
pub(crate) const BOARD_ADD: &str = r"
local function board_add(board, built, neg_xp, ttl, user)
  if redis.call('EXISTS', built) == 0 then return 0 end
  redis.call('ZINCRBY', board, neg_xp, user)
  if tonumber(ttl) > 0 then
    redis.call('PEXPIRE', board, ttl)
    redis.call('PEXPIRE', built, ttl)
  end
  return 1
end
";

/// KEYS = board, built; ARGV = -xp, ttl_ms, user.
const ADD: &str = r"
return board_add(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
";

const TOP: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(0', 'WITHSCORES', 'LIMIT', 0, ARGV[1])
";

const RANK: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return {0, -1} end
s = tonumber(s)
if s >= 0 then return {-s, -1} end
return {-s, redis.call('ZRANK', KEYS[1], ARGV[1])}
";

/// KEYS = board, built, tmp; ARGV = ttl_ms (0 = none).
const SWAP: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[2], 1)
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
";

const DAY_MS: u64 = 86_400_000;

/// Time-to-live of a bucket (`0` = none).
fn bucket_ttl_ms(bucket: &str) -> u64 {
    match bucket.split(':').next() {
        Some("d") => 3 * DAY_MS,
        Some("w") => 15 * DAY_MS,
        Some("m") => 63 * DAY_MS,
        _ => 0,
    }
}

/// The [`LeaderboardCache`] on Redis. Clones share the connection.
#[derive(Clone)]
pub struct RedisLeaderboard {
    conn: RedisConn,
    cfg: std::sync::Arc<RedisConfig>,
    add: std::sync::Arc<Script>,
    top: std::sync::Arc<Script>,
    rank: std::sync::Arc<Script>,
    swap: std::sync::Arc<Script>,
}

impl RedisLeaderboard {
    /// Connects with `config`.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        Ok(Self::with_connection(conn, config))
    }

    /// Uses an existing connection.
    pub fn with_connection(conn: RedisConn, config: RedisConfig) -> Self {
        RedisLeaderboard {
            conn,
            cfg: std::sync::Arc::new(config),
            add: std::sync::Arc::new(Script::new(&format!("{BOARD_ADD}\n{ADD}"))),
            top: std::sync::Arc::new(Script::new(TOP)),
            rank: std::sync::Arc::new(Script::new(RANK)),
            swap: std::sync::Arc::new(Script::new(SWAP)),
        }
    }

    /// (board key, built key) of a scope and bucket.
    fn keys(&self, subject: Option<&SubjectId>, bucket: &str) -> (String, String) {
        let tag = match subject {
            None => format!("g:{bucket}"),
            Some(s) => format!("s:{}:{bucket}", s.as_str()),
        };
        let board = format!("{}lb:{{{tag}}}", self.cfg.namespace);
        let built = format!("{board}:built");
        (board, built)
    }

    /// Replaces a board with `entries` (entries with XP ≤ 0 are dropped)
    /// and marks it built, atomically for readers.
    pub async fn fill(
        &self,
        subject: Option<&SubjectId>,
        bucket: &str,
        entries: &[BoardEntry],
    ) -> Result<usize> {
        let (board, built) = self.keys(subject, bucket);
        let tmp = format!("{board}:tmp");
        let members: Vec<(i64, &str)> = entries
            .iter()
            .filter(|e| e.xp > 0)
            .map(|e| (-e.xp, e.user.as_str()))
            .collect();
        let mut p = redis::pipe();
        p.cmd("DEL").arg(&tmp).ignore();
        for c in members.chunks(1000) {
            p.cmd("ZADD").arg(&tmp).arg(c).ignore();
        }
        let limit = self.cfg.bulk_timeout;
        let () = self.conn.pipe(limit, &p).await?;
        let mut inv = self.swap.key(&board);
        inv.key(&built).key(&tmp).arg(bucket_ttl_ms(bucket));
        let _: i64 = self.conn.script(limit, &inv).await?;
        Ok(members.len())
    }

    /// Rebuilds the board of `period` containing `today` from the store's
    /// `top_players` (at most `limit` players; players beyond it have no
    /// rank in the cache, so pass the board size you serve). Returns the
    /// number of players written.
    pub async fn rebuild(
        &self,
        players: &dyn ActivityStore,
        subject: Option<&SubjectId>,
        period: LeaderboardPeriod,
        today: NaiveDate,
        limit: usize,
    ) -> std::result::Result<usize, memora_core::PortError> {
        let query = BoardQuery {
            subject: subject.cloned(),
            since: period.window_start(today),
        };
        let entries = players.top_players(&query, limit).await?;
        Ok(self.fill(subject, &period.bucket(today), &entries).await?)
    }

    /// (board, built, ttl_ms) of every board `add_xp` credits: each period
    /// bucket of `day`, globally and, if given, for `subject`.
    pub(crate) fn credit_keys(
        &self,
        subject: Option<&SubjectId>,
        day: NaiveDate,
    ) -> Vec<(String, String, u64)> {
        let periods = [
            LeaderboardPeriod::Daily,
            LeaderboardPeriod::Weekly,
            LeaderboardPeriod::Monthly,
            LeaderboardPeriod::AllTime,
        ];
        let mut calls = Vec::new();
        for scope in std::iter::once(None).chain(subject.map(Some)) {
            for p in &periods {
                let bucket = p.bucket(day);
                let (board, built) = self.keys(scope, &bucket);
                calls.push((board, built, bucket_ttl_ms(&bucket)));
            }
        }
        calls
    }

    async fn add_inner(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        day: NaiveDate,
        xp: i64,
    ) -> Result<()> {
        let calls = self.credit_keys(subject, day);
        // Boards live in different slots: one script per board, concurrently.
        let futs = calls.iter().map(|(board, built, ttl)| async move {
            let mut inv = self.add.key(board);
            inv.key(built).arg(-xp).arg(*ttl).arg(user.as_str());
            let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
            Ok::<(), Error>(())
        });
        for r in futures::future::join_all(futs).await {
            r?;
        }
        Ok(())
    }
}

#[async_trait]
impl LeaderboardCache for RedisLeaderboard {
    async fn add_xp(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        day: NaiveDate,
        xp: i64,
    ) -> PortResult<()> {
        if xp == 0 {
            return Ok(());
        }
        Ok(self.add_inner(user, subject, day, xp).await?)
    }

    async fn top(
        &self,
        subject: Option<&SubjectId>,
        bucket: &str,
        limit: usize,
    ) -> PortResult<Option<Vec<BoardEntry>>> {
        let (board, built) = self.keys(subject, bucket);
        let mut inv = self.top.key(&board);
        inv.key(&built).arg(limit);
        let r: Option<Vec<(String, f64)>> = self.conn.script(self.cfg.call_timeout, &inv).await?;
        let Some(rows) = r else { return Ok(None) };
        let mut out = Vec::with_capacity(rows.len());
        for (user, score) in rows {
            out.push(BoardEntry {
                user: UserId::new(&user).map_err(|e| Error::Decode(e.to_string()))?,
                xp: -(score as i64),
            });
        }
        Ok(Some(out))
    }

    async fn rank(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        bucket: &str,
    ) -> PortResult<Option<(i64, Option<u64>)>> {
        let (board, built) = self.keys(subject, bucket);
        let mut inv = self.rank.key(&board);
        inv.key(&built).arg(user.as_str());
        let r: Option<(i64, i64)> = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(r.map(|(xp, rank)| (xp, u64::try_from(rank).ok().map(|r| r + 1))))
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_ttl_ms;

    #[test]
    fn period_buckets_expire_all_time_does_not() {
        assert_eq!(bucket_ttl_ms("d:2026-11-22"), 3 * 86_400_000);
        assert_eq!(bucket_ttl_ms("w:2026-W47"), 15 * 86_400_000);
        assert_eq!(bucket_ttl_ms("m:2026-11"), 63 * 86_400_000);
        assert_eq!(bucket_ttl_ms("all"), 0);
    }
}
