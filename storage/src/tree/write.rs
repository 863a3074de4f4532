//! Making folders, writing files, and changing an item's properties, times and metadata.

use bytes::Bytes;
use futures::Stream;

use super::locks::{self, LockGuard};
use super::{WriteOptions, drop_box_refusal, quota_error};
use crate::Storage;
use crate::access::{self, Access};
use crate::content::ingest::{Ingested, ingest_with};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, FOLDER_TOTALS, ITEMS, LOCKS, META, Readable, USAGE, USERS, VERSIONING};
use crate::meta::kv::{Ahead, fetch_ahead};
use crate::meta::model::{Item, Kind, Principal, child_key, now_nanos};
use crate::meta::txn::{self, FileContent, NEXT_ITEM_ID};

/// The most an item's WebDAV dead properties (names and values) may hold. They live in the
/// item's row, outside the owner's quota, and every PROPFIND of the item sends them: found by
/// probing, 60 PROPPATCHes of 53 KB grew the database by 25 MB on a 1,000-byte quota.
/// Clients store times, attributes and tags there, a few hundred bytes each.
pub const MAX_PROPS_BYTES: usize = 64 * 1024;

impl Storage {
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
        place.check_write(p)?;
        let now = now_nanos();
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
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

    /// Makes the folder at `path` and any missing parents; an existing folder is fine.
    pub async fn mkdir_all(&self, p: &Principal, path: &str) -> Result<Item> {
        let place = self.place_for_change(p, path).await?;
        if place.rel.is_root() && place.access != Access::Own {
            return self.stat(p, path).await;
        }
        place.rel.check_new(true)?;
        place.check_write(p)?;
        let now = now_nanos();
        let guard = LockGuard::of(p, false);
        self.commit_at(place, guard, (), move |w, place| w.ensure_folder(place.base, &place.rel, place.owner, now))
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
        let place = self.change_target(p, path).await?;
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
        let guard = LockGuard::of(p, false);
        let pre = {
            let (place, opts, guard) = (place.clone(), opts.clone(), guard.clone());
            self.core
                .db
                .read(move |t| {
                    let items = t.open_table(ITEMS)?;
                    let children = t.open_table(CHILDREN)?;
                    if children.on_postgres().is_some() {
                        access::fetch_place(&items, &children, &t.open_table(LOCKS)?, &place)?;
                    }
                    locks::check_in_read(t, &place, &guard)?;
                    let current = match access::slot_read(&items, &children, &place) {
                        Ok((parent, name)) => {
                            if children.on_postgres().is_some() {
                                let (users, usage) = (t.open_table(USERS)?, t.open_table(USAGE)?);
                                fetch_ahead(file_rows(&children, &users, &usage, parent.id, &name, owner))?;
                            }
                            match txn::lookup_child(&children, parent.id, &name)? {
                                Some(id) if keeps_old => txn::get_item(&items, id)?,
                                _ => None,
                            }
                        }
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
                        (user.quota + current.as_ref().map_or(0, |c| c.size)).saturating_sub(used)
                    };
                    Ok((room, current.is_none()))
                })
                .await?
        };
        // Whether the name was free at the check: a hint only (the commit looks again), for
        // which rows the commit fetches ahead.
        let (pre, was_free) = pre;
        if let Some(len) = opts.expected_len
            && len > pre
        {
            return Err(quota_error(pre));
        }
        let max = limit.map_or(pre, |l| l.bytes.min(pre));
        let md5 = opts.md5_etag || opts.expected_md5.is_some();
        let over = || match limit {
            Some(l) if l.bytes <= pre => l.refusal(None),
            _ => quota_error(pre),
        };
        if let Some(tags) = &opts.tags {
            super::tagging::check_object_tags(tags)?;
            if !tags.is_empty() {
                self.core.extras.seen();
            }
        }
        let ingested = ingest_with(&self.core, body, max, over, md5).await?;
        ingested.check_announced(opts.expected_len, opts.expected_md5, "body")?;
        let etag = ingested.etag();
        let Ingested { refs, size, inline, pins, commit_by, .. } = ingested;
        let now = now_nanos();
        let mut headers = opts.headers.clone();
        if let Some(late) = &opts.late_headers {
            headers.extend((late.0)());
        }
        self.commit_at(place, guard, pins, move |w, place| {
            let (parent, mut name) = access::slot(w, place, opts.create_parents, now)?;
            if !keeps_old {
                // An upload link never overwrites: a clashing name gets a new one.
                name = access::free_name(&w.children, parent.id, &name)?;
            }
            if w.children.on_postgres().is_some() {
                // Not on redb, where it would only cost opening tables; closed before the
                // rules below open them again. Besides the rows of the name and the owner:
                // whether the owner has versioning anywhere (`versions::bucket_of` asks
                // first), the folder totals of every folder up to the root (`add_below`;
                // the folders are known from the chain `commit_at` fetched), and the id
                // counter when the name was free at the check (not otherwise: the row every
                // node's creates write would be read by overwrites too). With the place
                // fetched by `commit_at`, one WebDAV PUT of a new 4 KiB file went from 15
                // round trips to 7 (6 with the lock check of its first look); 5,000 such PUTs
                // 16 at once (`BENCH_MIB=64 tests/bench/cluster.sh`, alternated, quiet
                // machine): 1,157–1,192 -> 1,252–1,322 per s, 0.28–0.30 -> 0.30–0.31 of
                // embedded, davit CPU 2.9 -> 2.5 s, PostgreSQL's 3.4–3.5 -> 3.2–3.4 s.
                let (users, meta) = (w.txn.open_table(USERS)?, w.txn.open_table(META)?);
                let (versioning, totals) = (w.txn.open_table(VERSIONING)?, w.txn.open_table(FOLDER_TOTALS)?);
                let up = w.ancestors(parent.id)?;
                let rows = file_rows(&w.children, &users, &w.usage, parent.id, &name, owner)
                    .chain([versioning.range_ahead((owner, 0)..(owner + 1, 0))])
                    .chain(up.iter().map(|&id| totals.ahead(id)))
                    .chain([was_free.then(|| meta.ahead(NEXT_ITEM_ID)).flatten()]);
                fetch_ahead(rows.chain(refs.iter().take(AHEAD_CHUNKS).map(|r| w.chunks.ahead(&r.id))))?;
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
            w.add_refs(&refs, inline.as_ref(), commit_by)?;
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
            let is_new = current.is_none();
            let item = w.place_file(owner, parent.id, &name, current, now, content)?;
            if let Some(tags) = &opts.tags
                // A new item (a new id: ids are never reused) has no tags to replace; on
                // PostgreSQL, removing a row not known absent costs a round trip (S3 PUT of a
                // new object 8 -> 7).
                && !(is_new && tags.is_empty())
            {
                crate::meta::tags::set_item(w.txn, item.id, tags)?;
            }
            w.lock_written(place, &item, &opts.lock)?;
            Ok(item)
        })
        .await
    }

    /// Sets (`Some`) and removes (`None`) WebDAV dead properties of an item, in order, all
    /// or nothing; refused when the item's properties would hold more than
    /// [`MAX_PROPS_BYTES`].
    pub async fn set_props(&self, p: &Principal, path: &str, ops: Vec<(String, Option<Vec<u8>>)>) -> Result<Item> {
        self.update_item(p, path, move |item| {
            for (key, value) in &ops {
                item.props.retain(|(k, _)| k != key);
                if let Some(v) = value {
                    item.props.push((key.clone(), v.clone()));
                }
            }
            let held: usize = item.props.iter().map(|(k, v)| k.len() + v.len()).sum();
            if held > MAX_PROPS_BYTES && ops.iter().any(|(_, v)| v.is_some()) {
                return Err(Error::QuotaExceeded(format!(
                    "an item holds at most {} KiB of WebDAV properties",
                    MAX_PROPS_BYTES / 1024
                )));
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

    async fn update_item(
        &self,
        p: &Principal,
        path: &str,
        f: impl Fn(&mut Item) -> Result<()> + Send + 'static,
    ) -> Result<Item> {
        let place = self.change_target(p, path).await?;
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
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
}

/// Chunk rows a write's commit fetches ahead at most: a small file has one, and a large
/// one's rows past this are read one by one as before (a write remembers 4096 rows at most).
const AHEAD_CHUNKS: usize = 256;

/// The rows writing file `name` in `folder` reads one after the other once the folder is
/// known, before and at its commit: the two keys the name may have there
/// (`txn::lookup_child`), and the owner's user row and usage (the quota). On PostgreSQL
/// they come in one round trip instead of four (`meta::kv::fetch_ahead`); nothing on redb.
fn file_rows<'t>(
    children: &'t impl Readable<(u64, &'static str), u64>,
    users: &'t impl Readable<u64, &'static [u8]>,
    usage: &'t impl Readable<u64, (u64, u64)>,
    folder: u64,
    name: &str,
    owner: u64,
) -> std::array::IntoIter<Option<Ahead<'t>>, 4> {
    [
        children.ahead((folder, name)),
        children.ahead((folder, child_key(name, Kind::Folder).as_str())),
        users.ahead(owner),
        usage.ahead(owner),
    ]
    .into_iter()
}
