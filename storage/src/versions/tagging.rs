//! The tags of one version (S3's Get/Put/DeleteObjectTagging with a versionId). The current
//! version's tags are its file's (`crate::tree::tagging`); a noncurrent version keeps the
//! set it had when it stopped being current (`crate::meta::tags::keep_version`), so a
//! tag-filtered lifecycle rule reaches it and GetObjectTagging of it answers them.

use super::ops::{Found, find, locate, no_version, not_versioned};
use crate::Storage;
use crate::access::resolve_place;
use crate::error::{Error, Result};
use crate::meta::db::{CHILDREN, CURRENT_VERSIONS, ITEMS, TAGS, VERSION_TAGS, VERSIONING, VERSIONS};
use crate::meta::kv::Readable;
use crate::meta::model::{Kind, Principal};
use crate::meta::tags;
use crate::tree::locks::LockGuard;
use crate::tree::tagging::check_object_tags;

/// How the refusal to tag a delete marker begins (S3 answers it 405 MethodNotAllowed).
pub const MARKER_TAGS: &str = "a delete marker has no tags";

/// Whose tags version `id` at a place are.
enum Owner {
    /// The file's: the version is current (or the bucket unversioned and `id` is `null`).
    Item(u64),
    /// A history row's: (bucket, seq).
    Version(u64, u64),
}

fn owner_of(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    versioning: &impl Readable<(u64, u64), u64>,
    versions: &impl Readable<(u64, &'static str), &'static [u8]>,
    current: &impl Readable<u64, (u64, u64)>,
    place: &crate::access::Place,
    id: &str,
) -> Result<Owner> {
    let Some((b, key)) = locate(items, children, versioning, place)? else {
        if id != "null" {
            return Err(not_versioned());
        }
        let item = resolve_place(items, children, place)?.filter(|i| i.kind == Kind::File).ok_or_else(no_version)?;
        return Ok(Owner::Item(item.id));
    };
    match find(items, children, versions, current, place, (&b, &key), id)? {
        Found::Current(item, _) => Ok(Owner::Item(item.id)),
        Found::Row(v, _) if v.marker => Err(Error::InvalidInput(MARKER_TAGS.into())),
        Found::Row(v, _) => Ok(Owner::Version(b.id, v.seq)),
    }
}

impl Storage {
    /// The tags of version `id` of the file at `path` (empty: none).
    pub async fn version_tags(&self, p: &Principal, path: &str, id: &str) -> Result<Vec<(String, String)>> {
        let place = self.place(p, path).await?;
        place.check_read(p)?;
        let id = id.to_owned();
        self.core
            .db
            .read(move |t| {
                let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
                let (versions, current) = (t.open_table(VERSIONS)?, t.open_table(CURRENT_VERSIONS)?);
                let versioning = t.open_table(VERSIONING)?;
                match owner_of(&items, &children, &versioning, &versions, &current, &place, &id)? {
                    Owner::Item(item) => tags::of_item(&t.open_table(TAGS)?, item),
                    Owner::Version(b, seq) => tags::of_version(&t.open_table(VERSION_TAGS)?, b, seq),
                }
            })
            .await
    }

    /// Replaces the tags of version `id` of the file at `path` (an empty set removes them):
    /// a change of the file's, so it needs write access as [`Storage::set_tags`] does.
    pub async fn set_version_tags(
        &self,
        p: &Principal,
        path: &str,
        id: &str,
        tags: Vec<(String, String)>,
    ) -> Result<()> {
        check_object_tags(&tags)?;
        let place = self.change_target(p, path).await?;
        self.core.extras.seen();
        let id = id.to_owned();
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let owner = {
                let (versions, current) = (w.txn.open_table(VERSIONS)?, w.txn.open_table(CURRENT_VERSIONS)?);
                let versioning = w.txn.open_table(VERSIONING)?;
                owner_of(&w.items, &w.children, &versioning, &versions, &current, place, &id)?
            };
            match owner {
                Owner::Item(item) => tags::set_item(w.txn, item, &tags),
                Owner::Version(b, seq) => tags::set_version(w.txn, b, seq, &tags),
            }
        })
        .await
    }
}
