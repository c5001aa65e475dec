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
    /// The device signing in (optional): registered under the device
    /// policy and bound to the session, so revoking it ends the session.
    #[serde(default, deserialize_with = "crate::api::de::opt_string")]
    pub device_id: Option<String>,
    /// `mobile`, `tablet` or `desktop` (required with `device_id`).
    #[serde(default, deserialize_with = "crate::api::de::opt_string")]
    pub device_type: Option<String>,
    /// A name the player recognises (at most 80 characters).
    #[serde(default, deserialize_with = "crate::api::de::opt_string")]
    pub device_name: Option<String>,
}

/// The device described by optional `device_id` / `device_type` /
/// `device_name` arguments: none, or a valid one (both id and type given).
pub(crate) fn device_arg(
    id: Option<&str>,
    kind: Option<&str>,
    name: Option<&str>,
) -> Result<Option<memora_core::services::auth::DeviceInput>, ApiError> {
    match (id, kind) {
        (None, None) if name.is_none() => Ok(None),
        (Some(id), Some(kind)) => Ok(Some(memora_core::services::auth::DeviceInput::new(
            id, kind, name,
        )?)),
        _ => Err(ApiError::bad(
            "arguments 'device_id' and 'device_type' go together (device_type: mobile, tablet or desktop)",
        )),
    }
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
        if crate::args::Args::query_names(ctx.query.as_deref(), &["pwd", "password"]) {
            return Err(ApiError::bad(
                "send the password in the request body, never in the URL",
            ));
        }
        if req.pwd.is_empty() {
            return Err(ApiError::bad("argument 'pwd' must not be empty"));
        }
        let device = device_arg(
            req.device_id.as_deref(),
            req.device_type.as_deref(),
            req.device_name.as_deref(),
        )?;
        let out = app
            .auth()
            .login_on_device(&req.usr, &req.pwd, ctx.client.as_deref(), device.as_ref())
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

/// Arguments of `register_device`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceArgs {
    /// The client's id of the device (1–128 of `A-Z a-z 0-9 . _ : -`).
    #[serde(deserialize_with = "crate::api::de::string")]
    pub device_id: String,
    /// `mobile`, `tablet` or `desktop`.
    #[serde(deserialize_with = "crate::api::de::string")]
    pub device_type: String,
    /// A name the player recognises (at most 80 characters).
    #[serde(default, deserialize_with = "crate::api::de::opt_string")]
    pub device_name: Option<String>,
}

/// One of the caller's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDto {
    /// The client's id of the device.
    pub device_id: String,
    /// `mobile`, `tablet` or `desktop`.
    pub device_type: String,
    /// Its name.
    pub device_name: Option<String>,
    /// First registration (RFC 3339).
    pub registered_at: String,
    /// Last sign-in or request (RFC 3339; kept to within minutes).
    pub last_active: String,
    /// The session making this call was opened on it.
    pub current: bool,
}

impl DeviceDto {
    fn new(d: &memora_core::domain::Device, current: Option<&str>) -> Self {
        DeviceDto {
            device_id: d.device_id.clone(),
            device_type: d.kind.as_str().to_owned(),
            device_name: d.name.clone(),
            registered_at: d.registered_at.to_rfc3339(),
            last_active: d.last_active.to_rfc3339(),
            current: current == Some(d.device_id.as_str()),
        }
    }
}

/// Result of `register_device`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRegistrationDto {
    /// The device as stored.
    pub device: DeviceDto,
    /// It was not registered before.
    pub is_new: bool,
    /// Devices removed and signed out to stay within the device limit.
    pub signed_out: Vec<String>,
}

method!(
    /// `register_device`.
    RegisterDevice = "register_device" in "auth", User, Write,
    "Register the device this session runs on (or rename it); the device limit applies",
    DeviceArgs => DeviceRegistrationDto,
    |app, ctx, req| {
        let input = memora_core::services::auth::DeviceInput::new(
            &req.device_id,
            &req.device_type,
            req.device_name.as_deref(),
        )?;
        let out = app
            .auth()
            .register_device(ctx.actor()?, ctx.sid.as_deref(), &input)
            .await?;
        let current = ctx.sid.is_some().then_some(input.device_id.as_str());
        Ok(DeviceRegistrationDto {
            device: DeviceDto::new(&out.device, current),
            is_new: out.is_new,
            signed_out: out.signed_out,
        })
    }
);

method!(
    /// `get_my_devices`.
    GetMyDevices = "get_my_devices" in "auth", User, Read,
    "The caller's devices, most recently active first",
    NoArgs => Vec<DeviceDto>,
    |app, ctx, _req| {
        let current = match &ctx.sid {
            Some(sid) => app.auth().session_device(sid).await?,
            None => None,
        };
        let devices = app.auth().my_devices(ctx.actor()?).await?;
        Ok(devices
            .iter()
            .map(|d| DeviceDto::new(d, current.as_deref()))
            .collect())
    }
);

/// Arguments of `revoke_device`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceIdArg {
    /// One of the caller's devices.
    #[serde(deserialize_with = "crate::api::de::string")]
    pub device_id: String,
}

/// Result of `revoke_device`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeDeviceDto {
    /// Login sessions ended (in every server process).
    pub sessions_ended: usize,
    /// The calling session was one of them (its cookie is cleared).
    pub signed_out: bool,
}

method!(
    /// `revoke_device`.
    RevokeDevice = "revoke_device" in "auth", User, Write,
    "Remove one of the caller's devices and end every session opened on it",
    DeviceIdArg => RevokeDeviceDto,
    |app, ctx, req| {
        let current = match &ctx.sid {
            Some(sid) => app.auth().session_device(sid).await?,
            None => None,
        };
        let ended = app.auth().revoke_device(ctx.actor()?, &req.device_id).await?;
        let signed_out = current.as_deref() == Some(req.device_id.as_str());
        if signed_out {
            ctx.push_effect(SessionEffect::End);
        }
        Ok(RevokeDeviceDto {
            sessions_ended: ended,
            signed_out,
        })
    }
);
