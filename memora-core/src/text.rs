//! Input hygiene for free text, in one place for every backend: ids are
//! validated by their newtypes (`ids`), and every use case that stores or
//! looks up free text (names, notes, transaction ids, quest ids, time
//! zones, login names) passes it through [`check_text`]. NUL and other
//! control characters are refused here, so PostgreSQL (which cannot store
//! NUL in `text`) and the in-memory store behave the same: a 400, never a
//! 500.

use crate::error::{CoreError, CoreResult};

/// Refuses control characters (tab, newline and carriage return are allowed
/// in multi-line text only when `multiline`) and text longer than `max`
/// characters.
pub fn check_text_with(field: &str, value: &str, max: usize, multiline: bool) -> CoreResult<()> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
    {
        return Err(CoreError::invalid(format!(
            "{field} contains a control character (U+{:04X})",
            c as u32
        )));
    }
    let n = value.chars().count();
    if n > max {
        return Err(CoreError::invalid(format!(
            "{field} is too long ({n} characters, at most {max})"
        )));
    }
    Ok(())
}

/// Single-line free text: no control characters, at most `max` characters.
pub fn check_text(field: &str, value: &str, max: usize) -> CoreResult<()> {
    check_text_with(field, value, max, false)
}

/// A coarse password strength estimate (0–4) for embedders without a
/// dictionary-based estimator: length and character variety, with
/// passwords made of the user's own inputs or one repeated character
/// scored 0.
pub fn coarse_password_strength(password: &str, user_inputs: &[&str]) -> (u8, Option<String>) {
    let lower = password.to_lowercase();
    if user_inputs
        .iter()
        .filter(|u| u.len() >= 3)
        .any(|u| lower.contains(&u.to_lowercase()))
    {
        return (0, Some("do not use your name or e-mail address".into()));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return (
            0,
            Some("use more than one or two different characters".into()),
        );
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let len = password.chars().count();
    let score = match (len, classes) {
        (0..=7, _) => 0,
        (8..=9, 1) => 1,
        (8..=11, _) => 2,
        (12..=15, 1) => 2,
        (12..=15, _) => 3,
        _ => 4,
    };
    let hint = (score < 3).then(|| "use a longer passphrase of several words".to_owned());
    (score, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_with_the_field_name() {
        let e = check_text("full_name", "a\u{0}b", 10).unwrap_err();
        assert!(e.to_string().contains("full_name"));
        assert!(check_text("x", "line\nbreak", 20).is_err());
        assert!(check_text_with("x", "line\nbreak", 20, true).is_ok());
        assert!(check_text("x", "Ünïcödé ok", 20).is_ok());
        assert!(check_text("x", "toolong", 3).is_err());
    }

    #[test]
    fn coarse_strength_orders_passwords() {
        assert_eq!(coarse_password_strength("aaaaaaaa", &[]).0, 0);
        assert_eq!(
            coarse_password_strength("alice-secret-9", &["alice@x"]).0,
            3
        );
        assert_eq!(coarse_password_strength("alice123", &["alice"]).0, 0);
        assert!(coarse_password_strength("correct horse battery staple", &[]).0 >= 3);
    }
}
