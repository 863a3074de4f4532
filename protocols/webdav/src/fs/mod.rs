//! The user's drive as a dav-server filesystem, every call going to the storage core with
//! the request's principal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult, FsStream, OpenOptions,
    ReadDirMeta,
};
use davit_storage::{Conditions, Error, FileRead, Item, Principal, Storage};
use futures::{FutureExt, StreamExt};
use http::StatusCode;

use crate::errors::LastError;
use crate::propfind::Asks;

mod read;
mod write;

/// What one request carries to the filesystem calls it causes.
pub struct RequestCtx {
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
    /// For a GET, the offset its body starts at: the file is opened there, and its first
    /// piece read, when dav-server opens it, before it answers a status. A chunk store out of
    /// reach is then a 503, not a 200 whose body is cut off.
    pub read_from: Option<u64>,
    /// A GET's file, opened when dav-server first asks for its metadata (see
    /// `DriveFs::prepare_read`).
    pub prepared: Prepared,
    /// For a PUT, what dav-server's first look at the target found (`None`: nothing there),
    /// with its drive path. The open for writing that follows is answered from it: only the
    /// lock check, a read, comes between, and the write's commit checks again whatever the
    /// open decided (a create-only PUT is `If-None-Match: *` there). It saves a read of
    /// PostgreSQL per PUT.
    pub put_target: Option<Mutex<Option<Looked>>>,
    /// Set when that first look also found no lock stored at all, in its snapshot
    /// (`Storage::stat_noting_locks`): dav-server's lock check, which comes next, then has
    /// nothing to check (`CoreLs::check`). The core checks again before the body and at
    /// commit. It saves a read of PostgreSQL per PUT.
    pub no_locks: Arc<std::sync::OnceLock<bool>>,
    /// A PUT's If-Match / If-None-Match, for the core to check as the write commits:
    /// dav-server checks them before it opens the file, so two writers holding the same
    /// ETag could both pass its check and both write.
    pub put_conditions: davit_storage::Conditions,
    /// What a PROPFIND asks for (see `propfind::asks`).
    pub asks: crate::propfind::Asks,
}

/// A drive path and what was there (`None`: nothing).
pub type Looked = (String, Option<Item>);

/// A read opened ahead for the open that follows, with the drive path it is of.
#[derive(Default)]
pub struct Prepared {
    tried: std::sync::atomic::AtomicBool,
    read: Mutex<Option<(String, FileRead)>>,
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

#[derive(Clone, Debug)]
pub struct Meta(pub Item);

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.0.size
    }
    fn modified(&self) -> FsResult<SystemTime> {
        Ok(davit_http::system_time(self.0.modified))
    }
    fn created(&self) -> FsResult<SystemTime> {
        Ok(davit_http::system_time(self.0.created))
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
            if options.write { self.open_write(p, options).await } else { self.open_read(p).await }
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
            if let Some(item) = self.prepare_read(path).await {
                return Ok(Box::new(Meta(item)) as Box<dyn DavMetaData>);
            }
            if let Some(slot) = &self.ctx.put_target {
                let p = self.path(path)?;
                let (found, none) = self.storage.stat_noting_locks(&self.principal, &p).await;
                if let Some(none) = none {
                    let _ = self.ctx.no_locks.set(none);
                }
                // Only answers the open would have had: an item, or nothing at this path.
                *slot.lock().expect("put target") = match &found {
                    Ok(item) => Some((p, Some(item.clone()))),
                    Err(Error::NotFound(_)) => Some((p, None)),
                    Err(_) => None,
                };
                return Ok(Box::new(Meta(found.map_err(|e| self.fail(e))?)) as Box<dyn DavMetaData>);
            }
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
            self.storage
                .set_modified(&self.principal, &p, davit_http::nanos(tm))
                .await
                .map(|_| ())
                .map_err(|e| self.fail(e))
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
            // dav-server appends what this returns to every PROPFIND answer, a propname one
            // too (which then sent the values). A request naming properties gets every dead
            // one, each once (see `get_prop`): dav-server drops the 404s of those it lacks,
            // and a response with no property at all is one litmus and clients find empty.
            let do_content = match self.ctx.asks {
                Asks::PropName => false,
                Asks::AllProp | Asks::Prop => do_content,
            };
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
            if self.ctx.asks == Asks::Prop {
                // `get_props` answers them all: a named one from here too came twice.
                return Err(FsError::NotFound);
            }
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
