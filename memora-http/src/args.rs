//! Frappe-style arguments: merged from the query string, a form body or a
//! JSON body into one map (later sources win: query, then body). Typed
//! decoding of that map into a method's request type, with coercion of form
//! strings and errors naming the argument, is [`crate::api::de`].

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The merged arguments of one call.
#[derive(Debug, Default, Clone)]
pub struct Args {
    map: Map<String, Value>,
}

impl Args {
    /// Builds from query pairs and an optional body.
    pub fn parse(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let mut map = Map::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded_pairs(q.as_bytes()) {
                map.insert(k, Value::String(v));
            }
        }
        let trimmed = body.iter().all(|b| b.is_ascii_whitespace());
        if !trimmed {
            let ct = content_type.unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence == "application/x-www-form-urlencoded" {
                for (k, v) in form_urlencoded_pairs(body) {
                    map.insert(k, Value::String(v));
                }
            } else if !(essence == "application/json" || essence.ends_with("+json")) {
                // text/plain (what a cross-site form or no-cors fetch can
                // send) and anything else is refused, never sniffed as JSON.
                return Err(ApiError::UnsupportedMediaType(format!(
                    "a request body must be application/json or application/x-www-form-urlencoded (got '{}')",
                    if essence.is_empty() {
                        "no content type"
                    } else {
                        essence
                    }
                )));
            } else {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad(format!("request body is not valid JSON: {e}")))?;
                match v {
                    Value::Object(o) => map.extend(o),
                    _ => return Err(ApiError::bad("JSON body must be an object of arguments")),
                }
            }
        }
        Ok(Args { map })
    }

    /// Whether the query string names one of `names`, decoded as the
    /// arguments are (so `p%77d` is `pwd`): secrets belong in the body,
    /// never in a URL that proxies and logs keep.
    pub fn query_names(query: Option<&str>, names: &[&str]) -> bool {
        query.is_some_and(|q| {
            form_urlencoded_pairs(q.as_bytes())
                .iter()
                .any(|(k, _)| names.contains(&k.trim()))
        })
    }

    /// The merged arguments (for typed decoding).
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// The value of one argument, if sent (tests and diagnostics).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }
}

/// Boolean from JSON (true/false, 0/1, strings).
pub fn as_bool(v: &Value) -> Option<bool> {
    memora_core::lifecycle::parse_bool_json(v).ok()
}

fn form_urlencoded_pairs(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_query_form_and_json() {
        let a = Args::parse(Some("limit=10&subject=a%20b&x=1"), None, b"").unwrap();
        assert_eq!(a.get("limit"), Some(&json!("10")));
        assert_eq!(a.get("subject"), Some(&json!("a b")));
        let f = Args::parse(
            Some("confirm=true"),
            Some("application/x-www-form-urlencoded"),
            b"confirm=false&n=+3",
        )
        .unwrap();
        assert_eq!(f.get("confirm"), Some(&json!("false")), "the body wins");
        assert_eq!(f.get("n"), Some(&json!(" 3")));
        let j = Args::parse(
            None,
            Some("application/json; charset=utf-8"),
            br#"{"confirm":"0","data":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(j.into_map()["data"]["a"], 1);
        assert!(Args::parse(None, Some("application/json"), b"[1]").is_err());
        assert!(Args::parse(None, Some("application/json"), b"{").is_err());
        assert!(Args::parse(None, Some("text/plain"), b"a=1").is_err());
        let pct = Args::parse(Some("q=%zz%4"), None, b"").unwrap();
        assert_eq!(pct.get("q"), Some(&json!("%zz%4")));
    }
}
