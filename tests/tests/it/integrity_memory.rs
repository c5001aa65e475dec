//! The served-ledger and attempt-counter conformance suites on the
//! in-memory reference adapters (`InMemoryBackend`, `LocalAttempts`).

use std::sync::Arc;

use memora_core::memory::{InMemoryBackend, LocalAttempts};
use memora_core::ports::{AttemptCounter, ServedLedger};

struct Mem(InMemoryBackend);

impl Mem {
    async fn setup() -> Option<Mem> {
        Some(Mem(InMemoryBackend::new()))
    }
    fn ledger(&self) -> Arc<dyn ServedLedger> {
        Arc::new(self.0.clone())
    }
    async fn teardown(self) {}
}

memora_tests::served_ledger_conformance!(Mem::setup(), purging);

async fn counter() -> Option<Arc<dyn AttemptCounter>> {
    Some(Arc::new(LocalAttempts::default()))
}

memora_tests::attempts_conformance!(counter);
