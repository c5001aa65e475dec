//! HTTP tests on the in-memory backend: the router is driven with
//! `oneshot`, no sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod console;
mod content_import;
mod contract;
mod devices;
mod endpoints;
mod hostile_devices;
mod hostile_institutions;
mod hostile_institutions_regressions;
mod institutions;
mod isolation;
mod ops;
mod store_admin;
