//! Where audit lines go: a file, stderr, or nowhere (the store keeps events either way).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, SyncSender, channel, sync_channel};

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
    lines: Option<Mutex<Sender<Message>>>,
}

enum Message {
    Line(String),
    /// Answered once every line sent before it is written.
    Flush(SyncSender<()>),
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
        let (tx, rx) = channel::<Message>();
        std::thread::Builder::new().name("davit-audit".into()).spawn(move || {
            while let Ok(message) = rx.recv() {
                let line = match message {
                    Message::Line(line) => line,
                    Message::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
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
        let _ = lines.lock().map(|tx| tx.send(Message::Line(line)));
    }

    /// Waits until the lines sent so far are written (bounded: a stuck disk does not hang
    /// the caller forever). For tools that exit right after recording.
    pub(crate) fn flush(&self) {
        let Some(lines) = &self.lines else { return };
        let (done, written) = sync_channel(1);
        if lines.lock().map(|tx| tx.send(Message::Flush(done))).is_ok_and(|r| r.is_ok()) {
            let _ = written.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}
