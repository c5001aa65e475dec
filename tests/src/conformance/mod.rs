//! Port conformance suites, written once and run against every adapter.

pub mod cache;
pub mod queue;
pub mod store;
