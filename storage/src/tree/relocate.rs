//! Copy and rename (move), within a drive, into a share, or out of one.

use crate::Storage;
use crate::access::{self, Access};
use crate::error::{Error, Result, What};
use crate::meta::model::{Item, Kind, Principal, now_nanos};
use crate::meta::names::SHARED_ROOT;
use crate::meta::txn::{self, W};
use crate::tree::locks::{self, LockGuard};

/// What an S3 CopyObject asks beyond a copy: the destination is an object, never a folder;
/// the request's conditions on it (`If-Match`, `If-None-Match`) are checked as the copy
/// commits; the copy is a new object, modified now (a WebDAV or REST copy keeps the source's
/// time, as nginx's COPY does); and it gets `lock` in the same transaction
/// (`x-amz-object-lock-*`).
#[derive(Default)]
pub struct ObjectCopy {
    pub lock: crate::VersionLock,
    pub conditions: super::Conditions,
}

/// What a relocation makes at its destination.
enum How {
    Move,
    Copy,
    /// A folder without what it holds (WebDAV's COPY with Depth 0): a new empty folder with
    /// the source's properties; a file is copied whole.
    CopyAlone,
    Object(ObjectCopy),
}

impl Storage {
    /// Copies a file or folder; content is shared by reference. Returns the new item and
    /// whether it replaced nothing (created).
    pub async fn copy(&self, p: &Principal, from: &str, to: &str, overwrite: bool) -> Result<(Item, bool)> {
        self.relocate(p, from, to, overwrite, How::Copy).await
    }

    /// [`Storage::copy`] of a folder without its members: an empty folder with the source's
    /// WebDAV properties. What it overwrites goes whole, in the same transaction (RFC 4918
    /// §9.8.3-4), with the checks of any copy (never onto its source or what holds it).
    pub async fn copy_folder_alone(
        &self,
        p: &Principal,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<(Item, bool)> {
        self.relocate(p, from, to, overwrite, How::CopyAlone).await
    }

    /// [`Storage::copy`] of a file as S3 CopyObject makes one (see [`ObjectCopy`]).
    pub async fn copy_object(&self, p: &Principal, from: &str, to: &str, object: ObjectCopy) -> Result<(Item, bool)> {
        self.relocate(p, from, to, true, How::Object(object)).await
    }

    /// Moves or renames a file or a whole folder atomically; its id is kept. Moving between
    /// one's drive and a read-write share moves no data: the item changes owner, and the
    /// new owner's quota pays for it.
    pub async fn rename(&self, p: &Principal, from: &str, to: &str, overwrite: bool) -> Result<(Item, bool)> {
        self.relocate(p, from, to, overwrite, How::Move).await
    }

    async fn relocate(&self, p: &Principal, from: &str, to: &str, overwrite: bool, how: How) -> Result<(Item, bool)> {
        let is_move = matches!(how, How::Move);
        let (alone, object) = match how {
            How::Object(o) => (false, Some(o)),
            How::CopyAlone => (true, None),
            How::Move | How::Copy => (false, None),
        };
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
        let (now, role) = (now_nanos(), p.role);
        let policy = self.core.config.policy.clone();
        let guard = LockGuard::of(p, true);
        self.core
            .db
            .write((), move |ctx| {
                let mut w = W::open(ctx)?;
                if is_move {
                    access::recheck(&w, &from)?;
                    locks::check_in_write(&w, &from, &guard)?;
                } else {
                    access::recheck_read(&w, &from)?;
                }
                access::recheck(&w, &to)?;
                locks::check_in_write(&w, &to, &guard)?;
                if from.path == to.path {
                    return Err(Error::Forbidden("source and destination are the same".into()));
                }
                if to.path.starts_with(&from.path) {
                    return Err(Error::Conflict("cannot put a folder inside itself".into()));
                }
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
                if let Some(o) = &object {
                    // An object's key never names a folder: replacing one would delete all
                    // that is below it (PutObject and CompleteMultipartUpload refuse alike).
                    if existing.as_ref().is_some_and(Item::is_folder) {
                        return Err(Error::Conflict(format!("{} is a folder", to.path)));
                    }
                    o.conditions.check(existing.as_ref())?;
                }
                let created = existing.is_none();
                let mut detached = false;
                if src.kind == Kind::File {
                    // A rename must not slip a file past the upload policy.
                    policy.check_file(role, &name, src.content_type.as_deref())?;
                }
                if let Some(old) = existing {
                    if !overwrite || matches!(to.access, Access::Link { .. }) {
                        return Err(Error::AlreadyExists(format!("{} already exists", to.path)));
                    }
                    locks::forget_item(w.txn, old.id)?;
                    detached = w.replace_item(&old, now)?;
                }
                if is_move {
                    if src.is_folder() && w.is_versioned_bucket(&src)? && parent.id != src.parent {
                        // Its history is keyed by the bucket: it stays a bucket (renaming is fine).
                        return Err(Error::Conflict(format!(
                            "{} has versioning configured: it can be renamed, not moved into another folder",
                            from.path
                        )));
                    }
                    // A MOVE does not carry locks (RFC 4918): the moved item's, and those below it, end.
                    locks::forget_item(w.txn, src.id)?;
                    w.moving_out(&src, now)?;
                    let mut moved = src.clone();
                    let totals = w.item_totals(&src)?;
                    w.unlink(&src)?;
                    if src.owner != to.owner {
                        w.change_owner(&src, to.owner)?;
                        moved.owner = to.owner;
                    }
                    moved.parent = parent.id;
                    moved.name = name;
                    w.put(&moved)?;
                    w.link(&moved)?;
                    w.move_totals(totals, src.parent, parent.id)?;
                    w.arrived(&moved)?;
                    Ok((moved, created, detached))
                } else if alone && src.is_folder() {
                    let mut folder = Item::folder(w.next_item_id()?, to.owner, parent.id, &name, now);
                    folder.props = src.props.clone();
                    w.put(&folder)?;
                    w.link(&folder)?;
                    Ok((folder, created, detached))
                } else {
                    let mut copy = w.copy_subtree(&src, parent.id, &name, to.owner, now)?;
                    if object.is_some() {
                        copy.modified = now;
                        w.put(&copy)?;
                    }
                    w.arrived(&copy)?;
                    // Any copy into a bucket with a default retention takes it.
                    let lock = object.as_ref().map(|o| o.lock).unwrap_or_default();
                    w.lock_written(&to, &copy, &lock)?;
                    Ok((copy, created, detached))
                }
            })
            .await
            .map(|(item, created, detached)| {
                self.swept_later(detached);
                (item, created)
            })
    }

    /// Hands the item at `path` to another user: it moves to the top of their drive (with
    /// a distinct name if one is taken), their quota pays for it, and grants and links on it
    /// follow it. Returns the item and its path in the new owner's drive.
    pub async fn transfer(&self, p: &Principal, path: &str, to: &str) -> Result<(Item, String)> {
        let place = self.change_target(p, path).await?;
        place.check_detach(p)?;
        if place.access != Access::Own {
            return Err(Error::Forbidden("only items in your own drive can be transferred".into()));
        }
        let target = self.find_user(to).await.map_err(|_| Error::missing(What::User, format!("no user \'{to}\'")))?;
        if target.id == p.user_id {
            return Err(Error::InvalidInput("you already own it".into()));
        }
        let guard = LockGuard::of(p, true);
        let target_id = target.id;
        let moved = self
            .core
            .db
            .write((), move |ctx| {
                let mut w = W::open(ctx)?;
                locks::check_in_write(&w, &place, &guard)?;
                let item = w
                    .resolve(place.base, &place.rel)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                if item.is_folder() && w.is_versioned_bucket(&item)? {
                    return Err(Error::Conflict(format!(
                        "{} has versioning configured: its history cannot change hands",
                        place.path
                    )));
                }
                let user = w.user(target_id)?;
                // The top-level `shared` is the virtual folder of grants.
                let wanted = if item.name == SHARED_ROOT { format!("{SHARED_ROOT} (2)") } else { item.name.clone() };
                let name = access::free_name(&w.children, user.root, &wanted)?;
                locks::forget_item(w.txn, item.id)?;
                let totals = w.item_totals(&item)?;
                w.unlink(&item)?;
                w.change_owner(&item, user.id)?;
                let from = item.parent;
                let moved = Item { owner: user.id, parent: user.root, name: name.clone(), ..item };
                w.put(&moved)?;
                w.link(&moved)?;
                w.move_totals(totals, from, user.root)?;
                Ok((moved, format!("/{name}")))
            })
            .await?;
        self.audit(
            crate::audit::Event::new("transfer").by(p).target(target_id).with("item", moved.0.id).with("path", path),
        )
        .await;
        Ok(moved)
    }
}
