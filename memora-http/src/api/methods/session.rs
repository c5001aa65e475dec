//! Frappe's own session methods: `login`, `logout`,
//! `frappe.auth.get_logged_user`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, method};
use crate::api::{Access, ApiMethod, Ctx, SessionEffect, Verbs};
use crate::error::ApiError;

/// Arguments of `login` (in the body: a password in the URL is refused).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginArgs {
    /// User id (also `username`, `email`).
    #[serde(
        alias = "username",
        alias = "email",
        deserialize_with = "crate::api::de::string"
    )]
    pub usr: String,
    /// Password, exactly as typed (also `password`).
    #[serde(alias = "password")]
    pub pwd: String,
}

/// Result of `login` (Frappe's flat body, not wrapped in `message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginDto {
    /// Always `Logged In`.
    pub message: String,
    /// Frappe's home page.
    pub home_page: String,
    /// Full name.
    pub full_name: String,
    /// User id.
    pub user: String,
    /// CSRF token: send it as `X-Frappe-CSRF-Token` with every state change.
    pub csrf_token: String,
}

/// `login`.
pub struct Login;

impl ApiMethod for Login {
    const NAME: &'static str = "login";
    const MODULE: &'static str = "auth";
    const PATH: Option<&'static str> = Some("login");
    const ACCESS: Access = Access::Guest;
    const VERBS: Verbs = Verbs::Session;
    const SUMMARY: &'static str =
        "Log in with usr and pwd: sets the sid cookie and returns the CSRF token";
    const ENVELOPE: bool = false;
    type Req = LoginArgs;
    type Resp = LoginDto;

    async fn call(
        app: &std::sync::Arc<memora_core::Memora>,
        ctx: &Ctx,
        req: LoginArgs,
    ) -> Result<LoginDto, ApiError> {
        if ctx.query.as_deref().is_some_and(|q| {
            q.split('&')
                .filter_map(|kv| kv.split('=').next())
                .any(|k| matches!(k, "pwd" | "password"))
        }) {
            return Err(ApiError::bad(
                "send the password in the request body, never in the URL",
            ));
        }
        if req.pwd.is_empty() {
            return Err(ApiError::bad("argument 'pwd' must not be empty"));
        }
        let out = app
            .auth()
            .login(&req.usr, &req.pwd, ctx.client.as_deref())
            .await?;
        let max_age = (out.expires_at - chrono::Utc::now()).num_seconds().max(0);
        let csrf = crate::csrf_token(&out.sid);
        ctx.push_effect(SessionEffect::Start {
            sid: out.sid.clone(),
            max_age,
        });
        ctx.push_effect(SessionEffect::Csrf(csrf.clone()));
        Ok(LoginDto {
            message: "Logged In".into(),
            home_page: "/app".into(),
            full_name: out.user.full_name.clone(),
            user: out.user.id.as_str().to_owned(),
            csrf_token: csrf,
        })
    }
}

method!(
    /// `logout` (no CSRF header needed: a client that lost its token can
    /// always end its session, and a forged logout harms nobody).
    Logout = "logout" at "logout", Guest, Session,
    "End the session and clear the sid cookie",
    NoArgs => Option<String>,
    |app, ctx, _req| {
        if let Some(sid) = &ctx.sid {
            app.auth().logout(sid).await?;
        }
        ctx.push_effect(SessionEffect::End);
        Ok(None)
    }
);

method!(
    /// `frappe.auth.get_logged_user`.
    GetLoggedUser = "get_logged_user" at "frappe.auth.get_logged_user", User, Read,
    "The logged-in user's id (and, for cookie sessions, the CSRF token header)",
    NoArgs => String,
    |_app, ctx, _req| {
        let actor = ctx.actor()?;
        if let Some(sid) = &ctx.sid {
            ctx.push_effect(SessionEffect::Csrf(crate::csrf_token(sid)));
        }
        Ok(actor.user.as_str().to_owned())
    }
);
