//! Port conformance suites, written once and run against every adapter.
//! The store suites are one module per port (the split memory and player
//! ports each have their own); `store` holds their shared harness and the
//! smaller store ports' checks. `directory` pins the platform directory of
//! institutions (its own harness: it is not one of an institution's stores).

pub mod activity;
pub mod archive;
pub mod attempts;
pub mod cache;
pub mod directory;
pub mod fast_path;
pub mod fsrs_params;
pub mod job_progress;
pub mod numbers;
pub mod profile;
pub mod queue;
pub mod review_log;
pub mod season_scan;
pub mod served;
pub mod store;
pub mod tracker;
