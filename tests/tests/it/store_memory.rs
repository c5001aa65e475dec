//! The store conformance suite on the in-memory reference adapter.

use std::sync::Arc;

use memora_core::memory::InMemoryBackend;
use memora_tests::conformance::store::Stores;

struct Mem(InMemoryBackend);

impl Mem {
    async fn setup() -> Option<Mem> {
        Some(Mem(InMemoryBackend::new()))
    }
    fn stores(&self) -> Stores {
        // A clone shares the state, lock table included: "another process".
        Stores::from_backend(Arc::new(self.0.clone()), Arc::new(self.0.clone()))
    }
    async fn teardown(self) {}
}

memora_tests::store_conformance!(Mem::setup());
