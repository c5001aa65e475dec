//! Full-stack tests on real services: the `memora` binary on PostgreSQL and
//! Redis, driven over HTTP. `cargo test fault` selects the fault-injection
//! tests; `e2e_` is the end-to-end journey.
//!
//! Each test gets its own database (in the PostgreSQL at
//! `MEMORA_TEST_DATABASE_URL`) and its own `redis-server` on a free port
//! (AOF with `appendfsync always`: the durable queue's Redis must be
//! configured for durability), so stopping Redis affects only that test.
//! Without PostgreSQL or `redis-server` the tests are skipped with a notice,
//! unless `CI` is set, where they fail.
//!
//! `instances` runs three server processes on one PostgreSQL and one Redis
//! (or the test process's Redis Cluster, from `memora-tests`). Each
//! server's output goes to a log file whose tail is printed when its test
//! fails (`MEMORA_FAULT_LOG` sets the servers' `RUST_LOG`, default `warn`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod instances;
mod scenarios;
