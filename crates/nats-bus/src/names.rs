//! How the bus's names map onto NATS: the subject of a topic, the stream that stores it and the
//! durable consumer of a group. Subjects keep the topic as written; stream and consumer names
//! may not contain `.`, `*`, `>`, path separators or whitespace, so those are sanitized, with a
//! stable hash of the original appended whenever sanitizing changed anything (so `a.b` and `a_b`
//! never share a stream).

/// A name the bus cannot map onto NATS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid subject prefix {0:?}: use one non-empty token without '.', '*', '>' or whitespace"
    )]
    Prefix(String),
    #[error(
        "invalid topic {0:?}: use non-empty dot-separated tokens without '*', '>' or whitespace"
    )]
    Topic(String),
    #[error("invalid group {0:?}: it must be non-empty")]
    Group(String),
}

/// Checks that `prefix` is one subject token, so that no topic of one prefix can spell a subject
/// of another (`a` + `b.c` would otherwise equal `a.b` + `c`).
pub fn check_prefix(prefix: &str) -> Result<(), NameError> {
    if prefix.is_empty() || !is_plain_token(prefix) {
        return Err(NameError::Prefix(prefix.to_owned()));
    }
    Ok(())
}

/// `<prefix>.<topic>`; a topic may span several tokens (`billing.dlq`) but holds no wildcard.
pub fn subject(prefix: &str, topic: &str) -> Result<String, NameError> {
    if topic.is_empty()
        || !topic
            .split('.')
            .all(|token| !token.is_empty() && is_plain_token(token))
    {
        return Err(NameError::Topic(topic.to_owned()));
    }
    Ok(format!("{prefix}.{topic}"))
}

/// The stream holding `topic`'s messages: `<prefix>_<topic>`, sanitized.
pub fn stream(prefix: &str, topic: &str) -> String {
    format!("{prefix}_{}", sanitize(topic))
}

/// The durable consumer of `group` on a topic's stream (one stream per topic, so the group
/// alone names it).
pub fn consumer(group: &str) -> Result<String, NameError> {
    if group.is_empty() {
        return Err(NameError::Group(group.to_owned()));
    }
    Ok(sanitize(group))
}

fn is_plain_token(token: &str) -> bool {
    !token
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
}

/// Keeps ASCII letters, digits, `-` and `_`; anything else becomes `_` and the result gains
/// `_<hash of the original>`.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == name {
        clean
    } else {
        format!("{clean}_{:08x}", fnv1a(name.as_bytes()) as u32)
    }
}

/// FNV-1a: stable across Rust releases and platforms, unlike `std`'s hasher, because these
/// names outlive the process that computed them.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_one_plain_token() {
        assert!(check_prefix("alpes").is_ok());
        assert!(check_prefix("t0123abcd").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b"] {
            assert_eq!(check_prefix(bad), Err(NameError::Prefix(bad.to_owned())));
        }
    }

    #[test]
    fn a_topic_becomes_the_subject_after_the_prefix() {
        assert_eq!(
            subject("alpes", "eventos-partners").as_deref(),
            Ok("alpes.eventos-partners")
        );
        assert_eq!(
            subject("alpes", "compliance.dlq").as_deref(),
            Ok("alpes.compliance.dlq")
        );
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b"] {
            assert!(subject("alpes", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn plain_names_are_kept_as_they_are() {
        assert_eq!(
            stream("alpes", "eventos-partners"),
            "alpes_eventos-partners"
        );
        assert_eq!(consumer("compliance").as_deref(), Ok("compliance"));
    }

    #[test]
    fn sanitized_names_never_collide_with_plain_ones() {
        let dotted = stream("alpes", "billing.dlq");
        let underscored = stream("alpes", "billing_dlq");
        assert!(dotted.starts_with("alpes_billing_dlq_"), "{dotted}");
        assert_ne!(dotted, underscored);
        assert!(!dotted.contains('.'));
        assert_eq!(dotted, stream("alpes", "billing.dlq"), "names are stable");
        assert!(consumer("").is_err());
    }
}
