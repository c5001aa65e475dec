//! The cache conformance suite on the in-memory reference adapter.

use std::sync::Arc;

use memora_core::memory::InMemoryCache;
use memora_core::ports::DueCache;

async fn fixture() -> Option<Arc<dyn DueCache>> {
    Some(Arc::new(InMemoryCache::new()))
}

memora_tests::due_cache_conformance!(fixture);
