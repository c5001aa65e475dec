//! The OpenAPI 3.0 document of every method, generated from the method
//! table so it can never drift from what the router serves.

use serde_json::{Map, Value, json};

use crate::api::{Access, METHODS};

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for m in METHODS {
        let params: Vec<Value> = m
            .params
            .iter()
            .map(|p| json!({"name": p, "in": "query", "required": false, "schema": {"type": "string"}}))
            .collect();
        let security = match m.access {
            Access::Guest => json!([]),
            _ => json!([{"sid": []}, {"token": []}]),
        };
        let op = |id: String| {
            json!({
                "operationId": id,
                "summary": m.summary,
                "tags": [m.module],
                "parameters": params,
                "security": security,
                "description": match m.access {
                    Access::Admin => "Requires the System Manager role.",
                    Access::User => "Requires a logged-in user.",
                    Access::Guest => "No login required.",
                },
                "responses": {
                    "200": {"description": "Success: {\"message\": <result>}"},
                    "400": {"description": "Invalid input"},
                    "401": {"description": "Not logged in"},
                    "403": {"description": "Not allowed"},
                    "404": {"description": "Not found"},
                    "409": {"description": "Conflict"},
                    "429": {"description": "Rate limited (Retry-After)"},
                    "503": {"description": "Dependency unavailable"},
                }
            })
        };
        for path in [
            format!("/api/method/memora.api.{}.{}", m.module, m.name),
            format!("/api/method/memora.api.{}", m.name),
        ] {
            let id = path.trim_start_matches("/api/method/").replace('.', "_");
            paths.insert(
                path,
                json!({"get": op(format!("{id}_get")), "post": op(format!("{id}_post"))}),
            );
        }
    }
    for (path, summary) in [
        (
            "/api/method/login",
            "Log in with usr and pwd; sets the sid cookie",
        ),
        ("/api/method/logout", "End the session"),
        (
            "/api/method/frappe.auth.get_logged_user",
            "The logged-in user's id",
        ),
    ] {
        paths.insert(
            path.into(),
            json!({"post": {"summary": summary, "responses": {"200": {"description": "ok"}}}}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Memora API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {
            "sid": {"type": "apiKey", "in": "cookie", "name": "sid"},
            "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "token <api_key>:<api_secret>"},
        }},
        "paths": paths,
    })
}
