//! Table access inside one write transaction, shared by every change of the tree.
//!
//! Each helper checks before it mutates where it can; where a change must refuse after
//! mutating (quota of a deep copy), the writer thread rolls back the whole batch and
//! replays the others, so a refusal never leaves half a change.

use crate::meta::kv::{Got, Readable, WriteTable};

use crate::crypto::ChunkId;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, CHUNK_DATA, CHUNK_GRAVE, CHUNKS, ITEMS, META, USAGE, USERS, WriteCtx};
use crate::meta::model::{ChunkRef, ChunkRow, Item, Kind, User, child_key};
use crate::meta::names::DrivePath;

/// The counter in META that item ids come from.
pub(crate) const NEXT_ITEM_ID: &str = "next_item_id";

/// The content and metadata a write gives a file.
pub(crate) struct FileContent {
    pub size: u64,
    pub etag: String,
    pub chunks: Vec<ChunkRef>,
    pub modified: i64,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    /// Part sizes of a multipart completion; empty for a single write.
    pub parts: Vec<u64>,
}

pub(crate) struct W<'t> {
    pub items: WriteTable<'t, u64, &'static [u8]>,
    pub children: WriteTable<'t, (u64, &'static str), u64>,
    pub chunks: WriteTable<'t, &'static ChunkId, &'static [u8]>,
    pub chunk_data: WriteTable<'t, &'static ChunkId, &'static [u8]>,
    pub usage: WriteTable<'t, u64, (u64, u64)>,
    pub freed: &'t mut Vec<ChunkId>,
    /// The chunk store's figures this change moves (see `crate::metrics`).
    delta: &'t mut crate::metrics::Delta,
    pub txn: &'t crate::meta::kv::WriteTxn,
    /// Whether chunks are collected after a grace period (see [`CHUNK_GRACE_KEY`]), read the
    /// first time a change needs to know.
    graves: Option<bool>,
}

impl<'t> W<'t> {
    pub fn open(ctx: &'t mut WriteCtx<'_>) -> Result<W<'t>> {
        let txn: &'t crate::meta::kv::WriteTxn = ctx.txn;
        Ok(W {
            items: txn.open_table(ITEMS)?,
            children: txn.open_table(CHILDREN)?,
            chunks: txn.open_table(CHUNKS)?,
            chunk_data: txn.open_table(CHUNK_DATA)?,
            usage: txn.open_table(USAGE)?,
            freed: &mut ctx.freed,
            delta: &mut ctx.delta,
            txn,
            graves: None,
        })
    }

    pub fn next_item_id(&self) -> Result<u64> {
        self.txn.next_id(NEXT_ITEM_ID)
    }

    pub fn user(&self, id: u64) -> Result<User> {
        let users = self.txn.open_table(USERS)?;
        let v = users.get(id)?.ok_or_else(|| Error::not_found(What::User))?;
        db::decode(v.value())
    }

    pub fn get(&self, id: u64) -> Result<Item> {
        get_item(&self.items, id)?.ok_or_else(|| Error::not_found(What::Item))
    }

    pub fn put(&mut self, item: &Item) -> Result<()> {
        self.items.insert(item.id, db::encode(item).as_slice())?;
        Ok(())
    }

    pub fn link(&mut self, item: &Item) -> Result<()> {
        self.children.insert((item.parent, item.child_key().as_str()), item.id)?;
        self.totals_on_link(item)
    }

    pub fn unlink(&mut self, item: &Item) -> Result<()> {
        self.children.remove((item.parent, item.child_key().as_str()))?;
        Ok(())
    }

    pub fn resolve(&self, root: u64, path: &DrivePath) -> Result<Option<Item>> {
        resolve(&self.items, &self.children, root, path)
    }

    pub fn resolve_folder(&self, root: u64, path: &DrivePath) -> Result<Item> {
        resolve_folder(&self.items, &self.children, root, path)
    }

    /// Puts a file named `name` in `parent`: replacing `current` (keeping its id, creation
    /// time and dead properties, and releasing its chunks) or as a new item, and counts the
    /// owner's usage. The caller has already taken references to the new chunks.
    pub fn place_file(
        &mut self,
        owner: u64,
        parent: u64,
        name: &str,
        current: Option<Item>,
        now: i64,
        c: FileContent,
    ) -> Result<Item> {
        let (old_size, is_new) = (current.as_ref().map_or(0, |i| i.size), current.is_none());
        // In a versioned bucket the replaced content stays as a noncurrent version
        // (`crate::versions`): its references and bytes are not released, and the quota
        // must hold the new content whole.
        let versioned = self.versioned_bucket(owner, parent)?;
        let key = versioned.as_ref().map(|(_, prefix)| format!("{prefix}{name}"));
        let mut kept = false;
        let base = match current {
            Some(old) => {
                if let (Some((b, _)), Some(key)) = (&versioned, &key) {
                    kept = self.retire_current(b, key, &old, now)?;
                }
                if kept {
                    self.check_quota(owner, c.size as i128)?;
                } else {
                    self.release_refs(&old.chunks)?;
                }
                old
            }
            None => Item::file(self.next_item_id()?, owner, parent, name, now),
        };
        let item = Item {
            size: c.size,
            etag: c.etag,
            chunks: c.chunks,
            modified: c.modified,
            content_type: c.content_type,
            headers: c.headers,
            user_meta: c.user_meta,
            parts: c.parts,
            ..base
        };
        let freed = if kept { 0 } else { old_size as i128 };
        self.add_usage(owner, item.size as i128 - freed, i64::from(is_new))?;
        self.add_below(parent, item.size as i128 - old_size as i128, i64::from(is_new))?;
        self.put(&item)?;
        self.link(&item)?;
        if let (Some((b, _)), Some(key)) = (&versioned, &key) {
            self.new_current(b, key, item.id)?;
        }
        Ok(item)
    }

    /// The folder at `path`, making missing folders on the way (owned by `owner`).
    pub fn ensure_folder(&mut self, root: u64, path: &DrivePath, owner: u64, now: i64) -> Result<Item> {
        let mut cur = self.get(root)?;
        for name in path.names() {
            if let Some(v) = self.children.get((cur.id, child_key(name, Kind::Folder).as_str()))? {
                let id = v.value();
                drop(v);
                cur = self.get(id)?;
                continue;
            }
            if self.children.get((cur.id, name.as_str()))?.is_some() {
                return Err(Error::Conflict(format!("'{name}' is a file, so it cannot also be a folder")));
            }
            let folder = Item::folder(self.next_item_id()?, owner, cur.id, name, now);
            self.put(&folder)?;
            self.link(&folder)?;
            cur = folder;
        }
        Ok(cur)
    }

    /// Takes references to `refs`; a new small chunk brings its sealed bytes in `inline`.
    /// `commit_by` is when a write that checked its chunks against the grave (several nodes,
    /// see `content::grace`) must commit at the latest: past it, a chunk it found alive may
    /// have been deleted since, so the write is refused rather than trusted.
    pub fn add_refs(
        &mut self,
        refs: &[ChunkRef],
        inline: Option<&(ChunkId, Vec<u8>)>,
        commit_by: Option<std::time::Instant>,
    ) -> Result<()> {
        if commit_by.is_some_and(|by| std::time::Instant::now() > by) {
            return Err(Error::Unavailable(
                "the upload took longer than half the chunk grace period, so its chunks may have been collected \
                 meanwhile: send it again (faster), or raise the grace period"
                    .into(),
            ));
        }
        for r in refs {
            let found: Option<ChunkRow> = self.chunks.get(&r.id)?.map(|v| db::decode(v.value())).transpose()?;
            let row = match found {
                Some(mut row) => {
                    row.refs += 1;
                    row
                }
                None => {
                    let inline_bytes = inline.filter(|(id, _)| *id == r.id).map(|(_, b)| b);
                    if let Some(b) = inline_bytes {
                        // The bytes come with the row, so a chunk file of the same id in the
                        // grave does not matter: the collector may go on and delete it.
                        self.chunk_data.insert(&r.id, b.as_slice())?;
                    } else if self.graves()? {
                        self.revive(&r.id)?;
                    }
                    self.delta.chunks += 1;
                    self.delta.chunk_bytes += i64::from(r.len);
                    ChunkRow { refs: 1, len: r.len, inline: inline_bytes.is_some() }
                }
            };
            self.chunks.insert(&r.id, db::encode(&row).as_slice())?;
        }
        Ok(())
    }

    /// A chunk file no row names is referenced again: out of the grave if it waits there.
    /// One that a collector is deleting cannot be, as long as writes commit within half the
    /// grace period of checking (the writer waited for such a chunk to be gone, and nothing
    /// marks a chunk for deletion sooner than a grace period after it was last seen alive).
    fn revive(&mut self, id: &ChunkId) -> Result<()> {
        let mut grave = self.txn.open_table(CHUNK_GRAVE)?;
        let state = grave.get(id)?.map(|v| Grave::decode(v.value())).transpose()?;
        match state {
            Some(Grave::Zero { .. }) => {
                grave.remove(id)?;
            }
            Some(Grave::Deleting { .. }) => {
                return Err(Error::internal(format_args!(
                    "chunk {} is being deleted by a collector while a write commits a reference to it",
                    hex::encode(id)
                )));
            }
            None => {}
        }
        Ok(())
    }

    /// Drops references; chunks left with none go: their files after the commit on one node,
    /// to the grave in this same transaction on several.
    pub fn release_refs(&mut self, refs: &[ChunkRef]) -> Result<()> {
        for r in refs {
            let mut row: ChunkRow = match self.chunks.get(&r.id)? {
                Some(v) => db::decode(v.value())?,
                None => {
                    return Err(Error::internal(format_args!("reference to unknown chunk {}", hex::encode(r.id))));
                }
            };
            row.refs -= 1;
            if row.refs == 0 {
                self.chunks.remove(&r.id)?;
                self.delta.chunks -= 1;
                self.delta.chunk_bytes -= i64::from(row.len);
                if row.inline {
                    self.chunk_data.remove(&r.id)?;
                } else if self.graves()? {
                    let zero = Grave::Zero { since: wall_nanos() };
                    self.txn.open_table(CHUNK_GRAVE)?.insert(&r.id, zero.encode())?;
                } else {
                    self.freed.push(r.id);
                }
            } else {
                self.chunks.insert(&r.id, db::encode(&row).as_slice())?;
            }
        }
        Ok(())
    }

    fn graves(&mut self) -> Result<bool> {
        if let Some(on) = self.graves {
            return Ok(on);
        }
        let on = self.txn.open_table(META)?.get(CHUNK_GRACE_KEY)?.is_some();
        self.graves = Some(on);
        Ok(on)
    }

    pub fn usage_of(&self, user: u64) -> Result<(u64, u64)> {
        Ok(self.usage.get(user)?.map_or((0, 0), |v| v.value()))
    }

    pub fn add_usage(&mut self, user: u64, bytes: i128, files: i64) -> Result<()> {
        let (b, f) = self.usage_of(user)?;
        let nb = (b as i128 + bytes).max(0) as u64;
        let nf = (f as i64 + files).max(0) as u64;
        self.usage.insert(user, (nb, nf))?;
        self.delta.logical_bytes += nb as i64 - b as i64;
        Ok(())
    }

    /// Removes a user's usage row (the account goes), its bytes from the figures with it.
    pub fn drop_usage(&mut self, user: u64) -> Result<()> {
        let (b, _) = self.usage_of(user)?;
        self.usage.remove(user)?;
        self.delta.logical_bytes -= b as i64;
        Ok(())
    }

    /// Refuses if the owner's usage would pass their quota after adding `extra` bytes.
    pub fn check_quota(&self, owner: u64, extra: i128) -> Result<()> {
        if extra <= 0 {
            return Ok(());
        }
        let quota = self.user(owner)?.quota;
        let (used, _) = self.usage_of(owner)?;
        if quota > 0 && used as i128 + extra > quota as i128 {
            return Err(Error::QuotaExceeded(format!(
                "over quota: {} bytes used of {quota}, this change needs {extra} more",
                used
            )));
        }
        Ok(())
    }

    /// Every item below `folder` (not itself), depth first.
    pub fn descendants(&self, folder: u64) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut stack = vec![folder];
        while let Some(f) = stack.pop() {
            for entry in self.children.range((f, "")..(f + 1, ""))? {
                let (_, id) = entry?;
                let item = self.get(id.value())?;
                if item.is_folder() {
                    stack.push(item.id);
                }
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The ids from the drive root down to `id`, both included.
    pub fn ancestors(&self, id: u64) -> Result<Vec<u64>> {
        let mut chain = vec![id];
        let mut cur = self.get(id)?.parent;
        while cur != 0 && chain.len() < 4096 {
            chain.push(cur);
            cur = self.get(cur)?.parent;
        }
        chain.reverse();
        Ok(chain)
    }

    /// Gives `top` and everything below it to `new_owner`: usage moves (the new owner's
    /// quota must hold it), grants and links follow, and a grant to the new owner ends.
    pub fn change_owner(&mut self, top: &Item, new_owner: u64) -> Result<()> {
        let old_owner = top.owner;
        let mut all = if top.is_folder() { self.descendants(top.id)? } else { Vec::new() };
        all.push(top.clone());
        let (mut bytes, mut files) = (0u64, 0u64);
        for it in &mut all {
            if it.kind == Kind::File {
                bytes += it.size;
                files += 1;
            }
            it.owner = new_owner;
            self.put(it)?;
            crate::meta::grant_rows::reown_item(self.txn, it.id, old_owner, new_owner)?;
        }
        self.check_quota(new_owner, bytes as i128)?;
        self.add_usage(old_owner, -(bytes as i128), -(files as i64))?;
        self.add_usage(new_owner, bytes as i128, files as i64)?;
        Ok(())
    }

    /// Removes an item and everything below it, ending every grant and link on any of
    /// them; returns (bytes, files) released.
    pub fn remove_subtree(&mut self, item: &Item) -> Result<(u64, u64)> {
        let mut all = if item.is_folder() { self.descendants(item.id)? } else { Vec::new() };
        all.push(item.clone());
        let (mut bytes, mut files) = (0u64, 0u64);
        for it in &all {
            self.unlink(it)?;
            self.items.remove(it.id)?;
            crate::meta::tags::forget_item(self.txn, it.id)?;
            if it.is_folder() {
                self.drop_folder_totals(it.id)?;
                crate::meta::tags::forget_lifecycle(self.txn, it.id)?;
            }
            crate::meta::grant_rows::forget_item(self.txn, it.id)?;
            if it.kind == Kind::File {
                self.release_refs(&it.chunks)?;
                bytes += it.size;
                files += 1;
            }
        }
        self.add_usage(item.owner, -(bytes as i128), -(files as i64))?;
        self.add_below(item.parent, -(bytes as i128), -(files as i64))?;
        Ok((bytes, files))
    }

    /// Copies `src` (and its subtree) to a new item under `parent` named `name`, owned by
    /// `owner`; content is shared by reference, never copied. Returns the new top item.
    pub fn copy_subtree(&mut self, src: &Item, parent: u64, name: &str, owner: u64, now: i64) -> Result<Item> {
        let mut stack = vec![(src.clone(), parent, name.to_owned())];
        let mut top = None;
        let (mut bytes, mut files) = (0u64, 0u64);
        // The copy's folder totals, summed as it is made (folders in the order made, each
        // before what it holds): see `meta::subtree`.
        let mut folders: Vec<(u64, u64)> = Vec::new();
        let mut sums: std::collections::HashMap<u64, (u64, u64)> = std::collections::HashMap::new();
        while let Some((from, new_parent, new_name)) = stack.pop() {
            let mut copy = from.clone();
            copy.id = self.next_item_id()?;
            copy.parent = new_parent;
            copy.name = new_name;
            copy.owner = owner;
            copy.created = now;
            if copy.kind == Kind::File {
                self.add_refs(&copy.chunks, None, None)?;
                bytes += copy.size;
                files += 1;
                if let Some(t) = sums.get_mut(&new_parent) {
                    *t = (t.0 + copy.size, t.1 + 1);
                }
            } else {
                folders.push((copy.id, new_parent));
                sums.insert(copy.id, (0, 0));
                for entry in self.children.range((from.id, "")..(from.id + 1, ""))? {
                    let (_, id) = entry?;
                    let child = self.get(id.value())?;
                    let n = child.name.clone();
                    stack.push((child, copy.id, n));
                }
            }
            self.put(&copy)?;
            self.link(&copy)?;
            crate::meta::tags::copy_item(self.txn, from.id, copy.id)?;
            top.get_or_insert(copy);
        }
        self.check_quota(owner, bytes as i128)?;
        self.add_usage(owner, bytes as i128, files as i64)?;
        for &(id, up) in folders.iter().rev() {
            let t = sums.get(&id).copied().unwrap_or_default();
            if let Some(p) = sums.get_mut(&up) {
                *p = (p.0 + t.0, p.1 + t.1);
            }
            self.set_folder_totals(id, t)?;
        }
        self.add_below(parent, bytes as i128, files as i64)?;
        let top = top.expect("at least the source");
        Ok(top)
    }
}

/// META key present when chunk files are collected after a grace period, the mode of several
/// nodes (`content::grace`); its value is the grace in nanoseconds (u64, little-endian).
/// Absent, a change hands the chunks it frees to the one node's collector (`freed`). The
/// mode lives in the store, not only in each process, because the change that frees a chunk
/// must know it and sees only its transaction.
pub(crate) const CHUNK_GRACE_KEY: &str = "chunk_grace";

/// A row of CHUNK_GRAVE: a chunk file that no row names. `since` is wall-clock nanoseconds:
/// nodes compare each other's, so their clocks must agree to well within the grace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grave {
    /// Unreferenced since `since` (or last found needed by a writer then); its file still
    /// exists, and may be deleted once a grace period has passed.
    Zero { since: u64 },
    /// A collector began deleting its file at `since`; the row goes once the file is gone.
    Deleting { since: u64 },
}

impl Grave {
    pub fn decode((state, since): (u64, u64)) -> Result<Grave> {
        match state {
            0 => Ok(Grave::Zero { since }),
            1 => Ok(Grave::Deleting { since }),
            s => Err(Error::corrupt(format_args!("chunk grave state {s}, which no davit wrote"))),
        }
    }

    pub fn encode(self) -> (u64, u64) {
        match self {
            Grave::Zero { since } => (0, since),
            Grave::Deleting { since } => (1, since),
        }
    }
}

/// Wall-clock nanoseconds since the epoch, as graves keep them.
pub(crate) fn wall_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn get_item(items: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<Option<Item>> {
    items.get(id)?.map(|v| db::decode(v.value())).transpose()
}

pub(crate) fn lookup_child(
    children: &impl Readable<(u64, &'static str), u64>,
    parent: u64,
    name: &str,
) -> Result<Option<u64>> {
    if let Some(v) = children.get((parent, name))? {
        return Ok(Some(v.value()));
    }
    Ok(children.get((parent, child_key(name, Kind::Folder).as_str()))?.map(|v| v.value()))
}

/// Follows `names` down from the folder `from`: every name but the last must be a folder,
/// the last may be either. Calls `reached` with each id found, in order, and returns how many
/// names were found (all of them when the path exists).
///
/// This is one of the seam's typed operations: resolving a path is on every request, and
/// PostgreSQL answers it in one query (the schema's `davit_walk`, which does these same
/// lookups on the server) where lookups name by name would cost a round trip per name. On
/// redb it is the lookups.
pub(crate) fn walk(
    children: &impl Readable<(u64, &'static str), u64>,
    from: u64,
    names: &[String],
    mut reached: impl FnMut(u64),
) -> Result<usize> {
    if let Some(pg) = children.on_postgres() {
        if names.is_empty() {
            return Ok(0);
        }
        let ids = pg.walk(from, names)?;
        ids.iter().for_each(|&id| reached(id));
        return Ok(ids.len());
    }
    let mut cur = from;
    for (i, name) in names.iter().enumerate() {
        let next = if i + 1 == names.len() {
            lookup_child(children, cur, name)?
        } else {
            children.get((cur, child_key(name, Kind::Folder).as_str()))?.map(|v| v.value())
        };
        match next {
            Some(id) => {
                reached(id);
                cur = id;
            }
            None => return Ok(i),
        }
    }
    Ok(names.len())
}

/// The children of `folder` whose sort keys are `from` or later, in key order: one page of
/// a listing. A typed operation for the same reason as [`walk`]: PostgreSQL answers a page
/// with one query joining the children to their items. On redb each item is read only when
/// asked for, so entries a listing skips cost no item lookup.
pub(crate) fn children_from<'a, I: Readable<u64, &'static [u8]>>(
    items: &'a I,
    children: &'a impl Readable<(u64, &'static str), u64>,
    folder: u64,
    from: &str,
) -> Result<impl Iterator<Item = Result<Child<'a, I>>> + 'a> {
    if let (Some(c), Some(i)) = (children.on_postgres(), items.on_postgres()) {
        let rows = c.children_with_items(&i, folder, from);
        return Ok(Either::Pg(rows.map(move |row| {
            let (key, id, item) = row?;
            Ok(Child { key, id, items, item })
        })));
    }
    Ok(Either::Redb(children.range((folder, from)..(folder + 1, ""))?.map(move |entry| {
        let (key, id) = entry?;
        Ok(Child { key, id: id.value(), items, item: None })
    })))
}

/// One of two iterators of the same items: `children_from` on either engine.
enum Either<R, P> {
    Redb(R),
    Pg(P),
}

impl<T, R: Iterator<Item = T>, P: Iterator<Item = T>> Iterator for Either<R, P> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match self {
            Either::Redb(r) => r.next(),
            Either::Pg(p) => p.next(),
        }
    }
}

/// One entry of [`children_from`].
pub(crate) struct Child<'a, I> {
    key: Got<'a, (u64, &'static str)>,
    id: u64,
    items: &'a I,
    /// The item's row when the engine brought it with the child (PostgreSQL).
    item: Option<Got<'a, &'static [u8]>>,
}

impl<I: Readable<u64, &'static [u8]>> Child<'_, I> {
    /// The sort key: the name, with `/` after a folder's.
    pub fn key(&self) -> &str {
        self.key.value().1
    }

    pub fn item(&self) -> Result<Item> {
        match &self.item {
            Some(v) => db::decode(v.value()),
            None => get_item(self.items, self.id)?.ok_or_else(|| Error::internal("dangling child")),
        }
    }
}

pub(crate) fn resolve(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    root: u64,
    path: &DrivePath,
) -> Result<Option<Item>> {
    let names = path.names();
    // On every request: PostgreSQL walks and reads the item in one round trip.
    if let (Some(c), Some(i)) = (children.on_postgres(), items.on_postgres()) {
        return c.resolve(&i, root, names)?.map(|v| db::decode(&v)).transpose();
    }
    let mut cur = root;
    if walk(children, root, names, |id| cur = id)? < names.len() {
        return Ok(None);
    }
    get_item(items, cur)
}

/// The folder at `path`, with a clear refusal when a part is missing or is a file.
pub(crate) fn resolve_folder(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    root: u64,
    path: &DrivePath,
) -> Result<Item> {
    // PostgreSQL: the lookups below in one round trip, not two per level (nothing when the
    // change's transaction knows them already); then they are answered from memory.
    crate::meta::kv::fetch_ahead([folder_chain_ahead(children, items, root, path)])?;
    let mut cur = root;
    for name in path.names() {
        if let Some(v) = children.get((cur, child_key(name, Kind::Folder).as_str()))? {
            cur = v.value();
        } else if children.get((cur, name.as_str()))?.is_some() {
            return Err(Error::Conflict(format!("'{name}' is a file, not a folder")));
        } else {
            return Err(Error::ParentMissing(format!("folder {path} does not exist")));
        }
    }
    get_item(items, cur)?.ok_or_else(|| Error::not_found(What::Folder))
}

/// What [`resolve_folder`] reads for `path` from `root`, for `meta::kv::fetch_ahead`
/// (`None` on redb).
pub(crate) fn folder_chain_ahead<'t>(
    children: &'t impl Readable<(u64, &'static str), u64>,
    items: &'t impl Readable<u64, &'static [u8]>,
    root: u64,
    path: &DrivePath,
) -> Option<crate::meta::kv::Ahead<'t>> {
    children.on_postgres()?;
    crate::meta::kv::folder_chain_ahead(children, items, root, folder_steps(path))
}

/// The children keys [`resolve_folder`] follows down `path`, from the top.
pub(crate) fn folder_steps(path: &DrivePath) -> impl Iterator<Item = String> + '_ {
    path.names().iter().map(|n| child_key(n, Kind::Folder))
}

/// The user row, inside a write.
pub(crate) fn load_user_w(t: &crate::meta::kv::WriteTxn, id: u64) -> Result<User> {
    let users = t.open_table(USERS)?;
    let v = users.get(id)?.ok_or_else(|| Error::not_found(What::User))?;
    db::decode(v.value())
}

/// The user row, in a read.
pub(crate) fn load_user(t: &crate::meta::kv::ReadTxn, id: u64) -> Result<User> {
    let users = t.open_table(USERS)?;
    let v = users.get(id)?.ok_or_else(|| Error::not_found(What::User))?;
    db::decode(v.value())
}
