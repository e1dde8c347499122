//! The default sender in embedded mode: each message becomes one `.eml` file (RFC 5322) in a
//! directory, written to a temporary file and renamed into place so a reader never sees half a
//! message. Sending the same notification again rewrites the same file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{rfc5322, BodyEncoding, Email, SendError, Sender, DEFAULT_FROM};

pub struct FileSender {
    dir: PathBuf,
    from: String,
}

impl FileSender {
    /// Writes into `dir` (created on first use) with the default sender address.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            from: DEFAULT_FROM.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a notification is written to.
    pub fn path_of(&self, email: &Email) -> PathBuf {
        self.dir.join(format!("{}.eml", email.id))
    }
}

#[async_trait]
impl Sender for FileSender {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        // `send_all` answers once per e-mail; a missing answer is never taken for a delivery.
        let outcomes = self.send_all(std::slice::from_ref(email)).await;
        outcomes.into_iter().next().unwrap_or_else(|| {
            Err(SendError::Transient(
                "the file writer gave no outcome".to_owned(),
            ))
        })
    }

    /// One trip to the blocking pool for a whole batch of messages (a wake-up of a pool thread
    /// and one back each), not one per message or per file operation.
    async fn send_all(&self, emails: &[Email]) -> Vec<Result<(), SendError>> {
        let files: Vec<_> = emails
            .iter()
            .map(|email| {
                let message = rfc5322(email, &self.from, BodyEncoding::EightBit)?;
                Ok((
                    self.dir.join(format!(".{}.eml.tmp", email.id)),
                    self.path_of(email),
                    message.formatted(),
                ))
            })
            .collect();
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|file| {
                    file.and_then(|(temporary, target, bytes)| {
                        write(&dir, &temporary, &target, &bytes)
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
        written.unwrap_or_else(|error| {
            let error = format!("the file writer stopped: {error}");
            emails
                .iter()
                .map(|_| Err(SendError::Transient(error.clone())))
                .collect()
        })
    }
}

/// Writes one message to a temporary file and renames it into place.
fn write(dir: &Path, temporary: &Path, target: &Path, bytes: &[u8]) -> Result<(), SendError> {
    let transient = |what: &str, error: std::io::Error| {
        SendError::Transient(format!("{what} in {}: {error}", dir.display()))
    };
    let written = match std::fs::write(temporary, bytes) {
        // The directory is created on first use (and again should someone remove it).
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| transient("cannot create the directory", e))?;
            std::fs::write(temporary, bytes)
        }
        other => other,
    };
    written.map_err(|e| transient("cannot write the message", e))?;
    std::fs::rename(temporary, target)
        .map_err(|e| transient("cannot move the message into place", e))
}
