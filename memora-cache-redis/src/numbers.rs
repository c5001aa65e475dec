//! [`Numbering`]: question ids, and subject and topic labels, ↔ their
//! permanent numbers ([`CatalogNumbers`]), kept in the process.
//!
//! The schedule keys of layout 5 hold each card under its question's
//! number and name its subject and topic by their label numbers (a space
//! of their own: a catalog's few thousand labels keep numbers of one or
//! two bytes), and the served-set ledger names a question served from such a
//! schedule `q{<number>` (`{` cannot occur in an id, so the name never
//! meets one the core makes). Numbers never change meaning, so a process
//! keeps every mapping it has seen — nothing to invalidate — and asks the
//! source ([`CatalogNumbers`], PostgreSQL in the server) only for the ones
//! it has not: a warm process adds no round trip.
//!
//! Two maps behind `RwLock`s rather than `moka` caches: a rehydration looks
//! up 100 000 ids, which under one read lock costs a few milliseconds,
//! several times less than 100 000 cache lookups with their bookkeeping;
//! and since an entry never goes stale, a bound that empties a map when it
//! is full (a catalog larger than [`Numbering::with_capacity`]) is all
//! the eviction needed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use memora_core::PortResult;
use memora_core::ids::{Label, QuestionId};
use memora_core::ports::CatalogNumbers;

use crate::error::{Error, Result};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Mappings kept per direction by default (~60 B by id, ~90 B by number:
/// ~300 MB for a catalog of 2 M questions, the most a process keeps).
pub const DEFAULT_CAPACITY: usize = 2_000_000;

/// A number space of the source: question ids, or subject and topic
/// labels.
#[async_trait]
trait Space: Clone + Send + Sync + 'static {
    const WHAT: &'static str;
    /// The key a process keeps it under (a question id's text: hashing a
    /// `QuestionId` also hashes its parsed parts).
    fn map_key(&self) -> Cow<'_, str>;
    async fn assign(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<u64>>;
    async fn find(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<Option<u64>>>;
    async fn named(src: &dyn CatalogNumbers, numbers: &[u64]) -> PortResult<Vec<Option<Self>>>;
    async fn after(
        src: &dyn CatalogNumbers,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Self)>>;
}

#[async_trait]
impl Space for QuestionId {
    const WHAT: &'static str = "question";
    fn map_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    async fn assign(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<u64>> {
        src.assign_numbers(keys).await
    }
    async fn find(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<Option<u64>>> {
        src.find_numbers(keys).await
    }
    async fn named(src: &dyn CatalogNumbers, numbers: &[u64]) -> PortResult<Vec<Option<Self>>> {
        src.numbered_questions(numbers).await
    }
    async fn after(
        src: &dyn CatalogNumbers,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Self)>> {
        src.numbered_after(after, limit).await
    }
}

#[async_trait]
impl Space for Label {
    const WHAT: &'static str = "label";
    fn map_key(&self) -> Cow<'_, str> {
        Cow::Owned(self.key())
    }
    async fn assign(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<u64>> {
        src.assign_label_numbers(keys).await
    }
    async fn find(src: &dyn CatalogNumbers, keys: &[Self]) -> PortResult<Vec<Option<u64>>> {
        src.find_label_numbers(keys).await
    }
    async fn named(src: &dyn CatalogNumbers, numbers: &[u64]) -> PortResult<Vec<Option<Self>>> {
        src.numbered_labels(numbers).await
    }
    async fn after(
        src: &dyn CatalogNumbers,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Self)>> {
        src.labels_numbered_after(after, limit).await
    }
}

/// One space's mappings, both ways, bounded.
struct Table<K> {
    by_key: RwLock<FastMap<String, u64>>,
    by_number: RwLock<FastMap<u64, K>>,
    capacity: usize,
}

fn poisoned<T>(_: T) -> Error {
    Error::Task("numbering lock poisoned".into())
}

impl<K: Space> Table<K> {
    fn new(capacity: usize) -> Self {
        Table {
            by_key: RwLock::default(),
            by_number: RwLock::default(),
            capacity: capacity.max(1),
        }
    }

    fn keep(&self, pairs: Vec<(K, u64)>) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        {
            let mut by_key = self.by_key.write().map_err(poisoned)?;
            if by_key.len() + pairs.len() > self.capacity {
                by_key.clear();
            }
            for (k, n) in &pairs {
                by_key.insert(k.map_key().into_owned(), *n);
            }
        }
        let mut by_number = self.by_number.write().map_err(poisoned)?;
        if by_number.len() + pairs.len() > self.capacity {
            by_number.clear();
        }
        by_number.extend(pairs.into_iter().map(|(k, n)| (n, k)));
        Ok(())
    }

    /// The numbers of `keys`: the known ones from the process, the others
    /// from the source — numbering them (`assign`) or only looking them up.
    async fn lookup<'k>(
        &self,
        src: &dyn CatalogNumbers,
        keys: impl ExactSizeIterator<Item = &'k K> + Clone,
        assign: bool,
    ) -> Result<Vec<Option<u64>>> {
        let mut out: Vec<Option<u64>> = {
            let by_key = self.by_key.read().map_err(poisoned)?;
            keys.clone()
                .map(|k| by_key.get(k.map_key().as_ref()).copied())
                .collect()
        };
        let missing: Vec<K> = keys
            .clone()
            .zip(&out)
            .filter(|(_, n)| n.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let got: Vec<Option<u64>> = if assign {
            K::assign(src, &missing)
                .await
                .map_err(Error::Numbers)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            K::find(src, &missing).await.map_err(Error::Numbers)?
        };
        if got.len() != missing.len() {
            return Err(Error::Decode(format!(
                "{} numbers for {} {}s",
                got.len(),
                missing.len(),
                K::WHAT
            )));
        }
        let found: Vec<(K, u64)> = missing
            .into_iter()
            .zip(got)
            .filter_map(|(k, n)| n.map(|n| (k, n)))
            .collect();
        let fresh: FastMap<Cow<'_, str>, u64> =
            found.iter().map(|(k, n)| (k.map_key(), *n)).collect();
        for (k, n) in keys.zip(out.iter_mut()) {
            if n.is_none() {
                *n = fresh.get(k.map_key().as_ref()).copied();
            }
        }
        drop(fresh);
        self.keep(found)?;
        Ok(out)
    }

    async fn assign<'k>(
        &self,
        src: &dyn CatalogNumbers,
        keys: impl ExactSizeIterator<Item = &'k K> + Clone,
    ) -> Result<Vec<u64>> {
        self.lookup(src, keys, true)
            .await?
            .into_iter()
            .map(|n| n.ok_or_else(|| Error::Decode(format!("a {} got no number", K::WHAT))))
            .collect()
    }

    async fn preload(&self, src: &dyn CatalogNumbers) -> Result<usize> {
        const PAGE: usize = 10_000;
        let mut after = 0;
        let mut kept = 0;
        while kept < self.capacity {
            let page = K::after(src, after, PAGE.min(self.capacity - kept))
                .await
                .map_err(Error::Numbers)?;
            let Some(last) = page.last().map(|(n, _)| *n) else {
                break;
            };
            after = last;
            kept += page.len();
            self.keep(page.into_iter().map(|(n, k)| (k, n)).collect())?;
        }
        Ok(kept)
    }

    async fn named(&self, src: &dyn CatalogNumbers, numbers: &[u64]) -> Result<Vec<K>> {
        let mut out: Vec<Option<K>> = {
            let by_number = self.by_number.read().map_err(poisoned)?;
            numbers.iter().map(|n| by_number.get(n).cloned()).collect()
        };
        let missing: Vec<u64> = numbers
            .iter()
            .zip(&out)
            .filter(|(_, k)| k.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            let got = K::named(src, &missing).await.map_err(Error::Numbers)?;
            let fresh: FastMap<u64, K> = missing
                .iter()
                .zip(got)
                .filter_map(|(n, k)| k.map(|k| (*n, k)))
                .collect();
            for (n, k) in numbers.iter().zip(out.iter_mut()) {
                if k.is_none() {
                    *k = fresh.get(n).cloned();
                }
            }
            self.keep(fresh.into_iter().map(|(n, k)| (k, n)).collect())?;
        }
        numbers
            .iter()
            .zip(out)
            .map(|(n, k)| {
                k.ok_or_else(|| Error::Decode(format!("{} number {n} is unknown", K::WHAT)))
            })
            .collect()
    }
}

/// Question ids, and subject and topic labels, with their numbers from a
/// [`CatalogNumbers`] source, kept in the process. Clones share the maps.
#[derive(Clone)]
pub struct Numbering {
    source: Arc<dyn CatalogNumbers>,
    questions: Arc<Table<QuestionId>>,
    labels: Arc<Table<Label>>,
    capacity: usize,
}

impl std::fmt::Debug for Numbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Numbering")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Numbering {
    /// Numbers from `source`, keeping up to [`DEFAULT_CAPACITY`] mappings.
    pub fn new(source: Arc<dyn CatalogNumbers>) -> Self {
        Self::with_capacity(source, DEFAULT_CAPACITY)
    }

    /// Numbers from `source`, keeping up to `capacity` mappings per
    /// direction and space (a full map is emptied and refilled as ids
    /// come).
    pub fn with_capacity(source: Arc<dyn CatalogNumbers>, capacity: usize) -> Self {
        Numbering {
            source,
            questions: Arc::new(Table::new(capacity)),
            labels: Arc::new(Table::new(capacity)),
            capacity: capacity.max(1),
        }
    }

    /// The number of each id, numbering ids that have none (for ids the
    /// server itself writes: a schedule's cards, questions it serves).
    pub async fn assign<'q>(
        &self,
        ids: impl ExactSizeIterator<Item = &'q QuestionId> + Clone,
    ) -> Result<Vec<u64>> {
        self.questions.assign(self.source.as_ref(), ids).await
    }

    /// The number of each id, `None` for an id that has none (numbers
    /// nothing: for ids a client sent).
    pub async fn find(&self, ids: &[QuestionId]) -> Result<Vec<Option<u64>>> {
        self.questions
            .lookup(self.source.as_ref(), ids.iter(), false)
            .await
    }

    /// The question of each number; a number no question has is an error
    /// (a schedule holding it was not written by this numbering).
    pub async fn questions(&self, numbers: &[u64]) -> Result<Vec<QuestionId>> {
        self.questions.named(self.source.as_ref(), numbers).await
    }

    /// The number of each subject or topic, numbering new ones (for the
    /// rows the server writes).
    pub async fn assign_labels<'l>(
        &self,
        labels: impl ExactSizeIterator<Item = &'l Label> + Clone,
    ) -> Result<Vec<u64>> {
        self.labels.assign(self.source.as_ref(), labels).await
    }

    /// The label of each number; an unknown number is an error.
    pub async fn labels(&self, numbers: &[u64]) -> Result<Vec<Label>> {
        self.labels.named(self.source.as_ref(), numbers).await
    }

    /// Reads every number given so far (labels, then questions, up to the
    /// capacity), page by page, so that this process maps the questions it
    /// will serve without asking the store — which keeps warm reviews
    /// independent of PostgreSQL, as they were before numbers. Returns how
    /// many it keeps.
    pub async fn preload(&self) -> Result<usize> {
        let labels = self.labels.preload(self.source.as_ref()).await?;
        Ok(labels + self.questions.preload(self.source.as_ref()).await?)
    }
}
