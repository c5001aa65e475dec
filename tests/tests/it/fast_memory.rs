//! The review fast-path conformance suite on its reference: the core's
//! `ComposedFastPath` over the in-memory cache, ledger and write-through
//! queue (recorded, so the suite can read the jobs back) and an in-memory
//! board.

use std::sync::Arc;

use async_trait::async_trait;
use memora_core::memory::{ComposedFastPath, InMemoryBackend};
use memora_core::ports::{
    DueCache, LeaderboardCache, PersistJob, PersistenceQueue, ReviewFastPath, SeasonStore,
    ServedLedger,
};
use memora_tests::conformance::cache::BuildBoard;
use memora_tests::conformance::fast_path::{FastPathHarness, MemoryBoard, RecordingQueue};

struct Mem {
    backend: InMemoryBackend,
    queue: Arc<RecordingQueue>,
    board: Arc<MemoryBoard>,
    fast: Arc<ComposedFastPath>,
}

impl Mem {
    async fn setup() -> Option<Mem> {
        let backend = InMemoryBackend::new();
        for year in [2026, 2027] {
            let s = memora_core::domain::Season::new(
                memora_tests::conformance::cache::season(year),
                "test",
                chrono::NaiveDate::from_ymd_opt(year as i32 - 1, 9, 1).expect("date"),
                chrono::NaiveDate::from_ymd_opt(year as i32, 8, 31).expect("date"),
            )
            .expect("season");
            backend.create_season(&s).await.expect("create season");
        }
        let queue = Arc::new(RecordingQueue::new(Arc::new(backend.queue())));
        let board = Arc::new(MemoryBoard::default());
        let fast = Arc::new(ComposedFastPath::new(
            Arc::new(backend.cache()),
            Arc::new(backend.clone()),
            queue.clone(),
            Some(board.clone() as Arc<dyn LeaderboardCache>),
        ));
        Some(Mem {
            backend,
            queue,
            board,
            fast,
        })
    }
}

#[async_trait]
impl FastPathHarness for Mem {
    fn fast(&self) -> Arc<dyn ReviewFastPath> {
        self.fast.clone()
    }
    fn cache(&self) -> Arc<dyn DueCache> {
        Arc::new(self.backend.cache())
    }
    fn ledger(&self) -> Arc<dyn ServedLedger> {
        Arc::new(self.backend.clone())
    }
    fn queue(&self) -> Arc<dyn PersistenceQueue> {
        self.queue.clone()
    }
    fn board(&self) -> Option<Arc<dyn BuildBoard>> {
        Some(self.board.clone())
    }
    async fn enqueued(&self) -> Vec<PersistJob> {
        self.queue.jobs()
    }
    async fn teardown(&self) {}
}

memora_tests::fast_path_conformance!(Mem::setup());
