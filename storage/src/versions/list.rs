//! ListObjectVersions: the tree walk of current versions (`tree::listing`) merged with one
//! range of VERSIONS. Both come in S3 key order, and a key's current version is newer than
//! any of its rows, so a merge by (key, current first, then row order) is the listing.

use std::cmp::Ordering;

use super::{Version, VersionInfo, Versioning, version_id};
use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, CURRENT_VERSIONS, ITEMS, VERSIONING, VERSIONS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Principal};
use crate::tree::listing::{ListQuery, walk_folder};

pub struct VersionQuery<'a> {
    pub prefix: &'a str,
    pub key_marker: Option<&'a str>,
    /// Only with `key_marker`: continue after this version of that key.
    pub version_marker: Option<&'a str>,
    pub delimiter: Option<&'a str>,
    pub max: usize,
}

#[derive(Debug, Default)]
pub struct VersionListing {
    /// Versions and delete markers, by key, newest first within a key.
    pub versions: Vec<VersionInfo>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_marker: Option<String>,
}

enum Entry {
    Current(String, Item),
    Row(String, Version),
    Prefix(String),
}

impl Entry {
    fn key(&self) -> &str {
        match self {
            Entry::Current(k, _) | Entry::Row(k, _) | Entry::Prefix(k) => k,
        }
    }

    /// Within a key: the current version, then rows newest first.
    fn rank(&self) -> u64 {
        match self {
            Entry::Current(..) | Entry::Prefix(_) => 0,
            Entry::Row(_, v) => u64::MAX - v.seq.min(u64::MAX - 1),
        }
    }
}

fn cmp(a: &Entry, b: &Entry) -> Ordering {
    a.key().cmp(b.key()).then(a.rank().cmp(&b.rank()))
}

/// Up to `max` rows of the bucket's history after the markers, rolled up as the query asks.
fn history_page(
    versions: &impl Readable<(u64, &'static str), &'static [u8]>,
    bucket: u64,
    q: &VersionQuery<'_>,
    max: usize,
) -> Result<(Vec<Entry>, bool)> {
    let mut start = match (q.key_marker, q.version_marker) {
        (Some(k), Some(v)) if v != "null" => match super::parse_id(v) {
            Ok(Some(seq)) => super::row_key(k, seq),
            _ => format!("{k}\u{1}"),
        },
        // The null version's place among a key's rows is not known from its id: start at
        // the key and skip up to the null row below.
        (Some(k), Some(_)) => format!("{k}\0"),
        (Some(k), None) => format!("{k}\u{1}"),
        (None, _) => String::new(),
    };
    if q.prefix > start.as_str() {
        start = q.prefix.to_owned();
    }
    // When the key's null version is its current one, every row of the key follows it.
    let mut skip_to_null = match (q.key_marker, q.version_marker) {
        (Some(k), Some("null")) => super::history::history_of(versions, bucket, k)?.iter().any(|v| v.null),
        _ => false,
    };
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    let mut out: Vec<Entry> = Vec::new();
    for e in versions.range((bucket, start.as_str())..(bucket + 1, ""))? {
        let (k, v) = e?;
        let full = k.value().1;
        let key = full.split('\0').next().unwrap_or_default();
        if q.key_marker.is_some_and(|m| m == key) && q.version_marker.is_some() {
            if full == start && q.version_marker != Some("null") {
                continue; // the marker itself
            }
            if skip_to_null {
                let row: Version = db::decode(v.value())?;
                skip_to_null = !row.null;
                continue;
            }
        }
        if !key.starts_with(q.prefix) {
            if key > q.prefix {
                break;
            }
            continue;
        }
        if let Some(d) = delimiter
            && let Some(pos) = key[q.prefix.len()..].find(d)
        {
            let cp = &key[..q.prefix.len() + pos + d.len()];
            let seen = out.last().is_some_and(|l| matches!(l, Entry::Prefix(p) if p == cp));
            if seen || q.key_marker.is_some_and(|m| m.starts_with(cp)) {
                continue;
            }
            if out.len() >= max {
                return Ok((out, true));
            }
            out.push(Entry::Prefix(cp.to_owned()));
            continue;
        }
        if out.len() >= max {
            return Ok((out, true));
        }
        out.push(Entry::Row(key.to_owned(), db::decode(v.value())?));
    }
    Ok((out, false))
}

impl Storage {
    /// S3 ListObjectVersions of the bucket (top-level folder) at `bucket`.
    pub async fn list_versions(&self, p: &Principal, bucket: &str, q: VersionQuery<'_>) -> Result<VersionListing> {
        let place = self.place(p, bucket).await?;
        if place.hides_names() {
            return Ok(VersionListing::default());
        }
        let prefix = q.prefix.to_owned();
        let key_marker = q.key_marker.map(str::to_owned);
        let version_marker = q.version_marker.map(str::to_owned).filter(|_| key_marker.is_some());
        let delimiter = q.delimiter.map(str::to_owned);
        let max = q.max;
        self.core
            .db
            .read(move |t| {
                let q = VersionQuery {
                    prefix: &prefix,
                    key_marker: key_marker.as_deref(),
                    version_marker: version_marker.as_deref(),
                    delimiter: delimiter.as_deref(),
                    max,
                };
                let (items, children) = (t.open_table(ITEMS)?, t.open_table(CHILDREN)?);
                let folder = crate::access::resolve_place(&items, &children, &place)?
                    .filter(Item::is_folder)
                    .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
                if max == 0 {
                    return Ok(VersionListing::default());
                }
                let state = t.open_table(VERSIONING)?.get((folder.owner, folder.id))?.map(|v| v.value());
                let state = state.map_or(Versioning::Unversioned, Versioning::from_row);
                // One more than a page from each side tells whether more follow.
                let lq =
                    ListQuery { prefix: q.prefix, start_after: q.key_marker, delimiter: q.delimiter, max: max + 1 };
                let tree = walk_folder(&items, &children, folder.id, &lq)?;
                let mut current: Vec<Entry> = tree.objects.into_iter().map(|(k, i)| Entry::Current(k, i)).collect();
                current.extend(tree.common_prefixes.into_iter().map(Entry::Prefix));
                current.sort_by(cmp);
                let (rows, rows_more) = if state == Versioning::Unversioned {
                    (Vec::new(), false)
                } else {
                    history_page(&t.open_table(VERSIONS)?, folder.id, &q, max + 1)?
                };
                let more = tree.truncated || rows_more;
                let tags = t.open_table(CURRENT_VERSIONS)?;
                let mut out = VersionListing::default();
                let (mut a, mut b) = (current.into_iter().peekable(), rows.into_iter().peekable());
                let mut last_key: Option<String> = None;
                let mut key_has_current = false;
                let mut emitted = 0usize;
                loop {
                    let take_a = match (a.peek(), b.peek()) {
                        (None, None) => break,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (Some(x), Some(y)) => cmp(x, y) != Ordering::Greater,
                    };
                    let e = if take_a { a.next() } else { b.next() }.expect("peeked");
                    if let Entry::Prefix(cp) = &e
                        && out.common_prefixes.last() == Some(cp)
                    {
                        continue; // both sides rolled the same prefix up
                    }
                    if emitted == max {
                        out.truncated = true;
                        break;
                    }
                    emitted += 1;
                    let first_of_key = last_key.as_deref() != Some(e.key());
                    if first_of_key {
                        key_has_current = false;
                        last_key = Some(e.key().to_owned());
                    }
                    match e {
                        Entry::Prefix(cp) => {
                            out.next_key_marker = Some(cp.clone());
                            out.next_version_marker = None;
                            out.common_prefixes.push(cp);
                        }
                        Entry::Current(key, item) => {
                            key_has_current = true;
                            let tag = tags.get(item.id)?.map(|v| (v.value().0, v.value().1 == 1));
                            let info = VersionInfo::of_current(&key, item, tag);
                            out.next_key_marker = Some(key);
                            out.next_version_marker = Some(info.id.clone());
                            out.versions.push(info);
                        }
                        Entry::Row(key, v) => {
                            // After a version marker the key's newest was on an earlier page.
                            let resumed = q.version_marker.is_some() && q.key_marker == Some(key.as_str());
                            let latest = first_of_key && !key_has_current && !resumed;
                            out.next_key_marker = Some(key.clone());
                            out.next_version_marker = Some(version_id(v.seq, v.null));
                            out.versions.push(VersionInfo::of_row(&key, &v, latest));
                        }
                    }
                }
                if !out.truncated && more {
                    out.truncated = true;
                }
                if !out.truncated {
                    out.next_key_marker = None;
                    out.next_version_marker = None;
                }
                Ok(out)
            })
            .await
    }
}
