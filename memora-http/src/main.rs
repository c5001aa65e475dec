//! The `memora` binary: serves the API (default) and runs admin commands.
//!
//! Output is for people by default (sentences and aligned tables on stdout;
//! logs and warnings on stderr) and for machines with `--json` on every
//! command that reports something. Each subcommand takes only the flags it
//! uses: the database flags where it needs the database, the Redis flags
//! where it touches the cache, the listener flags on `serve`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use memora_core::Memora;
use memora_core::domain::{Actor, Role};
use memora_core::ids::{SeasonId, UserId};
use memora_core::services::Config;
use memora_http::backend::{self, BackendConfig, StartupReport};
use memora_http::jobs;
use serde_json::json;
use tokio::sync::watch;

/// mimalloc rather than glibc malloc: the request path allocates many small
/// short-lived objects, and glibc's consolidation showed at the top of the
/// profile (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Memora: spaced repetition and gamification for schools.
#[derive(Parser, Debug)]
#[command(
    name = "memora",
    version,
    about = "Memora: spaced repetition and gamification for schools (Frappe-compatible API server and admin CLI)",
    after_help = "With no subcommand, `memora` runs `serve`, configured from the MEMORA_* environment variables (see `memora serve --help`)."
)]
struct Cli {
    /// Log format: pretty or json (logs go to stdout for `serve`, to stderr
    /// for the other commands; RUST_LOG filters them).
    #[arg(
        long,
        env = "MEMORA_LOG_FORMAT",
        default_value = "pretty",
        value_parser = ["pretty", "json"],
        global = true
    )]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the database is.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Database")]
struct DbArgs {
    /// PostgreSQL URL, e.g. postgres://memora:secret@127.0.0.1:5432/memora.
    /// For `serve`, unset = the embedded in-memory demo backend.
    #[arg(long, env = "MEMORA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// URL of a streaming replica of that database: safe-mode due reads,
    /// leaderboard sources, cache-rebuild scans, reconciliation samples and
    /// archive status are read there (a learner always sees their own
    /// writes; bulk reads may lag by the replica's replay lag). Unset = all
    /// reads on the primary; an unreachable replica falls back to it.
    #[arg(long, env = "MEMORA_DATABASE_READ_URL", hide_env_values = true)]
    database_read_url: Option<String>,
    /// Size of the database connection pool.
    #[arg(long, env = "MEMORA_DB_POOL_SIZE", default_value_t = 16)]
    db_pool_size: u32,
    /// The institution a command acts on (default: the home institution,
    /// `default`). `serve` serves every institution and refuses this.
    #[arg(long, env = "MEMORA_INSTITUTION")]
    institution: Option<String>,
}

/// Where Redis is.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Redis")]
struct RedisArgs {
    /// Redis URL (single server); unset = in-process cache and synchronous
    /// writes to PostgreSQL.
    #[arg(long, env = "MEMORA_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated (instead of --redis-url).
    #[arg(long, env = "MEMORA_REDIS_CLUSTER_NODES", hide_env_values = true)]
    redis_cluster_nodes: Option<String>,
    /// Prefix of every Redis key (lets several deployments share one Redis).
    #[arg(long, env = "MEMORA_REDIS_NAMESPACE")]
    redis_namespace: Option<String>,
    /// Horizon mode: cache only the cards due within this many days (less
    /// Redis memory; a learner whose horizon has passed is reloaded from
    /// PostgreSQL on their next review). Unset = cache every card. Every
    /// process sharing a Redis must use the same value.
    #[arg(long, env = "MEMORA_CACHE_HORIZON_DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    cache_horizon_days: Option<u32>,
    /// How a schedule load writes its keys: `listpack` (one `RESTORE` of a
    /// Redis 7 value per key), `generic` (`RESTORE` of values every Redis
    /// since 5 reads) or `commands` (`HSET`/`ZADD`, five times slower for a
    /// large learner). A server refusing one way gets the next by itself;
    /// choose `commands` for a Redis-compatible server that accepts Redis'
    /// serialized values without reading them as Redis does.
    #[arg(long, env = "MEMORA_REDIS_LOAD", value_enum, default_value_t = RedisLoad::Listpack)]
    redis_load: RedisLoad,
    /// How cached schedules name questions: `numbers` (each question's
    /// permanent number from PostgreSQL's `question_numbers`: ~24 bytes
    /// less per cached card) or `ids` (the ids themselves, layout 3). Every
    /// process sharing a Redis must use the same value; a schedule of the
    /// other kind is reloaded.
    #[arg(long, env = "MEMORA_REDIS_QUESTION_KEYS", value_enum, default_value_t = QuestionKeys::Numbers)]
    redis_question_keys: QuestionKeys,
}

/// `MEMORA_REDIS_QUESTION_KEYS`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum QuestionKeys {
    Numbers,
    Ids,
}

/// `MEMORA_REDIS_LOAD` (see [`memora_cache_redis::LoadWrite`]).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RedisLoad {
    Listpack,
    Generic,
    Commands,
}

impl From<RedisLoad> for memora_cache_redis::LoadWrite {
    fn from(l: RedisLoad) -> Self {
        match l {
            RedisLoad::Listpack => memora_cache_redis::LoadWrite::Listpack,
            RedisLoad::Generic => memora_cache_redis::LoadWrite::Generic,
            RedisLoad::Commands => memora_cache_redis::LoadWrite::Commands,
        }
    }
}

/// How results are printed.
#[derive(Args, Debug, Clone, Copy)]
#[command(next_help_heading = "Output")]
struct OutputArgs {
    /// Print the result as one JSON document (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

/// `memora serve`.
#[derive(Args, Debug, Clone)]
struct ServeCmd {
    /// Address to listen on.
    #[arg(long, env = "MEMORA_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Password of the demo accounts (embedded mode; random and printed once
    /// if unset).
    #[arg(long, env = "MEMORA_DEMO_PASSWORD", hide_env_values = true)]
    demo_password: Option<String>,
    /// Mark the session cookie Secure (when served over HTTPS).
    #[arg(long, env = "MEMORA_SECURE_COOKIES", default_value_t = false)]
    secure_cookies: bool,
    /// Require `Authorization: Bearer <token>` on /metrics.
    #[arg(long, env = "MEMORA_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve /metrics on this separate address only (e.g. 127.0.0.1:9100),
    /// not on the public listener.
    #[arg(long, env = "MEMORA_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Queue entries left pending this long by a crashed worker are
    /// reclaimed (milliseconds).
    #[arg(long, env = "MEMORA_QUEUE_RECLAIM_IDLE_MS", default_value_t = 30_000)]
    queue_reclaim_idle_ms: u64,
    /// Safe mode: most review sessions served from PostgreSQL per minute,
    /// counted across every process sharing the database.
    #[arg(long, env = "MEMORA_SAFE_MODE_GLOBAL_PER_MINUTE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    safe_mode_global_per_minute: u32,
    /// Safe mode: shortest time between two review sessions of one learner
    /// (seconds, across every process).
    #[arg(
        long,
        env = "MEMORA_SAFE_MODE_LEARNER_INTERVAL_SECS",
        default_value_t = 30
    )]
    safe_mode_learner_interval_secs: u64,
    /// Periods of scheduled jobs, `name=seconds` separated by commas
    /// (reconcile, auto_archive, retention, fsrs_refit, served_purge,
    /// pending_batches, invalidations_prune); each runs once per period
    /// across every process.
    #[arg(long, env = "MEMORA_JOB_PERIODS", default_value = "")]
    job_periods: String,
    /// Share of one core's time the nightly FSRS re-fit may take (0.01–1):
    /// it pauses after each learner in proportion, so that it never holds a
    /// core that requests need for long. 1 runs it unpaced.
    #[arg(long, env = "MEMORA_FSRS_REFIT_SHARE", default_value_t = 0.25, value_parser = parse_share)]
    fsrs_refit_share: f64,
    /// How often this process applies the invalidations published by the
    /// others (milliseconds): the bound on how long a logout, a content
    /// import or a season change takes to reach it.
    #[arg(long, env = "MEMORA_SYNC_INTERVAL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    sync_interval_ms: u64,
    /// Most registered devices per player.
    #[arg(long, env = "MEMORA_MAX_DEVICES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_devices: u32,
    /// What registering one device too many does: sign the least recently
    /// active device out, or refuse the new one.
    #[arg(long, env = "MEMORA_DEVICE_LIMIT", default_value = "sign-out-oldest", value_parser = ["sign-out-oldest", "refuse"])]
    device_limit: String,
    /// Database connections per institution other than the home one (each
    /// has its own pool on its own schema; see docs/ARCHITECTURE.md,
    /// "Institutions").
    #[arg(long, env = "MEMORA_INSTITUTION_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    institution_pool_size: u32,
    /// Most institutions besides the home one (`create_institution` refuses
    /// more; each costs a pool, a Redis connection and background tasks in
    /// every server process).
    #[arg(long, env = "MEMORA_MAX_INSTITUTIONS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    max_institutions: u32,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    redis: RedisArgs,
}

/// Parses [`ServeCmd`] from the environment alone (`memora` without a
/// subcommand).
#[derive(Parser, Debug)]
struct ServeFromEnv {
    #[command(flatten)]
    cmd: ServeCmd,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (the default). Applies pending migrations first.
    Serve(Box<ServeCmd>),
    /// Apply pending database migrations and report the schema version.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Load the demo dataset (season, lessons, two accounts) into the database.
    SeedDemo {
        /// Password of the demo accounts (random and printed once if unset).
        #[arg(long, env = "MEMORA_DEMO_PASSWORD", hide_env_values = true)]
        demo_password: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Import a content bundle (JSON catalog, optionally with ids to
    /// `unpublish`); content is unpublished, never deleted.
    ImportContent {
        /// The bundle file.
        file: std::path::PathBuf,
        /// merge: insert or replace the bundle's entities, keep the rest;
        /// replace: also unpublish every subject, track, unit, topic and
        /// lesson the bundle does not list.
        #[arg(long, default_value = "merge", value_parser = ["merge", "replace"])]
        mode: String,
        /// Show what would change and the validation errors; import nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Institutions (the platform operator's work): list, create, suspend,
    /// resume. Other commands act on one with --institution.
    Institution {
        #[command(subcommand)]
        cmd: InstitutionCmd,
    },
    /// Users: create them, set passwords, issue API keys.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Seasons (academic years).
    Season {
        #[command(subcommand)]
        cmd: SeasonCmd,
    },
    /// Cache operations.
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
    /// The persistence queue's dead letters: jobs that failed every retry.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
    /// Compare cache and database on a sample and correct stale cache entries.
    Reconcile {
        /// Rows to sample (100 to 1 000 000; default 10 000, the server's
        /// `Config::reconciliation_sample_default`).
        #[arg(long)]
        sample_size: Option<u64>,
        /// Only this season.
        #[arg(long)]
        season: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Archive a finished, inactive season (moves its review rows out of the
    /// live tables and deletes its cache keys).
    Archive {
        /// Season name, e.g. SEASON-2025.
        season: String,
        /// Confirm: archiving cannot be undone from the CLI.
        #[arg(long, short = 'y', visible_alias = "confirm")]
        yes: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Evaluate schedulers on a review-log CSV (card_id,review_rating,review_time,review_duration).
    EvalRevlog {
        /// The CSV file, e.g. data/py-fsrs-josh-revlog/review_logs_josh_1711744352250_to_1728234780857.csv.
        file: std::path::PathBuf,
        /// The learner's fixed UTC offset: Z, UTC, ±HH:MM, ±HHMM or ±HH
        /// (minutes 00/15/30/45, at most 14:00), e.g. +03:00 or -05:00.
        #[arg(long, default_value = "UTC", allow_hyphen_values = true, value_parser = tz_offset)]
        tz: i32,
        /// Hour at which the learner's day rolls over.
        #[arg(long, default_value_t = 4)]
        rollover_hour: u8,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum InstitutionCmd {
    /// Every institution with its status.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create an institution (its schema, with every migration) and its
    /// first manager. The manager's password comes from --password-stdin,
    /// MEMORA_NEW_USER_PASSWORD or a prompt.
    Create {
        /// Id: 2–32 characters of a–z, 0–9 and '-', starting with a letter.
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The first manager's account name (an e-mail, unique across the
        /// platform).
        #[arg(long)]
        manager: String,
        /// The manager's display name.
        #[arg(long)]
        manager_name: String,
        /// Read the manager's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Most institutions besides the home one (as `serve`'s).
        #[arg(long, env = "MEMORA_MAX_INSTITUTIONS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        max_institutions: u32,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Suspend an institution: its users' logins and calls are refused
    /// (every server within a second); its data is kept.
    Suspend {
        /// Id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Resume a suspended institution.
    Resume {
        /// Id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a user. The password comes from --password-stdin, from
    /// MEMORA_NEW_USER_PASSWORD, or from a prompt (in a terminal); without
    /// any, the user is created without one and the command says how to set it.
    Add {
        /// E-mail (the login).
        email: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Role: student or admin.
        #[arg(long, default_value = "student")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// Create the user without a password (API key only, or set one
        /// later with `memora user set-password`).
        #[arg(long)]
        no_password: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set (or reset) a user's password.
    SetPassword {
        /// E-mail.
        email: String,
        /// Read the password from the first line of standard input (else a
        /// prompt, in a terminal).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create an API key for a user (the secret is printed once).
    ApiKey {
        /// E-mail.
        email: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum SeasonCmd {
    /// Create a season (and its storage partition).
    Create {
        /// Name, e.g. SEASON-2027.
        name: String,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        start: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        end: chrono::NaiveDate,
        /// Scheduler: ladder or fsrs6.
        #[arg(long, default_value = "ladder")]
        scheduler: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Make a season the active one.
    Activate {
        /// Name.
        name: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum QueueCmd {
    /// List dead letters, oldest first.
    DeadLetters {
        /// Start after this dead-letter id (the previous page's last).
        #[arg(long)]
        after: Option<String>,
        /// How many to list (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show one dead letter.
    Show {
        /// Dead-letter id.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Put a dead letter (or all of them) back into the queue; persisting
    /// is idempotent, so a replayed answer is never stored twice.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Replay {
        /// Dead-letter id.
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a dead letter without persisting its answers.
    Discard {
        /// Dead-letter id.
        id: String,
        /// Confirm: the job's answers are lost for good.
        #[arg(long, short = 'y', visible_alias = "confirm")]
        yes: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    /// Rebuild a season's cache from the database.
    Rebuild {
        /// Season name.
        season: String,
        /// Resume this stale or failed rebuild job of the season (from where
        /// it stopped) instead of starting a new one.
        #[arg(long, value_name = "JOB")]
        resume: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Progress of a rebuild job, whichever process runs it.
    RebuildStatus {
        /// Job id.
        job: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Logs to stdout for the server, to stderr for commands (whose stdout is
/// their result).
fn init_tracing(format: &str, server: bool) {
    // sqlx warns about unknown URL parameters with their values, which may
    // be secrets: keep that module quiet.
    let default = if server {
        "info,sqlx=warn,sqlx_postgres::options=error"
    } else {
        "warn,sqlx_postgres::options=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format == "json", server) {
        (true, true) => builder.json().init(),
        (true, false) => builder.json().with_writer(std::io::stderr).init(),
        (false, true) => builder.init(),
        (false, false) => builder.with_writer(std::io::stderr).init(),
    }
}

fn random_password() -> String {
    let bytes: [u8; 9] = rand::random();
    hex::encode(bytes)
}

/// Prints either the human text or the JSON document.
fn emit(out: OutputArgs, human: impl FnOnce() -> String, machine: serde_json::Value) {
    if out.json {
        println!("{machine:#}");
    } else {
        println!("{}", human());
    }
}

fn backend_config(db: &DbArgs, redis: Option<&RedisArgs>, reclaim_ms: u64) -> BackendConfig {
    BackendConfig {
        database_url: db.database_url.clone(),
        database_read_url: db.database_read_url.clone(),
        redis_url: redis.and_then(|r| r.redis_url.clone()),
        redis_cluster_nodes: redis.and_then(|r| r.redis_cluster_nodes.clone()),
        redis_namespace: redis.and_then(|r| r.redis_namespace.clone()),
        cache_horizon_days: redis.and_then(|r| r.cache_horizon_days),
        redis_load: redis.map_or(RedisLoad::Listpack, |r| r.redis_load).into(),
        redis_keys_by_id: redis.is_some_and(|r| r.redis_question_keys == QuestionKeys::Ids),
        db_pool_size: db.db_pool_size,
        schema: None,
        institution: db.institution.clone(),
        queue_reclaim_idle: std::time::Duration::from_millis(reclaim_ms),
    }
}

/// The application over `cfg`'s backend. Commands need a real database:
/// the embedded backend lives only inside `memora serve`.
async fn open(cfg: &BackendConfig, server: bool) -> anyhow::Result<(Arc<Memora>, backend::Built)> {
    open_with(cfg, server, |_| {}).await
}

/// [`open`], with the core configuration adjusted by `tweak`.
async fn open_with(
    cfg: &BackendConfig,
    server: bool,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<(Arc<Memora>, backend::Built)> {
    if !server && cfg.database_url.is_none() {
        bail!(
            "this command needs a database: set MEMORA_DATABASE_URL or pass --database-url (the embedded demo backend lives only inside `memora serve`)"
        );
    }
    let mut built = backend::build(cfg).await?;
    // Failed logins are counted once for the whole platform (so a client
    // cannot spread its guesses over institutions): in Redis when there is
    // one, otherwise in one in-process counter every institution shares.
    if built.ports.attempts.is_none() {
        built.ports.attempts = Some(Arc::new(memora_core::memory::LocalAttempts::default()));
    }
    let directory = Arc::clone(&built.directory);
    let institution = match cfg.institution.as_deref().map(str::trim) {
        None | Some("") => memora_core::domain::InstitutionId::home(),
        Some(raw) => memora_core::domain::InstitutionId::new(raw)?,
    };
    if !institution.is_home() {
        if server {
            bail!("`serve` serves every institution: unset --institution / MEMORA_INSTITUTION");
        }
        let known = directory.list_institutions().await?;
        if !known.iter().any(|i| i.id == institution) {
            bail!(
                "there is no institution `{institution}` (`memora institution list` shows them; `memora institution create` makes one)"
            );
        }
        let home_schema = match &built.pg {
            Some(pg) => pg.current_schema().await?,
            None => bail!("institutions other than the home one need a database"),
        };
        let tenant_cfg = cfg.for_institution(&institution, &home_schema, cfg.db_pool_size)?;
        let home_attempts = built.ports.attempts.clone();
        built = backend::build(&tenant_cfg).await?;
        built.directory = Arc::clone(&directory);
        built.ports.attempts = home_attempts;
    }
    // The server's health probe (every second) restores normal mode, so
    // requests need not retry a down cache inline (which would make one
    // request per interval pay the cache timeout).
    let mut config = Config {
        cache_retry_interval: std::time::Duration::from_secs(30),
        ..Config::default()
    };
    tweak(&mut config);
    // The home institution reserves its account names in the platform
    // directory, like every institution.
    let scope = memora_core::services::TenantScope {
        institution,
        directory: Some(directory),
    };
    let app = Arc::new(Memora::in_institution(built.ports.clone(), config, scope));
    if built.report.redis_down.is_some() {
        app.cache_health().mark_failed(chrono::Utc::now());
    }
    Ok((app, built))
}

/// Commands that work on the cache refuse to run without it.
fn require_redis(report: &StartupReport, what: &str) -> anyhow::Result<()> {
    if let Some(down) = &report.redis_down {
        bail!(
            "{what} needs Redis, and Redis {} does not answer: {}",
            down.url,
            down.cause
        );
    }
    Ok(())
}

/// The CLI acts as the server itself (the explicit system caller).
fn cli_admin() -> anyhow::Result<Actor> {
    Ok(Actor::system())
}

/// Errors are printed as one line with their causes (`error: a: b`), never
/// as a Debug dump or a backtrace: they are meant for the operator.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Some(c) => c,
        None => Command::Serve(Box::new(ServeFromEnv::try_parse_from(["memora"])?.cmd)),
    };
    init_tracing(&cli.log_format, matches!(command, Command::Serve(_)));
    match command {
        Command::Serve(cmd) => serve(*cmd).await,
        Command::EvalRevlog {
            file,
            tz,
            rollover_hour,
            out,
        } => eval_revlog(&file, tz, rollover_hour, out),
        Command::Migrate { db, out } => {
            let (_app, built) = open(&backend_config(&db, None, 0), false).await?;
            let r = &built.report;
            emit(
                out,
                || {
                    let mut s = if r.migrations_applied == 0 {
                        format!(
                            "Database {}: schema up to date ({} migrations), nothing to apply.",
                            r.database.as_deref().unwrap_or("-"),
                            r.migrations_known
                        )
                    } else {
                        format!(
                            "Database {}: applied {} migration(s); the schema is at {} of {}.",
                            r.database.as_deref().unwrap_or("-"),
                            r.migrations_applied,
                            r.migrations_known,
                            r.migrations_known
                        )
                    };
                    if r.database_empty {
                        s.push_str("\nThe database has no season yet: load the demo with `memora seed-demo` or create one with `memora season create`.");
                    }
                    s
                },
                json!({
                    "database": r.database,
                    "migrations_applied": r.migrations_applied,
                    "migrations_total": r.migrations_known,
                    "empty": r.database_empty,
                }),
            );
            Ok(())
        }
        Command::SeedDemo {
            demo_password,
            db,
            redis,
            out,
        } => {
            let (app, built) = open(&backend_config(&db, Some(&redis), 30_000), false).await?;
            warn_redis_down(&built.report);
            let (pwd, generated) = match demo_password {
                Some(p) => (p, false),
                None => (random_password(), true),
            };
            let info = memora_core::demo::seed_demo(&app, &pwd).await?;
            emit(
                out,
                || {
                    let mut s = format!(
                        "Loaded the demo into {}: season {} (active), accounts {} and {}, {} reviews due now for the student.",
                        built.report.database.as_deref().unwrap_or("-"),
                        info.season,
                        info.student,
                        info.admin,
                        info.due_now
                    );
                    if generated {
                        s.push_str(&format!("\nDemo password (generated, shown once): {pwd}"));
                    } else {
                        s.push_str("\nDemo password: the one given (MEMORA_DEMO_PASSWORD).");
                    }
                    s
                },
                json!({
                    "season": info.season.as_str(),
                    "student": info.student.as_str(),
                    "admin": info.admin.as_str(),
                    "due_now": info.due_now,
                    "password": if generated { Some(pwd.as_str()) } else { None },
                }),
            );
            Ok(())
        }
        Command::ImportContent {
            file,
            mode,
            dry_run,
            db,
            out,
        } => import_content(&file, &mode, dry_run, &db, out).await,
        Command::Institution { cmd } => institution(cmd).await,
        Command::User { cmd } => user(cmd).await,
        Command::Season { cmd } => season(cmd).await,
        Command::Cache { cmd } => cache(cmd).await,
        Command::Queue { cmd } => queue(cmd).await,
        Command::Reconcile {
            sample_size,
            season,
            db,
            redis,
            out,
        } => {
            let (app, built) = open(&backend_config(&db, Some(&redis), 30_000), false).await?;
            require_redis(&built.report, "reconciling the cache")?;
            let season = season.map(SeasonId::new).transpose()?;
            let r = app
                .admin()
                .trigger_reconciliation(&cli_admin()?, sample_size, season.as_ref())
                .await?;
            jobs::record_reconciliation(&r, "cli");
            let scope = season
                .as_ref()
                .map_or_else(|| "all seasons".to_owned(), |s| s.to_string());
            emit(
                out,
                || {
                    table(
                        &format!("Reconciliation of {scope} ({})", built.report.cache),
                        &[
                            ("rows sampled", r.sample_size.to_string()),
                            (
                                "discrepancies",
                                format!(
                                    "{} ({:.3} %)",
                                    r.discrepancies_found,
                                    r.discrepancy_rate * 100.0
                                ),
                            ),
                            ("corrected from the database", r.auto_corrected.to_string()),
                            ("kept (cache is newer)", r.kept_newer_in_cache.to_string()),
                            ("not cached (nothing to compare)", r.not_cached.to_string()),
                            ("sampled from the cache side", r.cache_sampled.to_string()),
                            (
                                "only in the cache (removed)",
                                format!("{} ({})", r.cache_only_found, r.cache_only_removed),
                            ),
                            (
                                "alert (rate above 0.1 %)",
                                if r.alert_triggered { "YES" } else { "no" }.to_owned(),
                            ),
                        ],
                    )
                },
                json!({
                    "season": season.as_ref().map(|s| s.as_str()),
                    "sample_size": r.sample_size,
                    "discrepancies_found": r.discrepancies_found,
                    "discrepancy_rate": r.discrepancy_rate,
                    "auto_corrected": r.auto_corrected,
                    "kept_newer_in_cache": r.kept_newer_in_cache,
                    "not_cached": r.not_cached,
                    "cache_sampled": r.cache_sampled,
                    "cache_only_found": r.cache_only_found,
                    "cache_only_removed": r.cache_only_removed,
                    "alert_triggered": r.alert_triggered,
                }),
            );
            Ok(())
        }
        Command::Archive {
            season,
            yes,
            db,
            redis,
            out,
        } => {
            let id = SeasonId::new(&season)?;
            if !yes {
                bail!(
                    "archiving {season} moves its review rows out of the live tables and deletes its cache keys, which cannot be undone from the CLI; run `memora archive {season} --yes` to confirm"
                );
            }
            let (app, built) = open(&backend_config(&db, Some(&redis), 30_000), false).await?;
            require_redis(&built.report, "archiving a season")?;
            let o = app.admin().archive_season(&cli_admin()?, &id, true).await?;
            emit(
                out,
                || {
                    format!(
                        "Archived {season}: {} review rows moved to the archive, {} cache keys deleted.",
                        o.records_archived, o.cache_keys_deleted
                    )
                },
                json!({
                    "season": season,
                    "records_archived": o.records_archived,
                    "cache_keys_deleted": o.cache_keys_deleted,
                }),
            );
            Ok(())
        }
    }
}

async fn cache(cmd: CacheCmd) -> anyhow::Result<()> {
    match cmd {
        CacheCmd::Rebuild {
            season,
            resume,
            db,
            redis,
            out,
        } => {
            let (app, built) = open(&backend_config(&db, Some(&redis), 30_000), false).await?;
            require_redis(&built.report, "rebuilding the cache")?;
            let id = SeasonId::new(&season)?;
            let job = match resume {
                None => app.admin().start_season_rebuild(&cli_admin()?, &id).await?,
                Some(j) => {
                    let j = memora_core::ids::JobId::new(&j)?;
                    let current = app.admin().rebuild_status(&cli_admin()?, &j).await?;
                    if current.progress.season != id {
                        bail!("job {j} rebuilds {}, not {season}", current.progress.season);
                    }
                    app.admin().resume_season_rebuild(&cli_admin()?, &j).await?
                }
            };
            let resumed_at = job.processed;
            let done = app.admin().run_season_rebuild(&job.id).await?;
            emit(
                out,
                || {
                    let mut s = format!(
                        "Rebuilt the cache of {season} in {}: {} rows loaded into {} schedules (job {}).",
                        built.report.cache, done.processed, done.users, done.id
                    );
                    if resumed_at > 0 {
                        s.push_str(&format!(
                            "\nResumed after {resumed_at} rows loaded by an earlier run."
                        ));
                    }
                    s
                },
                json!({
                    "season": season,
                    "job_id": done.id.as_str(),
                    "rows": done.processed,
                    "schedules": done.users,
                    "status": done.status,
                }),
            );
            Ok(())
        }
        CacheCmd::RebuildStatus { job, db, out } => {
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            let job = memora_core::ids::JobId::new(&job)?;
            let s = app.admin().rebuild_status(&cli_admin()?, &job).await?;
            let p = &s.progress;
            emit(
                out,
                || {
                    let mut t = table(
                        &format!("Rebuild {} of {}", p.id, p.season),
                        &[
                            ("status", s.state().to_owned()),
                            ("rows loaded", format!("{} of {}", p.processed, p.estimated)),
                            ("schedules", p.users.to_string()),
                            ("started", p.started_at.to_rfc3339()),
                            ("last progress", p.updated_at.to_rfc3339()),
                        ],
                    );
                    if let Some(e) = p.status.strip_prefix("failed: ") {
                        t.push_str(&format!("\n  error  {e}"));
                    }
                    if s.resumable() {
                        t.push_str(&format!(
                            "\nResume it with `memora cache rebuild {} --resume {}`.",
                            p.season, p.id
                        ));
                    }
                    t
                },
                json!({
                    "job_id": p.id.as_str(),
                    "season": p.season.as_str(),
                    "status": s.state(),
                    "error": p.status.strip_prefix("failed: "),
                    "resumable": s.resumable(),
                    "estimated_records": p.estimated,
                    "processed": p.processed,
                    "users": p.users,
                    "started_at": p.started_at.to_rfc3339(),
                    "updated_at": p.updated_at.to_rfc3339(),
                }),
            );
            Ok(())
        }
    }
}

fn dead_letter_json(d: &memora_core::ports::DeadLetter) -> serde_json::Value {
    json!({
        "id": d.id,
        "job_id": d.job.as_ref().map(|j| j.as_str()),
        "user": d.user.as_ref().map(|u| u.as_str()),
        "season": d.season.as_ref().map(|s| s.as_str()),
        "records": d.records,
        "error": d.error,
        "attempts": d.attempts,
        "failed_at": d.failed_at.map(|t| t.to_rfc3339()),
    })
}

fn dead_letter_table(d: &memora_core::ports::DeadLetter) -> String {
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    table(
        &format!("Dead letter {}", d.id),
        &[
            ("job", or_dash(d.job.as_ref().map(|j| j.as_str()))),
            ("learner", or_dash(d.user.as_ref().map(|u| u.as_str()))),
            ("season", or_dash(d.season.as_ref().map(|s| s.as_str()))),
            ("answers", d.records.to_string()),
            ("attempts", d.attempts.to_string()),
            (
                "failed at",
                d.failed_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
            ),
            ("error", d.error.clone()),
        ],
    )
}

async fn queue(cmd: QueueCmd) -> anyhow::Result<()> {
    let open_queue = |db: &DbArgs, redis: &RedisArgs| {
        let cfg = backend_config(db, Some(redis), 30_000);
        async move {
            let (app, built) = open(&cfg, false).await?;
            require_redis(&built.report, "the persistence queue")?;
            anyhow::Ok(app)
        }
    };
    match cmd {
        QueueCmd::DeadLetters {
            after,
            limit,
            db,
            redis,
            out,
        } => {
            let app = open_queue(&db, &redis).await?;
            let page = app
                .admin()
                .list_dead_letters(&cli_admin()?, after.as_deref(), limit)
                .await?;
            emit(
                out,
                || {
                    if page.items.is_empty() {
                        return if page.total == 0 {
                            "No dead letters: every failed persistence job has been replayed or discarded.".to_owned()
                        } else {
                            format!("No dead letters after that id ({} in all).", page.total)
                        };
                    }
                    let rows: Vec<Vec<String>> = page
                        .items
                        .iter()
                        .map(|d| {
                            vec![
                                d.id.clone(),
                                d.job.as_ref().map_or("-".into(), |j| j.to_string()),
                                d.user.as_ref().map_or("-".into(), |u| u.to_string()),
                                d.records.to_string(),
                                d.attempts.to_string(),
                                d.failed_at.map_or("-".into(), |t| {
                                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                                }),
                                d.error.clone(),
                            ]
                        })
                        .collect();
                    let mut s = format!("{} dead letter(s) in all, oldest first:\n", page.total);
                    s.push_str(&columns(
                        &[
                            "ID",
                            "JOB",
                            "LEARNER",
                            "ANSWERS",
                            "ATTEMPTS",
                            "FAILED (UTC)",
                            "ERROR",
                        ],
                        &rows,
                    ));
                    if let Some(next) = &page.next_after {
                        s.push_str(&format!("\nMore: memora queue dead-letters --after {next}"));
                    }
                    s.push_str("\nReplay with `memora queue replay <id>` (or --all), drop with `memora queue discard <id> --yes`.");
                    s
                },
                json!({
                    "total": page.total,
                    "next_after": page.next_after,
                    "dead_letters": page.items.iter().map(dead_letter_json).collect::<Vec<_>>(),
                }),
            );
            Ok(())
        }
        QueueCmd::Show { id, db, redis, out } => {
            let app = open_queue(&db, &redis).await?;
            let d = app.admin().get_dead_letter(&cli_admin()?, &id).await?;
            emit(out, || dead_letter_table(&d), dead_letter_json(&d));
            Ok(())
        }
        QueueCmd::Replay {
            id,
            all,
            db,
            redis,
            out,
        } => {
            let app = open_queue(&db, &redis).await?;
            match (id, all) {
                (Some(id), false) => {
                    let d = app.admin().replay_dead_letter(&cli_admin()?, &id).await?;
                    emit(
                        out,
                        || {
                            format!(
                                "Replayed dead letter {} (job {}, {} answers): it is queued again and the worker will persist it.",
                                d.id,
                                d.job.as_ref().map_or("-".into(), |j| j.to_string()),
                                d.records
                            )
                        },
                        json!({"replayed": 1, "dead_letter": dead_letter_json(&d)}),
                    );
                }
                _ => {
                    let n = app.admin().replay_all_dead_letters(&cli_admin()?).await?;
                    emit(
                        out,
                        || format!("Replayed {n} dead letter(s): they are queued again."),
                        json!({"replayed": n}),
                    );
                }
            }
            Ok(())
        }
        QueueCmd::Discard {
            id,
            yes,
            db,
            redis,
            out,
        } => {
            if !yes {
                bail!(
                    "discarding dead letter {id} deletes its answers without storing them, which cannot be undone; run `memora queue discard {id} --yes` to confirm"
                );
            }
            let app = open_queue(&db, &redis).await?;
            let d = app
                .admin()
                .discard_dead_letter(&cli_admin()?, &id, true)
                .await?;
            emit(
                out,
                || {
                    format!(
                        "Discarded dead letter {} (job {}, {} answers of {}); the job stays failed.",
                        d.id,
                        d.job.as_ref().map_or("-".into(), |j| j.to_string()),
                        d.records,
                        d.user.as_ref().map_or("-".into(), |u| u.to_string()),
                    )
                },
                json!({"discarded": dead_letter_json(&d)}),
            );
            Ok(())
        }
    }
}

/// A header line and aligned columns (the last column is not padded).
fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::from(" ");
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            s.push(' ');
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$} "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// `memora import-content`: a report of the diff either way; a dry run
/// with validation errors prints them and fails.
async fn import_content(
    file: &std::path::Path,
    mode: &str,
    dry_run: bool,
    db: &DbArgs,
    out: OutputArgs,
) -> anyhow::Result<()> {
    use memora_core::services::admin::{ImportMode, ImportReport, ImportRequest};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle = serde_json::from_str(&text)
        .with_context(|| format!("parsing the content bundle {}", file.display()))?;
    let request = ImportRequest {
        bundle,
        mode: if mode == "replace" {
            ImportMode::Replace
        } else {
            ImportMode::Merge
        },
        dry_run,
    };
    let (app, _built) = open(&backend_config(db, None, 0), false).await?;
    let r = app.admin().import_content(&cli_admin()?, &request).await?;
    let ids = |set: &memora_core::services::admin::ChangeSet| {
        serde_json::Value::Object(
            set.iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    };
    let lines = |set: &memora_core::services::admin::ChangeSet| {
        let parts: Vec<String> = set
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}: {}", v.join(", ")))
            .collect();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join("; ")
        }
    };
    emit(
        out,
        || {
            let head = if r.applied {
                format!(
                    "Imported {} (mode {mode}): catalog version {}; the catalog now has {} subjects and {} lessons.",
                    file.display(),
                    r.version,
                    r.subjects,
                    r.lessons
                )
            } else {
                format!(
                    "Dry run of {} (mode {mode}) against catalog version {}: nothing imported.",
                    file.display(),
                    r.version
                )
            };
            let mut s = table(
                &head,
                &[
                    (
                        "added",
                        format!("{:>4}  {}", ImportReport::count(&r.added), lines(&r.added)),
                    ),
                    (
                        "changed",
                        format!(
                            "{:>4}  {}",
                            ImportReport::count(&r.changed),
                            lines(&r.changed)
                        ),
                    ),
                    (
                        "unpublished",
                        format!(
                            "{:>4}  {}",
                            ImportReport::count(&r.unpublished),
                            lines(&r.unpublished)
                        ),
                    ),
                ],
            );
            for e in &r.errors {
                s.push_str(&format!("\nerror: {e}"));
            }
            s
        },
        json!({
            "applied": r.applied,
            "version": r.version,
            "mode": mode,
            "added": ids(&r.added),
            "changed": ids(&r.changed),
            "unpublished": ids(&r.unpublished),
            "errors": r.errors,
            "subjects": r.subjects,
            "lessons": r.lessons,
        }),
    );
    if !r.errors.is_empty() {
        bail!(
            "the bundle has {} validation error(s); an import would be refused",
            r.errors.len()
        );
    }
    Ok(())
}

fn warn_redis_down(report: &StartupReport) {
    if let Some(down) = &report.redis_down {
        eprintln!(
            "warning: Redis {} does not answer ({}); writing to PostgreSQL directly, cache updates are skipped",
            down.url, down.cause
        );
    }
}

/// A title and aligned `name  value` lines.
fn table(title: &str, rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut s = format!("{title}\n");
    for (k, v) in rows {
        s.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    s.trim_end().to_owned()
}

/// Where a new password comes from.
fn read_password(from_stdin: bool, confirm_prompt: bool) -> anyhow::Result<Option<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            bail!("--password-stdin: standard input held no password");
        }
        return Ok(Some(p));
    }
    if let Ok(p) = std::env::var("MEMORA_NEW_USER_PASSWORD") {
        if !p.is_empty() {
            return Ok(Some(p));
        }
    }
    if std::io::stdin().is_terminal() {
        // rpassword reads from the terminal with echo off.
        let p = rpassword::prompt_password("Password: ").context("reading the password")?;
        if confirm_prompt {
            let again =
                rpassword::prompt_password("Repeat it: ").context("reading the password")?;
            if again != p {
                bail!("the two passwords differ; nothing was changed");
            }
        }
        return Ok(Some(p));
    }
    Ok(None)
}

async fn user(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            email,
            name,
            role,
            password_stdin,
            no_password,
            db,
            out,
        } => {
            let id = UserId::new(&email)?;
            let role = Role::parse(&role)?;
            let password = if no_password {
                None
            } else {
                read_password(password_stdin, true)?
            };
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            let u = app
                .auth()
                .create_user(&cli_admin()?, &id, &name, vec![role], password.as_deref())
                .await?;
            let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
            emit(
                out,
                || {
                    let mut s = format!(
                        "Created user {} ({}), role: {}.",
                        u.id,
                        u.full_name,
                        roles.join(", ")
                    );
                    if password.is_some() {
                        s.push_str(" Password set.");
                    } else {
                        s.push_str(&format!(
                            "\nNo password is set, so {0} cannot log in yet. Set one with:\n  memora user set-password {0}                   (prompts, in a terminal)\n  printf '%s\\n' \"$PASSWORD\" | memora user set-password {0} --password-stdin",
                            u.id
                        ));
                    }
                    s
                },
                json!({
                    "user": u.id.as_str(),
                    "full_name": u.full_name,
                    "roles": roles,
                    "password_set": password.is_some(),
                }),
            );
            Ok(())
        }
        UserCmd::SetPassword {
            email,
            password_stdin,
            db,
            out,
        } => {
            let id = UserId::new(&email)?;
            let Some(password) = read_password(password_stdin, true)? else {
                bail!(
                    "no password given: pass --password-stdin (and the password on standard input), set MEMORA_NEW_USER_PASSWORD, or run in a terminal to be prompted"
                );
            };
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            app.auth()
                .set_password(&cli_admin()?, &id, &password)
                .await?;
            emit(
                out,
                || format!("Password of {id} set."),
                json!({"user": id.as_str(), "password_set": true}),
            );
            Ok(())
        }
        UserCmd::ApiKey { email, db, out } => {
            let id = UserId::new(&email)?;
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            let k = app.auth().create_api_key(&cli_admin()?, &id).await?;
            emit(
                out,
                || {
                    format!(
                        "API key for {id} (the secret is shown once; store it now):\n  Authorization: token {}:{}",
                        k.key, k.secret
                    )
                },
                json!({"user": id.as_str(), "key": k.key, "secret": k.secret}),
            );
            Ok(())
        }
    }
}

fn institution_json(i: &memora_core::domain::Institution) -> serde_json::Value {
    json!({
        "institution": i.id.as_str(),
        "name": i.name,
        "status": i.status.as_str(),
        "created_at": i.created_at.to_rfc3339(),
        "max_devices": i.device_policy.as_ref().map(|p| p.max_devices),
        "device_limit": i.device_policy.as_ref().map(|p| p.on_limit.as_str()),
    })
}

/// The platform of the home institution over `db`, for the operator's
/// commands (institutions are opened without background work).
async fn cli_platform(
    db: &DbArgs,
    max_institutions: Option<u32>,
) -> anyhow::Result<Arc<memora_core::services::Platform>> {
    if db.institution.is_some() {
        bail!("institution commands act on the platform: unset --institution / MEMORA_INSTITUTION");
    }
    let cfg = backend_config(db, None, 0);
    let (app, built) = open_with(&cfg, false, |c| {
        if let Some(max) = max_institutions {
            c.max_institutions = max as usize;
        }
    })
    .await?;
    let (_stop_tx, stop_rx) = watch::channel(false);
    let (platform, _handles) = memora_http::tenancy::start_platform(
        app,
        &built,
        &cfg,
        cfg.db_pool_size.clamp(1, 4),
        jobs::Schedule::default(),
        stop_rx,
        memora_http::tenancy::Start::Command,
    )
    .await?;
    Ok(platform)
}

async fn institution(cmd: InstitutionCmd) -> anyhow::Result<()> {
    use memora_core::domain::{InstitutionId, InstitutionStatus};
    let home = InstitutionId::home();
    match cmd {
        InstitutionCmd::List { db, out } => {
            let platform = cli_platform(&db, None).await?;
            let list = platform.list_institutions(&cli_admin()?, &home).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        i.name.clone(),
                        i.status.as_str().to_owned(),
                        i.created_at.format("%Y-%m-%d").to_string(),
                    ]
                })
                .collect();
            emit(
                out,
                || columns(&["institution", "name", "status", "created"], &rows),
                json!(list.iter().map(institution_json).collect::<Vec<_>>()),
            );
            Ok(())
        }
        InstitutionCmd::Create {
            id,
            name,
            manager,
            manager_name,
            password_stdin,
            max_institutions,
            db,
            out,
        } => {
            let id = InstitutionId::new(id.trim())?;
            let manager = memora_core::ids::UserId::new(manager.trim())?;
            let password = match read_password(password_stdin, true)? {
                Some(p) => p,
                None => bail!(
                    "the manager needs a password: pass --password-stdin, set MEMORA_NEW_USER_PASSWORD, or run in a terminal"
                ),
            };
            let platform = cli_platform(&db, Some(max_institutions)).await?;
            let created = platform
                .create_institution(
                    &cli_admin()?,
                    &home,
                    id,
                    &name,
                    memora_core::services::platform::NewManager {
                        user: manager.clone(),
                        full_name: manager_name,
                        password,
                    },
                )
                .await?;
            emit(
                out,
                || {
                    format!(
                        "Created institution {} ({}); its manager {manager} can log in now. Act on it with --institution {}.",
                        created.id, created.name, created.id
                    )
                },
                institution_json(&created),
            );
            Ok(())
        }
        InstitutionCmd::Suspend { id, db, out } => {
            set_institution_status(id, db, out, InstitutionStatus::Suspended).await
        }
        InstitutionCmd::Resume { id, db, out } => {
            set_institution_status(id, db, out, InstitutionStatus::Active).await
        }
    }
}

async fn set_institution_status(
    id: String,
    db: DbArgs,
    out: OutputArgs,
    status: memora_core::domain::InstitutionStatus,
) -> anyhow::Result<()> {
    let home = memora_core::domain::InstitutionId::home();
    let id = memora_core::domain::InstitutionId::new(id.trim())?;
    let platform = cli_platform(&db, None).await?;
    let i = platform
        .set_status(&cli_admin()?, &home, &id, status)
        .await?;
    emit(
        out,
        || format!("{} is now {}.", i.id, i.status.as_str()),
        institution_json(&i),
    );
    Ok(())
}

async fn season(cmd: SeasonCmd) -> anyhow::Result<()> {
    match cmd {
        SeasonCmd::Create {
            name,
            start,
            end,
            scheduler,
            db,
            out,
        } => {
            let input = memora_core::services::admin::SeasonInput {
                id: SeasonId::new(&name)?,
                title: None,
                start_date: start,
                end_date: end,
                scheduler: Some(memora_core::srs::SchedulerKind::parse(&scheduler)?),
                desired_retention: None,
                auto_archive: false,
            };
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            let s = app.admin().create_season(&cli_admin()?, &input).await?;
            emit(
                out,
                || {
                    format!(
                        "Created season {} ({} to {}, scheduler {}), inactive: make it the active one with `memora season activate {}`.",
                        s.id,
                        s.start_date,
                        s.end_date,
                        s.scheduler.as_str(),
                        s.id
                    )
                },
                season_json(&s),
            );
            Ok(())
        }
        SeasonCmd::Activate { name, db, out } => {
            let (app, _built) = open(&backend_config(&db, None, 0), false).await?;
            let s = app
                .admin()
                .activate_season(&cli_admin()?, &SeasonId::new(&name)?)
                .await?;
            emit(
                out,
                || format!("{} is now the active season.", s.id),
                season_json(&s),
            );
            Ok(())
        }
    }
}

fn season_json(s: &memora_core::domain::Season) -> serde_json::Value {
    json!({
        "season": s.id.as_str(),
        "start_date": s.start_date.to_string(),
        "end_date": s.end_date.to_string(),
        "scheduler": s.scheduler.as_str(),
        "active": s.is_active,
        "archived": s.archived,
    })
}

/// Who may read /metrics.
struct MetricsAccess {
    token: Option<String>,
    bind: Option<SocketAddr>,
}

/// Logs what the server runs on, and what the operator may want to do next.
fn log_startup(report: &StartupReport) {
    tracing::info!(
        backend = report.backend,
        database = report.database.as_deref().unwrap_or("in-memory (nothing survives a restart)"),
        cache = %report.cache,
        queue = %report.queue,
        read_replica = report.read_replica.as_deref().unwrap_or("none"),
        "starting Memora"
    );
    if let Some(cause) = &report.read_replica_down {
        tracing::warn!(
            read_replica = report.read_replica.as_deref().unwrap_or("-"),
            cause = %cause,
            "check the read replica (reads it cannot answer go to the primary)"
        );
    }
    if report.backend == "postgres" {
        if report.migrations_applied > 0 {
            tracing::info!(
                applied = report.migrations_applied,
                total = report.migrations_known,
                "database migrated"
            );
        } else {
            tracing::info!(
                total = report.migrations_known,
                "database schema up to date"
            );
        }
        if report.database_empty {
            tracing::warn!(
                "the database has no season yet, so there is nothing to serve: load the demo with `memora seed-demo` (or create a season with `memora season create`)"
            );
        }
    }
    if report.redis_aof == Some(false) {
        tracing::warn!(
            redis = %report.cache,
            "Redis runs without an append-only file (appendonly no): answers acknowledged but still in the queue are lost if Redis restarts; set `appendonly yes` and `appendfsync everysec` (or always)"
        );
    }
    if let Some(down) = &report.redis_down {
        tracing::warn!(
            redis = %down.url,
            cause = %down.cause,
            "Redis does not answer at start-up: starting in SAFE MODE (reviews are served from PostgreSQL under rate limits, answers are written to PostgreSQL before they are acknowledged); Memora leaves safe mode by itself once Redis answers"
        );
    }
}

/// A share of a core's time: a number from 0.01 to 1.
fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.01..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}': expected a number from 0.01 to 1")),
    }
}

async fn serve(cmd: ServeCmd) -> anyhow::Result<()> {
    let cfg = backend_config(&cmd.db, Some(&cmd.redis), cmd.queue_reclaim_idle_ms);
    let schedule = jobs::Schedule {
        sync: std::time::Duration::from_millis(cmd.sync_interval_ms),
        ..jobs::Schedule::default()
    }
    .with_periods(&cmd.job_periods)
    .map_err(|e| anyhow::anyhow!("MEMORA_JOB_PERIODS: {e}"))?;
    let (app, built) = open_with(&cfg, true, |c| {
        c.safe_mode.global_per_window = cmd.safe_mode_global_per_minute;
        c.safe_mode.per_user_interval =
            std::time::Duration::from_secs(cmd.safe_mode_learner_interval_secs);
        c.max_institutions = cmd.max_institutions as usize;
        c.fsrs_refit_share = cmd.fsrs_refit_share;
        c.device_policy = memora_core::services::auth::DevicePolicy {
            max_devices: cmd.max_devices as usize,
            on_limit: if cmd.device_limit == "refuse" {
                memora_core::services::auth::DeviceLimitAction::Refuse
            } else {
                memora_core::services::auth::DeviceLimitAction::SignOutOldest
            },
        };
    })
    .await?;
    log_startup(&built.report);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (platform, tenant_handles) = memora_http::tenancy::start_platform(
        Arc::clone(&app),
        &built,
        &cfg,
        cmd.institution_pool_size,
        schedule,
        stop_rx.clone(),
        memora_http::tenancy::Start::Server,
    )
    .await?;
    let mut demo_pwd = String::new();
    if built.memory.is_some() {
        let (pwd, generated) = match &cmd.demo_password {
            Some(p) => (p.clone(), false),
            None => (random_password(), true),
        };
        demo_pwd = pwd.clone();
        let info = memora_core::demo::seed_demo(&app, &pwd).await?;
        println!(
            "Memora (embedded in-memory backend, demo dataset) on http://{}",
            cmd.bind
        );
        println!(
            "  demo accounts: {} and {}",
            memora_core::demo::DEMO_STUDENT,
            memora_core::demo::DEMO_ADMIN
        );
        if generated {
            println!("  demo password (generated, shown once): {pwd}");
        }
        println!(
            "  {} reviews due for the demo student in {}",
            info.due_now, info.season
        );
    }
    if built.memory.is_some() && cmd.max_institutions > 0 {
        let pwd = demo_pwd.clone();
        // A second institution, so the isolation is visible: its own
        // accounts, learners, store and leaderboards.
        let north =
            memora_core::domain::InstitutionId::new(memora_core::demo::DEMO_SECOND_INSTITUTION)?;
        platform
            .create_institution(
                &Actor::system(),
                &memora_core::domain::InstitutionId::home(),
                north.clone(),
                "Northside Academy (demo)",
                memora_core::services::platform::NewManager {
                    user: memora_core::ids::UserId::new(memora_core::demo::NORTHSIDE_ADMIN)?,
                    full_name: "Northside Manager".into(),
                    password: pwd.clone(),
                },
            )
            .await?;
        let north_app = platform.tenant(&north)?;
        memora_core::demo::seed_demo_as(
            &north_app,
            &pwd,
            memora_core::demo::DemoAccounts {
                admin: (memora_core::demo::NORTHSIDE_ADMIN, "Northside Manager"),
                student: (memora_core::demo::NORTHSIDE_STUDENT, "Northside Student"),
            },
        )
        .await?;
        println!(
            "  second institution `{north}`: {} and {}",
            memora_core::demo::NORTHSIDE_STUDENT,
            memora_core::demo::NORTHSIDE_ADMIN
        );
    }
    let metrics_access = MetricsAccess {
        token: cmd.metrics_token,
        bind: cmd.metrics_bind,
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let mut handles = jobs::spawn_all(Arc::clone(&app), schedule, stop_rx.clone());
    handles.push(memora_http::tenancy::spawn_refresh(
        Arc::clone(&platform),
        stop_rx.clone(),
    ));
    for spawn in built.extras.spawners {
        handles.push(spawn(Arc::clone(&app), stop_rx.clone()));
    }
    let separate = metrics_access.bind.is_some();
    let state = Arc::new(memora_http::AppState {
        memora: Arc::clone(&app),
        platform: Some(Arc::clone(&platform)),
        // With a separate metrics address the public listener has none.
        metrics: if separate { None } else { metrics.clone() },
        secure_cookies: cmd.secure_cookies,
        metrics_token: metrics_access.token.clone(),
    });
    if let Some(mbind) = metrics_access.bind {
        let mstate = Arc::new(memora_http::AppState {
            memora: Arc::clone(&app),
            platform: Some(Arc::clone(&platform)),
            metrics,
            secure_cookies: cmd.secure_cookies,
            metrics_token: metrics_access.token,
        });
        let mlistener = tokio::net::TcpListener::bind(mbind)
            .await
            .with_context(|| format!("binding the metrics address {mbind}"))?;
        tracing::info!(bind = %mbind, "metrics listening");
        let mut mstop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            let _ =
                memora_http::serve(mlistener, memora_http::metrics_router(mstate), async move {
                    let _ = mstop.changed().await;
                })
                .await;
        }));
    }
    let listener = tokio::net::TcpListener::bind(cmd.bind)
        .await
        .with_context(|| format!("binding {} (MEMORA_BIND)", cmd.bind))?;
    tracing::info!(bind = %cmd.bind, "listening");
    memora_http::serve(listener, memora_http::router(state), shutdown_signal()).await?;
    tracing::info!("draining background work");
    let _ = stop_tx.send(true);
    let tenant_handles = tenant_handles
        .lock()
        .map(|mut h| std::mem::take(&mut *h))
        .unwrap_or_default();
    for h in handles.into_iter().chain(tenant_handles) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), h).await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `--tz`: a strict fixed UTC offset in minutes (see
/// `memora_core::time::parse_utc_offset`).
fn tz_offset(text: &str) -> Result<i32, String> {
    memora_core::time::parse_utc_offset(text).map_err(|e| e.to_string())
}

fn eval_revlog(
    file: &std::path::Path,
    offset_minutes: i32,
    rollover_hour: u8,
    out: OutputArgs,
) -> anyhow::Result<()> {
    use memora_core::srs::{evaluate, optimizer::FitConfig, revlog};
    if rollover_hour > 23 {
        bail!("--rollover-hour must be 0..=23");
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let entries = revlog::parse_revlog_csv(&text)?;
    let start = std::time::Instant::now();
    let report = evaluate::evaluate_revlog(
        &entries,
        offset_minutes,
        rollover_hour,
        &FitConfig::default(),
    );
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    emit(
        out,
        || {
            let name_w = report
                .rows
                .iter()
                .map(|r| r.model.len())
                .max()
                .unwrap_or(5)
                .max(5);
            let mut s = format!(
                "{} reviews, UTC offset {offset_minutes} min, rollover {rollover_hour} h, 5-fold time-series split\n\n",
                entries.len()
            );
            s.push_str(&format!(
                "{:<name_w$}  {:>8}  {:>10}  {:>6}  {:>6}\n",
                "model", "log loss", "RMSE(bins)", "AUC", "n"
            ));
            for r in &report.rows {
                s.push_str(&format!(
                    "{:<name_w$}  {:>8.4}  {:>10.4}  {:>6.4}  {:>6}\n",
                    r.model, r.log_loss, r.rmse_bins, r.auc, r.n
                ));
            }
            s.push_str(&format!(
                "\nLower log loss and RMSE are better, higher AUC is better. Evaluated in {ms:.0} ms."
            ));
            s
        },
        json!({
            "reviews": entries.len(),
            "items": report.items,
            "utc_offset_minutes": offset_minutes,
            "rollover_hour": rollover_hour,
            "models": report.rows.iter().map(|r| json!({
                "model": r.model,
                "log_loss": r.log_loss,
                "rmse_bins": r.rmse_bins,
                "auc": if r.auc.is_finite() { Some(r.auc) } else { None },
                "n": r.n,
            })).collect::<Vec<_>>(),
            "elapsed_ms": ms,
        }),
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tz_of(args: &[&str]) -> Result<i32, clap::Error> {
        let mut argv = vec!["memora", "eval-revlog", "log.csv"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::EvalRevlog { tz, .. }) => Ok(tz),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn redis_load_of(args: &[&str]) -> Result<memora_cache_redis::LoadWrite, clap::Error> {
        let mut argv = vec!["memora", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Serve(cmd)) => Ok(cmd.redis.redis_load.into()),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn question_keys_of(args: &[&str]) -> Result<bool, clap::Error> {
        let mut argv = vec!["memora", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Serve(cmd)) => {
                Ok(!backend_config(&cmd.db, Some(&cmd.redis), 0).redis_keys_by_id)
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    fn refit_share_of(args: &[&str]) -> Result<f64, clap::Error> {
        let mut argv = vec!["memora", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Serve(cmd)) => Ok(cmd.fsrs_refit_share),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_refit_share_is_a_quarter_unless_set_between_a_hundredth_and_one() {
        assert_eq!(refit_share_of(&[]).unwrap(), 0.25);
        assert_eq!(refit_share_of(&["--fsrs-refit-share", "1"]).unwrap(), 1.0);
        assert_eq!(
            refit_share_of(&["--fsrs-refit-share", "0.01"]).unwrap(),
            0.01
        );
        for bad in ["0", "-0.5", "1.5", "NaN", "a lot"] {
            let arg = format!("--fsrs-refit-share={bad}");
            let err = refit_share_of(&[&arg]).expect_err(bad);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn question_keys_are_numbers_unless_ids_are_asked_for() {
        assert!(question_keys_of(&[]).unwrap(), "numbers by default");
        assert!(question_keys_of(&["--redis-question-keys", "numbers"]).unwrap());
        assert!(!question_keys_of(&["--redis-question-keys", "ids"]).unwrap());
        let err = question_keys_of(&["--redis-question-keys", "names"]).expect_err("unknown");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{err}");
    }

    #[test]
    fn redis_load_takes_the_three_ways_and_refuses_others() {
        use memora_cache_redis::LoadWrite;
        assert_eq!(redis_load_of(&[]).unwrap(), LoadWrite::Listpack);
        for (arg, way) in [
            ("listpack", LoadWrite::Listpack),
            ("generic", LoadWrite::Generic),
            ("commands", LoadWrite::Commands),
        ] {
            assert_eq!(redis_load_of(&["--redis-load", arg]).unwrap(), way, "{arg}");
        }
        let err = redis_load_of(&["--redis-load", "fast"]).expect_err("unknown way");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{err}");
    }

    #[test]
    fn eval_revlog_tz_takes_strict_offsets_including_negative_ones() {
        assert_eq!(tz_of(&[]).unwrap(), 0, "UTC by default");
        for (arg, minutes) in [
            ("-05:00", -300),
            ("+05:30", 330),
            ("-0930", -570),
            ("-03", -180),
            ("+14:00", 840),
            ("Z", 0),
            ("UTC", 0),
        ] {
            assert_eq!(tz_of(&["--tz", arg]).unwrap(), minutes, "--tz {arg}");
            assert_eq!(
                tz_of(&[&format!("--tz={arg}")]).unwrap(),
                minutes,
                "--tz={arg}"
            );
        }
        for arg in [
            "+05:-30",
            "+-5",
            "+5",
            "05:30",
            "+05:20",
            "-14:30",
            "+15",
            "Asia/Kolkata",
        ] {
            let err = tz_of(&["--tz", arg]).expect_err(arg);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "--tz {arg}: {err}"
            );
            assert!(err.to_string().contains("invalid UTC offset"), "{err}");
        }
        // A value is still required.
        assert!(tz_of(&["--tz"]).is_err());
    }
}
