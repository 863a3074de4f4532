//! Writing: a PUT's body streams into one write of the core, committed when dav-server
//! flushes it.

use std::io::SeekFrom;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture, FsResult, OpenOptions};
use davit_storage::{Conditions, Error, Item, WriteOptions};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::{DriveFs, Meta};

impl DriveFs {
    /// A LOCK on an unmapped URL finds its empty file here already: the lock system made it
    /// (RFC 4918 §7.3), since a lock binds an item.
    pub(super) async fn open_write(&self, p: String, options: OpenOptions) -> FsResult<Box<dyn DavFile>> {
        if options.append {
            return Err(FsError::NotImplemented);
        }
        let looked = self.ctx.put_target.as_ref().and_then(|slot| slot.lock().expect("put target").take());
        let existing = match looked {
            Some((q, found)) if q == p => found,
            _ => match self.storage.stat(&self.principal, &p).await {
                Ok(item) => Some(item),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(self.fail(e)),
            },
        };
        if existing.as_ref().is_some_and(Item::is_folder) {
            return Err(FsError::Forbidden);
        }
        if existing.is_some() && options.create_new {
            return Err(FsError::Exists);
        }
        if existing.is_none() && !options.create {
            return Err(FsError::NotFound);
        }
        Ok(Box::new(WriteFile {
            fs: self.clone(),
            path: p,
            expected: options.size,
            create_new: options.create_new,
            state: WriteState::Idle,
            written: 0,
            stored: None,
        }))
    }
}

fn create_only() -> Conditions {
    Conditions { if_match: None, if_none_match: Some(vec!["*".into()]) }
}

enum WriteState {
    Idle,
    Running {
        tx: mpsc::Sender<Bytes>,
        finished: Arc<AtomicBool>,
        task: tokio::task::JoinHandle<davit_storage::Result<Item>>,
    },
    Done,
}

/// A file being written: its bytes stream straight into the core's write, which commits
/// only when dav-server flushes a body of the announced length. Dropped unflushed (the
/// client went away), the write fails and nothing is stored.
struct WriteFile {
    fs: DriveFs,
    path: String,
    expected: Option<u64>,
    create_new: bool,
    state: WriteState,
    written: u64,
    /// The file as its write committed it: dav-server asks for its metadata (ETag, time)
    /// for the answer, which it gives without another read.
    stored: Option<Item>,
}

impl std::fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteFile({})", self.path)
    }
}

impl WriteFile {
    fn start(&mut self) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let body = futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
            std::task::Poll::Ready(Some(b)) => std::task::Poll::Ready(Some(Ok(b))),
            std::task::Poll::Ready(None) if done.load(Ordering::Acquire) => std::task::Poll::Ready(None),
            std::task::Poll::Ready(None) => {
                done.store(true, Ordering::Release);
                std::task::Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the client went away",
                ))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        })
        .boxed();
        let ctx = &self.fs.ctx;
        let opts = WriteOptions {
            content_type: ctx.content_type.clone(),
            modified: ctx.mtime.map(|s| s.saturating_mul(1_000_000_000)),
            expected_len: self.expected,
            conditions: if self.create_new { create_only() } else { ctx.put_conditions.clone() },
            ..Default::default()
        };
        let (storage, principal, path) = (self.fs.storage.clone(), self.fs.principal.clone(), self.path.clone());
        let task = tokio::spawn(async move { storage.write(&principal, &path, body, opts).await });
        self.state = WriteState::Running { tx, finished, task };
    }

    async fn finish(&mut self) -> FsResult<()> {
        match std::mem::replace(&mut self.state, WriteState::Done) {
            WriteState::Running { tx, finished, task } => {
                finished.store(true, Ordering::Release);
                drop(tx);
                match task.await {
                    Ok(Ok(item)) => {
                        self.stored = Some(item);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(self.fs.fail(e)),
                    Err(e) => Err(self.fs.fail(Error::internal(e))),
                }
            }
            _ => Ok(()),
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        async move {
            let item = match &self.stored {
                Some(item) => item.clone(),
                None => self.fs.storage.stat(&self.fs.principal, &self.path).await.map_err(|e| self.fs.fail(e))?,
            };
            Ok(Box::new(Meta(item)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn write_buf(&'_ mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(bytes)
    }

    fn write_bytes(&'_ mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move {
            if matches!(self.state, WriteState::Idle) {
                self.start();
            }
            self.written += buf.len() as u64;
            let sent = match &self.state {
                WriteState::Running { tx, .. } => tx.send(buf).await.is_ok(),
                _ => false,
            };
            if !sent {
                // The core stopped reading (a refusal): report its reason.
                self.finish().await?;
                return Err(FsError::GeneralFailure);
            }
            Ok(())
        }
        .boxed()
    }

    fn read_bytes(&'_ mut self, _count: usize) -> FsFuture<'_, Bytes> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        // Writes replace whole files; partial PUTs are not supported.
        let r = match pos {
            SeekFrom::Start(0) if self.written == 0 => Ok(0),
            _ => Err(FsError::NotImplemented),
        };
        futures::future::ready(r).boxed()
    }

    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        async move {
            if matches!(self.state, WriteState::Idle) {
                self.start();
            }
            self.finish().await
        }
        .boxed()
    }
}

impl Drop for WriteFile {
    fn drop(&mut self) {
        // Unflushed: the channel closes without `finished`, so the core's write fails.
        if let WriteState::Running { tx, .. } = std::mem::replace(&mut self.state, WriteState::Done) {
            drop(tx);
        }
    }
}
