//! memora-core integration tests: the use cases over the in-memory adapters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod content_import;
mod deps;
mod lesson_crash;
mod ops;
mod revlog_josh;
mod store_admin;
mod usecases;
