//! Validated text primitives that more than one context parses the same way: trimmed text with
//! a length bound, and an e-mail address. Each context wraps them in its own value types
//! (`Nombre`, `Email`, …) and error type; the messages are what a client sees next to the field.

/// Why a raw text was refused; the message is shown to the client as the field's `mensaje`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TextError(pub String);

fn too_long(max: usize) -> TextError {
    TextError(format!("must be at most {max} characters"))
}

/// Required text, trimmed, 1 to `max` characters (not bytes).
pub fn required(raw: &str, max: usize) -> Result<String, TextError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError("is required and cannot be blank".to_owned()));
    }
    if trimmed.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(trimmed.to_owned())
}

/// Optional free text, trimmed, at most `max` characters; blank counts as absent.
pub fn optional(raw: Option<&str>, max: usize) -> Result<Option<String>, TextError> {
    match raw.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) if text.chars().count() > max => Err(too_long(max)),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// The longest e-mail address (RFC 5321: 254 for the path).
pub const EMAIL_MAX: usize = 254;

/// The longest local part of an e-mail address (RFC 5321).
const EMAIL_LOCAL_MAX: usize = 64;

/// An e-mail address, trimmed: a local part without leading, trailing or doubled dots, one
/// `@`, and a domain of at least two labels of letters, digits and inner hyphens.
pub fn email(raw: &str) -> Result<String, TextError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError("is required".to_owned()));
    }
    if trimmed.chars().count() > EMAIL_MAX {
        return Err(too_long(EMAIL_MAX));
    }
    let not_an_address = || TextError("is not a valid e-mail address".to_owned());
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(not_an_address());
    }
    let (local, domain) = trimmed.split_once('@').ok_or_else(not_an_address)?;
    if local.is_empty() || local.len() > EMAIL_LOCAL_MAX || domain.contains('@') {
        return Err(not_an_address());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(not_an_address());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(not_an_address());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(required("  Ana ", 255).unwrap(), "Ana");
        assert!(required("   ", 255).is_err());
        assert!(required(&"a".repeat(256), 255).is_err());
        assert!(required(&"ñ".repeat(255), 255).is_ok());
    }

    #[test]
    fn optional_text_treats_blank_as_absent() {
        assert_eq!(optional(None, 5).unwrap(), None);
        assert_eq!(optional(Some("  "), 5).unwrap(), None);
        assert_eq!(optional(Some(" ab "), 5).unwrap(), Some("ab".to_owned()));
        assert_eq!(
            optional(Some("abcdef"), 5).unwrap_err().0,
            "must be at most 5 characters"
        );
    }

    #[test]
    fn an_email_is_trimmed_and_kept_as_written() {
        assert_eq!(email(" Ana@Example.com ").unwrap(), "Ana@Example.com");
    }

    #[test]
    fn an_email_needs_exactly_one_at_between_two_parts() {
        assert!(email("ana.example.com").is_err());
        assert!(email("@example.com").is_err());
        assert!(email("ana@@example.com").is_err());
    }

    #[test]
    fn an_email_local_part_has_no_stray_dots() {
        assert!(email("ana.@example.com").is_err());
        assert!(email("an..a@example.com").is_err());
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn an_email_domain_has_two_clean_labels() {
        assert!(email("ana@localhost").is_err());
        assert!(email("ana@example-.com").is_err());
        assert!(email("ana@exa_mple.com").is_err());
        assert!(email("ana@mail.example.com").is_ok());
    }

    #[test]
    fn an_email_has_no_spaces_and_a_bounded_length() {
        assert!(email("a na@example.com").is_err());
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(
            email(&long).unwrap_err().0,
            "must be at most 254 characters"
        );
    }
}
