//! memora-core integration tests: the use cases over the in-memory adapters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod boards;
mod breakers;
mod coherence;
mod content_import;
mod deps;
mod devices;
mod fast_path;
mod faults;
mod lesson_crash;
mod lessons;
mod lost_enqueue;
mod map;
mod ops;
mod platform;
mod quests;
mod review_fill;
mod revlog_josh;
mod store_admin;
// Helpers shared by the learning-area modules; not every module uses all.
#[allow(dead_code)]
mod support;
mod time_zones;
mod usecases;
