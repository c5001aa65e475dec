//! Frappe-style arguments: merged from the query string, a form body or a
//! JSON body, with sensible coercion ("1"/"true" → true, numeric strings →
//! numbers, JSON-in-a-string for object arguments). Every accessor returns a
//! 400 with the argument's name when the value has the wrong shape.

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

    /// The merged arguments (for typed decoding).
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// Builds directly from a map (tests).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Args { map }
    }

    /// Raw value (None for absent, null or empty string).
    pub fn value(&self, name: &str) -> Option<&Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(v) => Some(v),
        }
    }

    /// First present of several names.
    pub fn first<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &Value)> {
        names.iter().find_map(|n| self.value(n).map(|v| (*n, v)))
    }

    /// Optional string.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.opt_str_any(&[name])
    }

    /// Optional string from the first present name.
    pub fn opt_str_any(&self, names: &[&str]) -> Result<Option<String>, ApiError> {
        match self.first(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.trim().to_owned())),
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((n, _)) => Err(ApiError::bad(format!("argument '{n}' must be a string"))),
        }
    }

    /// Optional secret (a password), exactly as sent: never trimmed, and a
    /// whitespace-only value is passed on (for the policy to refuse), not
    /// treated as absent.
    pub fn opt_secret(&self, names: &[&str]) -> Result<Option<String>, ApiError> {
        match names.iter().find_map(|n| self.map.get(*n).map(|v| (*n, v))) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((n, _)) => Err(ApiError::bad(format!("argument '{n}' must be a string"))),
        }
    }

    /// Required secret (a password), exactly as sent: never trimmed.
    pub fn req_secret(&self, names: &[&str]) -> Result<String, ApiError> {
        match names.iter().find_map(|n| self.map.get(*n).map(|v| (*n, v))) {
            Some((_, Value::String(s))) if !s.is_empty() => Ok(s.clone()),
            Some((n, Value::String(_))) => {
                Err(ApiError::bad(format!("argument '{n}' must not be empty")))
            }
            Some((n, _)) => Err(ApiError::bad(format!("argument '{n}' must be a string"))),
            None => Err(ApiError::bad(format!(
                "missing required argument '{}'",
                names[0]
            ))),
        }
    }

    /// Required string.
    pub fn req_str(&self, names: &[&str]) -> Result<String, ApiError> {
        self.opt_str_any(names)?
            .ok_or_else(|| ApiError::bad(format!("missing required argument '{}'", names[0])))
    }

    /// Optional boolean ("1"/"true"/"yes"/"on" or 0/1 or true/false).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => memora_core::lifecycle::parse_bool_json(v)
                .map(Some)
                .map_err(|_| ApiError::bad(format!("argument '{name}' must be a boolean"))),
        }
    }

    /// Optional unsigned integer.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.opt_u64_any(&[name])
    }

    /// Optional unsigned integer from the first present name.
    pub fn opt_u64_any(&self, names: &[&str]) -> Result<Option<u64>, ApiError> {
        match self.first(names) {
            None => Ok(None),
            Some((n, v)) => as_u64(v).map(Some).ok_or_else(|| {
                ApiError::bad(format!("argument '{n}' must be a non-negative integer"))
            }),
        }
    }

    /// Optional float.
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("argument '{name}' must be a number"))),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("argument '{name}' must be a number"))),
            Some(_) => Err(ApiError::bad(format!("argument '{name}' must be a number"))),
        }
    }

    /// Optional JSON object/array, accepting a JSON-encoded string (form posts).
    pub fn opt_json(&self, names: &[&str]) -> Result<Option<Value>, ApiError> {
        match self.first(names) {
            None => Ok(None),
            Some((n, Value::String(s))) => serde_json::from_str::<Value>(s)
                .map(Some)
                .map_err(|e| ApiError::bad(format!("argument '{n}' is not valid JSON: {e}"))),
            Some((_, v)) => Ok(Some(v.clone())),
        }
    }
}

/// Integer from a JSON number or numeric string.
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// Signed integer from a JSON number or numeric string.
pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
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

    #[test]
    fn merges_query_form_and_json_with_coercion() {
        let a = Args::parse(Some("limit=10&subject=a%20b&x=1"), None, b"").unwrap();
        assert_eq!(a.opt_u64("limit").unwrap(), Some(10));
        assert_eq!(a.opt_str("subject").unwrap().as_deref(), Some("a b"));
        assert_eq!(a.opt_bool("x").unwrap(), Some(true));
        let f = Args::parse(
            None,
            Some("application/x-www-form-urlencoded"),
            b"confirm=false&n=+3",
        )
        .unwrap();
        assert_eq!(f.opt_bool("confirm").unwrap(), Some(false));
        let j = Args::parse(
            None,
            Some("application/json"),
            br#"{"confirm":"0","data":"{\"a\":1}"}"#,
        )
        .unwrap();
        assert_eq!(j.opt_bool("confirm").unwrap(), Some(false));
        assert_eq!(j.opt_json(&["data"]).unwrap().unwrap()["a"], 1);
        assert!(Args::parse(None, Some("application/json"), b"[1]").is_err());
        assert!(Args::parse(None, Some("application/json"), b"{").is_err());
        assert!(a.opt_u64("subject").is_err());
        let bad = Args::parse(Some("confirm=maybe"), None, b"").unwrap();
        assert!(bad.opt_bool("confirm").is_err());
        let pct = Args::parse(Some("q=%zz%4"), None, b"").unwrap();
        assert_eq!(pct.opt_str("q").unwrap().as_deref(), Some("%zz%4"));
    }
}
