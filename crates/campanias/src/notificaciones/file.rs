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
        let message = rfc5322(email, &self.from, BodyEncoding::EightBit)?;
        let bytes = message.formatted();
        let transient = |what: &str, error: std::io::Error| {
            SendError::Transient(format!("{what} in {}: {error}", self.dir.display()))
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| transient("cannot create the directory", e))?;
        let target = self.path_of(email);
        let temporary = self.dir.join(format!(".{}.eml.tmp", email.id));
        tokio::fs::write(&temporary, &bytes)
            .await
            .map_err(|e| transient("cannot write the message", e))?;
        tokio::fs::rename(&temporary, &target)
            .await
            .map_err(|e| transient("cannot move the message into place", e))?;
        Ok(())
    }
}
