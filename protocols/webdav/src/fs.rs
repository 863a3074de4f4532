//! The user's drive as a dav-server filesystem, every call going to the storage core with
//! the request's principal.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult, FsStream, OpenOptions,
    ReadDirMeta,
};
use davit_storage::{ByteStream, Conditions, Error, Item, Principal, Storage, WriteOptions};
use futures::{FutureExt, StreamExt};
use http::StatusCode;
use tokio::sync::mpsc;

use crate::errors::LastError;

/// What one request carries to the filesystem calls it causes.
pub struct RequestCtx {
    pub method: http::Method,
    pub errors: LastError,
    /// Content-Type the client sent with a PUT.
    pub content_type: Option<String>,
    /// `X-OC-Mtime` (rclone, desktop sync clients): Unix seconds.
    pub mtime: Option<i64>,
    /// Items seen by this request, by path: a PROPFIND of a large folder then asks the
    /// core once, not once per entry.
    pub seen: Mutex<HashMap<String, Item>>,
    /// The stored content type of the file a GET or HEAD served.
    pub served_type: Mutex<Option<String>>,
    /// Quota and usage, asked once per request (an allprop PROPFIND wants it per entry).
    pub quota: tokio::sync::OnceCell<(u64, Option<u64>)>,
}

#[derive(Clone)]
pub struct DriveFs {
    pub storage: Storage,
    pub principal: Principal,
    pub ctx: Arc<RequestCtx>,
}

/// dav-server paths are percent-decoded bytes below the prefix; the core takes UTF-8.
pub fn drive_path(path: &DavPath) -> Result<String, Error> {
    let raw = path.as_bytes();
    let s = std::str::from_utf8(raw).map_err(|_| Error::InvalidName("a path must be valid UTF-8".into()))?;
    Ok(if s.is_empty() { "/".to_owned() } else { s.to_owned() })
}

fn nanos_to_time(n: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n.max(0) as u64)
}

#[derive(Clone, Debug)]
pub struct Meta(pub Item);

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.0.size
    }
    fn modified(&self) -> FsResult<SystemTime> {
        Ok(nanos_to_time(self.0.modified))
    }
    fn created(&self) -> FsResult<SystemTime> {
        Ok(nanos_to_time(self.0.created))
    }
    fn is_dir(&self) -> bool {
        self.0.is_folder()
    }
    fn etag(&self) -> Option<String> {
        (!self.0.etag.is_empty()).then(|| self.0.etag.clone())
    }
}

struct Entry(Item);

impl DavDirEntry for Entry {
    fn name(&self) -> Vec<u8> {
        self.0.name.as_bytes().to_vec()
    }
    fn metadata(&'_ self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(Meta(self.0.clone()));
        futures::future::ready(Ok(m)).boxed()
    }
    fn is_dir(&'_ self) -> FsFuture<'_, bool> {
        futures::future::ready(Ok(self.0.is_folder())).boxed()
    }
    fn is_file(&'_ self) -> FsFuture<'_, bool> {
        futures::future::ready(Ok(!self.0.is_folder())).boxed()
    }
}

impl DriveFs {
    fn fail(&self, e: Error) -> FsError {
        self.ctx.errors.record(e)
    }

    async fn stat(&self, path: &DavPath) -> FsResult<Item> {
        let p = drive_path(path).map_err(|e| self.fail(e))?;
        if let Some(item) = self.ctx.seen.lock().expect("seen").get(p.trim_end_matches('/')) {
            return Ok(item.clone());
        }
        self.storage.stat(&self.principal, &p).await.map_err(|e| self.fail(e))
    }

    fn path(&self, path: &DavPath) -> FsResult<String> {
        drive_path(path).map_err(|e| self.fail(e))
    }
}

impl DavFileSystem for DriveFs {
    fn open<'a>(&'a self, path: &'a DavPath, options: OpenOptions) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let p = self.path(path)?;
            if !options.write {
                // Read rights are decided here, when dav-server opens the file and before it
                // answers a status: refused later, while the body streams, the client would
                // get 200 and a cut connection.
                let item = self.storage.stat_readable(&self.principal, &p).await.map_err(|e| self.fail(e))?;
                if item.is_folder() {
                    return Err(FsError::Forbidden);
                }
                *self.ctx.served_type.lock().expect("served type") = item.content_type.clone();
                let f: Box<dyn DavFile> = Box::new(ReadFile {
                    fs: self.clone(),
                    path: p,
                    item,
                    pos: 0,
                    stream: Mutex::new(None),
                    buf: Bytes::new(),
                });
                return Ok(f);
            }
            if options.append {
                return Err(FsError::NotImplemented);
            }
            let existing = match self.storage.stat(&self.principal, &p).await {
                Ok(item) => Some(item),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(self.fail(e)),
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
            if existing.is_none() && self.ctx.method.as_str() == "LOCK" {
                // A LOCK on an unmapped URL makes an empty, locked file (RFC 4918 §7.3),
                // which davfs2 relies on to create files.
                let empty = futures::stream::empty();
                let opts = WriteOptions { conditions: create_only(), ..Default::default() };
                self.storage.write(&self.principal, &p, empty, opts).await.map_err(|e| self.fail(e))?;
            }
            let f: Box<dyn DavFile> = Box::new(WriteFile {
                fs: self.clone(),
                path: p,
                expected: options.size,
                create_new: options.create_new,
                state: WriteState::Idle,
                written: 0,
            });
            Ok(f)
        }
        .boxed()
    }

    fn read_dir<'a>(&'a self, path: &'a DavPath, _meta: ReadDirMeta) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let p = self.path(path)?;
            let mut all = Vec::new();
            let mut after = None;
            // Pages of a thousand: a folder of any size is read in bounded steps.
            loop {
                let page =
                    self.storage.list(&self.principal, &p, after.clone(), 1000).await.map_err(|e| self.fail(e))?;
                let done = page.len() < 1000;
                after = page.last().map(Item::child_key);
                all.extend(page);
                if done {
                    break;
                }
            }
            {
                let mut seen = self.ctx.seen.lock().expect("seen");
                let base = p.trim_end_matches('/');
                for item in &all {
                    seen.insert(format!("{base}/{}", item.name), item.clone());
                }
            }
            let s: FsStream<Box<dyn DavDirEntry>> =
                futures::stream::iter(all.into_iter().map(|i| Ok(Box::new(Entry(i)) as Box<dyn DavDirEntry>))).boxed();
            Ok(s)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let item = self.stat(path).await?;
            Ok(Box::new(Meta(item)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let p = self.path(path)?;
            self.storage.mkdir(&self.principal, &p).await.map(|_| ()).map_err(|e| self.fail(e))
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove_file(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let p = self.path(path)?;
            self.storage.delete(&self.principal, &p, Conditions::default()).await.map_err(|e| self.fail(e))
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (f, t) = (self.path(from)?, self.path(to)?);
            self.storage.rename(&self.principal, &f, &t, true).await.map(|_| ()).map_err(|e| self.fail(e))
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (f, t) = (self.path(from)?, self.path(to)?);
            self.storage.copy(&self.principal, &f, &t, true).await.map(|_| ()).map_err(|e| self.fail(e))
        }
        .boxed()
    }

    fn set_modified<'a>(&'a self, path: &'a DavPath, tm: SystemTime) -> FsFuture<'a, ()> {
        async move {
            let p = self.path(path)?;
            let nanos = tm.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
            self.storage.set_modified(&self.principal, &p, nanos).await.map(|_| ()).map_err(|e| self.fail(e))
        }
        .boxed()
    }

    fn have_props<'a>(
        &'a self,
        path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        // "Can this path hold dead properties?" (not "has it any"): every item can.
        let _ = path;
        futures::future::ready(true).boxed()
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        async move {
            let p = self.path(path)?;
            let ops = patch
                .iter()
                .map(|(set, prop)| (prop_key(prop), set.then(|| prop.xml.clone().unwrap_or_default())))
                .collect();
            self.storage.set_props(&self.principal, &p, ops).await.map_err(|e| self.fail(e))?;
            Ok(patch.into_iter().map(|(_, prop)| (StatusCode::OK, prop)).collect())
        }
        .boxed()
    }

    fn get_props<'a>(&'a self, path: &'a DavPath, do_content: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let item = self.stat(path).await?;
            Ok(item
                .props
                .iter()
                .map(|(k, v)| {
                    let (ns, name) = split_key(k);
                    DavProp {
                        name: name.to_owned(),
                        prefix: None,
                        namespace: ns.map(str::to_owned),
                        xml: do_content.then(|| v.clone()),
                    }
                })
                .collect())
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            let item = self.stat(path).await?;
            let key = prop_key(&prop);
            item.props.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn get_quota(&'_ self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move {
            self.ctx
                .quota
                .get_or_try_init(|| async {
                    let u = self.storage.usage(self.principal.user_id()).await.map_err(|e| self.fail(e))?;
                    Ok((u.bytes, (u.quota > 0).then_some(u.quota)))
                })
                .await
                .copied()
        }
        .boxed()
    }
}

fn create_only() -> Conditions {
    Conditions { if_match: None, if_none_match: Some(vec!["*".into()]) }
}

/// Dead properties are stored as `{namespace}name`.
fn prop_key(p: &DavProp) -> String {
    format!("{{{}}}{}", p.namespace.as_deref().unwrap_or(""), p.name)
}

fn split_key(k: &str) -> (Option<&str>, &str) {
    match k.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some(("", name)) => (None, name),
        Some((ns, name)) => (Some(ns), name),
        None => (None, k),
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
            conditions: if self.create_new { create_only() } else { Conditions::default() },
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
                    Ok(Ok(_)) => Ok(()),
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
            let item = self.fs.storage.stat(&self.fs.principal, &self.path).await.map_err(|e| self.fs.fail(e))?;
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
