//! The drive tree: what a principal may see and change in its own drive.

pub(crate) mod listing;
pub mod locks;
pub mod multipart;

use bytes::Bytes;
use futures::Stream;
use redb::ReadableTable;

use crate::Storage;
use crate::access::policy::SizeLimit;
use crate::access::{self, Access, Place, resolve_place};
use crate::content::ingest::{Ingested, ingest};
use crate::content::read::{ByteStream, open_range, resolve_range};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS, USAGE};
use crate::meta::model::{Item, Kind, Principal, Role, Scope, Usage, now_nanos};
use crate::meta::names::{DrivePath, SHARED_ROOT};
use crate::meta::txn::{self, FileContent, W};

/// Preconditions on the current version of a target, checked in the committing transaction.
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    /// Proceed only if the target exists with one of these ETags (`*`: exists at all).
    pub if_match: Option<Vec<String>>,
    /// Proceed only if the target has none of these ETags (`*`: does not exist).
    pub if_none_match: Option<Vec<String>>,
}

impl Conditions {
    fn check(&self, current: Option<&Item>) -> Result<()> {
        let etag = current.map(|i| i.etag.as_str());
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
    /// Headers known only once the body has been read (a checksum sent as a trailer), asked
    /// for when the write commits, so they are kept in the same transaction as the content.
    pub late_headers: Option<LateHeaders>,
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
    pub(crate) async fn commit_at<T, K>(
        &self,
        place: Place,
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
                access::recheck(&w, &place)?;
                f(&mut w, &place)
            })
            .await
    }

    /// What every change passes first: a valid path, the right to change it, and no lock
    /// the caller does not hold (on the item, or below it when `deep`).
    pub(crate) async fn change_target(&self, p: &Principal, path: &str, deep: bool) -> Result<Place> {
        let place = self.place_for_change(p, path).await?;
        self.may_change(p, &place, deep).await?;
        Ok(place)
    }

    /// The right to change a resolved place, and no lock the caller does not hold.
    async fn may_change(&self, p: &Principal, place: &Place, deep: bool) -> Result<()> {
        place.check_write(p)?;
        self.check_unlocked(p, place, deep).await
    }

    pub async fn stat(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place(p, path).await?;
        self.stat_place(p, place).await
    }

    /// [`Storage::stat`] of a file the caller is about to download: refused as the read
    /// would be (an uploader, an upload link), for front ends that must answer a status
    /// before they stream the first byte.
    pub async fn stat_readable(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place(p, path).await?;
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        place.check_read(p)?;
        self.stat_place(p, place).await
    }

    async fn stat_place(&self, p: &Principal, place: Place) -> Result<Item> {
        if place.access == Access::Own && place.path.is_shared_root() {
            return Ok(shared_folder(p));
        }
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        self.core
            .db
            .read(move |t| {
                resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))
            })
            .await
    }

    /// A page of a folder's children in name order (folders sort as `name/`), after the
    /// child named `after` when given. The root also lists the virtual `shared` folder.
    pub async fn list(&self, p: &Principal, path: &str, after: Option<String>, limit: usize) -> Result<Vec<Item>> {
        let place = self.place(p, path).await?;
        if place.hides_names() {
            return Ok(Vec::new());
        }
        let shared = shared_folder(p);
        let user = p.user_id;
        self.core
            .db
            .read(move |t| {
                let start = after.unwrap_or_default();
                let page = |mut v: Vec<Item>| {
                    v.retain(|i| i.child_key() > start);
                    v.sort_by_key(Item::child_key);
                    v.truncate(limit);
                    v
                };
                match &place.access {
                    Access::SharedRoot => {
                        let grants = access::grants_to(t, user)?;
                        let mut owners: Vec<Item> = Vec::new();
                        for g in grants.top {
                            if owners.last().is_none_or(|o| o.name != g.owner_name) {
                                owners.push(Item::folder(0, g.share.owner, 0, &g.owner_name, 0));
                            }
                        }
                        return Ok(page(owners));
                    }
                    Access::SharedOwner { name } => {
                        let grants = access::grants_to(t, user)?;
                        let mine = grants
                            .top
                            .into_iter()
                            .filter(|g| &g.owner_name == name)
                            .map(|g| Item { name: g.shown_as, ..g.item })
                            .collect();
                        return Ok(page(mine));
                    }
                    _ => {}
                }
                let items = t.open_table(ITEMS)?;
                let children = t.open_table(CHILDREN)?;
                let folder = resolve_place(&items, &children, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                if !folder.is_folder() {
                    return Err(Error::Conflict(format!("{} is a file, not a folder", place.path)));
                }
                let mut out = Vec::new();
                let mut with_shared = place.access == Access::Own && place.rel.is_root();
                for entry in children.range((folder.id, start.as_str())..(folder.id + 1, ""))? {
                    let (k, id) = entry?;
                    if k.value().1 == start {
                        continue;
                    }
                    if with_shared && k.value().1 > "shared/" && start.as_str() < "shared/" {
                        out.push(shared.clone());
                        with_shared = false;
                    }
                    if out.len() >= limit {
                        break;
                    }
                    out.push(txn::get_item(&items, id.value())?.ok_or_else(|| Error::internal("dangling child"))?);
                }
                if with_shared && start.as_str() < "shared/" && out.len() < limit {
                    out.push(shared);
                }
                out.truncate(limit);
                Ok(out)
            })
            .await
    }

    pub async fn mkdir(&self, p: &Principal, path: &str) -> Result<Item> {
        self.make_folder(p, path).await.map_err(|e| drop_box_refusal(p, path, e))
    }

    async fn make_folder(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place_for_change(p, path).await?;
        if place.is_virtual() || (place.rel.is_root() && place.access != Access::Own) {
            return Err(Error::AlreadyExists(format!("{} exists", place.path)));
        }
        if place.access == Access::Own && place.path.is_shared_root() {
            return Err(Error::AlreadyExists("/shared exists: it holds what others share with you".into()));
        }
        place.rel.check_new(false)?;
        self.may_change(p, &place, false).await?;
        let now = now_nanos();
        self.commit_at(place, (), move |w, place| {
            let (parent, mut name) = access::slot(w, place, false, now)?;
            if place.hides_names() {
                // A drop box answers the same whether the name is taken or not.
                name = access::free_name(&w.children, parent.id, &name)?;
            } else if txn::lookup_child(&w.children, parent.id, &name)?.is_some() {
                return Err(Error::AlreadyExists(format!("{} already exists", place.path)));
            }
            let item = Item::folder(w.next_item_id()?, place.owner, parent.id, &name, now);
            w.put(&item)?;
            w.link(&item)?;
            Ok(item)
        })
        .await
    }

    /// Writes a file from a stream, replacing any file at `path` atomically: readers see the
    /// old version until the new one's chunks are durable and its commit is on disk.
    pub async fn write<S>(&self, p: &Principal, path: &str, body: S, opts: WriteOptions) -> Result<Item>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        self.write_file(p, path, body, opts).await.map_err(|e| drop_box_refusal(p, path, e))
    }

    async fn write_file<S>(&self, p: &Principal, path: &str, body: S, opts: WriteOptions) -> Result<Item>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        let place = self.change_target(p, path, false).await?;
        place.rel.check_new(opts.create_parents)?;
        let owner = place.owner;
        let policy = &self.core.config.policy;
        policy.check_file(p.role, place.path.name().unwrap_or_default(), opts.content_type.as_deref())?;
        let limit = self.size_limit(p.role);
        if let (Some(limit), Some(len)) = (limit, opts.expected_len) {
            limit.check(len)?;
        }
        let keeps_old = !matches!(place.access, Access::Link { .. });
        // Refuse early what would be refused at commit, before reading a byte of the body.
        let pre = {
            let (place, opts) = (place.clone(), opts.clone());
            self.core
                .db
                .read(move |t| {
                    let items = t.open_table(ITEMS)?;
                    let children = t.open_table(CHILDREN)?;
                    let current = match access::slot_read(&items, &children, &place) {
                        Ok((parent, name)) => match txn::lookup_child(&children, parent.id, &name)? {
                            Some(id) if keeps_old => txn::get_item(&items, id)?,
                            _ => None,
                        },
                        Err(Error::ParentMissing(_)) if opts.create_parents => None,
                        Err(e) => return Err(e),
                    };
                    if current.as_ref().is_some_and(Item::is_folder) {
                        return Err(Error::Conflict(format!("{} is a folder", place.path)));
                    }
                    opts.conditions.check(current.as_ref())?;
                    let user = txn::load_user(t, owner)?;
                    let (used, _) = t.open_table(USAGE)?.get(owner)?.map_or((0, 0), |v| v.value());
                    let room = if user.quota == 0 {
                        u64::MAX
                    } else {
                        (user.quota + current.map_or(0, |c| c.size)).saturating_sub(used)
                    };
                    Ok(room)
                })
                .await?
        };
        if let Some(len) = opts.expected_len
            && len > pre
        {
            return Err(quota_error(pre));
        }
        let max = limit.map_or(pre, |l| l.bytes.min(pre));
        let ingested = ingest(&self.core, body, max, || match limit {
            Some(l) if l.bytes <= pre => l.refusal(None),
            _ => quota_error(pre),
        })
        .await?;
        ingested.check_announced(opts.expected_len, opts.expected_md5, "body")?;
        let Ingested { refs, size, md5, inline, pins } = ingested;
        let etag = hex::encode(md5);
        let now = now_nanos();
        let mut headers = opts.headers.clone();
        if let Some(late) = &opts.late_headers {
            headers.extend((late.0)());
        }
        self.commit_at(place, pins, move |w, place| {
            let (parent, mut name) = access::slot(w, place, opts.create_parents, now)?;
            if !keeps_old {
                // An upload link never overwrites: a clashing name gets a new one.
                name = access::free_name(&w.children, parent.id, &name)?;
            }
            let current = match txn::lookup_child(&w.children, parent.id, &name)? {
                Some(id) => Some(w.get(id)?),
                None => None,
            };
            if current.as_ref().is_some_and(Item::is_folder) {
                return Err(Error::Conflict(format!("{} is a folder", place.path)));
            }
            opts.conditions.check(current.as_ref())?;
            let old_size = current.as_ref().map_or(0, |c| c.size);
            w.check_quota(owner, size as i128 - old_size as i128)?;
            w.add_refs(&refs, inline.as_ref())?;
            let content = FileContent {
                size,
                etag: etag.clone(),
                chunks: refs.clone(),
                modified: opts.modified.unwrap_or(now),
                content_type: opts.content_type.clone(),
                headers: headers.clone(),
                user_meta: opts.user_meta.clone(),
                parts: Vec::new(),
            };
            let item = w.place_file(owner, parent.id, &name, current, now, content)?;
            Ok(item)
        })
        .await
    }

    /// Opens a byte range (inclusive `(first, last)` as in HTTP; `None` for all) of a file.
    pub async fn read(&self, p: &Principal, path: &str, range: Option<(u64, Option<u64>)>) -> Result<FileRead> {
        let place = self.place(p, path).await?;
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        place.check_read(p)?;
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || {
            // A concurrent overwrite can free the chunks between the lookup and the pin;
            // the pin then finds them gone and the lookup runs again on the new version.
            for _ in 0..8 {
                let item = core.db.read_sync(|t| {
                    resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                        .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))
                })?;
                if item.is_folder() {
                    return Err(Error::Conflict(format!("{} is a folder", place.path)));
                }
                let (start, end) = resolve_range(item.size, range)?;
                match open_range(&core, &item.chunks, start, end) {
                    Ok(body) => {
                        return Ok(FileRead { item, start, end, body });
                    }
                    Err(Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::internal("file kept changing while being opened"))
        })
        .await?
    }

    /// Whether the caller may change what is at `path` (locks aside): for front ends that
    /// must decide before they act, as WebDAV does before taking a lock.
    pub async fn check_change(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.place_for_change(p, path).await?;
        place.check_write(p)
    }

    /// Whether the item at `path` may be deleted as a whole, without deleting anything:
    /// for front ends that delete a folder's contents before the folder.
    pub async fn check_delete(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.change_target(p, path, true).await?;
        place.check_detach(p)
    }

    pub async fn delete(&self, p: &Principal, path: &str, conditions: Conditions) -> Result<()> {
        let place = self.change_target(p, path, true).await?;
        place.check_detach(p)?;
        self.commit_at(place, (), move |w, place| {
            let item = w
                .resolve(place.base, &place.rel)?
                .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
            conditions.check(Some(&item))?;
            w.remove_subtree(&item)?;
            Ok(())
        })
        .await
    }

    /// Copies a file or folder; content is shared by reference. Returns the new item and
    /// whether it replaced nothing (created).
    pub async fn copy(&self, p: &Principal, from: &str, to: &str, overwrite: bool) -> Result<(Item, bool)> {
        self.relocate(p, from, to, overwrite, false).await
    }

    /// Moves or renames a file or a whole folder atomically; its id is kept. Moving between
    /// one's drive and a read-write share moves no data: the item changes owner, and the
    /// new owner's quota pays for it.
    pub async fn rename(&self, p: &Principal, from: &str, to: &str, overwrite: bool) -> Result<(Item, bool)> {
        self.relocate(p, from, to, overwrite, true).await
    }

    async fn relocate(
        &self,
        p: &Principal,
        from: &str,
        to: &str,
        overwrite: bool,
        is_move: bool,
    ) -> Result<(Item, bool)> {
        let from = self.place(p, from).await?;
        let to = self.place_for_change(p, to).await?;
        if is_move {
            from.check_detach(p)?;
        } else if from.is_virtual() || (from.access == Access::Own && from.rel.is_root()) {
            return Err(Error::Forbidden(format!("{} cannot be copied", from.path)));
        } else if from.hides_names() {
            return Err(Error::Forbidden("an upload link cannot read".into()));
        }
        to.check_write(p)?;
        to.rel.check_new(false)?;
        if to.rel.is_root() {
            // Replacing a granted (or linked) item would delete it: only its owner may.
            return Err(Error::Forbidden(format!("{} is shared with you: only its owner can replace it", to.path)));
        }
        if is_move {
            self.check_unlocked(p, &from, true).await?;
        }
        self.check_unlocked(p, &to, true).await?;
        if from.path == to.path {
            return Err(Error::Forbidden("source and destination are the same".into()));
        }
        if to.path.starts_with(&from.path) {
            return Err(Error::Conflict("cannot put a folder inside itself".into()));
        }
        let (now, role) = (now_nanos(), p.role);
        let policy = self.core.config.policy.clone();
        self.core
            .db
            .write((), move |ctx| {
                let mut w = W::open(ctx)?;
                if is_move {
                    access::recheck(&w, &from)?;
                } else {
                    access::recheck_read(&w, &from)?;
                }
                access::recheck(&w, &to)?;
                let src = w
                    .resolve(from.base, &from.rel)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", from.path)))?;
                let (parent, name) = access::slot(&mut w, &to, false, now)?;
                if w.ancestors(parent.id)?.contains(&src.id) {
                    return Err(Error::Conflict("cannot put a folder inside itself".into()));
                }
                let existing = match txn::lookup_child(&w.children, parent.id, &name)? {
                    Some(id) => Some(w.get(id)?),
                    None => None,
                };
                if existing.as_ref().is_some_and(|e| e.id == src.id) {
                    return Err(Error::Forbidden("source and destination are the same".into()));
                }
                if let Some(e) = &existing
                    && w.ancestors(src.id)?.contains(&e.id)
                {
                    return Err(Error::Conflict(format!(
                        "{} holds {}: it cannot be replaced by it",
                        to.path, from.path
                    )));
                }
                let created = existing.is_none();
                if src.kind == Kind::File {
                    // A rename must not slip a file past the upload policy.
                    policy.check_file(role, &name, src.content_type.as_deref())?;
                }
                if let Some(old) = existing {
                    if !overwrite || matches!(to.access, Access::Link { .. }) {
                        return Err(Error::AlreadyExists(format!("{} already exists", to.path)));
                    }
                    w.remove_subtree(&old)?;
                }
                if is_move {
                    let mut moved = src.clone();
                    w.unlink(&src)?;
                    if src.owner != to.owner {
                        w.change_owner(&src, to.owner)?;
                        moved.owner = to.owner;
                    }
                    moved.parent = parent.id;
                    moved.name = name;
                    w.put(&moved)?;
                    w.link(&moved)?;
                    Ok((moved, created))
                } else {
                    let copy = w.copy_subtree(&src, parent.id, &name, to.owner, now)?;
                    Ok((copy, created))
                }
            })
            .await
    }

    /// Sets (`Some`) and removes (`None`) WebDAV dead properties of an item, in order, all
    /// or nothing.
    pub async fn set_props(&self, p: &Principal, path: &str, ops: Vec<(String, Option<Vec<u8>>)>) -> Result<Item> {
        self.update_item(p, path, move |item| {
            for (key, value) in &ops {
                item.props.retain(|(k, _)| k != key);
                if let Some(v) = value {
                    item.props.push((key.clone(), v.clone()));
                }
            }
            Ok(())
        })
        .await
    }

    /// Records a modification time given by the client (X-OC-Mtime, S3 metadata).
    pub async fn set_modified(&self, p: &Principal, path: &str, modified: i64) -> Result<Item> {
        self.update_item(p, path, move |item| {
            item.modified = modified;
            Ok(())
        })
        .await
    }

    async fn update_item(
        &self,
        p: &Principal,
        path: &str,
        f: impl Fn(&mut Item) -> Result<()> + Send + 'static,
    ) -> Result<Item> {
        let place = self.change_target(p, path, false).await?;
        self.commit_at(place, (), move |w, place| {
            let mut item = w
                .resolve(place.base, &place.rel)?
                .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
            f(&mut item)?;
            w.put(&item)?;
            if place.rel.is_root()
                && let Some(shown) = &place.shown_as
            {
                item.name = shown.clone();
            }
            Ok(item)
        })
        .await
    }

    /// Makes the folder at `path` and any missing parents; an existing folder is fine.
    pub async fn mkdir_all(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place_for_change(p, path).await?;
        if place.rel.is_root() && place.access != Access::Own {
            return self.stat(p, path).await;
        }
        place.rel.check_new(true)?;
        self.may_change(p, &place, false).await?;
        let now = now_nanos();
        self.commit_at(place, (), move |w, place| w.ensure_folder(place.base, &place.rel, place.owner, now)).await
    }

    /// Deletes a file (S3 DeleteObject), then the folders above it that it left empty, up
    /// to but not including `keep_depth` names from the root (the bucket) or a granted
    /// item. A missing file is not an error.
    pub async fn delete_object(&self, p: &Principal, path: &str, keep_depth: usize) -> Result<()> {
        let place = self.change_target(p, path, true).await?;
        place.check_detach(p)?;
        self.commit_at(place, (), move |w, place| {
            let Some(item) = w.resolve(place.base, &place.rel)? else { return Ok(()) };
            w.remove_subtree(&item)?;
            let mut up = place.rel.parent();
            while let Some(dir) = up {
                if dir.is_root() || place.depth + dir.names().len() <= keep_depth {
                    break;
                }
                let Some(folder) = w.resolve(place.base, &dir)? else { break };
                if w.children.range((folder.id, "")..(folder.id + 1, ""))?.next().is_some() {
                    break;
                }
                w.remove_subtree(&folder)?;
                up = dir.parent();
            }
            Ok(())
        })
        .await
    }

    /// Removes a folder only if it is empty (S3 DeleteBucket).
    pub async fn remove_empty_folder(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.place(p, path).await?;
        place.check_detach(p)?;
        self.commit_at(place, (), move |w, place| {
            let folder = w.resolve_folder(place.base, &place.rel).map_err(|e| match e {
                Error::ParentMissing(_) => Error::missing(What::Item, format!("{} not found", place.path)),
                e => e,
            })?;
            if w.children.range((folder.id, "")..(folder.id + 1, ""))?.next().is_some() {
                return Err(Error::NotEmpty(format!("{} is not empty", place.path)));
            }
            w.remove_subtree(&folder)?;
            Ok(())
        })
        .await
    }

    /// Replaces the stored type, standard headers and user metadata of a file.
    pub async fn set_metadata(
        &self,
        p: &Principal,
        path: &str,
        content_type: Option<String>,
        headers: Vec<(String, String)>,
        user_meta: Vec<(String, String)>,
    ) -> Result<Item> {
        self.update_item(p, path, move |item| {
            item.content_type = content_type.clone();
            item.headers = headers.clone();
            item.user_meta = user_meta.clone();
            Ok(())
        })
        .await
    }

    /// The size rule of `role`'s writes, whole files and multipart uploads alike (see
    /// [`crate::access::policy::Policy::size_limit`]).
    pub fn size_limit(&self, role: Role) -> Option<SizeLimit> {
        self.core.config.policy.size_limit(role, self.core.config.max_file_size)
    }

    pub async fn usage(&self, user_id: u64) -> Result<Usage> {
        self.core
            .db
            .read(move |t| {
                let user = txn::load_user(t, user_id)?;
                let (bytes, files) = t.open_table(USAGE)?.get(user_id)?.map_or((0, 0), |v| v.value());
                Ok(Usage { bytes, files, quota: user.quota })
            })
            .await
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
mod tests {
    use bytes::Bytes;

    use crate::meta::model::Role;
    use crate::{Error, WriteOptions};

    #[tokio::test]
    async fn new_names_with_control_characters_are_refused_everywhere_in_the_core() {
        let f = crate::tests::open_with(|_| {});
        let (s, p) = (&f.storage, crate::tests::user(&f.storage, "alice", Role::User, None).await);
        let bad = |r: crate::Result<_>| matches!(r, Err(Error::InvalidName(_)));
        let empty = || futures::stream::empty::<std::io::Result<Bytes>>();
        assert!(bad(s.write(&p, "/c\u{1}.txt", empty(), WriteOptions::default()).await.map(|_| ())));
        assert!(bad(s.mkdir(&p, "/d\u{7f}").await.map(|_| ())));
        assert!(bad(s.mkdir_all(&p, "/e\u{85}/f").await.map(|_| ())));
        let s3 = WriteOptions { create_parents: true, ..Default::default() };
        assert!(bad(s.write(&p, "/b/g\u{1b}/k.txt", empty(), s3.clone()).await.map(|_| ())));
        assert!(bad(s.create_upload(&p, "/b/h\n.bin", s3).await.map(|_| ())));
        s.write(&p, "/ok.txt", empty(), WriteOptions::default()).await.unwrap();
        assert!(bad(s.rename(&p, "/ok.txt", "/ok\t.txt", false).await.map(|_| ())));
        assert!(bad(s.copy(&p, "/ok.txt", "/ok\u{9f}.txt", false).await.map(|_| ())));
        // Looking a name up is not making one: a missing item is just missing.
        assert!(matches!(s.stat(&p, "/c\u{1}.txt").await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn names_stored_before_the_rule_still_list_read_move_and_delete() {
        use futures::StreamExt;
        let f = crate::tests::open_with(|_| {});
        let (s, p) = (&f.storage, crate::tests::user(&f.storage, "alice", Role::User, None).await);
        let opts = WriteOptions { create_parents: true, ..Default::default() };
        let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"old"))]);
        s.write(&p, "/b/legacy.txt", body, opts).await.unwrap();
        // Give it the name an earlier version accepted, as that version stored it.
        let root = p.root;
        s.core
            .db
            .write((), move |ctx| {
                let mut w = crate::meta::txn::W::open(ctx)?;
                let item = w.resolve(root, &crate::meta::names::DrivePath::parse("/b/legacy.txt")?)?.unwrap();
                w.unlink(&item)?;
                let renamed = crate::Item { name: "legacy\u{1}.txt".into(), ..item };
                w.put(&renamed)?;
                w.link(&renamed)
            })
            .await
            .unwrap();
        let q = crate::ListQuery { prefix: "", start_after: None, delimiter: None, max: 10 };
        let listing = s.list_keys(&p, "/b", q).await.unwrap();
        assert_eq!(listing.objects.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["legacy\u{1}.txt"]);
        let mut r = s.read(&p, "/b/legacy\u{1}.txt", None).await.unwrap();
        assert_eq!(r.body.next().await.unwrap().unwrap().as_ref(), b"old");
        // It can be moved to a valid name, or deleted, but nothing new takes such a name.
        let empty = || futures::stream::empty::<std::io::Result<Bytes>>();
        assert!(matches!(
            s.write(&p, "/b/legacy\u{1}.txt", empty(), WriteOptions::default()).await,
            Err(Error::InvalidName(_))
        ));
        s.rename(&p, "/b/legacy\u{1}.txt", "/b/fixed.txt", false).await.unwrap();
        s.copy(&p, "/b/fixed.txt", "/b/copy.txt", false).await.unwrap();
        s.delete(&p, "/b/copy.txt", Default::default()).await.unwrap();
        assert_eq!(s.stat(&p, "/b/fixed.txt").await.unwrap().size, 3);
    }
}
