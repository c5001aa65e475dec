//! The store and institution-directory conformance suites on the in-memory
//! reference adapters.

use std::sync::Arc;

use memora_core::memory::{InMemoryBackend, InMemoryDirectory};
use memora_tests::conformance::directory::Directories;
use memora_tests::conformance::store::Stores;

struct Mem(InMemoryBackend, InMemoryDirectory);

impl Mem {
    async fn setup() -> Option<Mem> {
        Some(Mem(InMemoryBackend::new(), InMemoryDirectory::new()))
    }
    fn stores(&self) -> Stores {
        // A clone shares the state, lock table included: "another process".
        Stores::from_backend(Arc::new(self.0.clone()), Arc::new(self.0.clone()))
    }
    fn directories(&self) -> Directories {
        // Clones share the directory: "another process".
        Directories {
            this: Arc::new(self.1.clone()),
            other: Arc::new(self.1.clone()),
        }
    }
    async fn teardown(self) {}
}

memora_tests::store_conformance!(Mem::setup());
memora_tests::directory_conformance!(Mem::setup());
