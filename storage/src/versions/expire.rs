//! What the lifecycle pass (`crate::lifecycle`) needs of a bucket's history: its keys page
//! by page, each with all its rows and its current file, and the removal of chosen rows for
//! good. Which rows go is the lifecycle rules' decision, not made here.

use std::collections::HashMap;

use super::Version;
use super::history::history_of;
use crate::error::Result;
use crate::meta::db::{self, CHILDREN, ITEMS, VERSION_TAGS, VERSIONS};
use crate::meta::kv::{ReadTxn, Readable};
use crate::meta::model::{Item, Kind};
use crate::meta::names::DrivePath;
use crate::meta::txn::{self, W};

/// One key of a versioned bucket: its history rows, newest first, and its current file.
pub(crate) struct KeyHistory {
    pub key: String,
    pub rows: Vec<Version>,
    pub current: Option<Item>,
    /// The tags the rows kept (by seq; a row without tags has no entry), for tag-filtered
    /// rules; read only when asked for (a read per row).
    pub tags: HashMap<u64, Vec<(String, String)>>,
}

impl KeyHistory {
    /// The tags row `seq` kept (empty: none).
    pub(crate) fn tags_of(&self, seq: u64) -> &[(String, String)] {
        self.tags.get(&seq).map_or(&[], Vec::as_slice)
    }
}

/// The tags of `rows` of bucket `bucket`, for [`KeyHistory::tags`].
fn tags_of_rows(
    t: &impl Readable<(u64, u64), &'static [u8]>,
    bucket: u64,
    rows: &[Version],
) -> Result<HashMap<u64, Vec<(String, String)>>> {
    let mut out = HashMap::new();
    for v in rows.iter().filter(|v| !v.marker) {
        let tags = crate::meta::tags::of_version(t, bucket, v.seq)?;
        if !tags.is_empty() {
            out.insert(v.seq, tags);
        }
    }
    Ok(out)
}

/// The current file at `key` (below the bucket folder `bucket`), if one is there.
fn current_file(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    bucket: u64,
    key: &str,
) -> Result<Option<Item>> {
    let path = DrivePath::from_names(key.split('/').map(str::to_owned).collect())?;
    Ok(txn::resolve(items, children, bucket, &path)?.filter(|i| i.kind == Kind::File))
}

/// The keys of bucket `bucket` with history that `wants` names, from the row key `from` on
/// (inclusive), each whole: reading stops at the first key boundary after `budget` rows (so
/// one key with more rows than that is still read whole, as every versions operation reads
/// a key). Rows of keys not wanted count in the budget but are not decoded, nor their
/// current file looked for. Returns where the next page starts, `None` at the end.
pub(crate) fn history_page(
    t: &ReadTxn,
    bucket: u64,
    from: &str,
    budget: usize,
    wants: &dyn Fn(&str) -> bool,
    tags: bool,
) -> Result<(Vec<KeyHistory>, Option<String>)> {
    let finish = |keys| if tags { with_tags(t, bucket, keys) } else { Ok(keys) };
    let (items, children, versions) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?, t.open_table(VERSIONS)?);
    let mut out: Vec<KeyHistory> = Vec::new();
    let (mut last, mut wanted) = (None::<String>, false);
    for (read, e) in versions.range((bucket, from)..(bucket + 1, ""))?.enumerate() {
        let (k, v) = e?;
        let row_key = k.value().1;
        let key = row_key.split('\0').next().unwrap_or_default();
        if last.as_deref() != Some(key) {
            if read >= budget {
                return Ok((finish(out)?, Some(key.to_owned())));
            }
            last = Some(key.to_owned());
            wanted = wants(key);
            if wanted {
                let current = current_file(&items, &children, bucket, key)?;
                out.push(KeyHistory { key: key.to_owned(), rows: Vec::new(), current, tags: HashMap::new() });
            }
        }
        if wanted && let Some(h) = out.last_mut() {
            h.rows.push(db::decode(v.value())?);
        }
    }
    Ok((finish(out)?, None))
}

/// `keys` with the tags their rows kept.
fn with_tags(t: &ReadTxn, bucket: u64, mut keys: Vec<KeyHistory>) -> Result<Vec<KeyHistory>> {
    let version_tags = t.open_table(VERSION_TAGS)?;
    for h in &mut keys {
        h.tags = tags_of_rows(&version_tags, bucket, &h.rows)?;
    }
    Ok(keys)
}

impl W<'_> {
    /// [`KeyHistory`] of `key` in the bucket folder `bucket`, inside a change (with its
    /// rows' tags when `tags`).
    pub(crate) fn key_history(&self, bucket: u64, key: &str, tags: bool) -> Result<KeyHistory> {
        let rows = history_of(&self.txn.open_table(VERSIONS)?, bucket, key)?;
        let current = current_file(&self.items, &self.children, bucket, key)?;
        let tags =
            if tags { tags_of_rows(&self.txn.open_table(VERSION_TAGS)?, bucket, &rows)? } else { HashMap::new() };
        Ok(KeyHistory { key: key.to_owned(), rows, current, tags })
    }

    /// Removes the rows of `h` whose seq is in `seqs` for good (references and bytes
    /// released, [`W::remove_history`]). Only noncurrent rows and a lone delete marker are
    /// ever asked for, so no version becomes current. A version under retention or a legal
    /// hold is skipped, not refused: lifecycle never destroys what object lock keeps (as on
    /// S3), and one locked version must not stop the rest of the page. Returns how many went.
    pub(crate) fn remove_versions(&mut self, bucket: u64, h: &KeyHistory, seqs: &[u64]) -> Result<usize> {
        let mut n = 0;
        for v in h.rows.iter().filter(|v| seqs.contains(&v.seq)) {
            if self.version_locked(bucket, v.seq)? {
                continue;
            }
            self.remove_history(bucket, &h.key, v)?;
            n += 1;
        }
        Ok(n)
    }
}
