//! Where audit lines go: a file, stderr, or nowhere (the store keeps events either way).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use super::Event;
use crate::error::Result;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuditLog {
    /// No lines (offline tools, the core's own tests): events are still stored.
    #[default]
    Off,
    Stderr,
    /// Appended to, created 0600 when missing.
    File(PathBuf),
}

/// The line writer. Lines go through a channel to a thread of their own: a file write may
/// block (a slow disk), and events are recorded from async workers.
pub(crate) struct Sink {
    lines: Option<Mutex<Sender<String>>>,
}

impl Sink {
    pub(crate) fn open(log: &AuditLog) -> Result<Self> {
        let mut out: Box<dyn Write + Send> = match log {
            AuditLog::Off => return Ok(Sink { lines: None }),
            AuditLog::Stderr => Box::new(std::io::stderr()),
            AuditLog::File(path) => {
                let mut opts = std::fs::OpenOptions::new();
                opts.append(true).create(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                Box::new(opts.open(path)?)
            }
        };
        let (tx, rx) = channel::<String>();
        std::thread::Builder::new().name("davit-audit".into()).spawn(move || {
            while let Ok(line) = rx.recv() {
                // Flushed per line: a line in the log must survive the process dying next.
                if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                    tracing::error!(error = %e, "writing the audit log failed");
                }
            }
        })?;
        Ok(Sink { lines: Some(Mutex::new(tx)) })
    }

    pub(crate) fn line(&self, event: &Event) {
        let Some(lines) = &self.lines else { return };
        let mut line = event.json().to_string();
        line.push('\n');
        let _ = lines.lock().map(|tx| tx.send(line));
    }
}
