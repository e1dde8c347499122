//! Notifications: e-mails composed from saga outcomes and program changes are stored as
//! `notificacion` rows (see `application`), and a delivery worker sends the pending ones through
//! a pluggable [`Sender`], retrying transient failures with exponential back-off until
//! `max_intentos`, claiming rows with a lease so two replicas never send one at the same time.

mod file;
mod smtp;
mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Prioridad;

pub use file::FileSender;
pub use smtp::SmtpSender;
pub use worker::DeliveryWorker;

/// The sender address when none is configured (the file sender's).
pub const DEFAULT_FROM: &str = "notificaciones@alpespartners.local";

/// One e-mail to send. `id` is the notification's id; senders derive the `Message-ID` from it
/// so a retried message keeps its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub id: Uuid,
    pub destinatario: String,
    pub asunto: String,
    pub contenido: String,
    pub prioridad: Prioridad,
    pub creada_en: DateTime<Utc>,
}

/// Why a message was not delivered: a transient failure is retried, a permanent one is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Delivers one e-mail. Implementations must be safe to call again with the same message
/// (a worker that dies after sending but before recording it sends once more).
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, email: &Email) -> Result<(), SendError>;

    /// Delivers each of `emails`, one outcome per e-mail in their order: in turn, unless the
    /// sender can share what each send costs (the file sender: one trip to the blocking pool).
    async fn send_all(&self, emails: &[Email]) -> Vec<Result<(), SendError>> {
        let mut outcomes = Vec::with_capacity(emails.len());
        for email in emails {
            outcomes.push(self.send(email).await);
        }
        outcomes
    }
}

#[async_trait]
impl<S: Sender + ?Sized> Sender for Arc<S> {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        (**self).send(email).await
    }

    async fn send_all(&self, emails: &[Email]) -> Vec<Result<(), SendError>> {
        (**self).send_all(emails).await
    }
}

/// How the body travels: 8-bit UTF-8 text, readable as is (for files), or 7-bit safe
/// (quoted-printable when needed), which any SMTP relay accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    EightBit,
    SevenBitSafe,
}

/// The RFC 5322 message for `email` from `from`: From, To, Subject, Date, Message-ID and a
/// UTF-8 plain-text body. An unusable address is a permanent failure.
pub fn rfc5322(
    email: &Email,
    from: &str,
    encoding: BodyEncoding,
) -> Result<lettre::Message, SendError> {
    use lettre::message::header::{ContentTransferEncoding, ContentType};
    use lettre::message::{Body, Mailbox, SinglePart};

    let parse = |what: &str, address: &str| {
        address.parse::<Mailbox>().map_err(|error| {
            SendError::Permanent(format!("invalid {what} address {address:?}: {error}"))
        })
    };
    // 8-bit keeps the text readable as is; lettre allows it only for lines under 76 bytes, so
    // the text is wrapped first, and anything still unfit gets a safe encoding instead.
    let text = wrap(&email.contenido, WRAP_BYTES);
    let body = match encoding {
        BodyEncoding::EightBit => {
            Body::new_with_encoding(text.clone(), ContentTransferEncoding::EightBit)
                .unwrap_or_else(|_| Body::new(text))
        }
        BodyEncoding::SevenBitSafe => Body::new(text),
    };
    let body = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    lettre::Message::builder()
        .from(parse("sender", from)?)
        .to(parse("recipient", &email.destinatario)?)
        .subject(email.asunto.clone())
        .date(email.creada_en.into())
        .message_id(Some(format!("<{}@alpespartners.local>", email.id)))
        .singlepart(body)
        .map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))
}

/// The longest body line written, in bytes (lettre sends shorter lines as 8-bit text).
const WRAP_BYTES: usize = 72;

/// Breaks each line of `text` at spaces so that no line exceeds `width` bytes where a space
/// allows it; lines end with CRLF.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.replace("\r\n", "\n").split('\n') {
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.len() + 1 + word.len() > width {
                out.push_str(&current);
                out.push_str("\r\n");
                current.clear();
            } else if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push_str("\r\n");
    }
    // `split` yields a last empty line after a final newline: do not add a blank line for it.
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(contenido: &str) -> Email {
        Email {
            id: Uuid::nil(),
            destinatario: "ana@example.com".into(),
            asunto: "Revisión".into(),
            contenido: contenido.into(),
            prioridad: Prioridad::Normal,
            creada_en: kernel::now(),
        }
    }

    #[test]
    fn long_lines_are_wrapped_at_spaces_with_crlf() {
        let text = format!("{}\nfin\n", "palabra ".repeat(30).trim_end());
        let wrapped = wrap(&text, 72);
        assert!(
            wrapped.split("\r\n").all(|line| line.len() <= 72),
            "{wrapped}"
        );
        assert!(wrapped.ends_with("fin\r\n"));
        assert_eq!(wrapped.replace("\r\n", " ").split_whitespace().count(), 31);
    }

    #[test]
    fn a_message_has_the_rfc_5322_headers_and_a_readable_body() {
        let long = format!("Compliance rechazó el contrato {}", "y más ".repeat(20));
        let message = rfc5322(&email(&long), DEFAULT_FROM, BodyEncoding::EightBit).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        for header in [
            "From: ",
            "To: ana@example.com",
            "Subject: ",
            "Date: ",
            "Message-ID: <",
        ] {
            assert!(text.contains(header), "{header} in {text}");
        }
        assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
        assert!(text.contains("Compliance rechazó"), "{text}");
    }

    #[test]
    fn an_unusable_address_is_a_permanent_failure() {
        let mut bad = email("x");
        bad.destinatario = "no es una dirección".into();
        assert!(matches!(
            rfc5322(&bad, DEFAULT_FROM, BodyEncoding::SevenBitSafe),
            Err(SendError::Permanent(_))
        ));
    }
}
