//! Listing a folder's subtree as S3 keys: by prefix, in byte order, after a start key, with an
//! optional delimiter rolling keys up into common prefixes, a page at a time.
//!
//! The CHILDREN table sorts a folder as `name/`, so a depth-first walk in table order visits
//! keys in exactly their byte order, and whole subtrees before the start key or outside the
//! prefix are skipped without being read.

use crate::meta::kv::Readable;

use crate::Storage;
use crate::access::{self, Access};
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
use crate::meta::model::{Item, Principal, child_key};
use crate::meta::txn;

#[derive(Debug, Default)]
pub struct KeyListing {
    /// Files (and empty folders, as `name/`) with their keys relative to the listed folder.
    pub objects: Vec<(String, Item)>,
    pub common_prefixes: Vec<String>,
    /// More keys follow; continue after `next_after`.
    pub truncated: bool,
    pub next_after: Option<String>,
}

pub struct ListQuery<'a> {
    pub prefix: &'a str,
    pub start_after: Option<&'a str>,
    /// None or empty: no roll-up.
    pub delimiter: Option<&'a str>,
    pub max: usize,
}

struct Walk<'a> {
    q: &'a ListQuery<'a>,
    out: KeyListing,
}

impl Walk<'_> {
    fn after_start(&self, key: &str) -> bool {
        self.q.start_after.is_none_or(|s| key > s)
    }

    fn full(&self) -> bool {
        self.out.objects.len() + self.out.common_prefixes.len() >= self.q.max
    }

    /// Records a key; false when the page is full (the walk stops, truncated).
    fn emit(&mut self, key: &str, item: &Item) -> bool {
        if !key.starts_with(self.q.prefix) || !self.after_start(key) {
            return true;
        }
        if let Some(d) = self.q.delimiter.filter(|d| !d.is_empty())
            && let Some(pos) = key[self.q.prefix.len()..].find(d)
        {
            let cp = &key[..self.q.prefix.len() + pos + d.len()];
            if self.out.common_prefixes.last().is_some_and(|l| l == cp) || !self.after_start(cp) {
                return true;
            }
            if self.q.start_after.is_some_and(|s| s.starts_with(cp)) {
                return true;
            }
            if self.full() {
                self.out.truncated = true;
                return false;
            }
            self.out.common_prefixes.push(cp.to_owned());
            self.out.next_after = Some(cp.to_owned());
            return true;
        }
        if self.full() {
            self.out.truncated = true;
            return false;
        }
        self.out.objects.push((key.to_owned(), item.clone()));
        self.out.next_after = Some(key.to_owned());
        true
    }

    /// Whether any key under folder key `base` (ending in `/`) can be listed.
    fn may_hold(&self, base: &str) -> bool {
        let p = self.q.prefix;
        let overlaps = base.starts_with(p) || p.starts_with(base);
        let before_start = self.q.start_after.is_some_and(|s| base < s && !s.starts_with(base));
        overlaps && !before_start
    }

    /// Visits one entry under `key`: a file is emitted; a folder is rolled up, emitted when
    /// empty, or walked. False when the page is full.
    fn visit(
        &mut self,
        items: &impl Readable<u64, &'static [u8]>,
        children: &impl Readable<(u64, &'static str), u64>,
        key: &str,
        item: &Item,
    ) -> Result<bool> {
        if !item.is_folder() {
            return Ok(self.emit(key, item));
        }
        if !self.may_hold(key) {
            return Ok(true);
        }
        // A folder wholly inside one common prefix is rolled up without a walk.
        let rolled = self.q.delimiter.filter(|d| !d.is_empty()).is_some_and(|d| {
            key.len() > self.q.prefix.len()
                && key.starts_with(self.q.prefix)
                && key[self.q.prefix.len()..]
                    .find(d)
                    .is_some_and(|pos| self.q.prefix.len() + pos + d.len() <= key.len())
        });
        let empty = children.range((item.id, "")..(item.id + 1, ""))?.next().is_none();
        if rolled || empty {
            return Ok(self.emit(key, item));
        }
        self.walk(items, children, item.id, key)
    }

    fn walk(
        &mut self,
        items: &impl Readable<u64, &'static [u8]>,
        children: &impl Readable<(u64, &'static str), u64>,
        folder: u64,
        base: &str,
    ) -> Result<bool> {
        // Start at the first child that can matter: the prefix's or the start key's next
        // name below `base`, whichever is later.
        let first_name = |key: &str| -> String {
            key.strip_prefix(base)
                .map(|rest| rest.split_inclusive('/').next().unwrap_or("").to_owned())
                .unwrap_or_default()
        };
        let mut lower = if self.q.prefix.len() > base.len() { first_name(self.q.prefix) } else { String::new() };
        if let Some(s) = self.q.start_after {
            let from_start = first_name(s);
            if from_start > lower {
                lower = from_start;
            }
        }
        // A name that is a prefix of a folder name sorts before it (`ab` < `ab/`): start
        // at the name without its slash.
        let lower = lower.trim_end_matches('/').to_owned();
        for entry in txn::children_from(items, children, folder, &lower)? {
            let child = entry?;
            let key = format!("{base}{}", child.key());
            if key.as_str() > self.q.prefix
                && !key.starts_with(self.q.prefix)
                && !self.q.prefix.starts_with(key.as_str())
            {
                break; // past every key with the prefix
            }
            let item = child.item()?;
            if !self.visit(items, children, &key, &item)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The key listing of folder `folder`'s subtree, in a read the caller holds (the version
/// listing merges it with the bucket's history: `crate::versions`).
pub(crate) fn walk_folder(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    folder: u64,
    q: &ListQuery<'_>,
) -> Result<KeyListing> {
    let mut w = Walk { q, out: KeyListing::default() };
    if q.max > 0 {
        w.walk(items, children, folder, "")?;
    }
    Ok(w.out)
}

impl Storage {
    /// Lists the subtree of the folder at `folder` as keys (see [`KeyListing`]). Under
    /// `/shared`, keys are `<owner>/<name>/…` over what others share with the caller.
    pub async fn list_keys(&self, p: &Principal, folder: &str, q: ListQuery<'_>) -> Result<KeyListing> {
        let place = match self.place(p, folder).await {
            // Another owner's bucket of which only prefixes are shared: a listing inside one.
            Err(Error::Forbidden(m)) if matches!(p.scope, crate::Scope::S3Bucket(_)) => {
                return Box::pin(self.list_in_granted_prefix(p, folder, q, m)).await;
            }
            r => r?,
        };
        if place.hides_names() {
            return Ok(KeyListing::default());
        }
        let user = p.user_id;
        let prefix = q.prefix.to_owned();
        let start_after = q.start_after.map(str::to_owned);
        let delimiter = q.delimiter.map(str::to_owned);
        let max = q.max;
        self.core
            .db
            .read(move |t| {
                let items = t.open_table(ITEMS)?;
                let children = t.open_table(CHILDREN)?;
                let q = ListQuery {
                    prefix: &prefix,
                    start_after: start_after.as_deref(),
                    delimiter: delimiter.as_deref(),
                    max,
                };
                let mut w = Walk { q: &q, out: KeyListing::default() };
                if max == 0 {
                    return Ok(w.out);
                }
                let top: Vec<(String, Item)> = match &place.access {
                    Access::SharedRoot | Access::SharedOwner { .. } => {
                        let only = match &place.access {
                            Access::SharedOwner { name } => Some(name.clone()),
                            _ => None,
                        };
                        let mut v: Vec<(String, Item)> = access::grants_to(t, user)?
                            .top
                            .into_iter()
                            .filter(|g| only.as_ref().is_none_or(|o| o == &g.owner_name))
                            .map(|g| {
                                let name = child_key(&g.shown_as, g.item.kind);
                                let key = if only.is_some() { name } else { format!("{}/{name}", g.owner_name) };
                                (key, g.item)
                            })
                            .collect();
                        v.sort_by(|a, b| a.0.cmp(&b.0));
                        v
                    }
                    _ => {
                        let f =
                            txn::resolve_folder(&items, &children, place.base, &place.rel).map_err(|e| match e {
                                Error::ParentMissing(_) => {
                                    Error::missing(What::Item, format!("{} not found", place.path))
                                }
                                e => e,
                            })?;
                        w.walk(&items, &children, f.id, "")?;
                        return Ok(w.out);
                    }
                };
                for (key, item) in &top {
                    if !w.visit(&items, &children, key, item)? {
                        break;
                    }
                }
                Ok(w.out)
            })
            .await
    }
}
