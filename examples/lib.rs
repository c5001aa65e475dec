//! Examples crate (see review_loop.rs).
