//! S3 tags on files and folders (objects, and buckets as their top folders): S3's limits,
//! and who may read and change them. The tags are keyed by item id (`meta::tags`), so they
//! stay through a rename or move, go with the item, and are copied by a copy; an S3 write
//! replaces them (`WriteOptions::tags`), a WebDAV or REST overwrite keeps them.
//!
//! Changing tags is a change of the item: it needs write access (a read-only grantee cannot
//! tag) and is bound by locks, as any other change through `commit_at`.

use super::locks::LockGuard;
use crate::Storage;
use crate::access::{Access, resolve_place};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS, TAGS};
use crate::meta::model::Principal;
use crate::meta::tags;

/// S3's limits: tags per object and per bucket, and the length of a key and a value in
/// UTF-16 code units (S3 counts as Java strings do).
pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;

/// Which limits a set of tags is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagTarget {
    Object,
    Bucket,
}

/// Checks an object's tags against S3's rules. Refusals are `InvalidInput`, which S3 calls
/// InvalidTag on the calls that set tags.
pub fn check_object_tags(tags: &[(String, String)]) -> Result<()> {
    check_tags(tags, TagTarget::Object)
}

pub fn check_tags(tags: &[(String, String)], target: TagTarget) -> Result<()> {
    let (max, what) = match target {
        TagTarget::Object => (MAX_OBJECT_TAGS, "an object"),
        TagTarget::Bucket => (MAX_BUCKET_TAGS, "a bucket"),
    };
    if tags.len() > max {
        return Err(Error::InvalidInput(format!("{what} has at most {max} tags; {} were given", tags.len())));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        let key_len = k.encode_utf16().count();
        if key_len == 0 || key_len > MAX_TAG_KEY {
            return Err(Error::InvalidInput(format!("a tag key has 1 to {MAX_TAG_KEY} characters; one has {key_len}")));
        }
        if v.encode_utf16().count() > MAX_TAG_VALUE {
            return Err(Error::InvalidInput(format!("a tag value has at most {MAX_TAG_VALUE} characters")));
        }
        // The `aws:` prefix is AWS's own, never a user's.
        if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(Error::InvalidInput("tag keys starting with aws: are reserved".into()));
        }
        if !seen.insert(k.as_str()) {
            return Err(Error::InvalidInput(format!("the tag key {k:?} is given twice")));
        }
    }
    Ok(())
}

impl Storage {
    /// The tags of the file or folder at `path` (empty: none). Reading them needs what a
    /// stat needs: tags are metadata, not content.
    pub async fn tags(&self, p: &Principal, path: &str) -> Result<Vec<(String, String)>> {
        let place = self.place(p, path).await?;
        if place.is_virtual() || (place.access == Access::Own && place.path.is_shared_root()) {
            return Ok(Vec::new());
        }
        if place.hides_names() && !place.rel.is_root() {
            return Err(Error::missing(What::Item, format!("{} not found", place.path)));
        }
        self.core
            .db
            .read(move |t| {
                let item = resolve_place(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, &place)?
                    .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
                tags::of_item(&t.open_table(TAGS)?, item.id)
            })
            .await
    }

    /// The checksum (header name, base64 value) each part of a multipart object was sent
    /// with, in part order (S3's GetObjectAttributes); empty when none is known. For front
    /// ends that already read the item through a call that checked the caller's access.
    pub async fn part_checksums(&self, item: &crate::Item) -> Result<Vec<Option<(String, String)>>> {
        if item.parts.is_empty() {
            return Ok(Vec::new());
        }
        let (id, etag) = (item.id, item.etag.clone());
        self.core.db.read(move |t| tags::part_sums(&t.open_table(crate::meta::db::PART_SUMS)?, id, &etag)).await
    }

    /// Replaces the tags of the file or folder at `path` (an empty set removes them), held to
    /// the limits of `target`; a bucket's tags are its folder's.
    pub async fn set_tags(
        &self,
        p: &Principal,
        path: &str,
        tags: Vec<(String, String)>,
        target: TagTarget,
    ) -> Result<()> {
        check_tags(&tags, target)?;
        let place = self.change_target(p, path).await?;
        // Clearing tags adds none for the lifecycle runner to look for.
        if !tags.is_empty() {
            self.core.extras.seen();
        }
        if place.is_virtual() {
            return Err(Error::Forbidden(format!("{} cannot be tagged", place.path)));
        }
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let item = w
                .resolve(place.base, &place.rel)?
                .ok_or_else(|| Error::missing(What::Item, format!("{} not found", place.path)))?;
            if target == TagTarget::Bucket && !item.is_folder() {
                return Err(Error::missing(What::Folder, format!("{} is not a folder", place.path)));
            }
            tags::set_item(w.txn, item.id, &tags)
        })
        .await
    }
}

#[cfg(test)]
#[path = "tagging_tests.rs"]
mod tests;
