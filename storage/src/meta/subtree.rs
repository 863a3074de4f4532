//! What a folder holds without walking it: per-folder totals, and the subtrees that were
//! deleted (detached) but whose rows are still being swept.
//!
//! Why per-folder totals: deleting a folder must drop its owner's usage in the transaction
//! that detaches it, and reading the 10,000 items below it there is what made deletes slow.
//! So each folder keeps (bytes, files) of everything below it in FOLDER_TOTALS, changed with
//! every change of a file's size or place, along the folder and the folders above it: a few
//! rows per write (the depth of its path). Usage caught up in the background was the other
//! choice; it was refused because a quota must see freed bytes at once, and README promises
//! the usage drops with the delete.
//!
//! An absent row means "not known": folders made by a davit before the table existed. A
//! change whose size is not known removes the rows of the folders it lands in and above, so
//! a present row is always right; a delete of a folder whose total is not known walks it once.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::meta::db::{self, CHILDREN, DETACHED, FOLDER_TOTALS, ITEMS};
use crate::meta::kv::{ReadTxn, Readable, fetch_ahead};
use crate::meta::model::{Item, Kind};
use crate::meta::txn::W;

/// (bytes, files).
pub(crate) type Totals = (u64, u64);

fn apply(t: Totals, bytes: i128, files: i64) -> Totals {
    ((t.0 as i128 + bytes).max(0) as u64, (t.1 as i64 + files).max(0) as u64)
}

impl W<'_> {
    /// What is below `folder`, if known.
    pub fn folder_totals(&self, folder: u64) -> Result<Option<Totals>> {
        Ok(self.txn.open_table(FOLDER_TOTALS)?.get(folder)?.map(|v| v.value()))
    }

    /// What an item stands for in the folders above it: a file itself, a folder its totals.
    pub fn item_totals(&self, item: &Item) -> Result<Option<Totals>> {
        match item.kind {
            Kind::File => Ok(Some((item.size, 1))),
            Kind::Folder => self.folder_totals(item.id),
        }
    }

    /// Counts a change of `bytes` and `files` below `folder` in it and in every folder above
    /// it that keeps totals.
    pub fn add_below(&mut self, folder: u64, bytes: i128, files: i64) -> Result<()> {
        if (bytes, files) == (0, 0) || folder == 0 {
            return Ok(());
        }
        let chain = self.ancestors(folder)?;
        let mut totals = self.txn.open_table(FOLDER_TOTALS)?;
        // Every ancestor's row is read, one after the other: on PostgreSQL all in one round
        // trip (every small PUT passes here).
        fetch_ahead(chain.iter().map(|&id| totals.ahead(id)))?;
        for id in chain {
            let Some(t) = totals.get(id)?.map(|v| v.value()) else { continue };
            totals.insert(id, apply(t, bytes, files))?;
        }
        Ok(())
    }

    /// A change of unknown size happened below `folder`: its totals and those above it are
    /// no longer known.
    pub fn forget_totals_up(&mut self, folder: u64) -> Result<()> {
        if folder == 0 {
            return Ok(());
        }
        let chain = self.ancestors(folder)?;
        let mut totals = self.txn.open_table(FOLDER_TOTALS)?;
        // Known rows are removed in memory and sent with the next query (`pg::txn`).
        fetch_ahead(chain.iter().map(|&id| totals.ahead(id)))?;
        for id in chain {
            totals.remove(id)?;
        }
        Ok(())
    }

    /// An item that stood for `t` (None: not known) moved from below `from` to below `to`.
    pub fn move_totals(&mut self, t: Option<Totals>, from: u64, to: u64) -> Result<()> {
        match t {
            Some((b, f)) => {
                self.add_below(from, -(b as i128), -(f as i64))?;
                self.add_below(to, b as i128, f as i64)
            }
            None => {
                self.forget_totals_up(from)?;
                self.forget_totals_up(to)
            }
        }
    }

    /// A folder just linked into the tree: an empty one's totals are known (zero). A folder
    /// with contents keeps the row it has (moved) or stays not known (older davits).
    pub(crate) fn totals_on_link(&mut self, folder: &Item) -> Result<()> {
        if !folder.is_folder() {
            return Ok(());
        }
        let mut totals = self.txn.open_table(FOLDER_TOTALS)?;
        if totals.get(folder.id)?.is_some() {
            return Ok(());
        }
        if self.children.range((folder.id, "")..(folder.id + 1, ""))?.next().is_none() {
            totals.insert(folder.id, (0, 0))?;
        }
        Ok(())
    }

    pub fn set_folder_totals(&mut self, folder: u64, t: Totals) -> Result<()> {
        self.txn.open_table(FOLDER_TOTALS)?.insert(folder, t)?;
        Ok(())
    }

    pub fn drop_folder_totals(&mut self, folder: u64) -> Result<()> {
        self.txn.open_table(FOLDER_TOTALS)?.remove(folder)?;
        Ok(())
    }

    /// The totals of `folder` by reading everything below it: only for folders of older
    /// davits, whose totals were never kept.
    pub fn walk_totals(&self, folder: u64) -> Result<Totals> {
        let mut t = (0, 0);
        for it in self.descendants(folder)? {
            if it.kind == Kind::File {
                t = (t.0 + it.size, t.1 + 1);
            }
        }
        Ok(t)
    }
}

/// Every item of a detached subtree not swept yet (the roots included): rows that exist but
/// belong to no drive any more, for the consistency check.
pub(crate) fn detached_items(t: &ReadTxn) -> Result<HashSet<u64>> {
    let mut roots = Vec::new();
    for e in t.open_table(DETACHED)?.iter()? {
        roots.push(e?.0.value());
    }
    items_below(t, roots)
}

/// The items `roots` name and every item below them (files and folders alike).
pub(crate) fn items_below(t: &ReadTxn, roots: Vec<u64>) -> Result<HashSet<u64>> {
    let children = t.open_table(CHILDREN)?;
    let mut out = HashSet::new();
    let mut stack = roots;
    while let Some(f) = stack.pop() {
        if !out.insert(f) {
            continue;
        }
        for e in children.range((f, "")..(f + 1, ""))? {
            let (k, id) = e?;
            if k.value().1.ends_with('/') {
                stack.push(id.value());
            } else {
                out.insert(id.value());
            }
        }
    }
    Ok(out)
}

/// Each item's parent and whether it is a folder.
type Parents = HashMap<u64, (u64, bool)>;

/// What is below every folder, from one read of every item: the parent of each item, and
/// the totals of each folder that holds a file (folders holding none are absent).
fn sum_all(items: impl Iterator<Item = Result<Item>>, skip: &HashSet<u64>) -> Result<(Parents, HashMap<u64, Totals>)> {
    let mut parent: HashMap<u64, (u64, bool)> = HashMap::new();
    let mut files: Vec<(u64, u64)> = Vec::new();
    for item in items {
        let item = item?;
        parent.insert(item.id, (item.parent, item.is_folder()));
        if item.kind == Kind::File && !skip.contains(&item.id) {
            files.push((item.parent, item.size));
        }
    }
    let mut found: HashMap<u64, Totals> = HashMap::new();
    for (mut up, size) in files {
        // Bounded by the depth of the tree (paths are at most 4096 bytes).
        for _ in 0..4096 {
            if up == 0 {
                break;
            }
            let t = found.entry(up).or_default();
            *t = (t.0 + size, t.1 + 1);
            up = parent.get(&up).map_or(0, |p| p.0);
        }
    }
    Ok((parent, found))
}

/// Counts the totals of every folder (the migration to format 4).
pub(crate) fn count_all_totals(txn: &crate::meta::kv::WriteTxn) -> Result<()> {
    let (parent, found) = {
        let items = txn.open_table(ITEMS)?;
        let rows = items.iter()?.map(|e| e.and_then(|(_, v)| db::decode::<Item>(v.value())));
        sum_all(rows, &HashSet::new())?
    };
    let mut totals = txn.open_table(FOLDER_TOTALS)?;
    for (id, (_, is_folder)) in parent {
        if is_folder {
            totals.insert(id, found.get(&id).copied().unwrap_or_default())?;
        }
    }
    Ok(())
}

/// Every kept folder total equals what is below the folder (for the consistency check):
/// reads every item once, and adds each file to the folders above it.
pub(crate) fn check_totals(t: &ReadTxn, detached: &HashSet<u64>, problems: &mut Vec<String>) -> Result<()> {
    let items = t.open_table(ITEMS)?;
    let rows = items.iter()?.map(|e| e.and_then(|(_, v)| db::decode::<Item>(v.value())));
    let (parent, found) = sum_all(rows, detached)?;
    for e in t.open_table(FOLDER_TOTALS)?.iter()? {
        let (k, v) = e?;
        let (id, kept) = (k.value(), v.value());
        if detached.contains(&id) || !parent.contains_key(&id) {
            continue;
        }
        let below = found.get(&id).copied().unwrap_or_default();
        if below != kept {
            problems.push(format!("folder {id} keeps totals {kept:?} (bytes, files) but holds {below:?}"));
        }
    }
    Ok(())
}
