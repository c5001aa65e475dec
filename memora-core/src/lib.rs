//! # memora-core
//!
//! The pure domain of Memora, a spaced-repetition and gamification backend
//! for schools: SRS schedulers (Memora's ladder and FSRS-6), level / streak /
//! XP math, the safe-mode rate limiter, archival and reconciliation policy,
//! the use cases behind every endpoint (one service per area behind the
//! [`Memora`] facade: `learning()`, `reviews()`, `gamification()`,
//! `commerce()`, `admin()`, `auth()`; see [`services`]), the ports (async traits)
//! for storage, cache, queue and clock ([`ports`]), and in-memory adapters
//! for all of them ([`memory`]).
//!
//! The crate performs no I/O and depends on no database, cache, HTTP or
//! async-runtime crate: link it with the in-memory adapters and you have the
//! whole product in one process; link it with `memora-store-postgres` and
//! `memora-cache-redis` and it scales out.
//!
//! ```
//! use memora_core::{Memora, memory::InMemoryBackend, services::Config};
//! let backend = InMemoryBackend::new();
//! let app = Memora::new(backend.ports(), Config::default());
//! assert!(!app.cache_health().is_degraded());
//! // Each area is a service: app.reviews().get_review_session(&actor, &query),
//! // app.admin().run_season_rebuild(&job), …
//! assert_eq!(app.config().review_limit_max, 50);
//! ```

pub mod demo;
pub mod domain;
pub mod error;
pub mod gamification;
pub mod ids;
pub mod lifecycle;
pub mod memory;
pub mod ports;
pub mod safe_mode;
pub mod services;
pub mod srs;
pub mod text;
pub mod time;
pub mod util;

pub use error::{CoreError, CoreResult, PortError, PortResult};
pub use services::Memora;
