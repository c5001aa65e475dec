//! The Frappe-compatible method API: `/api/method/memora.api.<module>.<fn>`
//! (also `/api/method/memora.api.<fn>`), plus Frappe's own `login`,
//! `logout` and `frappe.auth.get_logged_user`.
//!
//! [`METHODS`] is the one registry: every entry is built from one
//! [`ApiMethod`] implementation (request type, response type, role, verbs,
//! handler), and the router, the role checks, the CSRF rule and the OpenAPI
//! document all read it, so they cannot drift. Handlers parse nothing by
//! hand: [`de::decode`] turns the merged query/form/JSON arguments into the
//! method's request type, the handler calls one core use case, and the typed
//! response is serialized inside Frappe's `{"message": …}` envelope.

pub mod de;
pub mod dto;
pub mod methods;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use memora_core::domain::{Actor, InstitutionId, Role};
use memora_core::services::Platform;
use memora_core::{CoreError, Memora};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;

/// Which callers a method accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Guest,
    /// Any logged-in user.
    User,
    /// System Managers only: of the caller's own institution, on that
    /// institution's data only.
    Admin,
    /// The platform operator only: a System Manager of the home
    /// institution (institution management).
    Operator,
}

/// How a method may be called over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbs {
    /// Only reads: GET (query string) or POST (body).
    Read,
    /// Changes state: POST only (405 otherwise); a cookie session must send
    /// the CSRF header; bodies must be JSON or a form.
    Write,
    /// Starts or ends a session (`login`, `logout`): POST only, no CSRF
    /// header (there is no session yet, or ending one harms nobody).
    Session,
}

impl Verbs {
    /// The `Allow` header value.
    pub fn allow(self) -> &'static str {
        match self {
            Verbs::Read => "GET, POST",
            Verbs::Write | Verbs::Session => "POST",
        }
    }

    /// Whether `m` is accepted.
    pub fn accepts(self, m: &axum::http::Method) -> bool {
        match self {
            Verbs::Read => m == axum::http::Method::GET || m == axum::http::Method::POST,
            Verbs::Write | Verbs::Session => m == axum::http::Method::POST,
        }
    }
}

/// A change of the caller's session, applied by the router to the response
/// (cookie and CSRF header).
#[derive(Debug, Clone)]
pub enum SessionEffect {
    /// A new session: set the `sid` cookie for `max_age` seconds.
    Start {
        /// Session id (cookie value).
        sid: String,
        /// Cookie lifetime in seconds.
        max_age: i64,
    },
    /// Clear the `sid` cookie.
    End,
    /// Tell a cookie session its CSRF token (response header).
    Csrf(String),
}

/// The caller of one method call and what the router needs back.
pub struct Ctx {
    /// Authenticated caller (None only for Guest methods).
    pub actor: Option<Actor>,
    /// The `sid` cookie, when the caller authenticated with it.
    pub sid: Option<String>,
    /// Client address (login throttle).
    pub client: Option<String>,
    /// The raw query string (to refuse secrets in URLs).
    pub query: Option<String>,
    /// The institution the call was routed to (the caller's, from their
    /// credential; never from an argument).
    pub institution: InstitutionId,
    /// The platform, when the server hosts institutions (operator methods).
    pub platform: Option<Arc<Platform>>,
    effects: Mutex<Vec<SessionEffect>>,
}

impl Ctx {
    /// A context for `actor`.
    pub fn new(
        actor: Option<Actor>,
        sid: Option<String>,
        client: Option<String>,
        query: Option<String>,
    ) -> Self {
        Ctx {
            actor,
            sid,
            client,
            query,
            institution: InstitutionId::home(),
            platform: None,
            effects: Mutex::new(Vec::new()),
        }
    }

    /// The same context, routed to `institution` of `platform`.
    pub fn in_institution(
        mut self,
        institution: InstitutionId,
        platform: Option<Arc<Platform>>,
    ) -> Self {
        self.institution = institution;
        self.platform = platform;
        self
    }

    /// The platform (institution management), or a 404 when this server
    /// hosts a single institution.
    pub fn platform(&self) -> Result<&Arc<Platform>, ApiError> {
        self.platform
            .as_ref()
            .ok_or_else(|| ApiError::NotFound("this server hosts a single institution".into()))
    }

    /// The logged-in caller (401 otherwise).
    pub fn actor(&self) -> Result<&Actor, ApiError> {
        self.actor
            .as_ref()
            .ok_or(ApiError::Core(CoreError::Unauthenticated))
    }

    /// Records a session change for the router.
    pub fn push_effect(&self, e: SessionEffect) {
        if let Ok(mut v) = self.effects.lock() {
            v.push(e);
        }
    }

    /// The recorded session changes.
    pub fn take_effects(&self) -> Vec<SessionEffect> {
        self.effects
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// One API method: its contract and its handler.
pub trait ApiMethod: 'static {
    /// Function name (`get_review_session`).
    const NAME: &'static str;
    /// Module (`reviews`): the long path is `memora.api.<module>.<name>`.
    const MODULE: &'static str;
    /// Full method path when it is not under `memora.api.` (`login`).
    const PATH: Option<&'static str> = None;
    /// Who may call it.
    const ACCESS: Access;
    /// How it may be called.
    const VERBS: Verbs;
    /// One-line description.
    const SUMMARY: &'static str;
    /// Whether the response is wrapped in `{"message": …}` (every method
    /// but `login`, whose Frappe body is flat).
    const ENVELOPE: bool = true;
    /// Request arguments.
    type Req: DeserializeOwned + ToSchema + Send;
    /// Result (the value of `message`).
    type Resp: Serialize + ToSchema;
    /// Runs the method.
    fn call(
        app: &Arc<Memora>,
        ctx: &Ctx,
        req: Self::Req,
    ) -> impl Future<Output = Result<Self::Resp, ApiError>> + Send;
}

/// A boxed handler future.
/// Its output is the response body, serialized once from the typed
/// response (inside `{"message": …}` for enveloped methods).
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send + 'a>>;

/// Frappe's success envelope.
#[derive(serde::Serialize)]
struct Envelope<'a, T> {
    message: &'a T,
}

/// One entry of the registry (built from an [`ApiMethod`]).
#[derive(Clone, Copy)]
pub struct MethodSpec {
    /// Function name.
    pub name: &'static str,
    /// Module.
    pub module: &'static str,
    /// Full path override (Frappe's own methods).
    pub path: Option<&'static str>,
    /// Who may call it.
    pub access: Access,
    /// How it may be called.
    pub verbs: Verbs,
    /// One-line description.
    pub summary: &'static str,
    /// Wrapped in `{"message": …}`.
    pub envelope: bool,
    /// Decodes the arguments and runs the handler.
    pub invoke: for<'a> fn(&'a Arc<Memora>, &'a Ctx, Map<String, Value>) -> BoxFut<'a>,
    /// Request schema (an object; its properties are the arguments).
    pub request_schema: fn() -> RefOr<Schema>,
    /// Response schema (the value of `message`).
    pub response_schema: fn() -> RefOr<Schema>,
    /// Named schemas referenced by the two above.
    pub schemas: fn(&mut Vec<(String, RefOr<Schema>)>),
}

impl std::fmt::Debug for MethodSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodSpec")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("access", &self.access)
            .field("verbs", &self.verbs)
            .finish()
    }
}

impl MethodSpec {
    /// Whether the method changes state (POST only, CSRF-checked).
    pub fn mutates(&self) -> bool {
        self.verbs == Verbs::Write
    }

    /// The method path after `/api/method/`.
    pub fn path(&self) -> String {
        match self.path {
            Some(p) => p.to_owned(),
            None => format!("memora.api.{}.{}", self.module, self.name),
        }
    }

    /// The HTTP methods accepted (the `Allow` header of a 405).
    pub fn allow(&self) -> &'static str {
        self.verbs.allow()
    }
}

fn invoke<'a, M: ApiMethod>(
    app: &'a Arc<Memora>,
    ctx: &'a Ctx,
    args: Map<String, Value>,
) -> BoxFut<'a> {
    Box::pin(async move {
        let req: M::Req = de::decode(args)?;
        let resp = M::call(app, ctx, req).await?;
        let body = if M::ENVELOPE {
            serde_json::to_vec(&Envelope { message: &resp })
        } else {
            serde_json::to_vec(&resp)
        };
        body.map_err(|e| ApiError::Core(CoreError::Internal(format!("response encoding: {e}"))))
    })
}

fn schemas<M: ApiMethod>(out: &mut Vec<(String, RefOr<Schema>)>) {
    <M::Req as ToSchema>::schemas(out);
    <M::Resp as ToSchema>::schemas(out);
}

/// The registry entry of `M`.
pub const fn spec<M: ApiMethod>() -> MethodSpec {
    MethodSpec {
        name: M::NAME,
        module: M::MODULE,
        path: M::PATH,
        access: M::ACCESS,
        verbs: M::VERBS,
        summary: M::SUMMARY,
        envelope: M::ENVELOPE,
        invoke: invoke::<M>,
        request_schema: <M::Req as PartialSchema>::schema,
        response_schema: <M::Resp as PartialSchema>::schema,
        schemas: schemas::<M>,
    }
}

pub use methods::METHODS;

/// Resolves a method path (`memora.api.<module>.<fn>`, `memora.api.<fn>`,
/// `login`, `frappe.auth.get_logged_user`) to its registry entry.
pub fn resolve(path: &str) -> Option<&'static MethodSpec> {
    if let Some(m) = METHODS.iter().find(|m| m.path == Some(path)) {
        return Some(m);
    }
    let rest = path.strip_prefix("memora.api.")?;
    let (module, name) = match rest.rsplit_once('.') {
        Some((m, n)) => (Some(m), n),
        None => (None, rest),
    };
    METHODS
        .iter()
        .find(|m| m.path.is_none() && m.name == name && module.is_none_or(|x| x == m.module))
}

/// Checks the caller, authenticated in `institution`, against the method's
/// access rule.
pub fn authorize(
    spec: &MethodSpec,
    actor: Option<&Actor>,
    institution: &InstitutionId,
) -> Result<(), ApiError> {
    match (spec.access, actor) {
        (Access::Guest, _) => Ok(()),
        (_, None) => Err(CoreError::Unauthenticated.into()),
        (Access::User, Some(_)) => Ok(()),
        (Access::Admin, Some(a)) => a.require_admin().map_err(ApiError::from),
        (Access::Operator, Some(a)) => {
            if institution.is_home() && a.roles.contains(&Role::SystemManager) {
                Ok(())
            } else {
                Err(CoreError::forbidden(
                    "only the platform operator (a System Manager of the home institution) manages institutions",
                )
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_long_short_and_frappe_paths() {
        assert_eq!(
            resolve("memora.api.reviews.get_review_session")
                .unwrap()
                .name,
            "get_review_session"
        );
        assert_eq!(
            resolve("memora.api.get_review_session").unwrap().name,
            "get_review_session"
        );
        assert_eq!(resolve("login").unwrap().name, "login");
        assert_eq!(
            resolve("frappe.auth.get_logged_user").unwrap().name,
            "get_logged_user"
        );
        assert!(resolve("memora.api.profile.get_review_session").is_none());
        assert!(resolve("memora.api.nope").is_none());
        assert!(resolve("memora.api.login").is_none());
        assert!(resolve("frappe.client.get").is_none());
        let paths: std::collections::HashSet<_> = METHODS.iter().map(|m| m.path()).collect();
        assert_eq!(paths.len(), METHODS.len(), "method paths are unique");
        let short: std::collections::HashSet<_> = METHODS
            .iter()
            .filter(|m| m.path.is_none())
            .map(|m| m.name)
            .collect();
        assert_eq!(
            short.len(),
            METHODS.iter().filter(|m| m.path.is_none()).count(),
            "short names are unique"
        );
        assert!(resolve("memora.api.admin.create_user").unwrap().mutates());
        assert!(
            !resolve("memora.api.reviews.get_review_session")
                .unwrap()
                .mutates()
        );
    }
}
