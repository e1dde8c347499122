//! The production sender: plain SMTP to a relay at host:port (the relay, not this service,
//! handles TLS and onward delivery). A 4xx reply or a connection problem is transient; a 5xx
//! reply or an unusable address is permanent.

use std::time::Duration;

use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{rfc5322, BodyEncoding, Email, SendError, Sender};

/// How long one SMTP conversation may take; the delivery lease outlasts it.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl SmtpSender {
    pub fn new(host: &str, port: u16, from: impl Into<String>) -> Self {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Self {
            transport,
            from: from.into(),
        }
    }
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let message = rfc5322(email, &self.from, BodyEncoding::SevenBitSafe)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}
