//! What front ends ask of versions: a bucket's state, one key's versions, reading, deleting
//! and copying (restoring) one version.

use super::history::{Bucket, bucket_of, history_of, owner_has_versioning};
use super::{Version, VersionInfo, VersionLock, Versioning, parse_id, row_key, version_id};
use crate::Storage;
use crate::access::{self, Access, Place, resolve_place};
use crate::content::read::{open_range, read_inline, resolve_range};
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, CURRENT_VERSIONS, ITEMS, OBJECT_LOCK, TAGS, VERSION_TAGS, VERSIONING, VERSIONS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Kind, Principal, child_key, now_nanos};
use crate::meta::txn::{self, FileContent, W, get_item};
use crate::tree::FileRead;
use crate::tree::locks::{self, LockGuard};

/// The versioned bucket and key a place names; `None` outside a bucket whose versioning
/// was ever configured.
pub(super) fn locate(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    versioning: &impl Readable<(u64, u64), u64>,
    place: &Place,
) -> Result<Option<(Bucket, String)>> {
    let names = place.rel.names();
    if place.access == Access::Own {
        if names.len() < 2 || !owner_has_versioning(versioning, place.owner)? {
            return Ok(None);
        }
        let Some(id) = children.get((place.base, child_key(&names[0], Kind::Folder).as_str()))?.map(|v| v.value())
        else {
            return Ok(None);
        };
        let Some(state) = versioning.get((place.owner, id))?.map(|v| v.value()) else { return Ok(None) };
        let b = Bucket { id, owner: place.owner, state: Versioning::from_row(state) };
        return Ok(Some((b, names[1..].join("/"))));
    }
    if place.is_virtual() {
        return Ok(None);
    }
    let Some(base) = get_item(items, place.base)? else { return Ok(None) };
    let (folder, tail) = if base.is_folder() { (base.id, names.join("/")) } else { (base.parent, base.name.clone()) };
    if tail.is_empty() {
        return Ok(None);
    }
    Ok(bucket_of(items, versioning, base.owner, folder)?.map(|(b, prefix)| (b, format!("{prefix}{tail}"))))
}

/// A version found by its id.
pub(super) enum Found {
    Current(Item, Option<(u64, bool)>),
    /// A history row, and whether it is the key's latest (no current file, newest row).
    Row(Version, bool),
}

/// Finds version `id` of the key at `place` (in bucket `b` as `key`); the empty id
/// ([`super::lock::CURRENT`]) is the key's current file, else its newest non-marker row.
pub(super) fn find(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    versions: &impl Readable<(u64, &'static str), &'static [u8]>,
    current: &impl Readable<u64, (u64, u64)>,
    place: &Place,
    (b, key): (&Bucket, &str),
    id: &str,
) -> Result<Found> {
    let want = if id == super::lock::CURRENT { None } else { parse_id(id)? };
    let cur = match resolve_place(items, children, place) {
        Ok(Some(i)) if i.kind == Kind::File => Some(i),
        Ok(_) | Err(Error::Conflict(_) | Error::ParentMissing(_)) => None,
        Err(e) => return Err(e),
    };
    if let Some(item) = cur.clone() {
        let tag = current.get(item.id)?.map(|v| (v.value().0, v.value().1 == 1));
        let is = id == super::lock::CURRENT
            || match (want, tag) {
                (None, None) => true,
                (None, Some((_, null))) => null,
                (Some(s), Some((seq, null))) => !null && s == seq,
                (Some(_), None) => false,
            };
        if is {
            return Ok(Found::Current(item, tag));
        }
    }
    for (i, v) in history_of(versions, b.id, key)?.into_iter().enumerate() {
        if id == super::lock::CURRENT {
            // No current file: the latest is the newest row, and a marker means none.
            return if i == 0 && cur.is_none() && !v.marker { Ok(Found::Row(v, true)) } else { Err(no_version()) };
        }
        let is = match want {
            None => v.null,
            Some(s) => !v.null && v.seq == s,
        };
        if is {
            return Ok(Found::Row(v, i == 0 && cur.is_none()));
        }
    }
    Err(no_version())
}

pub(super) fn no_version() -> Error {
    Error::missing(What::Version, "the version does not exist")
}

pub(super) fn not_versioned() -> Error {
    Error::missing(What::Version, "the version does not exist (the bucket was never versioned)")
}

impl W<'_> {
    /// S3's DeleteObject where no file is: in a versioned bucket still a delete marker.
    pub(crate) fn mark_deleted(&mut self, place: &Place, now: i64) -> Result<Option<String>> {
        let located = locate(&self.items, &self.children, &self.txn.open_table(VERSIONING)?, place)?;
        let Some((b, key)) = located else { return Ok(None) };
        let (seq, null) = self.add_delete_marker(&b, &key, now)?;
        Ok(Some(version_id(seq, null)))
    }

    /// The delete marker [`W::delete_item`] just left for the file `item` at `place`.
    pub(crate) fn marker_of(&self, place: &Place, item: &Item) -> Result<Option<String>> {
        if item.is_folder() {
            return Ok(None);
        }
        let located = locate(&self.items, &self.children, &self.txn.open_table(VERSIONING)?, place)?;
        let Some((b, key)) = located else { return Ok(None) };
        Ok(self.history(b.id, &key)?.first().filter(|v| v.marker).map(|v| version_id(v.seq, v.null)))
    }

    /// Whether a bucket has any noncurrent version or delete marker (S3 BucketNotEmpty).
    pub(crate) fn has_history(&self, _owner: u64, bucket: u64) -> Result<bool> {
        Ok(self.txn.open_table(VERSIONS)?.range((bucket, "")..(bucket + 1, ""))?.next().is_some())
    }

    /// Takes a history row out without releasing what it holds: its content becomes current.
    /// Takes version `v` out of history to be current again, with the tags it kept.
    fn take_history(&mut self, bucket: u64, key: &str, v: &Version) -> Result<Vec<(String, String)>> {
        self.txn.open_table(VERSIONS)?.remove((bucket, row_key(key, v.seq).as_str()))?;
        crate::meta::tags::take_version(self.txn, bucket, v.seq)
    }

    /// After the latest version of `key` was removed for good: S3 makes the newest one left
    /// current, unless it is a delete marker. `item` is the file that held the removed
    /// version (its id is kept), or `None` when the key had no current file.
    fn promote(&mut self, place: &Place, b: &Bucket, key: &str, item: Option<Item>, now: i64) -> Result<()> {
        let next = self.history(b.id, key)?.into_iter().next().filter(|v| !v.marker);
        match (item, next) {
            (Some(old), Some(v)) => {
                let tags = self.take_history(b.id, key, &v)?;
                crate::meta::tags::set_item(self.txn, old.id, &tags)?;
                self.release_refs(&old.chunks)?;
                self.add_usage(old.owner, -(old.size as i128), 0)?;
                self.add_below(old.parent, v.size as i128 - old.size as i128, 0)?;
                let mut it = v.as_item(key);
                it.id = old.id;
                it.parent = old.parent;
                it.name = old.name.clone();
                it.created = old.created;
                it.props = old.props.clone();
                self.put(&it)?;
                self.txn.open_table(CURRENT_VERSIONS)?.insert(it.id, (v.seq, u64::from(v.null)))?;
            }
            (Some(old), None) => {
                self.txn.open_table(CURRENT_VERSIONS)?.remove(old.id)?;
                locks::forget_item(self.txn, old.id)?;
                self.remove_subtree(&old)?;
            }
            (None, Some(v)) => {
                let Some(parent_path) = place.rel.parent() else { return Ok(()) };
                let Some(name) = place.rel.name() else { return Ok(()) };
                let parent = match self.ensure_folder(place.base, &parent_path, place.owner, now) {
                    Ok(f) => f,
                    // A file now where a folder of the key would be: the version stays noncurrent.
                    Err(Error::Conflict(_)) => return Ok(()),
                    Err(e) => return Err(e),
                };
                if txn::lookup_child(&self.children, parent.id, name)?.is_some() {
                    return Ok(());
                }
                let tags = self.take_history(b.id, key, &v)?;
                let mut it = v.as_item(key);
                it.id = self.next_item_id()?;
                crate::meta::tags::set_item(self.txn, it.id, &tags)?;
                it.parent = parent.id;
                it.created = now;
                self.add_usage(it.owner, 0, 1)?;
                self.add_below(parent.id, it.size as i128, 1)?;
                self.put(&it)?;
                self.link(&it)?;
                self.txn.open_table(CURRENT_VERSIONS)?.insert(it.id, (v.seq, u64::from(v.null)))?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

impl Storage {
    /// The versioning state of the bucket (top-level folder) at `bucket`.
    pub async fn versioning(&self, p: &Principal, bucket: &str) -> Result<Versioning> {
        let place = self.place(p, bucket).await?;
        self.core
            .db
            .read(move |t| {
                let folder = resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                    .filter(Item::is_folder)
                    .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
                let row = t.open_table(VERSIONING)?.get((folder.owner, folder.id))?.map(|v| v.value());
                Ok(row.map_or(Versioning::Unversioned, Versioning::from_row))
            })
            .await
    }

    /// Enables or suspends versioning of a top-level folder of the caller's own drive (S3:
    /// the bucket owner's call). Once configured it cannot go back to unversioned.
    pub async fn set_versioning(&self, p: &Principal, bucket: &str, state: Versioning) -> Result<()> {
        let place = self.change_target(p, bucket).await?;
        if place.access != Access::Own || place.rel.names().len() != 1 {
            return Err(Error::Forbidden("versioning is configured by a bucket's owner, on a top-level folder".into()));
        }
        let Some(row) = state.row() else {
            return Err(Error::InvalidInput("versioning can be enabled or suspended, not removed".into()));
        };
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let folder = w
                .resolve(place.base, &place.rel)?
                .filter(Item::is_folder)
                .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
            if state == Versioning::Suspended && w.txn.open_table(OBJECT_LOCK)?.get(folder.id)?.is_some() {
                // Suspending would let writes replace a `null` version a lock may protect.
                return Err(Error::Conflict("versioning cannot be suspended on a bucket with object lock".into()));
            }
            w.txn.open_table(VERSIONING)?.insert((folder.owner, folder.id), row)?;
            Ok(())
        })
        .await
    }

    /// The version id of a current file, when it has one (written in a versioned bucket).
    pub async fn current_version_id(&self, item: u64) -> Result<Option<String>> {
        self.core.db.read(move |t| super::version_of(t, item)).await
    }

    /// Every version of the file at `path`, newest first (the current one first, when there
    /// is one); empty outside a versioned bucket when nothing is there.
    pub async fn versions_of(&self, p: &Principal, path: &str) -> Result<Vec<VersionInfo>> {
        let place = self.place(p, path).await?;
        place.check_read(p)?;
        self.core
            .db
            .read(move |t| {
                let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
                let current = resolve_place(&items, &children, &place).or_else(|e| match e {
                    Error::Conflict(_) | Error::ParentMissing(_) => Ok(None),
                    e => Err(e),
                })?;
                if current.as_ref().is_some_and(Item::is_folder) {
                    return Err(Error::Conflict(format!("{} is a folder", place.path)));
                }
                let mut out = Vec::new();
                let located = locate(&items, &children, &t.open_table(VERSIONING)?, &place)?;
                let key = located.as_ref().map_or_else(|| place.path.to_string(), |(_, k)| k.clone());
                let has_current = current.is_some();
                if let Some(item) = current {
                    let tag = t.open_table(CURRENT_VERSIONS)?.get(item.id)?.map(|v| (v.value().0, v.value().1 == 1));
                    out.push(VersionInfo::of_current(&key, item, tag));
                }
                if let Some((b, key)) = located {
                    for (i, v) in history_of(&t.open_table(VERSIONS)?, b.id, &key)?.iter().enumerate() {
                        out.push(VersionInfo::of_row(&key, v, i == 0 && !has_current));
                    }
                }
                if out.is_empty() {
                    return Err(Error::missing(What::Item, format!("{} not found", place.path)));
                }
                Ok(out)
            })
            .await
    }

    /// The id of the delete marker that is the latest version of the key at `path`, when
    /// one is (S3 tells a GET of such a key apart from one of a key never written).
    pub async fn latest_marker(&self, p: &Principal, path: &str) -> Result<Option<String>> {
        let place = self.place(p, path).await?;
        self.core
            .db
            .read(move |t| {
                let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
                let Some((b, key)) = locate(&items, &children, &t.open_table(VERSIONING)?, &place)? else {
                    return Ok(None);
                };
                if matches!(resolve_place(&items, &children, &place), Ok(Some(_))) {
                    return Ok(None);
                }
                let newest = history_of(&t.open_table(VERSIONS)?, b.id, &key)?.into_iter().next();
                Ok(newest.filter(|v| v.marker).map(|v| version_id(v.seq, v.null)))
            })
            .await
    }

    /// Version `id` of the file at `path`, without its content.
    pub async fn stat_version(&self, p: &Principal, path: &str, id: &str) -> Result<VersionInfo> {
        let place = self.place(p, path).await?;
        let id = id.to_owned();
        self.core.db.read(move |t| found_info(t, &place, &id).map(|(info, _)| info)).await
    }

    /// Opens version `id` of the file at `path` (a byte range as [`Storage::read`]); a
    /// delete marker has no content (`None`).
    pub async fn read_version(
        &self,
        p: &Principal,
        path: &str,
        id: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(VersionInfo, Option<FileRead>)> {
        let place = self.place(p, path).await?;
        place.check_read(p)?;
        let (core, id) = (self.core.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            // As `Storage::read`: the version can be removed between the lookup and the pin.
            for _ in 0..8 {
                let (info, span) = core.db.read_sync(|t| {
                    let (info, _) = found_info(t, &place, &id)?;
                    if info.marker {
                        return Ok((info, None));
                    }
                    let (start, end) = resolve_range(info.item.size, range)?;
                    let small = read_inline(&core, t, &info.item.chunks, start, end)?;
                    Ok((info, Some((start, end, small))))
                })?;
                let Some((start, end, small)) = span else { return Ok((info, None)) };
                if let Some(body) = small {
                    let (item, version) = (info.item.clone(), Some(info.id.clone()));
                    return Ok((info, Some(FileRead { item, start, end, body, version })));
                }
                match open_range(&core, &info.item.chunks, start, end) {
                    Ok(body) => {
                        let (item, version) = (info.item.clone(), Some(info.id.clone()));
                        return Ok((info, Some(FileRead { item, start, end, body, version })));
                    }
                    Err(Error::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::internal("the version kept changing while being opened"))
        })
        .await?
    }

    /// Removes version `id` of the key at `path` for good (S3 DeleteObject with a
    /// versionId); removing the latest makes the next one current (a delete marker stays
    /// latest). Returns what was removed. A version under object lock is refused; `bypass`
    /// (S3's `x-amz-bypass-governance-retention`) lets the bucket's owner or an admin
    /// destroy one under GOVERNANCE retention.
    pub async fn delete_version(&self, p: &Principal, path: &str, id: &str, bypass: bool) -> Result<VersionInfo> {
        let place = self.change_target(p, path).await?;
        place.check_detach(p)?;
        let bypass = super::lock::bypass_of(p, &place, bypass);
        let id = id.to_owned();
        let now = now_nanos();
        self.commit_at(place, LockGuard::of(p, true), (), move |w, place| {
            let versioning = w.txn.open_table(VERSIONING)?;
            let Some((b, key)) = locate(&w.items, &w.children, &versioning, place)? else {
                // An unversioned bucket's object is its `null` version.
                drop(versioning);
                if id != "null" {
                    return Err(not_versioned());
                }
                let item =
                    w.resolve(place.base, &place.rel)?.filter(|i| i.kind == Kind::File).ok_or_else(no_version)?;
                locks::forget_item(w.txn, item.id)?;
                w.remove_item(&item)?;
                return Ok(VersionInfo::of_current(&place.path.to_string(), item, None));
            };
            drop(versioning);
            let found = {
                let (versions, current) = (w.txn.open_table(VERSIONS)?, w.txn.open_table(CURRENT_VERSIONS)?);
                find(&w.items, &w.children, &versions, &current, place, (&b, &key), &id)?
            };
            match found {
                Found::Current(item, tag) => {
                    if let Some((seq, _)) = tag {
                        w.release_lock(b.id, seq, bypass)?;
                    }
                    let info = VersionInfo::of_current(&key, item.clone(), tag);
                    w.promote(place, &b, &key, Some(item), now)?;
                    Ok(info)
                }
                Found::Row(v, latest) => {
                    w.release_lock(b.id, v.seq, bypass)?;
                    w.remove_history(b.id, &key, &v)?;
                    if latest {
                        w.promote(place, &b, &key, None, now)?;
                    }
                    Ok(VersionInfo::of_row(&key, &v, latest))
                }
            }
        })
        .await
    }

    /// Makes version `id` of the file at `from` the current version at `to` (S3 CopyObject
    /// from a versionId; a REST restore is `from` = `to`): the content is shared by
    /// reference, and whatever was current at `to` becomes a noncurrent version as any
    /// overwrite would make it.
    pub async fn copy_version(
        &self,
        p: &Principal,
        from: &str,
        id: &str,
        to: &str,
        create_parents: bool,
    ) -> Result<Item> {
        self.copy_version_locked(p, from, id, to, create_parents, VersionLock::default()).await
    }

    /// [`Storage::copy_version`], the new current version getting `lock` in the same
    /// transaction (S3 CopyObject's `x-amz-object-lock-*`).
    pub async fn copy_version_locked(
        &self,
        p: &Principal,
        from: &str,
        id: &str,
        to: &str,
        create_parents: bool,
        lock: VersionLock,
    ) -> Result<Item> {
        let from = self.place(p, from).await?;
        from.check_read(p)?;
        let to = self.change_target(p, to).await?;
        to.rel.check_new(create_parents)?;
        let id = id.to_owned();
        let now = now_nanos();
        self.commit_at(to, LockGuard::of(p, false), (), move |w, to| {
            access::recheck_read(w, &from)?;
            let src = {
                let versioning = w.txn.open_table(VERSIONING)?;
                let (versions, current) = (w.txn.open_table(VERSIONS)?, w.txn.open_table(CURRENT_VERSIONS)?);
                match locate(&w.items, &w.children, &versioning, &from)? {
                    Some((b, key)) => match find(&w.items, &w.children, &versions, &current, &from, (&b, &key), &id)? {
                        Found::Current(item, _) => (Source::Item(item.id), item),
                        Found::Row(v, _) if v.marker => {
                            return Err(Error::InvalidInput("a delete marker has no content to copy".into()));
                        }
                        Found::Row(v, _) => (Source::Version(b.id, v.seq), v.as_item(&key)),
                    },
                    None if id == "null" => {
                        let item =
                            w.resolve(from.base, &from.rel)?.filter(|i| i.kind == Kind::File).ok_or_else(no_version)?;
                        (Source::Item(item.id), item)
                    }
                    None => return Err(not_versioned()),
                }
            };
            // The copy takes the source version's tags (S3's COPY directive), read before the
            // destination's current version (maybe the source's own file) is retired.
            let (tags_of, src) = src;
            let tags = match tags_of {
                Source::Item(id) => crate::meta::tags::of_item(&w.txn.open_table(TAGS)?, id)?,
                Source::Version(b, seq) => crate::meta::tags::of_version(&w.txn.open_table(VERSION_TAGS)?, b, seq)?,
            };
            let (parent, name) = access::slot(w, to, create_parents, now)?;
            let current = match txn::lookup_child(&w.children, parent.id, &name)? {
                Some(cid) => Some(w.get(cid)?),
                None => None,
            };
            if current.as_ref().is_some_and(Item::is_folder) {
                return Err(Error::Conflict(format!("{} is a folder", to.path)));
            }
            let old_size = current.as_ref().map_or(0, |c| c.size);
            w.check_quota(to.owner, src.size as i128 - old_size as i128)?;
            w.add_refs(&src.chunks, None, None)?;
            let content = FileContent {
                size: src.size,
                etag: src.etag.clone(),
                chunks: src.chunks.clone(),
                modified: now,
                content_type: src.content_type.clone(),
                headers: src.headers.clone(),
                user_meta: src.user_meta.clone(),
                parts: src.parts.clone(),
            };
            let item = w.place_file(to.owner, parent.id, &name, current, now, content)?;
            crate::meta::tags::set_item(w.txn, item.id, &tags)?;
            w.lock_written(to, &item, &lock)?;
            Ok(item)
        })
        .await
    }
}

/// Where a copied version's tags are: its file's (the current version) or its history row's.
enum Source {
    Item(u64),
    Version(u64, u64),
}

/// Version `id` at `place`, as shown, with the bucket it is in.
fn found_info(t: &db::ReadTxn, place: &Place, id: &str) -> Result<(VersionInfo, Option<Bucket>)> {
    let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
    let Some((b, key)) = locate(&items, &children, &t.open_table(VERSIONING)?, place)? else {
        if id != "null" {
            return Err(not_versioned());
        }
        let item = resolve_place(&items, &children, place)
            .ok()
            .flatten()
            .filter(|i| i.kind == Kind::File)
            .ok_or_else(no_version)?;
        return Ok((VersionInfo::of_current(&place.path.to_string(), item, None), None));
    };
    let (versions, current) = (t.open_table(VERSIONS)?, t.open_table(CURRENT_VERSIONS)?);
    let info = match find(&items, &children, &versions, &current, place, (&b, &key), id)? {
        Found::Current(item, tag) => VersionInfo::of_current(&key, item, tag),
        Found::Row(v, latest) => VersionInfo::of_row(&key, &v, latest),
    };
    Ok((info, Some(b)))
}
