//! [`RedisQueue`] and [`PersistenceWorker`]: the durable write-behind queue
//! on a Redis Stream with a consumer group.
//!
//! Keys share the hash tag `{<ns>queue}` (one slot, so every script touches
//! one slot in a cluster): `…:stream` (jobs), `…:dead` (dead letters) and
//! `…:st:<job>` (status, `queued` / `done` / `failed:<reason>`, 7-day TTL).
//!
//! Life of a job: `enqueue` = one script doing `XADD` + status `queued`; only
//! its success makes the job durable (AOF/replication permitting). A worker
//! `XREADGROUP`s a batch, persists it with one
//! `ReviewService::process_persist_jobs` (one store batch, then each job's
//! own cache refresh; job by job if that fails) and, only after it
//! returned `Ok`, acknowledges each entry with one script (`XACK`, `XDEL`,
//! status `done`). Failures are retried in place with the core
//! [`RetryPolicy`] (the entry's idle time is reset before each retry so no
//! other consumer steals it); when retries are exhausted the entry moves to
//! the dead-letter stream and the job is marked failed. Entries left pending
//! by a crashed consumer are reclaimed with `XAUTOCLAIM` once idle longer
//! than [`WorkerConfig::min_idle`]. Persistence is idempotent per review id,
//! so a job processed twice (crash between commit and `XACK`) is logged once.
//!
//! Because acknowledged and dead-lettered entries are deleted from the
//! stream, `XLEN` is exactly the number of jobs not yet persisted (unread +
//! pending): that is [`PersistenceQueue::depth`].
//!
//! Dead letters (entries of `…:dead`: `job`, `error`, `attempts`, `origin` =
//! the id the job was first enqueued under) are listed by entry id (keyset:
//! `XRANGE (<after> +`), replayed (one script: `XADD` to the job stream with
//! the `origin` kept, `XDEL` from `…:dead`, status `queued`) or discarded
//! (`XDEL`, status `failed:discarded`). An id that is not a stream id is
//! answered as unknown without asking Redis. The entry ids encode their
//! enqueue time, which gives [`PersistenceQueue::oldest_unpersisted`] in two
//! `XRANGE … COUNT 1` calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::Memora;
use memora_core::ids::JobId;
use memora_core::lifecycle::RetryPolicy;
use memora_core::ports::{DeadLetter, JobStatus, PersistJob, PersistenceQueue};
use memora_core::{PortError, PortResult};
use redis::Script;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply};

use crate::config::RedisConfig;
use crate::conn::RedisConn;
use crate::error::{Error, Result};
pub(crate) use crate::job_codec::{decode_job, encode_job};

/// Consumer group of the persistence workers.
pub(crate) const GROUP: &str = "persist";
pub(crate) const STATUS_TTL_MS: u64 = 7 * 86_400_000;

/// Lua helper shared by `enqueue` and the fast path's commit
/// ([`crate::fast`]): `enqueue(stream, status key, payload, status ttl)`
/// appends the job and marks it queued; returns the entry id.
pub(crate) const ENQUEUE_FN: &str = r"
local function enqueue(stream, status, payload, ttl)
  local id = redis.call('XADD', stream, '*', 'job', payload)
  redis.call('SET', status, 'queued', 'PX', ttl)
  return id
end
";

/// KEYS = stream, status; ARGV = payload, status ttl.
const ENQUEUE: &str = r"
return enqueue(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
";

/// KEYS = stream, status; ARGV = group, entry id, ttl.
const ACK: &str = r"
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], 'done', 'PX', ARGV[3])
return 1
";

/// KEYS = stream, dead, status; ARGV = group, id, origin, job, error,
/// attempts, ttl.
const DEAD: &str = r"
redis.call('XADD', KEYS[2], '*', 'job', ARGV[4], 'error', ARGV[5], 'attempts', ARGV[6], 'origin', ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], 'failed:' .. ARGV[5], 'PX', ARGV[7])
return 1
";

/// KEYS = stream, dead, status; ARGV = dead id, ttl. The replayed entry
/// keeps the original entry id as `origin` (see `oldest_unpersisted`).
const REPLAY: &str = r"
local e = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #e == 0 then return false end
local f = e[1][2]
local job, origin = nil, ARGV[1]
for i = 1, #f, 2 do
  if f[i] == 'job' then job = f[i + 1] end
  if f[i] == 'origin' then origin = f[i + 1] end
end
if not job then return false end
local id = redis.call('XADD', KEYS[1], '*', 'job', job, 'origin', origin)
redis.call('XDEL', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 'queued', 'PX', ARGV[2])
return id
";

/// KEYS = dead, status; ARGV = dead id, ttl. The job stays `failed`.
const DISCARD: &str = r"
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], 'failed:discarded', 'PX', ARGV[2])
return 1
";

// ---------------------------------------------------------------------------
// Keys and shared plumbing
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Keys {
    stream: String,
    dead: String,
    status_prefix: String,
}

impl Keys {
    fn new(ns: &str) -> Self {
        let tag = format!("{{{ns}queue}}");
        Keys {
            stream: format!("{tag}:stream"),
            dead: format!("{tag}:dead"),
            status_prefix: format!("{tag}:st:"),
        }
    }
    fn status(&self, job: &str) -> String {
        format!("{}{job}", self.status_prefix)
    }
}

async fn ensure_group(conn: &RedisConn, keys: &Keys, limit: Duration) -> Result<()> {
    let r: Result<String> = conn
        .query(
            limit,
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&keys.stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM"),
        )
        .await;
    match r {
        Err(Error::Redis(e)) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map(|_| ()),
    }
}

fn parse_status(raw: &str) -> JobStatus {
    match raw {
        "queued" => JobStatus::Queued,
        "done" => JobStatus::Done,
        other => JobStatus::Failed(other.strip_prefix("failed:").unwrap_or(other).to_owned()),
    }
}

fn status_value(s: &JobStatus) -> String {
    match s {
        JobStatus::Queued => "queued".to_owned(),
        JobStatus::Done => "done".to_owned(),
        JobStatus::Failed(m) => format!("failed:{m}"),
    }
}

// ---------------------------------------------------------------------------
// The port
// ---------------------------------------------------------------------------

/// The [`PersistenceQueue`] on a Redis Stream, dead letters included.
#[derive(Clone)]
pub struct RedisQueue {
    conn: RedisConn,
    cfg: Arc<RedisConfig>,
    keys: Keys,
    enqueue: Arc<Script>,
    replay: Arc<Script>,
    discard: Arc<Script>,
}

impl RedisQueue {
    /// Connects and creates the consumer group if needed.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        Self::with_connection(conn, config).await
    }

    /// Uses an existing connection; creates the consumer group if needed.
    pub async fn with_connection(conn: RedisConn, config: RedisConfig) -> Result<Self> {
        let keys = Keys::new(&config.namespace);
        ensure_group(
            &conn,
            &keys,
            config.call_timeout.max(Duration::from_secs(1)),
        )
        .await?;
        Ok(RedisQueue {
            conn,
            keys,
            cfg: Arc::new(config),
            enqueue: Arc::new(Script::new(&format!("{ENQUEUE_FN}\n{ENQUEUE}"))),
            replay: Arc::new(Script::new(REPLAY)),
            discard: Arc::new(Script::new(DISCARD)),
        })
    }

    /// Uses `conn` without talking to Redis now (for a server starting
    /// while Redis is down, with a [lazy](RedisConn::lazy) connection). The
    /// consumer group is not created here: `XADD` creates the stream, and the
    /// [`PersistenceWorker`] creates the group from the stream's first entry
    /// (`0`) when it starts, so jobs enqueued before that are not skipped.
    pub fn with_connection_unchecked(conn: RedisConn, config: RedisConfig) -> Self {
        RedisQueue {
            keys: Keys::new(&config.namespace),
            conn,
            cfg: Arc::new(config),
            enqueue: Arc::new(Script::new(&format!("{ENQUEUE_FN}\n{ENQUEUE}"))),
            replay: Arc::new(Script::new(REPLAY)),
            discard: Arc::new(Script::new(DISCARD)),
        }
    }

    /// (stream, status key) of `job`: the keys `enqueue` writes.
    pub(crate) fn enqueue_keys(&self, job: &JobId) -> (String, String) {
        (self.keys.stream.clone(), self.keys.status(job.as_str()))
    }

    /// The first `limit` jobs of the stream (not yet persisted: unread or
    /// pending), oldest first, decoded — for diagnostics and tests.
    pub async fn peek(&self, limit: usize) -> Result<Vec<PersistJob>> {
        let r: StreamRangeReply = self
            .conn
            .query(
                self.cfg.bulk_timeout,
                redis::cmd("XRANGE")
                    .arg(&self.keys.stream)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        r.ids
            .iter()
            .map(|e| {
                field(e, "job")
                    .ok_or_else(|| Error::Decode(format!("stream entry {} has no job", e.id)))
                    .and_then(|j| decode_job(&j))
            })
            .collect()
    }

    /// Name of the job stream key.
    pub fn stream_key(&self) -> &str {
        &self.keys.stream
    }

    /// Entries of the dead-letter stream from `start` (an XRANGE bound).
    async fn dead_range(&self, start: &str, end: &str, limit: usize) -> Result<Vec<StreamId>> {
        let r: StreamRangeReply = self
            .conn
            .query(
                self.cfg.bulk_timeout,
                redis::cmd("XRANGE")
                    .arg(&self.keys.dead)
                    .arg(start)
                    .arg(end)
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        Ok(r.ids)
    }

    /// The job id a dead letter's status key is named after.
    async fn dead_job_id(&self, dead_id: &str) -> Result<Option<String>> {
        let found = self.dead_range(dead_id, dead_id, 1).await?;
        Ok(found.first().map(|e| {
            field(e, "job")
                .and_then(|j| decode_job(&j).ok())
                .map(|j| j.id.as_str().to_owned())
                .unwrap_or_else(|| "unknown".to_owned())
        }))
    }

    /// When the entry `e` was first enqueued: its `origin` (replayed and
    /// dead-lettered entries carry the original id), else its own id.
    fn enqueued_at(e: &StreamId) -> Option<DateTime<Utc>> {
        let own = stream_id_time(&e.id);
        let origin = field(e, "origin").and_then(|o| stream_id_time(&o));
        match (own, origin) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether `id` is a stream entry id (`<ms>-<seq>`): anything else is
/// answered as "no such dead letter" rather than sent to Redis.
fn is_stream_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.len() <= 20
            && seq.len() <= 20
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The time part of a stream entry id.
fn stream_id_time(id: &str) -> Option<DateTime<Utc>> {
    let ms: i64 = id.split_once('-')?.0.parse().ok()?;
    DateTime::<Utc>::from_timestamp_millis(ms)
}

fn dead_letter_of(e: &StreamId) -> DeadLetter {
    let job = field(e, "job").and_then(|j| decode_job(&j).ok());
    DeadLetter::new(
        e.id.clone(),
        job.as_ref(),
        field(e, "error").unwrap_or_default(),
        field(e, "attempts")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        stream_id_time(&e.id),
    )
}

fn field(e: &StreamId, name: &str) -> Option<String> {
    e.get::<String>(name)
}

#[async_trait]
impl PersistenceQueue for RedisQueue {
    async fn enqueue(&self, job: &PersistJob) -> PortResult<JobStatus> {
        let payload = encode_job(job)?;
        let (stream, status) = self.enqueue_keys(&job.id);
        let mut inv = self.enqueue.key(stream);
        inv.key(status).arg(payload).arg(STATUS_TTL_MS);
        let _: String = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(JobStatus::Queued)
    }

    async fn status(&self, job: &JobId) -> PortResult<Option<JobStatus>> {
        let v: Option<String> = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("GET").arg(self.keys.status(job.as_str())),
            )
            .await?;
        Ok(v.as_deref().map(parse_status))
    }

    async fn record_status(&self, job: &JobId, status: &JobStatus) -> PortResult<()> {
        let _: () = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("SET")
                    .arg(self.keys.status(job.as_str()))
                    .arg(status_value(status))
                    .arg("PX")
                    .arg(STATUS_TTL_MS),
            )
            .await?;
        Ok(())
    }

    async fn depth(&self) -> PortResult<u64> {
        Ok(self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("XLEN").arg(&self.keys.stream),
            )
            .await?)
    }

    /// The first entry of the job stream (acknowledged entries are deleted,
    /// so it is the oldest unpersisted one, except that an entry replayed
    /// from the dead letters goes to the end with its `origin` kept) and
    /// the first dead letter's origin.
    async fn oldest_unpersisted(&self) -> PortResult<Option<DateTime<Utc>>> {
        let first: StreamRangeReply = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("XRANGE")
                    .arg(&self.keys.stream)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        let dead = self.dead_range("-", "+", 1).await?;
        Ok(first
            .ids
            .first()
            .and_then(Self::enqueued_at)
            .into_iter()
            .chain(dead.first().and_then(Self::enqueued_at))
            .min())
    }

    async fn dead_letters<'a>(
        &self,
        after: Option<&'a str>,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        let start = match after {
            None => "-".to_owned(),
            Some(a) if is_stream_id(a) => format!("({a}"),
            Some(_) => return Ok(Vec::new()),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .dead_range(&start, "+", limit)
            .await?
            .iter()
            .map(dead_letter_of)
            .collect())
    }

    async fn dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        if !is_stream_id(id) {
            return Ok(None);
        }
        Ok(self
            .dead_range(id, id, 1)
            .await?
            .first()
            .map(dead_letter_of))
    }

    async fn dead_letter_count(&self) -> PortResult<u64> {
        Ok(self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("XLEN").arg(&self.keys.dead),
            )
            .await?)
    }

    async fn replay_dead_letter(&self, id: &str) -> PortResult<bool> {
        if !is_stream_id(id) {
            return Ok(false);
        }
        let Some(job_id) = self.dead_job_id(id).await? else {
            return Ok(false);
        };
        let mut inv = self.replay.key(&self.keys.stream);
        inv.key(&self.keys.dead)
            .key(self.keys.status(&job_id))
            .arg(id)
            .arg(STATUS_TTL_MS);
        let new_id: Option<String> = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(new_id.is_some())
    }

    async fn discard_dead_letter(&self, id: &str) -> PortResult<bool> {
        if !is_stream_id(id) {
            return Ok(false);
        }
        let Some(job_id) = self.dead_job_id(id).await? else {
            return Ok(false);
        };
        let mut inv = self.discard.key(&self.keys.dead);
        inv.key(self.keys.status(&job_id))
            .arg(id)
            .arg(STATUS_TTL_MS);
        let n: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(n == 1)
    }
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

/// Tuning of a [`PersistenceWorker`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Consumer name (unique per process, e.g. host + pid).
    pub consumer: String,
    /// Entries read per `XREADGROUP` / `XAUTOCLAIM`.
    pub batch: usize,
    /// How long one `XREADGROUP` blocks waiting for entries.
    pub block: Duration,
    /// Entries pending longer than this are reclaimed from other consumers.
    /// Must exceed the longest processing time of a batch.
    pub min_idle: Duration,
    /// Retry back-off of failed jobs.
    pub retry: RetryPolicy,
    /// Pause after a Redis error before trying again.
    pub error_pause: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            consumer: format!("worker-{}", std::process::id()),
            batch: 100,
            block: Duration::from_millis(200),
            min_idle: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            error_pause: Duration::from_millis(500),
        }
    }
}

/// Drains the job stream into the store through
/// [`ReviewService::process_persist_job`](memora_core::services::reviews::ReviewService::process_persist_job).
/// Uses its own connection because `XREADGROUP … BLOCK` would stall a
/// shared multiplexed connection.
pub struct PersistenceWorker {
    conn: RedisConn,
    cfg: Arc<RedisConfig>,
    wc: WorkerConfig,
    keys: Keys,
    app: Arc<Memora>,
    ack: Script,
    dead: Script,
    claim_cursor: std::sync::Mutex<String>,
}

impl PersistenceWorker {
    /// Opens the worker's connection and makes sure the group exists.
    pub async fn new(config: RedisConfig, app: Arc<Memora>, wc: WorkerConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        let keys = Keys::new(&config.namespace);
        ensure_group(
            &conn,
            &keys,
            config.call_timeout.max(Duration::from_secs(1)),
        )
        .await?;
        Ok(PersistenceWorker {
            conn,
            cfg: Arc::new(config),
            wc,
            keys,
            app,
            ack: Script::new(ACK),
            dead: Script::new(DEAD),
            claim_cursor: std::sync::Mutex::new("0-0".to_owned()),
        })
    }

    /// Runs until `shutdown` completes. Redis errors are logged and retried
    /// after [`WorkerConfig::error_pause`]; the loop never gives up on its own.
    /// A job interrupted by shutdown stays pending and is reclaimed later.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                r = self.run_once() => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "persistence worker: redis error");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(self.wc.error_pause) => {}
                        }
                    }
                }
            }
        }
    }

    /// Spawns [`PersistenceWorker::run`] on the current runtime.
    pub fn spawn(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// One step: reclaims idle entries of crashed consumers, then reads new
    /// entries (blocking up to [`WorkerConfig::block`]) and processes them.
    /// Returns the number of entries handled.
    pub async fn run_once(&self) -> Result<usize> {
        let mut handled = 0;
        let claimed = self.reclaim().await?;
        handled += self.handle_batch(&claimed).await?;
        let limit = self.wc.block + self.cfg.call_timeout;
        let block_ms = u64::try_from(self.wc.block.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let read: Result<Option<StreamReadReply>> = self
            .conn
            .query(
                limit,
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.wc.consumer)
                    .arg("COUNT")
                    .arg(self.wc.batch)
                    .arg("BLOCK")
                    .arg(block_ms)
                    .arg("STREAMS")
                    .arg(&self.keys.stream)
                    .arg(">"),
            )
            .await;
        let read = match read {
            Err(Error::Redis(e)) if e.code() == Some("NOGROUP") => {
                ensure_group(&self.conn, &self.keys, self.cfg.call_timeout).await?;
                return Ok(handled);
            }
            other => other?,
        };
        for key in read.map(|r| r.keys).unwrap_or_default() {
            handled += self.handle_batch(&key.ids).await?;
        }
        Ok(handled)
    }

    /// Persists every decodable entry of a read in ONE store call (one
    /// database round trip and commit for up to `batch` jobs), then acks
    /// them. If the combined write fails, falls back to entry-by-entry
    /// handling so one bad job is retried and dead-lettered alone.
    async fn handle_batch(&self, entries: &[StreamId]) -> Result<usize> {
        if entries.len() <= 1 {
            for e in entries {
                self.handle(e).await?;
            }
            return Ok(entries.len());
        }
        // The decoded jobs move into the batch; their entries and ids stay
        // here for the acknowledgements.
        let mut jobs = Vec::with_capacity(entries.len());
        let mut batch: Vec<PersistJob> = Vec::with_capacity(entries.len());
        for e in entries {
            match field(e, "job").map(|raw| decode_job(&raw)) {
                Some(Ok(job)) => {
                    jobs.push((e, job.id.clone()));
                    batch.push(job);
                }
                _ => self.handle(e).await?,
            }
        }
        if batch.is_empty() {
            return Ok(entries.len());
        }
        // One store batch; each job's own cache refresh.
        match self.app.reviews().process_persist_jobs(batch).await {
            Ok(_) => {
                for (e, job) in &jobs {
                    let mut inv = self.ack.key(&self.keys.stream);
                    inv.key(self.keys.status(job.as_str()))
                        .arg(GROUP)
                        .arg(&e.id)
                        .arg(STATUS_TTL_MS);
                    let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
                }
            }
            Err(err) => {
                tracing::warn!(jobs = jobs.len(), error = %err, "batched persist failed; retrying job by job");
                for (e, _) in &jobs {
                    self.handle(e).await?;
                }
            }
        }
        Ok(entries.len())
    }

    async fn reclaim(&self) -> Result<Vec<StreamId>> {
        let cursor = self
            .claim_cursor
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| "0-0".to_owned());
        let idle = u64::try_from(self.wc.min_idle.as_millis()).unwrap_or(u64::MAX);
        let r: Result<StreamAutoClaimReply> = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("XAUTOCLAIM")
                    .arg(&self.keys.stream)
                    .arg(GROUP)
                    .arg(&self.wc.consumer)
                    .arg(idle)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(self.wc.batch),
            )
            .await;
        let r = match r {
            Err(Error::Redis(e)) if e.code() == Some("NOGROUP") => {
                ensure_group(&self.conn, &self.keys, self.cfg.call_timeout).await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        if let Ok(mut c) = self.claim_cursor.lock() {
            *c = r.next_stream_id.clone();
        }
        if !r.claimed.is_empty() {
            tracing::info!(
                count = r.claimed.len(),
                "reclaimed pending persistence jobs"
            );
        }
        Ok(r.claimed)
    }

    /// Processes one entry: persist with retries, then ack or dead-letter.
    async fn handle(&self, e: &StreamId) -> Result<()> {
        let Some(raw) = field(e, "job") else {
            return self
                .dead_letter(e, "", "entry without a job field", 0)
                .await;
        };
        let job = match decode_job(&raw) {
            Ok(j) => j,
            Err(err) => return self.dead_letter(e, &raw, &err.to_string(), 0).await,
        };
        let mut attempt = 0u32;
        loop {
            match self.app.reviews().process_persist_job(&job).await {
                Ok(_) => {
                    let mut inv = self.ack.key(&self.keys.stream);
                    inv.key(self.keys.status(job.id.as_str()))
                        .arg(GROUP)
                        .arg(&e.id)
                        .arg(STATUS_TTL_MS);
                    let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
                    return Ok(());
                }
                Err(err) => match self.wc.retry.delay_for(attempt) {
                    Some(delay) => {
                        tracing::warn!(job = %job.id, attempt, error = %err, "persist failed; retrying");
                        tokio::time::sleep(delay).await;
                        self.touch(&e.id).await?;
                        attempt += 1;
                    }
                    None => {
                        tracing::error!(job = %job.id, error = %err, "persist failed; dead-lettering");
                        return self
                            .dead_letter(e, &raw, &err.to_string(), attempt + 1)
                            .await;
                    }
                },
            }
        }
    }

    /// Resets the entry's idle time so no other consumer reclaims it while
    /// this one is still retrying.
    async fn touch(&self, id: &str) -> Result<()> {
        let _: redis::Value = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("XCLAIM")
                    .arg(&self.keys.stream)
                    .arg(GROUP)
                    .arg(&self.wc.consumer)
                    .arg(0)
                    .arg(id)
                    .arg("JUSTID"),
            )
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, e: &StreamId, raw: &str, error: &str, attempts: u32) -> Result<()> {
        let job_id = decode_job(raw)
            .map(|j| j.id.as_str().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        // The first enqueue time survives replays (`oldest_unpersisted`).
        let origin = field(e, "origin").unwrap_or_else(|| e.id.clone());
        let mut inv = self.dead.key(&self.keys.stream);
        inv.key(&self.keys.dead)
            .key(self.keys.status(&job_id))
            .arg(GROUP)
            .arg(&e.id)
            .arg(&origin)
            .arg(raw)
            .arg(error)
            .arg(attempts)
            .arg(STATUS_TTL_MS);
        let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(())
    }
}

impl From<Error> for memora_core::CoreError {
    fn from(e: Error) -> Self {
        PortError::from(e).into()
    }
}
