//! The `memora` binary: serves the API (default) and runs admin commands.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use memora_core::Memora;
use memora_core::domain::{Actor, Role};
use memora_core::ids::{SeasonId, UserId};
use memora_core::services::Config;
use memora_http::backend::{self, BackendConfig};
use memora_http::jobs;
use tokio::sync::watch;

/// Memora: spaced repetition and gamification for schools.
///
/// Environment: MEMORA_BIND, MEMORA_DATABASE_URL (unset = embedded in-memory
/// demo), MEMORA_REDIS_URL or MEMORA_REDIS_CLUSTER_NODES (unset = in-process
/// cache), MEMORA_DEMO_PASSWORD, MEMORA_LOG_FORMAT (pretty|json), RUST_LOG.
#[derive(Parser, Debug)]
#[command(
    name = "memora",
    version,
    about = "Memora: spaced repetition and gamification for schools (Frappe-compatible API server and admin CLI)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "MEMORA_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    bind: SocketAddr,
    /// PostgreSQL URL; unset = embedded in-memory backend with the demo dataset.
    #[arg(
        long,
        env = "MEMORA_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Redis URL (single node); unset = in-process cache.
    #[arg(long, env = "MEMORA_REDIS_URL", global = true, hide_env_values = true)]
    redis_url: Option<String>,
    /// Redis Cluster nodes, comma-separated (instead of --redis-url).
    #[arg(
        long,
        env = "MEMORA_REDIS_CLUSTER_NODES",
        global = true,
        hide_env_values = true
    )]
    redis_cluster_nodes: Option<String>,
    /// Database connection pool size.
    #[arg(long, env = "MEMORA_DB_POOL_SIZE", default_value_t = 16, global = true)]
    db_pool_size: u32,
    /// Queue entries left pending this long by a crashed worker are reclaimed (ms).
    #[arg(
        long,
        env = "MEMORA_QUEUE_RECLAIM_IDLE_MS",
        default_value_t = 30_000,
        global = true
    )]
    queue_reclaim_idle_ms: u64,
    /// Password of the demo accounts (random and printed once if unset).
    #[arg(
        long,
        env = "MEMORA_DEMO_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    demo_password: Option<String>,
    /// Log format.
    #[arg(
        long,
        env = "MEMORA_LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    log_format: String,
    /// Mark the session cookie Secure (when served over HTTPS).
    #[arg(
        long,
        env = "MEMORA_SECURE_COOKIES",
        default_value_t = false,
        global = true
    )]
    secure_cookies: bool,
    /// Redis key namespace (lets several deployments share one Redis).
    #[arg(long, env = "MEMORA_REDIS_NAMESPACE", global = true)]
    redis_namespace: Option<String>,
    /// Require `Authorization: Bearer <token>` on /metrics.
    #[arg(
        long,
        env = "MEMORA_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    metrics_token: Option<String>,
    /// Serve /metrics on this separate address only (e.g. 127.0.0.1:9100),
    /// not on the public listener.
    #[arg(long, env = "MEMORA_METRICS_BIND", global = true)]
    metrics_bind: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply database migrations.
    Migrate,
    /// Load the demo dataset into the database.
    SeedDemo,
    /// Import a content bundle (JSON catalog).
    ImportContent {
        /// The bundle file.
        file: std::path::PathBuf,
    },
    /// Users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Seasons.
    Season {
        #[command(subcommand)]
        cmd: SeasonCmd,
    },
    /// Cache operations.
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
    /// Compare cache and database and correct stale cache entries.
    Reconcile {
        /// Rows to sample (100..=100000).
        #[arg(long, default_value_t = 10_000)]
        sample_size: u64,
        /// Only this season.
        #[arg(long)]
        season: Option<String>,
    },
    /// Archive a finished season.
    Archive {
        /// Season name.
        season: String,
        /// Required: confirm the archive.
        #[arg(long)]
        confirm: bool,
    },
    /// Evaluate schedulers on a review-log CSV (card_id,review_rating,review_time,review_duration).
    EvalRevlog {
        /// The CSV file.
        file: std::path::PathBuf,
        /// UTC offset of the learner, e.g. +03:00 (default UTC).
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Hour at which the learner's day rolls over.
        #[arg(long, default_value_t = 4)]
        rollover_hour: u8,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a user.
    Add {
        /// E-mail (login).
        email: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Role: student or admin.
        #[arg(long, default_value = "student")]
        role: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "MEMORA_NEW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Create an API key for a user (the secret is printed once).
    ApiKey {
        /// E-mail.
        email: String,
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
    },
    /// Make a season the active one.
    Activate {
        /// Name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    /// Rebuild a season's cache from the database.
    Rebuild {
        /// Season name.
        season: String,
    },
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn random_password() -> String {
    let bytes: [u8; 9] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    let cfg = BackendConfig {
        database_url: cli.database_url.clone(),
        redis_url: cli.redis_url.clone(),
        redis_cluster_nodes: cli.redis_cluster_nodes.clone(),
        redis_namespace: cli.redis_namespace.clone(),
        db_pool_size: cli.db_pool_size,
        queue_reclaim_idle: std::time::Duration::from_millis(cli.queue_reclaim_idle_ms),
    };
    if let Some(Command::EvalRevlog {
        file,
        tz,
        rollover_hour,
    }) = &cli.command
    {
        return eval_revlog(file, tz, *rollover_hour);
    }
    let command = cli.command.unwrap_or(Command::Serve);
    let built = backend::build(&cfg).await?;
    let embedded = built.memory.is_some();
    // The server's health probe (every second) restores normal mode, so
    // requests need not retry a down cache inline (which would make one
    // request per interval pay the cache timeout).
    let config = Config {
        cache_retry_interval: std::time::Duration::from_secs(30),
        ..Config::default()
    };
    let app = Arc::new(Memora::new(built.ports.clone(), config));
    let admin = Actor::system();
    if embedded && !matches!(command, Command::Serve) {
        bail!(
            "this command needs a database: set MEMORA_DATABASE_URL (the embedded backend lives only while `memora serve` runs)"
        );
    }
    match command {
        Command::Serve => {
            let metrics = MetricsAccess {
                token: cli.metrics_token.clone(),
                bind: cli.metrics_bind,
            };
            serve(
                cli.bind,
                app,
                built,
                cli.demo_password,
                cli.secure_cookies,
                metrics,
            )
            .await
        }
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::SeedDemo => {
            let pwd = cli.demo_password.unwrap_or_else(random_password);
            let info = memora_core::demo::seed_demo(&app, &pwd).await?;
            println!(
                "demo loaded: season {}, {} reviews due; password: {pwd}",
                info.season, info.due_now
            );
            Ok(())
        }
        Command::ImportContent { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let catalog = serde_json::from_str(&text).context("parsing the content bundle")?;
            let idx = app.admin().import_content(&admin, &catalog).await?;
            println!(
                "imported: {} subjects, {} lessons in the catalog",
                idx.catalog().subjects.len(),
                idx.catalog().lessons.len()
            );
            Ok(())
        }
        Command::User {
            cmd:
                UserCmd::Add {
                    email,
                    name,
                    role,
                    password,
                },
        } => {
            let u = app
                .auth()
                .create_user(
                    &admin,
                    &UserId::new(&email)?,
                    &name,
                    vec![Role::parse(&role)?],
                    password.as_deref(),
                )
                .await?;
            println!("created {} ({:?})", u.id, u.roles);
            Ok(())
        }
        Command::User {
            cmd: UserCmd::ApiKey { email },
        } => {
            let k = app
                .auth()
                .create_api_key(&admin, &UserId::new(&email)?)
                .await?;
            println!("Authorization: token {}:{}", k.key, k.secret);
            Ok(())
        }
        Command::Season {
            cmd:
                SeasonCmd::Create {
                    name,
                    start,
                    end,
                    scheduler,
                },
        } => {
            let s = app
                .admin()
                .create_season(
                    &admin,
                    &memora_core::services::admin::SeasonInput {
                        id: SeasonId::new(&name)?,
                        title: None,
                        start_date: start,
                        end_date: end,
                        scheduler: Some(memora_core::srs::SchedulerKind::parse(&scheduler)?),
                        desired_retention: None,
                        auto_archive: false,
                    },
                )
                .await?;
            println!("created season {}", s.id);
            Ok(())
        }
        Command::Season {
            cmd: SeasonCmd::Activate { name },
        } => {
            let s = app
                .admin()
                .activate_season(&admin, &SeasonId::new(&name)?)
                .await?;
            println!("active season: {}", s.id);
            Ok(())
        }
        Command::Cache {
            cmd: CacheCmd::Rebuild { season },
        } => {
            let job = app
                .admin()
                .start_season_rebuild(&admin, &SeasonId::new(&season)?)
                .await?;
            let done = app.admin().run_season_rebuild(&job.id).await?;
            println!(
                "rebuilt {}: {} rows, {} schedules",
                season, done.processed, done.users
            );
            Ok(())
        }
        Command::Reconcile {
            sample_size,
            season,
        } => {
            let season = season.map(SeasonId::new).transpose()?;
            let r = app
                .admin()
                .trigger_reconciliation(&admin, Some(sample_size), season.as_ref())
                .await?;
            println!("{r:?}");
            Ok(())
        }
        Command::Archive { season, confirm } => {
            let out = app
                .admin()
                .archive_season(&admin, &SeasonId::new(&season)?, confirm)
                .await?;
            println!(
                "archived {} rows, deleted {} cache keys",
                out.records_archived, out.cache_keys_deleted
            );
            Ok(())
        }
        Command::EvalRevlog { .. } => Ok(()),
    }
}

/// Who may read /metrics.
struct MetricsAccess {
    token: Option<String>,
    bind: Option<SocketAddr>,
}

async fn serve(
    bind: SocketAddr,
    app: Arc<Memora>,
    built: backend::Built,
    demo_password: Option<String>,
    secure_cookies: bool,
    metrics_access: MetricsAccess,
) -> anyhow::Result<()> {
    if built.memory.is_some() {
        let (pwd, generated) = match demo_password {
            Some(p) => (p, false),
            None => (random_password(), true),
        };
        let info = memora_core::demo::seed_demo(&app, &pwd).await?;
        println!("Memora (embedded in-memory backend, demo dataset) on http://{bind}");
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
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = jobs::spawn_all(Arc::clone(&app), jobs::Schedule::default(), stop_rx.clone());
    for spawn in built.extras.spawners {
        handles.push(spawn(Arc::clone(&app), stop_rx.clone()));
    }
    let separate = metrics_access.bind.is_some();
    let state = Arc::new(memora_http::AppState {
        memora: Arc::clone(&app),
        // With a separate metrics address the public listener has none.
        metrics: if separate { None } else { metrics.clone() },
        secure_cookies,
        metrics_token: metrics_access.token.clone(),
    });
    if let Some(mbind) = metrics_access.bind {
        let mstate = Arc::new(memora_http::AppState {
            memora: Arc::clone(&app),
            metrics,
            secure_cookies,
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
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    tracing::info!(%bind, "listening");
    memora_http::serve(listener, memora_http::router(state), shutdown_signal()).await?;
    tracing::info!("draining background work");
    let _ = stop_tx.send(true);
    for h in handles {
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

fn eval_revlog(file: &std::path::Path, tz: &str, rollover_hour: u8) -> anyhow::Result<()> {
    use memora_core::srs::{evaluate, optimizer::FitConfig, revlog};
    if rollover_hour > 23 {
        bail!("--rollover-hour must be 0..=23");
    }
    let offset_minutes = parse_offset(tz)?;
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
    println!(
        "{} reviews, UTC offset {offset_minutes} min, rollover {rollover_hour} h, 5-fold time-series split\n",
        entries.len()
    );
    println!("{report}");
    println!(
        "(evaluated in {:.0} ms)",
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn parse_offset(tz: &str) -> anyhow::Result<i32> {
    let t = tz.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match t.chars().next() {
        Some('+') => (1, &t[1..]),
        Some('-') => (-1, &t[1..]),
        _ => bail!("--tz must be UTC or an offset like +03:00"),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h.parse().context("offset hours")?;
    let m: i32 = m.parse().context("offset minutes")?;
    if h > 14 || m > 59 {
        bail!("offset out of range");
    }
    Ok(sign * (h * 60 + m))
}
