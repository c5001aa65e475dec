//! Operator-facing tests: what a person installing and running Memora sees.
//! They drive the real `memora` binary (start-up errors, CLI output and
//! flags, the request log, metrics, safe mode when Redis is down at start-up,
//! the README walkthrough). Tests that need PostgreSQL read
//! `MEMORA_TEST_DATABASE_URL` and skip with a notice when it is unreachable,
//! except under `CI`, where they fail.

mod cli;
mod http;
mod round_trips;
mod safe_mode;
mod startup;
mod support;
mod walkthrough;
