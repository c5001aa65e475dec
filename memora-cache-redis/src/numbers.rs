//! [`Numbering`]: question ids ↔ their permanent numbers
//! ([`QuestionNumbers`]), kept in the process.
//!
//! The schedule keys of layout 4 hold each card under its question's
//! number, and the served-set ledger names a question served from such a
//! schedule `q{<number>` (`{` cannot occur in an id, so the name never
//! meets one the core makes). Numbers never change meaning, so a process
//! keeps every mapping it has seen — nothing to invalidate — and asks the
//! source ([`QuestionNumbers`], PostgreSQL in the server) only for the ones
//! it has not: a warm process adds no round trip.
//!
//! Two maps behind `RwLock`s rather than `moka` caches: a rehydration looks
//! up 100 000 ids, which under one read lock costs a few milliseconds,
//! several times less than 100 000 cache lookups with their bookkeeping;
//! and since an entry never goes stale, a bound that empties a map when it
//! is full (a catalog larger than [`Numbering::with_capacity`]) is all
//! the eviction needed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use memora_core::ids::QuestionId;
use memora_core::ports::QuestionNumbers;

use crate::error::{Error, Result};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Mappings kept per direction by default (~60 B by id, ~90 B by number:
/// ~300 MB for a catalog of 2 M questions, the most a process keeps).
pub const DEFAULT_CAPACITY: usize = 2_000_000;

/// Question ids and their numbers, from a [`QuestionNumbers`] source, kept
/// in the process. Clones share the maps.
#[derive(Clone)]
pub struct Numbering {
    source: Arc<dyn QuestionNumbers>,
    by_id: Arc<RwLock<FastMap<String, u64>>>,
    by_number: Arc<RwLock<FastMap<u64, QuestionId>>>,
    capacity: usize,
}

impl std::fmt::Debug for Numbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Numbering")
            .field("capacity", &self.capacity)
            .finish()
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Task("question numbering lock poisoned".into())
}

impl Numbering {
    /// Numbers from `source`, keeping up to [`DEFAULT_CAPACITY`] mappings.
    pub fn new(source: Arc<dyn QuestionNumbers>) -> Self {
        Self::with_capacity(source, DEFAULT_CAPACITY)
    }

    /// Numbers from `source`, keeping up to `capacity` mappings per
    /// direction (a full map is emptied and refilled as ids come).
    pub fn with_capacity(source: Arc<dyn QuestionNumbers>, capacity: usize) -> Self {
        Numbering {
            source,
            by_id: Arc::default(),
            by_number: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn keep(&self, pairs: impl IntoIterator<Item = (QuestionId, u64)>) -> Result<()> {
        let pairs: Vec<(QuestionId, u64)> = pairs.into_iter().collect();
        if pairs.is_empty() {
            return Ok(());
        }
        {
            let mut by_id = self.by_id.write().map_err(poisoned)?;
            if by_id.len() + pairs.len() > self.capacity {
                by_id.clear();
            }
            for (q, n) in &pairs {
                by_id.insert(q.as_str().to_owned(), *n);
            }
        }
        let mut by_number = self.by_number.write().map_err(poisoned)?;
        if by_number.len() + pairs.len() > self.capacity {
            by_number.clear();
        }
        by_number.extend(pairs.into_iter().map(|(q, n)| (n, q)));
        Ok(())
    }

    /// Known numbers of `ids` (`None` where this process has none yet).
    fn known<'q>(&self, ids: impl Iterator<Item = &'q QuestionId>) -> Result<Vec<Option<u64>>> {
        let by_id = self.by_id.read().map_err(poisoned)?;
        Ok(ids.map(|q| by_id.get(q.as_str()).copied()).collect())
    }

    /// The numbers of `ids`: the known ones from the process, the others
    /// from the source — numbering them (`assign`) or only looking them up.
    async fn lookup<'q>(
        &self,
        ids: impl ExactSizeIterator<Item = &'q QuestionId> + Clone,
        assign: bool,
    ) -> Result<Vec<Option<u64>>> {
        let mut out = self.known(ids.clone())?;
        let missing: Vec<QuestionId> = ids
            .clone()
            .zip(&out)
            .filter(|(_, n)| n.is_none())
            .map(|(q, _)| q.clone())
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let got: Vec<Option<u64>> = if assign {
            self.source
                .assign_numbers(&missing)
                .await
                .map_err(Error::Numbers)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            self.source
                .find_numbers(&missing)
                .await
                .map_err(Error::Numbers)?
        };
        if got.len() != missing.len() {
            return Err(Error::Decode(format!(
                "{} numbers for {} questions",
                got.len(),
                missing.len()
            )));
        }
        let found: Vec<(QuestionId, u64)> = missing
            .into_iter()
            .zip(got)
            .filter_map(|(q, n)| n.map(|n| (q, n)))
            .collect();
        let fresh: FastMap<&str, u64> = found.iter().map(|(q, n)| (q.as_str(), *n)).collect();
        for (q, n) in ids.zip(out.iter_mut()) {
            if n.is_none() {
                *n = fresh.get(q.as_str()).copied();
            }
        }
        self.keep(found)?;
        Ok(out)
    }

    /// The number of each id, numbering ids that have none (for ids the
    /// server itself writes: a schedule's cards, questions it serves).
    pub async fn assign<'q>(
        &self,
        ids: impl ExactSizeIterator<Item = &'q QuestionId> + Clone,
    ) -> Result<Vec<u64>> {
        self.lookup(ids, true)
            .await?
            .into_iter()
            .map(|n| n.ok_or_else(|| Error::Decode("a question got no number".into())))
            .collect()
    }

    /// The number of each id, `None` for an id that has none (numbers
    /// nothing: for ids a client sent).
    pub async fn find(&self, ids: &[QuestionId]) -> Result<Vec<Option<u64>>> {
        self.lookup(ids.iter(), false).await
    }

    /// Reads every number given so far (up to the capacity), page by page,
    /// so that this process maps the questions it will serve without asking
    /// the store — which keeps warm reviews independent of PostgreSQL, as
    /// they were before numbers. Returns how many it keeps.
    pub async fn preload(&self) -> Result<usize> {
        const PAGE: usize = 10_000;
        let mut after = 0;
        let mut kept = 0;
        while kept < self.capacity {
            let page = self
                .source
                .numbered_after(after, PAGE.min(self.capacity - kept))
                .await
                .map_err(Error::Numbers)?;
            let Some(last) = page.last().map(|(n, _)| *n) else {
                break;
            };
            after = last;
            kept += page.len();
            self.keep(page.into_iter().map(|(n, q)| (q, n)))?;
        }
        Ok(kept)
    }

    /// The question of each number; a number no question has is an error
    /// (a schedule holding it was not written by this numbering).
    pub async fn questions(&self, numbers: &[u64]) -> Result<Vec<QuestionId>> {
        let mut out: Vec<Option<QuestionId>> = {
            let by_number = self.by_number.read().map_err(poisoned)?;
            numbers.iter().map(|n| by_number.get(n).cloned()).collect()
        };
        let missing: Vec<u64> = numbers
            .iter()
            .zip(&out)
            .filter(|(_, q)| q.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            let got = self
                .source
                .numbered_questions(&missing)
                .await
                .map_err(Error::Numbers)?;
            let fresh: FastMap<u64, QuestionId> = missing
                .iter()
                .zip(got)
                .filter_map(|(n, q)| q.map(|q| (*n, q)))
                .collect();
            for (n, q) in numbers.iter().zip(out.iter_mut()) {
                if q.is_none() {
                    *q = fresh.get(n).cloned();
                }
            }
            self.keep(fresh.into_iter().map(|(n, q)| (q, n)))?;
        }
        numbers
            .iter()
            .zip(out)
            .map(|(n, q)| q.ok_or_else(|| Error::Decode(format!("question number {n} is unknown"))))
            .collect()
    }
}
