//! The drive tree: what a principal may see and change in its own drive.
//!
//! One file per operation (`stat`, `list`, `read`, `write`, `relocate`, `delete`), S3's key
//! listing and multipart uploads, and WebDAV locks. Here: the options every operation takes
//! and the path resolution and change checks they all go through.

pub(crate) mod listing;
pub mod locks;
pub mod multipart;

mod delete;
pub(crate) mod detach;
mod list;
mod read;
mod relocate;
pub use relocate::ObjectCopy;
mod stat;
pub mod tagging;
mod write;

use crate::Storage;
use crate::access::{self, Place};
use crate::content::read::ByteStream;
use crate::error::{Error, Result};
use crate::meta::db::Readable as _;
use crate::meta::model::{Item, Principal, Scope};
use crate::meta::names::{DrivePath, SHARED_ROOT};
use crate::meta::txn::W;
use locks::LockGuard;

/// Preconditions on the current version of a target, checked in the committing transaction.
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    /// Proceed only if the target exists with one of these ETags (`*`: exists at all).
    pub if_match: Option<Vec<String>>,
    /// Proceed only if the target has none of these ETags (`*`: does not exist).
    pub if_none_match: Option<Vec<String>>,
}

impl Conditions {
    /// Whether `current`, what is at the target (None: nothing), meets the conditions.
    pub fn check(&self, current: Option<&Item>) -> Result<()> {
        self.check_etag(current.map(|i| i.etag.as_str()))
    }

    /// [`Self::check`] on the ETag of what is at the target (None: nothing), for a target
    /// whose ETag a front end names itself (S3's folder marker, the empty object).
    pub fn check_etag(&self, etag: Option<&str>) -> Result<()> {
        if let Some(list) = &self.if_match {
            let ok = match etag {
                None => false,
                Some(e) => list.iter().any(|t| t == "*" || t.trim_matches('"') == e),
            };
            if !ok {
                return Err(Error::PreconditionFailed("If-Match: the target's ETag does not match".into()));
            }
        }
        if let Some(list) = &self.if_none_match {
            let hit = match etag {
                None => false,
                Some(e) => list.iter().any(|t| t == "*" || t.trim_matches('"') == e),
            };
            if hit {
                return Err(Error::PreconditionFailed("If-None-Match: the target exists with that ETag".into()));
            }
        }
        Ok(())
    }
}

/// How to store a written file.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    /// Modification time to record (clients that keep times send it), Unix nanoseconds.
    pub modified: Option<i64>,
    /// The announced length: a body that ends short (or runs long) is refused, not stored.
    pub expected_len: Option<u64>,
    pub conditions: Conditions,
    /// Make missing parent folders (S3 keys imply them) instead of refusing.
    pub create_parents: bool,
    /// The MD5 the client announced (Content-MD5): a body with another is refused.
    pub expected_md5: Option<[u8; 16]>,
    /// The ETag must be the body's MD5 (S3's single PUT); otherwise a large body's ETag is
    /// a digest of its chunks and no MD5 is computed (see `content::ingest::ingest_with`).
    pub md5_etag: bool,
    /// Headers known only once the body has been read (a checksum sent as a trailer), asked
    /// for when the write commits, so they are kept in the same transaction as the content.
    pub late_headers: Option<LateHeaders>,
    /// S3 tags to give the file, replacing any it had (`x-amz-tagging`; checked by
    /// [`crate::tree::tagging::check_object_tags`]). None keeps an overwritten file's tags, as
    /// WebDAV and REST writes do. For an upload: the tags its object gets at completion.
    pub tags: Option<Vec<(String, String)>>,
    /// The object lock the new version gets, in the write's transaction (S3's
    /// `x-amz-object-lock-*`; see [`crate::VersionLock`]).
    pub lock: crate::VersionLock,
}

/// See [`WriteOptions::late_headers`].
#[derive(Clone)]
pub struct LateHeaders(pub std::sync::Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>);

impl std::fmt::Debug for LateHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LateHeaders")
    }
}

/// An open read: the item, the byte range `[start, end)` being sent, and its bytes.
pub struct FileRead {
    pub item: Item,
    /// The version id of what is read, when it has one (see `crate::versions`).
    pub version: Option<String>,
    pub start: u64,
    pub end: u64,
    pub body: ByteStream,
}

/// The virtual `/shared` folder every drive shows.
fn shared_folder(p: &Principal) -> Item {
    Item::folder(0, p.user_id, p.root, SHARED_ROOT, 0)
}

impl Storage {
    /// Resolves a caller's path (see [`access`]). One's own drive needs no lookup.
    pub(crate) async fn place(&self, p: &Principal, path: &str) -> Result<Place> {
        let path = DrivePath::parse(path)?;
        if p.scope == Scope::Drive && !path.in_shared() {
            return Ok(Place::own(p, path));
        }
        let p = p.clone();
        self.core.db.read(move |t| access::place(t, &p, path)).await
    }

    /// A place to change: under `/shared`, a name nothing was shared under is refused as
    /// such, not reported missing.
    async fn place_for_change(&self, p: &Principal, path: &str) -> Result<Place> {
        self.place(p, path).await.map_err(|e| match e {
            Error::NotFound(_) => Error::Forbidden(format!("nothing is shared with you at {path}")),
            e => e,
        })
    }

    /// Commits a change at `place`, after checking again, in the same transaction, that the
    /// grant or link it was resolved through still allows it: every change of one place goes
    /// through here, so none can forget that a revocation wins over a change in flight.
    /// The locks are read in that transaction too (see `locks`): a lock taken through any
    /// node before the commit binds the change.
    pub(crate) async fn commit_at<T, K>(
        &self,
        place: Place,
        guard: LockGuard,
        keep: K,
        mut f: impl FnMut(&mut W<'_>, &Place) -> Result<T> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
        K: Send + 'static,
    {
        self.core
            .db
            .write(keep, move |ctx| {
                let mut w = W::open(ctx)?;
                if w.children.on_postgres().is_some() {
                    let locks = w.txn.open_table(crate::meta::db::LOCKS)?;
                    access::fetch_place(&w.items, &w.children, &locks, &place)?;
                }
                access::recheck(&w, &place)?;
                locks::check_in_write(&w, &place, &guard)?;
                f(&mut w, &place)
            })
            .await
    }

    /// What every change passes first: a valid path and the right to change it. Locks are
    /// checked where the change commits ([`Self::commit_at`]), with `LockGuard::of(p, deep)`.
    pub(crate) async fn change_target(&self, p: &Principal, path: &str) -> Result<Place> {
        let place = self.place_for_change(p, path).await?;
        place.check_write(p)?;
        Ok(place)
    }
}

/// Through an upload link, a refusal that depends on what is already there (a file where a
/// folder is needed, a missing folder) would tell names the link hides: it is told as one.
fn drop_box_refusal(p: &Principal, path: &str, e: Error) -> Error {
    match (&p.scope, e) {
        (Scope::Link { upload: true, .. }, Error::Conflict(_) | Error::ParentMissing(_) | Error::AlreadyExists(_)) => {
            Error::Conflict(format!("cannot store {path} in this drop box"))
        }
        (_, e) => e,
    }
}

pub(crate) fn quota_error(need: u64) -> Error {
    Error::QuotaExceeded(format!("over quota: only {need} bytes are left"))
}

#[cfg(test)]
mod tests;
