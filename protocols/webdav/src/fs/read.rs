//! Reading: a file opened for GET (or COPY's source) streams from the core from the
//! current position, opened again after a seek.

use std::io::SeekFrom;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture, FsResult};
use davit_storage::{ByteStream, Item};
use futures::{FutureExt, StreamExt};

use super::{DriveFs, Meta, drive_path};

impl DriveFs {
    /// Read rights are decided here, when dav-server opens the file and before it answers a
    /// status: refused later, while the body streams, the client would get 200 and a cut
    /// connection.
    /// A GET has dav-server ask the file's metadata, then open it: both are answered by one
    /// read of the core at the first ask (the path resolved once; a small file's bytes read
    /// in the same transaction), kept for the open. Refused or failed, it is as if not tried:
    /// the ordinary stat and open then give their own answer (a folder's, a 404, the 403 of
    /// one who may see a file but not read it), so no rule is decided here.
    pub(super) async fn prepare_read(&self, path: &DavPath) -> Option<Item> {
        let at = self.ctx.read_from?;
        if self.ctx.prepared.tried.swap(true, Ordering::Relaxed) {
            return None;
        }
        let p = drive_path(path).ok()?;
        let r = self.storage.read(&self.principal, &p, (at > 0).then_some((at, None))).await.ok()?;
        let item = r.item.clone();
        *self.ctx.prepared.read.lock().expect("prepared read") = Some((p, r));
        Some(item)
    }

    pub(super) async fn open_read(&self, p: String) -> FsResult<Box<dyn DavFile>> {
        let prepared = self.ctx.prepared.read.lock().expect("prepared read").take_if(|(q, _)| *q == p);
        if let Some((_, r)) = prepared {
            *self.ctx.served_type.lock().expect("served type") = r.item.content_type.clone();
            return Ok(Box::new(ReadFile {
                fs: self.clone(),
                path: p,
                item: r.item,
                pos: r.start,
                stream: Mutex::new(Some(r.body)),
                buf: Bytes::new(),
            }));
        }
        let item = self.storage.stat_readable(&self.principal, &p).await.map_err(|e| self.fail(e))?;
        if item.is_folder() {
            return Err(FsError::Forbidden);
        }
        *self.ctx.served_type.lock().expect("served type") = item.content_type.clone();
        // A GET's body is opened now, at the offset it will be read from (dav-server then
        // seeks there, which keeps it), so that a failure to read is still a status.
        let (pos, stream) = match self.ctx.read_from.filter(|&at| at < item.size) {
            Some(at) => {
                let r = self.storage.read(&self.principal, &p, Some((at, None))).await.map_err(|e| self.fail(e))?;
                (at, Some(r.body))
            }
            None => (0, None),
        };
        Ok(Box::new(ReadFile { fs: self.clone(), path: p, item, pos, stream: Mutex::new(stream), buf: Bytes::new() }))
    }
}

/// A file being read: a stream from the core, opened at the current position on demand.
struct ReadFile {
    fs: DriveFs,
    path: String,
    item: Item,
    pos: u64,
    /// In a Mutex only because dav-server wants files `Sync`; reached through `get_mut`.
    stream: Mutex<Option<ByteStream>>,
    buf: Bytes,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadFile({})", self.path)
    }
}

impl DavFile for ReadFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(Meta(self.item.clone()));
        futures::future::ready(Ok(m)).boxed()
    }

    fn write_buf(&'_ mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn write_bytes(&'_ mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn read_bytes(&'_ mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            if self.buf.is_empty() {
                if self.pos >= self.item.size {
                    return Ok(Bytes::new());
                }
                let opened = self.stream.get_mut().expect("stream").is_some();
                if !opened {
                    let r = self
                        .fs
                        .storage
                        .read(&self.fs.principal, &self.path, Some((self.pos, None)))
                        .await
                        .map_err(|e| self.fs.fail(e))?;
                    *self.stream.get_mut().expect("stream") = Some(r.body);
                }
                let next = self.stream.get_mut().expect("stream").as_mut().expect("opened").next().await;
                match next {
                    Some(Ok(b)) => self.buf = b,
                    Some(Err(e)) => return Err(self.fs.fail(e)),
                    None => return Ok(Bytes::new()),
                }
            }
            let n = count.min(self.buf.len());
            self.pos += n as u64;
            Ok(self.buf.split_to(n))
        }
        .boxed()
    }

    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.item.size.checked_add_signed(d),
        };
        let r = match new {
            Some(n) => {
                if n != self.pos {
                    self.pos = n;
                    *self.stream.get_mut().expect("stream") = None;
                    self.buf = Bytes::new();
                }
                Ok(n)
            }
            None => Err(FsError::GeneralFailure),
        };
        futures::future::ready(r).boxed()
    }

    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }
}
