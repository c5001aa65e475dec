//! Typed request decoding. Frappe clients send arguments in the query
//! string, a form body or a JSON body; [`crate::args::Args`] merges them into
//! one map and [`decode`] turns that map into a method's request type.
//!
//! Form and query values are strings, so numeric, boolean and object fields
//! use the lenient deserializers below (`"15"` → 15, `"1"` → true, a
//! JSON-encoded string → an object). Absent, `null` and empty-string values
//! all count as "not sent" (and so does a whitespace-only value of a
//! lenient field; secrets are plain `String`s, passed on exactly as sent). Errors name the argument (`serde_path_to_error`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Decodes the merged arguments into `T`, with errors that name the
/// argument: `argument 'limit': expected an integer`.
pub fn decode<T: DeserializeOwned>(mut map: Map<String, Value>) -> Result<T, ApiError> {
    map.retain(|_, v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // Missing fields come without a path; serde names them.
            ApiError::bad(inner.replace("missing field", "missing required argument"))
        } else {
            ApiError::bad(format!("argument '{path}': {inner}"))
        }
    })
}

/// An integer from a JSON number or a numeric string. Values beyond the
/// type saturate, so a range check downstream reports the real problem
/// ("between 1 and 50") instead of "not an integer".
fn int_from(v: &Value) -> Result<i128, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() && f.fract() == 0.0 {
                    // A whole number written as a float (`30.0`) is that
                    // number; beyond the 64-bit range it saturates.
                    Ok(if f.abs() < 9.0e18 {
                        f as i128
                    } else if f > 0.0 {
                        i128::MAX
                    } else {
                        i128::MIN
                    })
                } else {
                    Err(format!("expected an integer, got {n}"))
                }
            }
        }
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(t.parse::<i128>().unwrap_or(if t.starts_with('-') {
                    i128::MIN
                } else {
                    i128::MAX
                }))
            } else {
                Err(format!("expected an integer, got \"{}\"", clip(t)))
            }
        }
        other => Err(format!("expected an integer, got {}", kind(other))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Optional unsigned integer (saturating at `u64::MAX`; negative values are
/// refused).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let i = int_from(&v).map_err(de::Error::custom)?;
            if i < 0 {
                return Err(de::Error::custom(format!("must not be negative (got {i})")));
            }
            Ok(Some(u64::try_from(i).unwrap_or(u64::MAX)))
        }
    }
}

/// Optional signed integer (saturating).
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let i = int_from(&v).map_err(de::Error::custom)?;
            Ok(Some(i64::try_from(i).unwrap_or(if i < 0 {
                i64::MIN
            } else {
                i64::MAX
            })))
        }
    }
}

/// Optional number (finite).
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| de::Error::custom("expected a finite number")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected a number, got \"{}\"", clip(&s)))),
        Some(other) => Err(de::Error::custom(format!(
            "expected a number, got {}",
            kind(&other)
        ))),
    }
}

/// Optional boolean: true/false, 1/0, or "1"/"0"/"true"/"false"/"yes"/"no"/"on"/"off".
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::args::as_bool(&v).map(Some).ok_or_else(|| {
            de::Error::custom(format!(
                "expected a boolean (true/false, 1/0), got {}",
                kind(&v)
            ))
        }),
    }
}

/// Optional string; a number is accepted and written in decimal (ids
/// arrive as numbers from some clients). Surrounding whitespace is trimmed.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            Ok((!t.is_empty()).then(|| t.to_owned()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(de::Error::custom(format!(
            "expected a string, got {}",
            kind(&other)
        ))),
    }
}

/// Required string (see [`opt_string`]).
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_string(d)?.ok_or_else(|| de::Error::custom("must not be empty"))
}

/// A value sent as JSON, or as a JSON-encoded string (form posts).
pub fn json_or_string<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    let v = match v {
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .map_err(|e| de::Error::custom(format!("is a string but not valid JSON: {e}")))?,
        v => v,
    };
    serde_json::from_value(v).map_err(de::Error::custom)
}

/// Optional form of [`json_or_string`].
pub fn opt_json_or_string<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str::<T>(&s).map(Some).map_err(|e| {
            de::Error::custom(format!(
                "is a string but not valid JSON of the expected shape: {e}"
            ))
        }),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

/// Accepts anything (a request type for methods without arguments ignores
/// stray arguments such as Frappe's `cmd`).
#[derive(Debug, Default)]
pub struct Ignored;

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ignored;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Ignored, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Ignored)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Q {
        #[serde(default, deserialize_with = "opt_u64")]
        limit: Option<u64>,
        #[serde(default, deserialize_with = "opt_bool")]
        flag: Option<bool>,
        #[serde(deserialize_with = "string", alias = "topic")]
        topic_id: String,
    }

    fn q(v: Value) -> Result<Q, ApiError> {
        match v {
            Value::Object(m) => decode(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn lenient_values_and_named_errors() {
        let ok = q(json!({"limit": "15", "flag": "1", "topic": " T1 "})).unwrap();
        assert_eq!(ok.limit, Some(15));
        assert_eq!(ok.flag, Some(true));
        assert_eq!(ok.topic_id, "T1");
        // Saturates instead of claiming "not an integer".
        let big = q(json!({"limit": "99999999999999999999", "topic_id": "x"})).unwrap();
        assert_eq!(big.limit, Some(u64::MAX));
        let e = q(json!({"limit": "abc", "topic_id": "x"})).unwrap_err();
        assert!(e.to_string().contains("argument 'limit'"), "{e}");
        let e = q(json!({"limit": -1, "topic_id": "x"})).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        let e = q(json!({"limit": 5})).unwrap_err();
        assert!(
            e.to_string()
                .contains("missing required argument `topic_id`"),
            "{e}"
        );
        // Empty strings count as absent.
        let e = q(json!({"topic_id": "  "})).unwrap_err();
        assert!(e.to_string().contains("topic_id"), "{e}");
        let e = q(json!({"flag": "maybe", "topic_id": "x"})).unwrap_err();
        assert!(e.to_string().contains("argument 'flag'"), "{e}");
        // A whole number written as a float is that number; a huge one
        // saturates; a fraction is refused.
        let whole = q(json!({"limit": 30.0, "topic_id": "x"})).unwrap();
        assert_eq!(whole.limit, Some(30));
        let huge = q(json!({"limit": 1e300, "topic_id": "x"})).unwrap();
        assert_eq!(huge.limit, Some(u64::MAX));
        let e = q(json!({"limit": 2.5, "topic_id": "x"})).unwrap_err();
        assert!(e.to_string().contains("integer"), "{e}");
        let e = q(json!({"limit": -3.0, "topic_id": "x"})).unwrap_err();
        assert!(e.to_string().contains("negative (got -3)"), "{e}");
    }
}
