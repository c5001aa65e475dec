//! The in-memory platform directory (embedded server, tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{DevicePolicy, Institution, InstitutionId, InstitutionStatus};
use crate::error::{PortError, PortResult};
use crate::ids::UserId;
use crate::ports::InstitutionDirectory;

#[derive(Default)]
struct Directory {
    institutions: BTreeMap<InstitutionId, Institution>,
    /// By account name with ASCII letters lowercased (what PostgreSQL's
    /// `lower()` does on the `"C"` collation the table uses).
    accounts: BTreeMap<String, InstitutionId>,
}

/// [`InstitutionDirectory`] in process memory. Clones share the directory.
#[derive(Clone)]
pub struct InMemoryDirectory {
    state: Arc<Mutex<Directory>>,
}

impl Default for InMemoryDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryDirectory {
    /// A directory holding the home institution only.
    pub fn new() -> Self {
        let home = Institution {
            id: InstitutionId::home(),
            name: "Home institution".into(),
            status: InstitutionStatus::Active,
            created_at: chrono::Utc::now(),
            device_policy: None,
        };
        let d = Directory {
            institutions: BTreeMap::from([(home.id.clone(), home)]),
            accounts: BTreeMap::new(),
        };
        InMemoryDirectory {
            state: Arc::new(Mutex::new(d)),
        }
    }

    fn lock(&self) -> PortResult<MutexGuard<'_, Directory>> {
        self.state
            .lock()
            .map_err(|_| PortError::Internal("directory lock poisoned".into()))
    }
}

#[async_trait]
impl InstitutionDirectory for InMemoryDirectory {
    async fn create_institution(&self, institution: &Institution) -> PortResult<()> {
        let mut d = self.lock()?;
        if d.institutions.contains_key(&institution.id) {
            return Err(PortError::Conflict(format!(
                "institution {} exists",
                institution.id
            )));
        }
        d.institutions
            .insert(institution.id.clone(), institution.clone());
        Ok(())
    }

    async fn list_institutions(&self) -> PortResult<Vec<Institution>> {
        Ok(self.lock()?.institutions.values().cloned().collect())
    }

    async fn delete_institution(&self, id: &InstitutionId) -> PortResult<bool> {
        Ok(self.lock()?.institutions.remove(id).is_some())
    }

    async fn set_institution_status(
        &self,
        id: &InstitutionId,
        status: InstitutionStatus,
    ) -> PortResult<bool> {
        Ok(match self.lock()?.institutions.get_mut(id) {
            Some(i) => {
                i.status = status;
                true
            }
            None => false,
        })
    }

    async fn set_institution_device_policy(
        &self,
        id: &InstitutionId,
        policy: Option<&DevicePolicy>,
    ) -> PortResult<bool> {
        Ok(match self.lock()?.institutions.get_mut(id) {
            Some(i) => {
                i.device_policy = policy.cloned();
                true
            }
            None => false,
        })
    }

    async fn claim_account(&self, user: &UserId, institution: &InstitutionId) -> PortResult<()> {
        let mut d = self.lock()?;
        let key = user.as_str().to_ascii_lowercase();
        if d.accounts.contains_key(&key) {
            return Err(PortError::Conflict(format!("account name {user} is taken")));
        }
        d.accounts.insert(key, institution.clone());
        Ok(())
    }

    async fn release_account(&self, user: &UserId, institution: &InstitutionId) -> PortResult<()> {
        let mut d = self.lock()?;
        let key = user.as_str().to_ascii_lowercase();
        if d.accounts.get(&key) == Some(institution) {
            d.accounts.remove(&key);
        }
        Ok(())
    }

    async fn account_institution(&self, user: &UserId) -> PortResult<Option<InstitutionId>> {
        Ok(self
            .lock()?
            .accounts
            .get(&user.as_str().to_ascii_lowercase())
            .cloned())
    }
}
