//! Outgoing mail: SMTP via lettre (rustls, no OpenSSL) when a URL is configured, otherwise
//! files in the data folder's outbox, so a fresh install works and says where mail went.

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub enum Mailer {
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
    Outbox { dir: PathBuf, from: Mailbox },
}

impl Mailer {
    /// `smtp_url` in the form lettre's `from_url` takes: `smtp://host:port` (STARTTLS with
    /// `?tls=required`), `smtps://host` (TLS), with `user:password@` for credentials.
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &std::path::Path) -> Result<Self, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("invalid sender address '{from}': {e}"))?;
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("invalid SMTP URL: {e}"))?
                    .build();
                Ok(Mailer::Smtp { transport, from })
            }
            None => {
                let dir = data_dir.join("outbox");
                // Mails hold codes: private, like the whole data folder.
                davit_storage::perms::private_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                tracing::info!(outbox = %dir.display(), "no SMTP server configured: mail is written to the outbox folder");
                Ok(Mailer::Outbox { dir, from })
            }
        }
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let to: Mailbox = to.parse().map_err(|e| format!("invalid recipient: {e}"))?;
        let msg = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("building mail: {e}"))?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport.send(msg).await.map_err(|e| format!("SMTP: {e}"))?;
            }
            Mailer::Outbox { dir, .. } => {
                let name = format!(
                    "{}-{}.eml",
                    davit_storage::model::now_nanos(),
                    davit_storage::crypto::random_string(b"abcdefghijklmnopqrstuvwxyz", 6)
                );
                let path = dir.join(name);
                let bytes = msg.formatted();
                let p = path.clone();
                // Readable by davit's user only: a mail may hold a code that takes over an account.
                tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    let mut f = davit_storage::perms::private_file_options().write(true).create_new(true).open(&p)?;
                    f.write_all(&bytes)
                })
                .await
                .map_err(|e| format!("writing {}: {e}", path.display()))?
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "mail written to the outbox");
            }
        }
        Ok(())
    }
}
