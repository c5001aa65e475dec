//! The platform: several institutions served by one deployment.
//!
//! Each institution is served by its own [`Memora`] over its own ports (for
//! the PostgreSQL + Redis backend: its own schema and key namespace), opened
//! by a [`TenantFactory`]. [`Platform`] keeps them, routes a credential or
//! an account name to its institution, and runs the platform operator's use
//! cases (create, list, suspend and resume institutions). The operator is a
//! System Manager of the home institution; a System Manager of any other
//! institution manages that institution only, because the `Memora` their
//! calls reach holds no port of any other institution.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::Memora;
use crate::domain::{Actor, Institution, InstitutionId, InstitutionStatus, Role};
use crate::error::{CoreError, CoreResult, PortError};
use crate::ids::UserId;
use crate::ports::{Clock, InstitutionDirectory};

/// Which institution a [`Memora`] serves, and the platform directory its
/// account names are reserved in.
#[derive(Clone)]
pub struct TenantScope {
    /// The institution.
    pub institution: InstitutionId,
    /// The platform directory (`None`: a standalone installation whose
    /// account names need no reservation).
    pub directory: Option<Arc<dyn InstitutionDirectory>>,
}

impl TenantScope {
    /// A single-institution installation: the home institution, no
    /// directory.
    pub fn standalone() -> Self {
        TenantScope {
            institution: InstitutionId::home(),
            directory: None,
        }
    }
}

impl std::fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantScope")
            .field("institution", &self.institution)
            .field("directory", &self.directory.is_some())
            .finish()
    }
}

/// Opens the [`Memora`] of an institution over that institution's own ports
/// (and starts whatever background work it needs). Opening an institution
/// that already has data reuses it; opening a new one prepares its storage.
#[async_trait]
pub trait TenantFactory: Send + Sync {
    /// The application of `institution`, scoped by `scope`.
    async fn open(&self, institution: &Institution, scope: TenantScope) -> CoreResult<Arc<Memora>>;

    /// Refuses an institution id this factory cannot give storage to (a
    /// schema name too long, say), before anything is written.
    async fn check(&self, _institution: &InstitutionId) -> CoreResult<()> {
        Ok(())
    }

    /// Stops what [`TenantFactory::open`] started for an institution that is
    /// no longer served (a creation undone, or removed from the directory by
    /// another process's roll-back). Its data stays.
    async fn close(&self, _institution: &InstitutionId) {}
}

/// The first manager of a new institution.
#[derive(Debug, Clone)]
pub struct NewManager {
    /// Account name (unique across the platform).
    pub user: UserId,
    /// Display name.
    pub full_name: String,
    /// Initial password.
    pub password: String,
}

/// What [`Platform::refresh`] did.
#[derive(Debug, Default)]
pub struct RefreshOutcome {
    /// Institutions opened by this refresh.
    pub opened: Vec<InstitutionId>,
    /// Institutions that could not be opened (retried next time).
    pub failed: Vec<(InstitutionId, CoreError)>,
    /// Institutions no longer in the directory, no longer served.
    pub closed: Vec<InstitutionId>,
}

/// An open institution.
struct Tenant {
    app: Arc<Memora>,
    status: InstitutionStatus,
}

/// Every institution of a deployment (see the module documentation).
pub struct Platform {
    home: Arc<Memora>,
    directory: Arc<dyn InstitutionDirectory>,
    factory: Arc<dyn TenantFactory>,
    clock: Arc<dyn Clock>,
    tenants: RwLock<HashMap<InstitutionId, Tenant>>,
    /// Serialises opening, so one institution is never opened twice.
    opening: futures::lock::Mutex<()>,
}

impl Platform {
    /// A platform whose home institution is served by `home` (built with
    /// [`Memora::in_institution`] and a scope naming `directory`).
    pub fn new(
        home: Arc<Memora>,
        directory: Arc<dyn InstitutionDirectory>,
        factory: Arc<dyn TenantFactory>,
    ) -> Self {
        let clock = Arc::clone(&home.ports().clock);
        Platform {
            home,
            directory,
            factory,
            clock,
            tenants: RwLock::new(HashMap::new()),
            opening: futures::lock::Mutex::new(()),
        }
    }

    /// The home institution's application.
    pub fn home(&self) -> &Arc<Memora> {
        &self.home
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<dyn InstitutionDirectory> {
        &self.directory
    }

    /// The scope of `institution` in this platform.
    pub fn scope(&self, institution: &InstitutionId) -> TenantScope {
        TenantScope {
            institution: institution.clone(),
            directory: Some(Arc::clone(&self.directory)),
        }
    }

    /// The application serving `institution`, if it is open and active:
    /// `Unauthenticated` for an institution this platform does not know (a
    /// forged credential prefix), `Forbidden` for a suspended one.
    pub fn tenant(&self, institution: &InstitutionId) -> CoreResult<Arc<Memora>> {
        if institution.is_home() {
            return Ok(Arc::clone(&self.home));
        }
        let tenants = self
            .tenants
            .read()
            .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?;
        match tenants.get(institution) {
            Some(t) if t.status == InstitutionStatus::Active => Ok(Arc::clone(&t.app)),
            Some(_) => Err(CoreError::forbidden(format!(
                "institution {institution} is suspended"
            ))),
            None => Err(CoreError::Unauthenticated),
        }
    }

    /// The application of an open institution and whether it is
    /// suspended (`None`: not an institution of this platform).
    pub fn tenant_with_status(&self, institution: &InstitutionId) -> Option<(Arc<Memora>, bool)> {
        if institution.is_home() {
            return Some((Arc::clone(&self.home), false));
        }
        self.tenants
            .read()
            .ok()?
            .get(institution)
            .map(|t| (Arc::clone(&t.app), t.status == InstitutionStatus::Suspended))
    }

    /// The application of an open institution whatever its status (a
    /// login to a suspended institution is checked before it is refused).
    pub fn tenant_even_if_suspended(&self, institution: &InstitutionId) -> Option<Arc<Memora>> {
        if institution.is_home() {
            return Some(Arc::clone(&self.home));
        }
        self.tenants
            .read()
            .ok()?
            .get(institution)
            .map(|t| Arc::clone(&t.app))
    }

    /// The institution an account name belongs to (the home institution
    /// for names the directory does not hold, as for every account of an
    /// installation that predates institutions).
    pub async fn institution_of_account(&self, user: &str) -> CoreResult<InstitutionId> {
        let Ok(id) = UserId::new(user.trim()) else {
            return Ok(InstitutionId::home());
        };
        Ok(self
            .directory
            .account_institution(&id)
            .await?
            .unwrap_or_else(InstitutionId::home))
    }

    /// Opens every institution of the directory not open yet and applies
    /// status changes (suspensions made by another process, say). Run at
    /// start-up and then periodically. An institution that fails to open is
    /// reported and retried next time.
    pub async fn refresh(&self) -> CoreResult<RefreshOutcome> {
        // Which institutions are open, read before the directory: one
        // opened after this (its row committed before it opened) must not
        // be taken for one gone from a listing that predates it.
        let open_before: Vec<InstitutionId> = self
            .tenants
            .read()
            .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?
            .keys()
            .cloned()
            .collect();
        let all = self.directory.list_institutions().await?;
        let mut out = RefreshOutcome::default();
        // Institutions open here but gone from the directory (a creation
        // another process undid) stop being served.
        let gone: Vec<InstitutionId> = open_before
            .into_iter()
            .filter(|id| !all.iter().any(|i| &i.id == id))
            .collect();
        for id in gone {
            self.forget(&id).await;
            out.closed.push(id);
        }
        // First what is cheap and urgent — statuses and device policies of
        // the open institutions — so a slow or failing open below never
        // delays a suspension.
        let mut missing = Vec::new();
        for inst in all {
            if inst.id.is_home() {
                self.home
                    .auth()
                    .apply_device_policy(inst.device_policy.clone());
                continue;
            }
            let known = self
                .tenants
                .read()
                .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?
                .get(&inst.id)
                .map(|t| Arc::clone(&t.app));
            match known {
                Some(app) => {
                    self.set_local_status(&inst.id, inst.status)?;
                    app.auth().apply_device_policy(inst.device_policy.clone());
                }
                None => missing.push(inst),
            }
        }
        for inst in missing {
            match self.open(&inst).await {
                Ok(app) => {
                    app.auth().apply_device_policy(inst.device_policy.clone());
                    out.opened.push(inst.id);
                }
                Err(e) => out.failed.push((inst.id, e)),
            }
        }
        Ok(out)
    }

    async fn open(&self, inst: &Institution) -> CoreResult<Arc<Memora>> {
        let _guard = self.opening.lock().await;
        if let Some(t) = self
            .tenants
            .read()
            .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?
            .get(&inst.id)
        {
            return Ok(Arc::clone(&t.app));
        }
        let app = self.factory.open(inst, self.scope(&inst.id)).await?;
        self.tenants
            .write()
            .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?
            .insert(
                inst.id.clone(),
                Tenant {
                    app: Arc::clone(&app),
                    status: inst.status,
                },
            );
        Ok(app)
    }

    /// Stops serving an institution in this process (its data stays).
    async fn forget(&self, id: &InstitutionId) {
        let _guard = self.opening.lock().await;
        if let Ok(mut t) = self.tenants.write() {
            t.remove(id);
        }
        self.factory.close(id).await;
    }

    fn set_local_status(&self, id: &InstitutionId, status: InstitutionStatus) -> CoreResult<()> {
        if let Some(t) = self
            .tenants
            .write()
            .map_err(|_| CoreError::Internal("tenant map poisoned".into()))?
            .get_mut(id)
        {
            t.status = status;
        }
        Ok(())
    }

    /// Every open institution's application (the home one first), for
    /// background work.
    pub fn open_tenants(&self) -> Vec<(InstitutionId, Arc<Memora>)> {
        let mut out = vec![(InstitutionId::home(), Arc::clone(&self.home))];
        if let Ok(t) = self.tenants.read() {
            let mut rest: Vec<_> = t
                .iter()
                .map(|(id, t)| (id.clone(), Arc::clone(&t.app)))
                .collect();
            rest.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(rest);
        }
        out
    }

    /// The operator's check: a System Manager of the home institution.
    fn require_operator(caller: &Actor, from: &InstitutionId) -> CoreResult<()> {
        if from.is_home() && caller.roles.contains(&Role::SystemManager) {
            Ok(())
        } else {
            Err(CoreError::forbidden(
                "only the platform operator (a System Manager of the home institution) manages institutions",
            ))
        }
    }

    /// Creates an institution and its first manager (operator only). The
    /// institution's storage is prepared by the factory; the manager is a
    /// System Manager of the new institution.
    pub async fn create_institution(
        &self,
        caller: &Actor,
        from: &InstitutionId,
        id: InstitutionId,
        name: &str,
        manager: NewManager,
    ) -> CoreResult<Institution> {
        Self::require_operator(caller, from)?;
        if id.is_home() {
            return Err(CoreError::conflict("the home institution exists"));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::invalid("name must not be empty"));
        }
        crate::text::check_text("name", name, 140)?;
        // Everything that can be refused is checked before anything is
        // written; then the manager's name is reserved (atomically, so two
        // creations cannot both take it), and every later failure undoes
        // what was done, so a refused creation leaves nothing behind.
        self.factory.check(&id).await?;
        let count = self.directory.list_institutions().await?.len();
        let max = self.home.config().max_institutions;
        if count > max {
            return Err(CoreError::invalid_state(format!(
                "this platform already has {} institutions besides the home one (at most {max}; MEMORA_MAX_INSTITUTIONS)",
                count - 1
            )));
        }
        let full_name = manager.full_name.trim();
        if full_name.is_empty() {
            return Err(CoreError::invalid("manager_full_name must not be empty"));
        }
        // The manager's account as `create_user` will check it.
        self.home
            .auth()
            .check_new_user(&manager.user, full_name, Some(&manager.password))?;
        let taken = || CoreError::conflict(format!("account name {} is taken", manager.user));
        self.directory
            .claim_account(&manager.user, &id)
            .await
            .map_err(|e| match e {
                PortError::Conflict(_) => taken(),
                other => other.into(),
            })?;
        let inst = Institution {
            id: id.clone(),
            name: name.to_owned(),
            status: InstitutionStatus::Active,
            created_at: self.clock.now(),
            device_policy: None,
        };
        if let Err(e) = self.directory.create_institution(&inst).await {
            let _ = self.directory.release_account(&manager.user, &id).await;
            return Err(match e {
                PortError::Conflict(_) => CoreError::conflict(format!("institution {id} exists")),
                other => other.into(),
            });
        }
        let created = match self.open(&inst).await {
            Ok(app) => {
                app.auth()
                    .create_reserved_user(
                        &manager.user,
                        full_name,
                        vec![Role::SystemManager],
                        Some(&manager.password),
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            // The row first (so no refresh here reopens it), then this
            // process's tenant, then the name — only once the row is gone,
            // so a name is never free while its institution still exists.
            if self.directory.delete_institution(&id).await.is_ok() {
                self.forget(&id).await;
                let _ = self.directory.release_account(&manager.user, &id).await;
            } else {
                self.forget(&id).await;
            }
            return Err(e);
        }
        self.home
            .shared
            .audit(
                caller,
                "institution.create",
                serde_json::json!({"institution": id.as_str(), "manager": manager.user.as_str()}),
            )
            .await;
        Ok(inst)
    }

    /// `adopt_shared_content` (a manager of `into`): copies subjects of the
    /// shared library — the home institution's published catalog — with
    /// their published tracks, units, topics and lessons into `into`'s own
    /// catalog (a merge import, so a new catalog version there). `subjects`
    /// empty: every published subject. From then on the copy is the
    /// institution's own: its managers hide (unpublish), reorder and extend
    /// it with `import_content`; adopting again replaces the adopted
    /// entities with the library's current version (publishing them
    /// again). `dry_run` reports what would change.
    pub async fn adopt_shared_content(
        &self,
        caller: &Actor,
        into: &InstitutionId,
        subjects: &[crate::ids::SubjectId],
        dry_run: bool,
    ) -> CoreResult<super::admin::ImportReport> {
        caller.require_admin()?;
        if into.is_home() {
            return Err(CoreError::invalid_state(
                "the home institution's catalog is the shared library itself",
            ));
        }
        let app = self.tenant(into)?;
        let library = self.home.ports().content.load_catalog().await?;
        let published: Vec<_> = library.subjects.iter().filter(|s| s.is_published).collect();
        let wanted: Vec<_> = if subjects.is_empty() {
            published.iter().map(|s| s.id.clone()).collect()
        } else {
            let missing: Vec<String> = subjects
                .iter()
                .filter(|id| !published.iter().any(|s| &s.id == *id))
                .map(|id| id.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(CoreError::not_found(format!(
                    "not in the shared library: {}",
                    missing.join(", ")
                )));
            }
            subjects.to_vec()
        };
        let mut bundle = crate::domain::Catalog::default();
        bundle.subjects = library
            .subjects
            .iter()
            .filter(|s| wanted.contains(&s.id))
            .cloned()
            .collect();
        bundle.tracks = library
            .tracks
            .iter()
            .filter(|t| t.is_published && wanted.contains(&t.subject))
            .cloned()
            .collect();
        bundle.units = library
            .units
            .iter()
            .filter(|u| u.is_published && bundle.tracks.iter().any(|t| t.id == u.track))
            .cloned()
            .collect();
        bundle.topics = library
            .topics
            .iter()
            .filter(|t| t.is_published && bundle.units.iter().any(|u| u.id == t.unit))
            .cloned()
            .collect();
        bundle.lessons = library
            .lessons
            .iter()
            .filter(|l| l.is_published && bundle.units.iter().any(|u| u.id == l.unit))
            .filter(|l| {
                l.topic
                    .as_ref()
                    .is_none_or(|t| bundle.topics.iter().any(|x| &x.id == t))
            })
            .cloned()
            .collect();
        let report = app
            .admin()
            .import_content(
                caller,
                &super::admin::ImportRequest {
                    bundle: crate::domain::ContentBundle {
                        catalog: bundle,
                        unpublish: Default::default(),
                    },
                    mode: super::admin::ImportMode::Merge,
                    dry_run,
                },
            )
            .await?;
        Ok(report)
    }

    /// Every institution, the home one included (operator only).
    pub async fn list_institutions(
        &self,
        caller: &Actor,
        from: &InstitutionId,
    ) -> CoreResult<Vec<Institution>> {
        Self::require_operator(caller, from)?;
        Ok(self.directory.list_institutions().await?)
    }

    /// Suspends or resumes an institution (operator only). The home
    /// institution cannot be suspended (the operator would lock themself
    /// out). Takes effect at once in this process and within the refresh
    /// period in the others.
    pub async fn set_status(
        &self,
        caller: &Actor,
        from: &InstitutionId,
        id: &InstitutionId,
        status: InstitutionStatus,
    ) -> CoreResult<Institution> {
        Self::require_operator(caller, from)?;
        if id.is_home() {
            return Err(CoreError::invalid_state(
                "the home institution cannot be suspended",
            ));
        }
        if !self.directory.set_institution_status(id, status).await? {
            return Err(CoreError::not_found(format!("institution {id} not found")));
        }
        self.set_local_status(id, status)?;
        self.home
            .shared
            .audit(
                caller,
                "institution.status",
                serde_json::json!({"institution": id.as_str(), "status": status.as_str()}),
            )
            .await;
        self.directory
            .list_institutions()
            .await?
            .into_iter()
            .find(|i| &i.id == id)
            .ok_or_else(|| CoreError::not_found(format!("institution {id} not found")))
    }
}
