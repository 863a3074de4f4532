//! The per-user trash: what a WebDAV or REST delete removes from a folder outside any
//! versioned bucket is kept in its owner's trash for `trash_days`, listed, restored or purged
//! over REST, then collected.
//!
//! How it is kept, and why:
//! - Moving to the trash is the delete's own transaction and costs what a delete costs: the
//!   item leaves its parent (no path reaches it or anything below it), and a TRASH row
//!   (owner, item id) remembers it. Nothing is copied and no reference count changes: a
//!   file's chunk list stays on its item row, which only the trash row reaches now (the
//!   references move from the tree to the trash); a folder stays whole below its detached
//!   root, as a delete detaches it (`tree::detach`), but without a DETACHED row, so the
//!   sweeper keeps it. The trash id is the item id: unique for ever, never reused.
//! - The bytes stay in the owner's usage (files do not: a trashed file is no file of the
//!   drive), so the quota counts the trash until it is purged; deleting to free space means
//!   purging. Folder totals above drop at once, as for a delete.
//! - Grants, links and locks on or below the item end at the delete, as today, and a restore
//!   does not bring them back: a restored item is new to everyone it was shared with.
//! - Purging a file releases its references and bytes in one transaction; purging a folder
//!   subtracts its bytes and hands its root to the detached-folder sweeper (a DETACHED row),
//!   so purging a large folder is constant time too.
//! - Collection (`collect`) runs in the detached-folder sweeper's thread (every minute, on
//!   every node): it reads TRASH_EXPIRY (deleted at, id) up to now minus the keep time and
//!   purges each entry in its own transaction, which checks the row is still there, so
//!   several nodes collecting at once only find the second purge has nothing to do.
//! - Not trashed: S3 deletes (S3 semantics), deletes in a versioned bucket (the delete
//!   marker keeps the history) and of a versioned bucket's folder itself (its history goes,
//!   as documented in `versions`), moves and copies that replace something, and everything
//!   when `trash_days` is 0.

mod collect;
mod ops;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub(crate) use collect::collect;

use crate::error::{Error, Result, What};
use crate::meta::db::{self, DETACHED, TRASH, TRASH_EXPIRY};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Kind};
use crate::meta::names::DrivePath;
use crate::meta::txn::{W, lookup_child};

/// The days a deleted item stays in the trash when the operator says nothing: 30, the
/// default of Nextcloud's trash bin and of Dropbox's Basic plan, and what Windows and macOS
/// users know from "Empty trash after 30 days": long enough to notice a mistake after a
/// holiday, short enough that quota freed by a delete comes back within the month.
pub const DEFAULT_TRASH_DAYS: u32 = 30;

/// A TRASH row: what the trash knows of a deleted item beside the item's own rows.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct TrashRow {
    pub folder: bool,
    /// Where it was in its owner's drive (`/a/b`), where a restore puts it back by default.
    pub path: String,
    /// Its bytes and files (a folder's totals when it was deleted: nothing below a trashed
    /// folder changes, so they stay true).
    pub size: u64,
    pub files: u64,
    /// Unix nanoseconds.
    pub deleted_at: i64,
    /// The user whose delete it was (a grantee deleting in a shared folder, or the owner).
    pub deleted_by: u64,
}
crate::meta::db::stored!(TrashRow = "trash entry");

/// One entry of a user's trash, as front ends show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    /// The id to restore or purge it by.
    pub id: u64,
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    pub files: u64,
    /// Unix nanoseconds.
    pub deleted_at: i64,
    /// When collection removes it (Unix nanoseconds).
    pub expires_at: i64,
    pub deleted_by: u64,
    /// None when that account is gone.
    pub deleted_by_name: Option<String>,
}

fn gone() -> Error {
    Error::missing(What::Item, "no such entry in your trash")
}

impl W<'_> {
    /// A client's delete of `item` (WebDAV or REST) puts it in its owner's trash, when a
    /// delete there is one to keep (see the module's documentation). Returns false, having
    /// changed nothing, where the delete stays a delete. `by` is whose delete it is.
    pub(crate) fn trash_item(&mut self, item: &Item, by: u64, now: i64) -> Result<bool> {
        if self.versioned_bucket(item.owner, item.parent)?.is_some()
            || (item.is_folder() && self.is_versioned_bucket(item)?)
        {
            return Ok(false);
        }
        let path = self.drive_path_of(item)?;
        let (size, files) = match item.kind {
            Kind::File => (item.size, 1),
            Kind::Folder => match self.folder_totals(item.id)? {
                Some(t) => t,
                None => self.walk_totals(item.id)?,
            },
        };
        self.unlink(item)?;
        self.add_usage(item.owner, 0, -(files as i64))?;
        self.add_below(item.parent, -(size as i128), -(files as i64))?;
        if item.is_folder() {
            self.end_grants_below(item)?;
        } else {
            crate::meta::grant_rows::forget_item(self.txn, item.id)?;
        }
        let row = TrashRow { folder: item.is_folder(), path, size, files, deleted_at: now, deleted_by: by };
        self.txn.open_table(TRASH)?.insert((item.owner, item.id), db::encode(&row).as_slice())?;
        self.txn.open_table(TRASH_EXPIRY)?.insert((now.max(0) as u64, item.id), item.owner)?;
        Ok(true)
    }

    /// The path of `item` in its owner's drive: the names up from it to the drive root.
    fn drive_path_of(&self, item: &Item) -> Result<String> {
        let mut names = vec![item.name.clone()];
        let mut cur = item.parent;
        // Bounded by the depth of the tree (paths are at most 4096 bytes).
        for _ in 0..4096 {
            let up = self.get(cur)?;
            if up.parent == 0 {
                names.reverse();
                return Ok(format!("/{}", names.join("/")));
            }
            names.push(up.name);
            cur = up.parent;
        }
        Err(Error::internal("a folder chain without a root"))
    }

    pub(crate) fn trash_row(&self, owner: u64, id: u64) -> Result<Option<TrashRow>> {
        match self.txn.open_table(TRASH)?.get((owner, id))? {
            Some(v) => Ok(Some(db::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn forget_trash_row(&mut self, owner: u64, id: u64, row: &TrashRow) -> Result<()> {
        self.txn.open_table(TRASH)?.remove((owner, id))?;
        self.txn.open_table(TRASH_EXPIRY)?.remove((row.deleted_at.max(0) as u64, id))?;
        Ok(())
    }

    /// Puts entry `id` of `owner`'s trash back at `rel` below the drive root `base` (parent
    /// folders made as needed). Refused as a conflict where something is there now.
    pub(crate) fn restore_trashed(
        &mut self,
        owner: u64,
        id: u64,
        base: u64,
        rel: &DrivePath,
        now: i64,
    ) -> Result<Item> {
        let row = self.trash_row(owner, id)?.ok_or_else(gone)?;
        let (Some(name), Some(parent_path)) = (rel.name(), rel.parent()) else {
            return Err(Error::InvalidInput("restore to a path below the drive root".into()));
        };
        let parent = self.ensure_folder(base, &parent_path, owner, now)?;
        if lookup_child(&self.children, parent.id, name)?.is_some() {
            return Err(Error::Conflict(format!(
                "/{} exists: restore to another path, or move that away first",
                rel.names().join("/")
            )));
        }
        let mut item = self.get(id)?;
        item.parent = parent.id;
        item.name = name.to_owned();
        self.put(&item)?;
        self.link(&item)?;
        self.add_usage(owner, 0, row.files as i64)?;
        self.add_below(parent.id, row.size as i128, row.files as i64)?;
        // Restored into a versioned bucket, a file is a new current version there.
        self.arrived(&item)?;
        self.forget_trash_row(owner, id, &row)?;
        Ok(item)
    }

    /// Removes entry `id` of `owner`'s trash for good, its bytes with it. Returns whether
    /// the detached-folder sweeper has work (a folder's rows are its to remove).
    pub(crate) fn purge_trashed(&mut self, owner: u64, id: u64) -> Result<bool> {
        let row = self.trash_row(owner, id)?.ok_or_else(gone)?;
        self.forget_trash_row(owner, id, &row)?;
        self.add_usage(owner, -(row.size as i128), 0)?;
        let Some(item) = crate::meta::txn::get_item(&self.items, id)? else {
            return Err(Error::internal("a trash entry without its item"));
        };
        if item.is_folder() {
            self.txn.open_table(DETACHED)?.insert(id, owner)?;
            return Ok(true);
        }
        self.release_refs(&item.chunks)?;
        self.items.remove(id)?;
        crate::meta::tags::forget_item(self.txn, id)?;
        Ok(false)
    }

    /// Purges a user's whole trash (the user is being deleted, or empties it). Returns
    /// whether the sweeper has work.
    pub(crate) fn purge_all_trash(&mut self, owner: u64) -> Result<bool> {
        let ids: Vec<u64> = {
            let t = self.txn.open_table(TRASH)?;
            let mut v = Vec::new();
            for e in t.range((owner, 0)..(owner + 1, 0))? {
                v.push(e?.0.value().1);
            }
            v
        };
        let mut swept = false;
        for id in ids {
            swept |= self.purge_trashed(owner, id)?;
        }
        Ok(swept)
    }
}

/// Every item in any trash, the roots and what is below them: rows that hold references and
/// usage bytes but belong to no drive (for the consistency check).
pub(crate) fn trashed_items(t: &crate::meta::kv::ReadTxn) -> Result<std::collections::HashSet<u64>> {
    let mut roots = Vec::new();
    for e in t.open_table(TRASH)?.iter()? {
        roots.push(e?.0.value().1);
    }
    crate::meta::subtree::items_below(t, roots)
}
