//! The rows S3 keeps by item: tags, and the removal of a bucket's lifecycle row. Tags are
//! an item's (an object's, or a bucket's folder's) and a multipart upload's, each a `TagSet`
//! record. Bookkeeping below the rules: the limits and who may tag
//! are in `tree::tagging`. A set is stored only when it has a tag, so "no row" and "no tags"
//! are one state and a removed item leaves nothing behind.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::meta::db::{self, TAGS, UPLOAD_TAGS};
use crate::meta::kv::{Readable, Table, WriteTxn};

/// Tags sorted by key, the order S3 answers them in whatever order they were sent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet(pub Vec<(String, String)>);
crate::meta::db::stored!(TagSet = "tag set");

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

/// Called wherever an item row is removed: its tags go with it.
pub(crate) fn forget_item(txn: &WriteTxn, id: u64) -> Result<()> {
    txn.open_table(TAGS)?.remove(id)?;
    Ok(())
}

/// A copy of an item takes the source's tags (S3's default COPY directive; WebDAV and REST
/// copies alike).
pub(crate) fn copy_item(txn: &WriteTxn, from: u64, to: u64) -> Result<()> {
    let tags = read(&txn.open_table(TAGS)?, from)?;
    write(txn, TAGS, to, &tags)
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
