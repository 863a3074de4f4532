//! The rows of a versioned bucket's history, changed inside the transaction of the write,
//! delete, move or copy that makes a version noncurrent (see the module's documentation).

use crate::error::{Error, Result};
use crate::meta::db::{self, CURRENT_VERSIONS, VERSIONING, VERSIONS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Kind};
use crate::meta::txn::{W, get_item};

use super::{Version, Versioning, row_key};

/// A bucket whose versioning was configured, as a change sees it.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    pub id: u64,
    pub owner: u64,
    pub state: Versioning,
}

/// Whether `owner` has any bucket with versioning configured: one range read, so a write of
/// a user without one pays nothing more (no walk up to its bucket).
pub(crate) fn owner_has_versioning(versioning: &impl Readable<(u64, u64), u64>, owner: u64) -> Result<bool> {
    Ok(versioning.range((owner, 0)..(owner + 1, 0))?.next().is_some())
}

/// The versioned bucket holding folder `folder` and the folder's key prefix in it (`""` for
/// the bucket itself, else ending in `/`); `None` outside a bucket with versioning
/// configured. Walks up to the top-level folder: the depth of the folder in lookups.
pub(crate) fn bucket_of(
    items: &impl Readable<u64, &'static [u8]>,
    versioning: &impl Readable<(u64, u64), u64>,
    owner: u64,
    folder: u64,
) -> Result<Option<(Bucket, String)>> {
    if !owner_has_versioning(versioning, owner)? {
        return Ok(None);
    }
    let get = |id| get_item(items, id)?.ok_or_else(|| Error::internal("a folder's parent is missing"));
    let mut cur = get(folder)?;
    if cur.parent == 0 {
        return Ok(None); // the drive root: no bucket
    }
    let mut names = Vec::new();
    loop {
        let up = get(cur.parent)?;
        if up.parent == 0 {
            break;
        }
        names.push(std::mem::take(&mut cur.name));
        cur = up;
        if names.len() > 4096 {
            return Err(Error::internal("a folder chain without a root"));
        }
    }
    let Some(state) = versioning.get((cur.owner, cur.id))?.map(|v| v.value()) else { return Ok(None) };
    names.reverse();
    let mut prefix = names.join("/");
    if !prefix.is_empty() {
        prefix.push('/');
    }
    Ok(Some((Bucket { id: cur.id, owner: cur.owner, state: Versioning::from_row(state) }, prefix)))
}

/// The history rows of `key`, newest first.
pub(crate) fn history_of(
    versions: &impl Readable<(u64, &'static str), &'static [u8]>,
    bucket: u64,
    key: &str,
) -> Result<Vec<Version>> {
    let (from, to) = (format!("{key}\0"), format!("{key}\u{1}"));
    let mut out = Vec::new();
    for e in versions.range((bucket, from.as_str())..(bucket, to.as_str()))? {
        out.push(db::decode(e?.1.value())?);
    }
    Ok(out)
}

impl W<'_> {
    /// [`bucket_of`] inside a change.
    pub(crate) fn versioned_bucket(&self, owner: u64, folder: u64) -> Result<Option<(Bucket, String)>> {
        bucket_of(&self.items, &self.txn.open_table(VERSIONING)?, owner, folder)
    }

    fn next_version_seq(&self) -> Result<u64> {
        self.txn.next_id("next_version_id")
    }

    /// The (seq, null) of a current file in a versioned bucket; `None` for a file written
    /// before versioning or moved in (a `null` version).
    pub(crate) fn current_tag(&self, item: u64) -> Result<Option<(u64, bool)>> {
        Ok(self.txn.open_table(CURRENT_VERSIONS)?.get(item)?.map(|v| {
            let (seq, null) = v.value();
            (seq, null == 1)
        }))
    }

    pub(crate) fn history(&self, bucket: u64, key: &str) -> Result<Vec<Version>> {
        history_of(&self.txn.open_table(VERSIONS)?, bucket, key)
    }

    fn put_history(&mut self, bucket: u64, key: &str, v: &Version) -> Result<()> {
        self.txn.open_table(VERSIONS)?.insert((bucket, row_key(key, v.seq).as_str()), db::encode(v).as_slice())?;
        Ok(())
    }

    /// Removes one history row for good: its references and bytes go with it.
    /// Refused while the version is retained or held (object lock).
    pub(crate) fn remove_history(&mut self, bucket: u64, key: &str, v: &Version) -> Result<()> {
        self.release_lock(bucket, v.seq, false)?;
        self.txn.open_table(VERSIONS)?.remove((bucket, row_key(key, v.seq).as_str()))?;
        crate::meta::tags::take_version(self.txn, bucket, v.seq)?;
        if !v.marker {
            self.release_refs(&v.chunks)?;
            self.add_usage(v.owner, -(v.size as i128), 0)?;
        }
        Ok(())
    }

    /// S3: a write or delete in a suspended bucket replaces the key's `null` version.
    fn drop_history_null(&mut self, bucket: u64, key: &str) -> Result<()> {
        for v in self.history(bucket, key)? {
            if v.null {
                self.remove_history(bucket, key, &v)?;
            }
        }
        Ok(())
    }

    /// The current file `item` at `key` stops being current. Its content becomes a
    /// noncurrent version, its references and bytes moving with it (nothing is copied or
    /// counted twice), except the `null` version of a suspended bucket, which S3 replaces:
    /// then the caller releases it as an unversioned change would. Returns whether it was kept.
    pub(crate) fn retire_current(&mut self, b: &Bucket, key: &str, item: &Item, now: i64) -> Result<bool> {
        let tag = self.current_tag(item.id)?;
        self.txn.open_table(CURRENT_VERSIONS)?.remove(item.id)?;
        let null = tag.is_none_or(|t| t.1);
        if b.state == Versioning::Suspended && null {
            if let Some((seq, _)) = tag {
                self.release_lock(b.id, seq, false)?; // the replaced `null` version is destroyed
            }
            return Ok(false);
        }
        if null {
            // One `null` version per key (S3); a stray one would be shadowed forever.
            self.drop_history_null(b.id, key)?;
        }
        let seq = match tag {
            Some((seq, _)) => seq,
            None => self.next_version_seq()?,
        };
        let v = Version::of_item(seq, null, item, now);
        self.put_history(b.id, key, &v)?;
        // In the same transaction, so that a tag-filtered lifecycle rule and GetObjectTagging
        // of the version see the tags it had.
        crate::meta::tags::keep_version(self.txn, item.id, b.id, seq)?;
        Ok(true)
    }

    /// Gives the file `item`, now current at `key`, its version id: a new one in an enabled
    /// bucket, `null` in a suspended one (replacing the key's `null` in history).
    pub(crate) fn new_current(&mut self, b: &Bucket, key: &str, item: u64) -> Result<(u64, bool)> {
        let null = b.state == Versioning::Suspended;
        if null {
            self.drop_history_null(b.id, key)?;
        }
        let seq = self.next_version_seq()?;
        self.txn.open_table(CURRENT_VERSIONS)?.insert(item, (seq, u64::from(null)))?;
        self.apply_default_retention(b.id, key, seq)?;
        Ok((seq, null))
    }

    /// The delete marker S3 leaves where a current version went.
    pub(crate) fn add_delete_marker(&mut self, b: &Bucket, key: &str, now: i64) -> Result<(u64, bool)> {
        let null = b.state == Versioning::Suspended;
        if null {
            self.drop_history_null(b.id, key)?;
        }
        let seq = self.next_version_seq()?;
        self.put_history(b.id, key, &Version::marker(seq, null, b.owner, now))?;
        Ok((seq, null))
    }

    /// A current file leaves the tree as a client's delete of it in a versioned bucket: its
    /// content to history (or released, see [`Self::retire_current`]), a delete marker at
    /// its key. Usage keeps the bytes that stay in history; folder totals are the caller's.
    fn retire_file(&mut self, b: &Bucket, key: &str, f: &Item, now: i64) -> Result<()> {
        if !self.retire_current(b, key, f, now)? {
            self.release_refs(&f.chunks)?;
            self.add_usage(f.owner, -(f.size as i128), 0)?;
        }
        self.add_usage(f.owner, 0, -1)?;
        self.unlink(f)?;
        self.items.remove(f.id)?;
        crate::meta::grant_rows::forget_item(self.txn, f.id)?;
        self.add_delete_marker(b, key, now)?;
        Ok(())
    }

    /// The files below `folder` with their keys (`base` is the folder's key, ending in `/`).
    fn files_below(&self, folder: u64, base: &str) -> Result<Vec<(String, Item)>> {
        let mut out = Vec::new();
        let mut stack = vec![(folder, base.to_owned())];
        while let Some((f, prefix)) = stack.pop() {
            for e in self.children.range((f, "")..(f + 1, ""))? {
                let (_, id) = e?;
                let it = self.get(id.value())?;
                if it.is_folder() {
                    stack.push((it.id, format!("{prefix}{}/", it.name)));
                } else {
                    out.push((format!("{prefix}{}", it.name), it));
                }
            }
        }
        Ok(out)
    }

    /// A client's delete of a file or folder. In a versioned bucket every file below goes
    /// to history with a delete marker, as S3 deletes of each key would: that walks the
    /// folder, so only an unversioned folder keeps the constant-time detach
    /// ([`W::remove_item`]). Deleting a versioned bucket's folder itself takes its history
    /// and configuration with it. Returns whether the sweeper has work.
    pub(crate) fn delete_item(&mut self, item: &Item, now: i64) -> Result<bool> {
        let Some((b, prefix)) = self.versioned_bucket(item.owner, item.parent)? else {
            if item.is_folder() {
                self.drop_bucket_history(item.owner, item.id)?;
            }
            return self.remove_item(item);
        };
        if item.kind == Kind::File {
            self.retire_file(&b, &format!("{prefix}{}", item.name), item, now)?;
            self.add_below(item.parent, -(item.size as i128), -1)?;
            return Ok(false);
        }
        let (mut bytes, mut files) = (0u64, 0u64);
        for (key, f) in self.files_below(item.id, &format!("{prefix}{}/", item.name))? {
            self.retire_file(&b, &key, &f, now)?;
            bytes += f.size;
            files += 1;
        }
        self.remove_subtree(item)?; // folders only now
        self.add_below(item.parent, -(bytes as i128), -(files as i64))?;
        Ok(false)
    }

    /// Before something else takes the place of `old` (a MOVE or COPY with overwrite): in
    /// a versioned bucket a file's content goes to history as an S3 overwrite would (no
    /// delete marker: the key is written at once); anything else is a delete.
    pub(crate) fn replace_item(&mut self, old: &Item, now: i64) -> Result<bool> {
        if old.kind == Kind::File
            && let Some((b, prefix)) = self.versioned_bucket(old.owner, old.parent)?
        {
            let kept = self.retire_current(&b, &format!("{prefix}{}", old.name), old, now)?;
            if !kept {
                self.release_refs(&old.chunks)?;
                self.add_usage(old.owner, -(old.size as i128), 0)?;
            }
            self.add_usage(old.owner, 0, -1)?;
            self.add_below(old.parent, -(old.size as i128), -1)?;
            self.unlink(old)?;
            self.items.remove(old.id)?;
            crate::meta::grant_rows::forget_item(self.txn, old.id)?;
            return Ok(false);
        }
        self.delete_item(old, now)
    }

    /// Before `src` leaves its place by a MOVE: in a versioned bucket its keys get delete
    /// markers (the content goes with the item, which gets a new version id where it
    /// arrives), as S3 has no rename and a client sees a delete and a put.
    pub(crate) fn moving_out(&mut self, src: &Item, now: i64) -> Result<()> {
        let Some((b, prefix)) = self.versioned_bucket(src.owner, src.parent)? else { return Ok(()) };
        let files = if src.is_folder() {
            self.files_below(src.id, &format!("{prefix}{}/", src.name))?
        } else {
            vec![(format!("{prefix}{}", src.name), src.clone())]
        };
        for (key, f) in files {
            // The content leaves its key with no history row left there: a retained or held
            // version would be destroyed at its key (and its lock lost), so the MOVE is refused.
            if let Some((seq, _)) = self.current_tag(f.id)? {
                self.release_lock(b.id, seq, false)?;
            }
            self.txn.open_table(CURRENT_VERSIONS)?.remove(f.id)?;
            self.add_delete_marker(&b, &key, now)?;
        }
        Ok(())
    }

    /// After a file arrived at a place by a MOVE or COPY: in a versioned bucket it gets a
    /// version id. (Files inside a folder moved or copied in stay `null` versions.)
    pub(crate) fn arrived(&mut self, item: &Item) -> Result<()> {
        if item.kind == Kind::File
            && let Some((b, prefix)) = self.versioned_bucket(item.owner, item.parent)?
        {
            self.new_current(&b, &format!("{prefix}{}", item.name), item.id)?;
        }
        Ok(())
    }

    /// Removes a bucket's whole history and its versioning configuration (the folder is
    /// being deleted by its owner).
    /// Refused, naming the objects, while any of its versions is retained or held.
    pub(crate) fn drop_bucket_history(&mut self, owner: u64, bucket: u64) -> Result<()> {
        self.drop_bucket_history_with(owner, bucket, false)
    }

    /// [`Self::drop_bucket_history`]; `bypass` lets GOVERNANCE retention go (an admin's
    /// explicit choice when deleting a user).
    fn drop_bucket_history_with(&mut self, owner: u64, bucket: u64, bypass: bool) -> Result<()> {
        if self.txn.open_table(VERSIONING)?.get((owner, bucket))?.is_none() {
            return Ok(());
        }
        self.check_bucket_unlocked(bucket, bypass)?;
        self.txn.open_table(VERSIONING)?.remove((owner, bucket))?;
        let rows: Vec<(String, Version)> = {
            let t = self.txn.open_table(VERSIONS)?;
            let mut v = Vec::new();
            for e in t.range((bucket, "")..(bucket + 1, ""))? {
                let (k, val) = e?;
                let key = k.value().1.split('\0').next().unwrap_or_default().to_owned();
                v.push((key, db::decode(val.value())?));
            }
            v
        };
        for (key, v) in rows {
            self.remove_history(bucket, &key, &v)?;
        }
        Ok(())
    }

    /// Whether `folder` is a bucket with versioning configured.
    pub(crate) fn is_versioned_bucket(&self, folder: &Item) -> Result<bool> {
        Ok(self.txn.open_table(VERSIONING)?.get((folder.owner, folder.id))?.is_some())
    }

    /// Every history of a user who goes; refused while any version is under object lock
    /// (GOVERNANCE yields to `bypass`).
    pub(crate) fn drop_user_versions(&mut self, user: u64, bypass: bool) -> Result<()> {
        let buckets: Vec<u64> = {
            let t = self.txn.open_table(VERSIONING)?;
            let mut v = Vec::new();
            for e in t.range((user, 0)..(user + 1, 0))? {
                v.push(e?.0.value().1);
            }
            v
        };
        for b in buckets {
            self.drop_bucket_history_with(user, b, bypass)?;
        }
        Ok(())
    }
}
