//! Removing items: the checks a client asks before, a delete, and S3's object delete
//! that leaves implied folders tidy.

use crate::meta::kv::Readable;

use super::Conditions;
use super::locks::{self, LockGuard};
use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::model::{Principal, now_nanos};

impl Storage {
    /// Whether the caller may change what is at `path` (locks aside): for front ends that
    /// must decide before they act, as WebDAV does before taking a lock.
    pub async fn check_change(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.place_for_change(p, path).await?;
        place.check_write(p)
    }

    /// Whether the item at `path` may be deleted as a whole, without deleting anything:
    /// for front ends that delete a folder's contents before the folder.
    pub async fn check_delete(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.change_target(p, path).await?;
        self.check_unlocked(p, &place, true).await?;
        place.check_detach(p)
    }

    /// Deletes for good (what the trash's own purge, moves and tests use).
    pub async fn delete(&self, p: &Principal, path: &str, conditions: Conditions) -> Result<()> {
        self.remove(p, path, conditions, false).await
    }

    /// A WebDAV or REST client's delete: to the owner's trash (`crate::trash`) where the
    /// server keeps one and the item is outside any versioned bucket, else as [`Self::delete`].
    /// S3 deletes never come here: they keep S3's semantics.
    pub async fn delete_to_trash(&self, p: &Principal, path: &str, conditions: Conditions) -> Result<()> {
        self.remove(p, path, conditions, self.core.config.trash_days > 0).await
    }

    async fn remove(&self, p: &Principal, path: &str, conditions: Conditions, to_trash: bool) -> Result<()> {
        let place = self.change_target(p, path).await?;
        place.check_detach(p)?;
        let by = p.user_id;
        self.commit_at(place, LockGuard::of(p, true), (), move |w, place| {
            let item = w
                .resolve(place.base, &place.rel)?
                .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
            conditions.check(Some(&item))?;
            locks::forget_item(w.txn, item.id)?;
            let now = now_nanos();
            if to_trash && w.trash_item(&item, by, now)? {
                return Ok(false);
            }
            w.delete_item(&item, now)
        })
        .await
        .map(|detached| self.swept_later(detached))
    }

    /// After a commit that detached a folder: the sweeper removes its rows (`detach`).
    pub(crate) fn swept_later(&self, detached: bool) {
        if detached {
            self.core.detached.wake();
        }
    }

    /// Deletes a file (S3 DeleteObject), then the folders above it that it left empty, up
    /// to but not including `keep_depth` names from the root (the bucket) or a granted
    /// item. A missing file is not an error, nor is a folder, which is left as it is.
    /// In a versioned bucket the file goes to history and a delete marker takes its place,
    /// also where no file was (S3); the marker's version id is returned.
    pub async fn delete_object(&self, p: &Principal, path: &str, keep_depth: usize) -> Result<Option<String>> {
        self.delete_object_if(p, path, keep_depth, Conditions::default()).await
    }

    /// [`Self::delete_object`] if the file there meets `conditions` as the delete commits
    /// (S3's conditional delete: `If-Match`); a folder or nothing there is no file.
    pub async fn delete_object_if(
        &self,
        p: &Principal,
        path: &str,
        keep_depth: usize,
        conditions: Conditions,
    ) -> Result<Option<String>> {
        let place = self.change_target(p, path).await?;
        place.check_detach(p)?;
        let now = now_nanos();
        self.commit_at(place, LockGuard::of(p, true), (), move |w, place| {
            let found = w.resolve(place.base, &place.rel)?;
            conditions.check(found.as_ref().filter(|i| !i.is_folder()))?;
            let Some(item) = found else {
                return Ok((false, w.mark_deleted(place, now)?));
            };
            if item.is_folder() {
                // A key that names a folder names no object: deleting it must not take all
                // that is below with it (S3 answers a delete of a key it lacks with success).
                return Ok((false, None));
            }
            locks::forget_item(w.txn, item.id)?;
            let detached = w.delete_item(&item, now)?;
            let marker = if detached { None } else { w.marker_of(place, &item)? };
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
                locks::forget_item(w.txn, folder.id)?;
                up = dir.parent();
            }
            Ok((detached, marker))
        })
        .await
        .map(|(detached, marker)| {
            self.swept_later(detached);
            marker
        })
    }

    /// Removes a folder only if it is empty (S3 DeleteBucket).
    pub async fn remove_empty_folder(&self, p: &Principal, path: &str) -> Result<()> {
        let place = self.place(p, path).await?;
        place.check_detach(p)?;
        // A lock on the folder binds its removal as it binds any other change.
        self.commit_at(place, LockGuard::of(p, true), (), move |w, place| {
            let folder = w.resolve_folder(place.base, &place.rel).map_err(|e| match e {
                Error::ParentMissing(_) => Error::missing(What::Item, format!("{} not found", place.path)),
                e => e,
            })?;
            if w.children.range((folder.id, "")..(folder.id + 1, ""))?.next().is_some() {
                return Err(Error::NotEmpty(format!("{} is not empty", place.path)));
            }
            if place.rel.names().len() == 1 && w.has_history(folder.owner, folder.id)? {
                return Err(Error::NotEmpty(format!("{} still holds versions", place.path)));
            }
            w.drop_bucket_history(folder.owner, folder.id)?;
            w.remove_subtree(&folder)?;
            locks::forget_item(w.txn, folder.id)?;
            Ok(())
        })
        .await
    }
}
