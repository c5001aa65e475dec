//! Port conformance suites, written once and run against every adapter.

pub mod attempts;
pub mod cache;
pub mod queue;
pub mod served;
pub mod store;
