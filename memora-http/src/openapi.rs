//! The OpenAPI 3.1 document, generated from the method registry and the
//! request/response types (utoipa), so it cannot drift from what the router
//! serves; and the interactive reference page (Swagger UI, embedded in the
//! binary with its license: no CDN).

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder, ResponsesBuilder,
};

use crate::api::{Access, METHODS, MethodSpec, Verbs};

/// Error statuses every operation may answer, with what they mean.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Invalid arguments (`ValidationError`) or a missing/invalid CSRF token (`CSRFTokenError`)",
    ),
    (
        "401",
        "Not logged in or invalid credentials (`AuthenticationError`)",
    ),
    (
        "403",
        "The caller's role or subscription does not allow this (`PermissionError`)",
    ),
    ("404", "No such method or record (`DoesNotExistError`)"),
    (
        "405",
        "HTTP method not allowed (`MethodNotAllowedError`, with `Allow`)",
    ),
    (
        "409",
        "Conflicts with the current state (`DuplicateEntryError`, `InvalidStateError`, `AnswerNotServedError`)",
    ),
    (
        "413",
        "Body larger than 8 MiB (`RequestEntityTooLargeError`)",
    ),
    (
        "415",
        "Body neither JSON nor a form (`UnsupportedMediaTypeError`)",
    ),
    (
        "429",
        "Too many requests; see `Retry-After` (`TooManyRequestsError`)",
    ),
    (
        "500",
        "Internal error (`InternalServerError`; details only in the server log)",
    ),
    (
        "503",
        "A dependency is unavailable; retry (`ServiceUnavailableError`)",
    ),
];

fn error_schema() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .description(Some("Frappe's error envelope"))
            .property(
                "exc_type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("Error type, e.g. `ValidationError`")),
            )
            .required("exc_type")
            .property(
                "exception",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("What happened, naming the argument when there is one")),
            )
            .required("exception")
            .property(
                "_server_messages",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("JSON-encoded list of messages (Frappe)")),
            )
            .required("_server_messages")
            .build(),
    )
}

fn object_props(schema: &RefOr<Schema>) -> Option<&Object> {
    match schema {
        RefOr::T(Schema::Object(o)) => Some(o),
        _ => None,
    }
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn operation(m: &MethodSpec, get: bool) -> Operation {
    let req = (m.request_schema)();
    let resp = (m.response_schema)();
    let resp = if m.envelope {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .property("message", resp)
                .required("message")
                .build(),
        ))
    } else {
        resp
    };
    let mut responses = ResponsesBuilder::new().response(
        "200",
        ResponseBuilder::new()
            .description("Success")
            .content("application/json", json_content(resp))
            .build(),
    );
    for (status, what) in ERRORS {
        responses = responses.response(
            *status,
            ResponseBuilder::new()
                .description(*what)
                .content(
                    "application/json",
                    json_content(RefOr::Ref(Ref::from_schema_name("Error"))),
                )
                .build(),
        );
    }
    let access = match m.access {
        Access::Admin => {
            "Requires the System Manager role (acts on the caller's own institution only)."
        }
        Access::Operator => {
            "Requires the platform operator: a System Manager of the home institution."
        }
        Access::User => "Requires a logged-in user (cookie session or API token).",
        Access::Guest => "No login required.",
    };
    let verbs = match m.verbs {
        Verbs::Read => "Reads only: GET with query arguments or POST with a body.",
        Verbs::Write => {
            "Changes state: POST only; a cookie session must send `X-Frappe-CSRF-Token`. The body may also be a form (`application/x-www-form-urlencoded`, objects as JSON strings)."
        }
        Verbs::Session => "POST only.",
    };
    let short = if m.path.is_none() {
        format!(" Also answered at `/api/method/memora.api.{}`.", m.name)
    } else {
        String::new()
    };
    let mut op = OperationBuilder::new()
        .operation_id(Some(format!("{}{}", m.name, if get { "_get" } else { "" })))
        .summary(Some(m.summary))
        .description(Some(format!("{access} {verbs}{short}")))
        .tag(m.module)
        .responses(responses.build());
    if get {
        if let Some(obj) = object_props(&req) {
            for (name, schema) in &obj.properties {
                let required = obj.required.iter().any(|r| r == name);
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Query)
                        .required(if required {
                            Required::True
                        } else {
                            Required::False
                        })
                        .schema(Some(schema.clone())),
                );
            }
        }
    } else {
        let required = object_props(&req).is_some_and(|o| !o.required.is_empty());
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_content(req))
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .build(),
        ));
    }
    let security = match (m.access, m.verbs) {
        (Access::Guest, _) => vec![SecurityRequirement::default()],
        (_, Verbs::Write) => vec![
            SecurityRequirement::new("sid", Vec::<String>::new()).add("csrf", Vec::<String>::new()),
            SecurityRequirement::new("token", Vec::<String>::new()),
        ],
        _ => vec![
            SecurityRequirement::new("sid", Vec::<String>::new()),
            SecurityRequirement::new("token", Vec::<String>::new()),
        ],
    };
    op.securities(Some(security)).build()
}

/// The document served at `/api/openapi.json`.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut schemas = Vec::new();
    let mut tags: Vec<&str> = Vec::new();
    for m in METHODS {
        (m.schemas)(&mut schemas);
        if !tags.contains(&m.module) {
            tags.push(m.module);
        }
        let mut item = PathItem::new(HttpMethod::Post, operation(m, false));
        if m.verbs == Verbs::Read {
            item.get = Some(operation(m, true));
        }
        paths = paths.path(format!("/api/method/{}", m.path()), item);
    }
    let mut components = ComponentsBuilder::new()
        .schema("Error", error_schema())
        .security_scheme(
            "sid",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sid",
                "Session cookie set by login",
            ))),
        )
        .security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Frappe-CSRF-Token",
                "CSRF token of a cookie session (returned by login and get_logged_user); required for state changes",
            ))),
        )
        .security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`token <api_key>:<api_secret>` (exempt from CSRF)",
            ))),
        );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Memora API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Frappe-compatible methods of Memora. Results are wrapped in `{\"message\": …}`; errors use Frappe's envelope (`exc_type`, `exception`, `_server_messages`). Arguments may come from the query string, a form or a JSON body.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some(
            tags.into_iter()
                .map(|t| TagBuilder::new().name(t).build())
                .collect::<Vec<_>>(),
        ))
        .build()
}

/// The interactive reference page (`/api/docs/`).
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Memora API reference</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on the served document.
pub const DOCS_INIT_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  withCredentials: true
});
"##;

/// Swagger UI's bundle (swagger-ui-dist 5.35.0, Apache-2.0; see
/// `memora-http/assets/swagger-ui/`).
pub const SWAGGER_UI_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
/// Swagger UI's stylesheet.
pub const SWAGGER_UI_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
/// Swagger UI's license, served next to it.
pub const SWAGGER_UI_LICENSE: &[u8] = include_bytes!("../assets/swagger-ui/LICENSE");
