//! A store in memory: journals that last as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Row, Store, StoreError};

/// Journals kept in memory, for tests and for engines that want journals and
/// recovery semantics without a disk: an engine rebuilt over the same
/// `MemoryStore` (shared with `Arc`) recovers its instances like one over a
/// file.
///
/// ```
/// use workflow_runtime::{MemoryStore, Row, Store};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), workflow_runtime::StoreError> {
/// let store = MemoryStore::new();
/// let row = Row { instance: "o-1".into(), seq: 1, open: true, checksum: 0, data: b"{}".to_vec(), summary: Default::default() };
/// store.append("Order", row.clone()).await?;
/// assert_eq!(store.open_rows("Order").await?, vec![Ok(row.clone())]);
/// assert!(store.append("Order", row.clone()).await.is_err()); // seq 1 is taken
/// let gap = Row { seq: 3, ..row };
/// assert!(store.append("Order", gap).await.is_err()); // seq 2 comes first
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    journals: Mutex<HashMap<(String, String), Vec<Row>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn journals(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<Row>>> {
        // A panic elsewhere while holding the lock leaves the map consistent:
        // every change below is a single push.
        self.journals.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        let mut journals = self.journals();
        let journal = journals
            .entry((workflow.to_string(), row.instance.clone()))
            .or_default();
        let next = journal.last().map_or(1, |newest| newest.seq + 1);
        if row.seq != next {
            return Err(StoreError::Conflict {
                instance: row.instance,
                seq: row.seq,
            });
        }
        journal.push(row);
        Ok(())
    }

    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
        Ok(self
            .journals()
            .iter()
            .filter(|((w, _), _)| w == workflow)
            .filter_map(|(_, journal)| journal.last().filter(|row| row.open).cloned().map(Ok))
            .collect())
    }

    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
        Ok(self
            .journals()
            .get(&(workflow.to_string(), instance.to_string()))
            .cloned()
            .unwrap_or_default())
    }
}
