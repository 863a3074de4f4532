//! S3 versioning of a top-level folder (a bucket), for every protocol.
//!
//! How history is kept, and why:
//! - The `items` tree keeps only the *current* version of each key, as it does without
//!   versioning: every read, listing and WebDAV/REST operation stays exactly as fast and
//!   as simple, and an unversioned bucket pays one range read per write (is any bucket of
//!   this owner versioned?) and nothing else.
//! - Noncurrent versions and delete markers are rows of VERSIONS keyed by (bucket folder id,
//!   `<key>\0<16 hex digits of !seq>`). Keyed by the *key*, not by an item, because S3 lists
//!   versions by key and a deleted key (no item any more) must keep its history findable;
//!   by the bucket's *id*, so renaming the bucket keeps it; `\0` (which no name holds) ends
//!   the key so the byte order of rows is the byte order of keys, and `!seq` puts a key's
//!   newest version first. A listing is then a merge of the tree walk (current versions) and
//!   one range of this table, both already in S3 order.
//! - `seq` comes from one counter (META `next_version_id`): unique for ever, never reused,
//!   so it is the stable id of a version that later tables (object lock retention, legal
//!   hold) can key on. The version id shown to clients is its 16 hex digits of `!seq`
//!   (opaque, sorting newest first), or `null`.
//! - A current file's version id is in CURRENT_VERSIONS (item id -> seq, null); a file
//!   without a row is the `null` version (written before versioning, or moved in inside a
//!   folder).
//! - A version made noncurrent takes the file's chunk list with it: the references move
//!   from the item to the row in the same transaction (no chunk is copied, no count
//!   changes), and its bytes stay in the owner's usage, so old versions count against
//!   the quota. Removing a row releases both.
//!
//! What the tree operations do in a bucket with versioning Enabled or Suspended (`history`):
//! an overwrite (S3 PUT, copy, multipart completion, WebDAV PUT, REST upload) keeps the old
//! content as a noncurrent version; a delete leaves a delete marker; a WebDAV MOVE is a
//! delete at the source (markers) and a new version at the destination; a folder DELETE
//! walks the folder and does the same for every file in it (constant time stays for
//! unversioned buckets only); deleting the bucket's folder itself over WebDAV/REST removes
//! its history with it, while S3's DeleteBucket refuses a bucket with any version left.

mod expire;
mod history;
mod list;
mod lock;
mod ops;
mod tagging;
pub use tagging::MARKER_TAGS;

use serde::{Deserialize, Serialize};

pub(crate) use expire::{KeyHistory, history_page};
pub use list::{VersionListing, VersionQuery};
pub(crate) use lock::lock_state_in;
pub use lock::{LockMode, LockPeriod, LockState, ObjectLock, REFUSAL as OBJECT_LOCK_REFUSAL, Retention, VersionLock};

use crate::meta::model::{ChunkRef, Item, Kind};

crate::meta::db::stored!(Version = "version");

/// A bucket's versioning state (S3 `PutBucketVersioning`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Never configured: writes replace, deletes remove.
    Unversioned,
    Enabled,
    /// Writes and deletes replace the `null` version; older versions stay.
    Suspended,
}

impl Versioning {
    fn from_row(v: u64) -> Versioning {
        match v {
            1 => Versioning::Enabled,
            _ => Versioning::Suspended,
        }
    }

    fn row(self) -> Option<u64> {
        match self {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(1),
            Versioning::Suspended => Some(2),
        }
    }
}

/// A noncurrent version or a delete marker: a row of VERSIONS.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Version {
    /// Its place in the order of versions, unique across the store (its stable id).
    pub seq: u64,
    /// The `null` version of its key.
    pub null: bool,
    /// A delete marker: no content.
    pub marker: bool,
    /// Whose usage its bytes count in.
    pub owner: u64,
    /// The file's id when it was current (0 for a marker).
    pub item: u64,
    /// Last modified (Unix nanoseconds): the file's, or when the marker was made.
    pub modified: i64,
    /// When it stopped being current (Unix nanoseconds): what noncurrent expiry counts from.
    pub retired: i64,
    pub size: u64,
    pub etag: String,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    pub chunks: Vec<ChunkRef>,
    pub parts: Vec<u64>,
}

impl Version {
    fn of_item(seq: u64, null: bool, item: &Item, now: i64) -> Version {
        Version {
            seq,
            null,
            marker: false,
            owner: item.owner,
            item: item.id,
            modified: item.modified,
            retired: now,
            size: item.size,
            etag: item.etag.clone(),
            content_type: item.content_type.clone(),
            headers: item.headers.clone(),
            user_meta: item.user_meta.clone(),
            chunks: item.chunks.clone(),
            parts: item.parts.clone(),
        }
    }

    fn marker(seq: u64, null: bool, owner: u64, now: i64) -> Version {
        Version {
            seq,
            null,
            marker: true,
            owner,
            item: 0,
            modified: now,
            retired: now,
            size: 0,
            etag: String::new(),
            content_type: None,
            headers: Vec::new(),
            user_meta: Vec::new(),
            chunks: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// The version as a file item named after its key's last name (id 0: it is in no tree).
    fn as_item(&self, key: &str) -> Item {
        let name = key.rsplit('/').next().unwrap_or(key);
        let mut item = Item::file(0, self.owner, 0, name, self.modified);
        item.kind = Kind::File;
        item.size = self.size;
        item.etag = self.etag.clone();
        item.content_type = self.content_type.clone();
        item.headers = self.headers.clone();
        item.user_meta = self.user_meta.clone();
        item.chunks = self.chunks.clone();
        item.parts = self.parts.clone();
        item
    }
}

/// The id a client sees: `null`, or 16 hex digits that sort newest first.
pub fn version_id(seq: u64, null: bool) -> String {
    if null { "null".to_owned() } else { format!("{:016x}", !seq) }
}

/// A client's version id: `None` for `null`, else the seq (an unknown form is no version).
fn parse_id(id: &str) -> crate::Result<Option<u64>> {
    if id == "null" {
        return Ok(None);
    }
    if id.len() == 16
        && let Ok(v) = u64::from_str_radix(id, 16)
    {
        return Ok(Some(!v));
    }
    Err(crate::Error::missing(crate::What::Version, "the version does not exist"))
}

/// The VERSIONS key of version `seq` of `key`.
fn row_key(key: &str, seq: u64) -> String {
    format!("{key}\0{:016x}", !seq)
}

/// One version of a key, as the front ends show it.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    pub key: String,
    /// `null` or the opaque id.
    pub id: String,
    /// The stable internal id (see the module's documentation).
    pub seq: Option<u64>,
    pub latest: bool,
    pub marker: bool,
    /// The content's metadata as a file (for a marker: size 0, no chunks; `modified` is when
    /// it was made). `id` is the current file's id, 0 for a noncurrent version.
    pub item: Item,
}

impl VersionInfo {
    fn of_row(key: &str, v: &Version, latest: bool) -> VersionInfo {
        VersionInfo {
            key: key.to_owned(),
            id: version_id(v.seq, v.null),
            seq: Some(v.seq),
            latest,
            marker: v.marker,
            item: v.as_item(key),
        }
    }

    fn of_current(key: &str, item: Item, tag: Option<(u64, bool)>) -> VersionInfo {
        VersionInfo {
            key: key.to_owned(),
            id: tag.map_or_else(|| "null".to_owned(), |(s, n)| version_id(s, n)),
            seq: tag.map(|t| t.0),
            latest: true,
            marker: false,
            item,
        }
    }
}

/// The version id of the current file `item`, when it has one, in a read.
pub(crate) fn version_of(t: &crate::meta::db::ReadTxn, item: u64) -> crate::Result<Option<String>> {
    use crate::meta::kv::Readable;
    let row = t.open_table(crate::meta::db::CURRENT_VERSIONS)?.get(item)?.map(|v| v.value());
    Ok(row.map(|(seq, null)| version_id(seq, null == 1)))
}
