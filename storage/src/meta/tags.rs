//! The rows S3 keeps by item: tags, the checksums of a multipart object's parts, and the
//! removal of a bucket's lifecycle row. Tags are an item's (an object's, or a bucket's
//! folder's), a noncurrent version's (keyed like its lock, by bucket and version seq: the
//! current object's set is copied there when it becomes noncurrent) and a multipart
//! upload's, each a `TagSet` record. Bookkeeping below the rules: the limits and who may tag
//! are in `tree::tagging`. A set is stored only when it has a tag, so "no row" and "no tags"
//! are one state and a removed item leaves nothing behind.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::meta::db::{self, PART_SUMS, TAGS, UPLOAD_TAGS, VERSION_TAGS};
use crate::meta::kv::{Readable, Table, WriteTxn};

/// Tags sorted by key, the order S3 answers them in whatever order they were sent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet(pub Vec<(String, String)>);
/// The checksum (header name, base64 value) each part of a multipart object was sent with,
/// in part order, and the ETag of the object they were completed into. The row is not
/// removed when a later write replaces the content (that would take a step in every write):
/// a row whose ETag is not the item's describes content that is gone and is not read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PartSums {
    pub etag: String,
    pub sums: Vec<Option<(String, String)>>,
}
crate::meta::db::stored!(TagSet = "tag set", PartSums = "part checksums");

fn read(table: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<Vec<(String, String)>> {
    match table.get(id)? {
        Some(v) => Ok(db::decode::<TagSet>(v.value())?.0),
        None => Ok(Vec::new()),
    }
}

fn write(txn: &WriteTxn, table: Table<u64, &'static [u8]>, id: u64, tags: &[(String, String)]) -> Result<()> {
    let mut t = txn.open_table(table)?;
    if tags.is_empty() {
        t.remove(id)?;
    } else {
        let mut sorted = tags.to_vec();
        sorted.sort();
        t.insert(id, db::encode(&TagSet(sorted)).as_slice())?;
    }
    Ok(())
}

/// An item's tags (empty: none).
pub(crate) fn of_item(t: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<Vec<(String, String)>> {
    read(t, id)
}

/// Replaces an item's tags; an empty set removes them.
pub(crate) fn set_item(txn: &WriteTxn, id: u64, tags: &[(String, String)]) -> Result<()> {
    write(txn, TAGS, id, tags)
}

/// Called wherever an item row is removed: its tags and part checksums go with it.
pub(crate) fn forget_item(txn: &WriteTxn, id: u64) -> Result<()> {
    txn.open_table(TAGS)?.remove(id)?;
    txn.open_table(PART_SUMS)?.remove(id)?;
    Ok(())
}

/// A copy of an item takes the source's tags (S3's default COPY directive; WebDAV and REST
/// copies alike), and its part checksums, since it shares the content.
pub(crate) fn copy_item(txn: &WriteTxn, from: u64, to: u64) -> Result<()> {
    let tags = read(&txn.open_table(TAGS)?, from)?;
    write(txn, TAGS, to, &tags)?;
    let mut sums = txn.open_table(PART_SUMS)?;
    let row = sums.get(from)?.map(|v| v.value().to_vec());
    match row {
        Some(v) => sums.insert(to, v.as_slice())?,
        None => {
            sums.remove(to)?;
        }
    }
    Ok(())
}

/// The file `item` becomes the noncurrent version `seq` of bucket `bucket`: the version keeps
/// the tags it had (the item's row stays: a WebDAV or REST overwrite keeps them on the file).
pub(crate) fn keep_version(txn: &WriteTxn, item: u64, bucket: u64, seq: u64) -> Result<()> {
    // `seq` is new to history or was the current version's, so it has no row yet: only a
    // set to copy is written (one read more per overwrite in a versioned bucket, no more).
    let row = txn.open_table(TAGS)?.get(item)?.map(|v| v.value().to_vec());
    if let Some(v) = row {
        txn.open_table(VERSION_TAGS)?.insert((bucket, seq), v.as_slice())?;
    }
    Ok(())
}

/// A noncurrent version's tags (empty: none).
pub(crate) fn of_version(
    t: &impl Readable<(u64, u64), &'static [u8]>,
    bucket: u64,
    seq: u64,
) -> Result<Vec<(String, String)>> {
    match t.get((bucket, seq))? {
        Some(v) => Ok(db::decode::<TagSet>(v.value())?.0),
        None => Ok(Vec::new()),
    }
}

/// Replaces a noncurrent version's tags; an empty set removes them.
pub(crate) fn set_version(txn: &WriteTxn, bucket: u64, seq: u64, tags: &[(String, String)]) -> Result<()> {
    let mut t = txn.open_table(VERSION_TAGS)?;
    if tags.is_empty() {
        t.remove((bucket, seq))?;
    } else {
        let mut sorted = tags.to_vec();
        sorted.sort();
        t.insert((bucket, seq), db::encode(&TagSet(sorted)).as_slice())?;
    }
    Ok(())
}

/// A noncurrent version leaves history (destroyed, or current again): its tags go, and are
/// returned for a version that becomes current to take.
pub(crate) fn take_version(txn: &WriteTxn, bucket: u64, seq: u64) -> Result<Vec<(String, String)>> {
    let tags = of_version(&txn.open_table(VERSION_TAGS)?, bucket, seq)?;
    txn.open_table(VERSION_TAGS)?.remove((bucket, seq))?;
    Ok(tags)
}

/// Records the checksums of the parts an object was just completed from (none: no row).
pub(crate) fn set_part_sums(txn: &WriteTxn, id: u64, etag: &str, sums: Vec<Option<(String, String)>>) -> Result<()> {
    let mut t = txn.open_table(PART_SUMS)?;
    if sums.iter().all(Option::is_none) {
        t.remove(id)?;
    } else {
        t.insert(id, db::encode(&PartSums { etag: etag.to_owned(), sums }).as_slice())?;
    }
    Ok(())
}

/// The checksums of the parts of an item's current content (empty: none known).
pub(crate) fn part_sums(
    t: &impl Readable<u64, &'static [u8]>,
    id: u64,
    etag: &str,
) -> Result<Vec<Option<(String, String)>>> {
    match t.get(id)? {
        Some(v) => {
            let row: PartSums = db::decode(v.value())?;
            Ok(if row.etag == etag { row.sums } else { Vec::new() })
        }
        None => Ok(Vec::new()),
    }
}

/// The tags an upload's object gets when it completes.
pub(crate) fn of_upload(txn: &WriteTxn, id: u64) -> Result<Vec<(String, String)>> {
    read(&txn.open_table(UPLOAD_TAGS)?, id)
}

pub(crate) fn set_upload(txn: &WriteTxn, id: u64, tags: &[(String, String)]) -> Result<()> {
    write(txn, UPLOAD_TAGS, id, tags)
}

/// Called wherever an upload's row is removed (completion, abort, expiry, its user going).
pub(crate) fn forget_upload(txn: &WriteTxn, id: u64) -> Result<()> {
    txn.open_table(UPLOAD_TAGS)?.remove(id)?;
    Ok(())
}

/// Called wherever a folder's row is removed: a bucket's lifecycle rules (`crate::lifecycle`)
/// go with its folder. Kept here, beside the tags, so that removing rows needs no rule.
pub(crate) fn forget_lifecycle(txn: &WriteTxn, folder: u64) -> Result<()> {
    txn.open_table(crate::meta::db::LIFECYCLE)?.remove(folder)?;
    Ok(())
}
