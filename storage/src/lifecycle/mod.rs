//! S3 bucket lifecycle: the rules a bucket (a top folder) keeps, checked here as S3 checks
//! them, and the background task that applies them (`run`).
//!
//! The rules are one `Lifecycle` record per bucket, keyed by the folder's id (table
//! LIFECYCLE), so they follow a renamed bucket and go with a deleted one
//! (`meta::tags::forget_lifecycle`). Setting them is a change of the bucket's folder: it
//! needs write access to it, as any change does.

mod history;
#[cfg(test)]
mod history_tests;
mod run;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, LIFECYCLE};
use crate::meta::kv::Readable;
use crate::meta::model::Principal;
use crate::tree::locks::LockGuard;
use crate::tree::tagging::{TagTarget, check_tags};

pub use run::RunReport;
pub(crate) use run::start;

/// S3's limits on a configuration.
pub const MAX_RULES: usize = 1000;
pub const MAX_ID_LEN: usize = 255;

/// A bucket's lifecycle configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    pub rules: Vec<Rule>,
}
crate::meta::db::stored!(Lifecycle = "lifecycle configuration");

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Unique in the configuration; one is made up when the client gives none (as S3 does).
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    /// AbortIncompleteMultipartUpload: uploads begun this many days ago are aborted.
    pub abort_upload_days: Option<u32>,
    /// NoncurrentVersionExpiration, applied to a versioned bucket's history (`history`).
    pub noncurrent: Option<NoncurrentExpiration>,
}

/// Which form the client wrote the filter in, so that it is answered back alike.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterForm {
    /// The rule's own `<Prefix>`, the form before `<Filter>` existed.
    RulePrefix,
    /// An empty `<Filter/>` (or none at all): every object.
    #[default]
    Empty,
    Prefix,
    Tag,
    SizeGreater,
    SizeLess,
    And,
}

/// What a rule applies to: every part that is set must match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub form: FilterForm,
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater: Option<u64>,
    pub size_less: Option<u64>,
}

impl Filter {
    /// Whether an object with this key (below the bucket), size and tags is one the rule
    /// applies to.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.size_greater.is_none_or(|g| size > g)
            && self.size_less.is_none_or(|l| size < l)
            && self.tags.iter().all(|t| tags.contains(t))
    }
}

/// When current objects expire: exactly one of the three is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Expiration {
    pub days: Option<u32>,
    /// Unix seconds (S3 asks for a midnight UTC).
    pub date: Option<i64>,
    /// A versioned bucket's delete marker left as its key's only version is removed.
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct NoncurrentExpiration {
    pub days: Option<u32>,
    pub newer_versions: Option<u32>,
}

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// When an object last modified at `modified` (Unix nanoseconds) is due under a rule of
/// `days` days, a day lasting `day`. As S3: the days are added, then the time is rounded up
/// to the next midnight UTC, so every object of one day expires at once. With a day made
/// shorter for tests (`--lifecycle-day-seconds`) nothing is rounded, as in RGW's debug mode.
pub fn due_after_days(modified: i64, days: u32, day: std::time::Duration) -> i64 {
    let at = modified.saturating_add((day * days).as_nanos().min(i64::MAX as u128) as i64);
    if day.as_secs() == 86_400 && day.subsec_nanos() == 0 {
        at.div_euclid(DAY_NANOS).saturating_add(i64::from(at.rem_euclid(DAY_NANOS) != 0)).saturating_mul(DAY_NANOS)
    } else {
        at
    }
}

fn invalid(m: impl Into<String>) -> Error {
    Error::InvalidInput(m.into())
}

impl Lifecycle {
    /// S3's checks of a configuration, and ids for rules that have none. Refusals are
    /// `InvalidInput` (S3: InvalidArgument).
    pub fn check(&mut self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(invalid("a lifecycle configuration has at least one rule"));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!("a lifecycle configuration has at most {MAX_RULES} rules")));
        }
        let mut ids = std::collections::HashSet::new();
        for rule in &mut self.rules {
            if rule.id.is_empty() {
                rule.id = hex::encode(crate::crypto::random_bytes::<16>());
            }
            if rule.id.len() > MAX_ID_LEN {
                return Err(invalid(format!("a rule ID has at most {MAX_ID_LEN} characters")));
            }
            if !ids.insert(rule.id.clone()) {
                return Err(invalid(format!("the rule ID {:?} is used twice", rule.id)));
            }
            rule.check()?;
        }
        Ok(())
    }

    /// The enabled rule for old versions that applies to an object, for the versions code:
    /// an old version of `key` (below the bucket) of this size and with these tags goes once
    /// it has been noncurrent for `days` days, keeping the `newer_versions` newest if set.
    pub fn noncurrent_rule(&self, key: &str, size: u64, tags: &[(String, String)]) -> Option<&NoncurrentExpiration> {
        self.rules.iter().filter(|r| r.enabled && r.filter.matches(key, size, tags)).find_map(|r| r.noncurrent.as_ref())
    }
}

impl Rule {
    fn check(&self) -> Result<()> {
        let positive = |d: Option<u32>, what: &str| match d {
            Some(0) => Err(invalid(format!("{what} must be a positive integer"))),
            _ => Ok(()),
        };
        if let Some(e) = &self.expiration {
            let set = [e.days.is_some(), e.date.is_some(), e.expired_object_delete_marker.is_some()];
            if set.iter().filter(|s| **s).count() != 1 {
                return Err(invalid("an Expiration has exactly one of Days, Date and ExpiredObjectDeleteMarker"));
            }
            positive(e.days, "Days")?;
            if e.date.is_some_and(|d| d.rem_euclid(86_400) != 0) {
                return Err(invalid("an expiration Date must be at midnight UTC"));
            }
            if e.expired_object_delete_marker.is_some() && !self.filter.tags.is_empty() {
                return Err(invalid("ExpiredObjectDeleteMarker cannot be given with a tag filter"));
            }
        }
        positive(self.abort_upload_days, "DaysAfterInitiation")?;
        if self.abort_upload_days.is_some() && !self.filter.tags.is_empty() {
            return Err(invalid("AbortIncompleteMultipartUpload cannot be given with a tag filter"));
        }
        if let Some(n) = &self.noncurrent {
            positive(n.days, "NoncurrentDays")?;
            if n.days.is_none() {
                return Err(invalid("NoncurrentVersionExpiration needs NoncurrentDays"));
            }
            positive(n.newer_versions, "NewerNoncurrentVersions")?;
        }
        if self.expiration.is_none() && self.abort_upload_days.is_none() && self.noncurrent.is_none() {
            return Err(invalid("a rule has at least one action"));
        }
        if let (Some(g), Some(l)) = (self.filter.size_greater, self.filter.size_less)
            && g >= l
        {
            return Err(invalid("ObjectSizeGreaterThan must be less than ObjectSizeLessThan"));
        }
        // A filter's tags are held to the rules of a bucket's tags (unique keys, lengths).
        check_tags(&self.filter.tags, TagTarget::Bucket)
    }
}

impl Storage {
    /// The folder of bucket `path` for a change of its configuration (write access).
    async fn set_bucket_row(&self, p: &Principal, path: &str, value: Option<Vec<u8>>) -> Result<()> {
        let place = self.change_target(p, path).await?;
        if place.is_virtual() {
            return Err(Error::Forbidden(format!("{} has no lifecycle of its own", place.path)));
        }
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let folder = w
                .resolve(place.base, &place.rel)?
                .filter(|i| i.is_folder())
                .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
            let mut t = w.txn.open_table(LIFECYCLE)?;
            match &value {
                Some(v) => t.insert(folder.id, v.as_slice())?,
                None => {
                    t.remove(folder.id)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Replaces the lifecycle of the bucket (folder) at `path`, after S3's checks; returns
    /// the configuration as stored (with the ids it made up).
    pub async fn set_lifecycle(&self, p: &Principal, path: &str, mut config: Lifecycle) -> Result<Lifecycle> {
        config.check()?;
        self.core.extras.seen();
        self.set_bucket_row(p, path, Some(db::encode(&config))).await?;
        Ok(config)
    }

    pub async fn delete_lifecycle(&self, p: &Principal, path: &str) -> Result<()> {
        self.set_bucket_row(p, path, None).await
    }

    /// The lifecycle of the bucket (folder) at `path`, None when it has none.
    pub async fn lifecycle(&self, p: &Principal, path: &str) -> Result<Option<Lifecycle>> {
        let folder = self.stat(p, path).await?;
        if !folder.is_folder() {
            return Err(Error::missing(What::Folder, format!("{path} is not a folder")));
        }
        self.core
            .db
            .read(move |t| match t.open_table(LIFECYCLE)?.get(folder.id)? {
                Some(v) => Ok(Some(db::decode(v.value())?)),
                None => Ok(None),
            })
            .await
    }
}

/// What S3 tells with an object beside its content: how many tags it has, and when a
/// lifecycle rule will expire it (`x-amz-tagging-count`, `x-amz-expiration`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectExtras {
    pub tag_count: usize,
    /// (Unix nanoseconds from which the object is due, the rule's id): the earliest enabled
    /// rule that expires it, if any.
    pub expiry: Option<(i64, String)>,
}

/// Whether this store may hold a tag or a lifecycle rule, so that reads of objects in a store
/// that has none (most) skip looking for them. True from the start when either table has a
/// row, and set by this process before any change that adds one commits; once true it stays
/// so. Another node's changes are not seen that way: with several nodes, [`watch_extras`]
/// looks at the store every `EXTRAS_WATCH` until the first tag or rule appears, so for that
/// long after the very first one a read may leave out the two headers (never the tags
/// themselves: GetObjectTagging always reads them). Every GET and HEAD of a cluster that
/// never tags is then spared a round trip to PostgreSQL.
pub(crate) struct ExtrasSeen(std::sync::atomic::AtomicBool);

const EXTRAS_WATCH: std::time::Duration = std::time::Duration::from_secs(10);

impl ExtrasSeen {
    pub(crate) fn load(db: &crate::meta::db::Db) -> Result<Self> {
        Ok(ExtrasSeen(std::sync::atomic::AtomicBool::new(Self::in_store(db)?)))
    }

    fn in_store(db: &crate::meta::db::Db) -> Result<bool> {
        db.read_sync(|t| {
            Ok(t.open_table(crate::meta::db::TAGS)?.range::<u64>(..)?.next().is_some()
                || t.open_table(crate::meta::db::UPLOAD_TAGS)?.range::<u64>(..)?.next().is_some()
                || t.open_table(LIFECYCLE)?.range::<u64>(..)?.next().is_some())
        })
    }

    /// Called before a change that may add a tag or a rule.
    pub(crate) fn seen(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// With several nodes: notices another node's first tag or rule (see [`ExtrasSeen`]).
pub(crate) fn watch_extras(core: &std::sync::Arc<crate::Core>) -> Result<()> {
    let weak = std::sync::Arc::downgrade(core);
    std::thread::Builder::new().name("davit-extras-watch".into()).spawn(move || {
        loop {
            // Slept in short steps so the thread ends soon after the store is dropped.
            for _ in 0..EXTRAS_WATCH.as_millis() / 100 {
                if weak.strong_count() == 0 {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let Some(core) = weak.upgrade() else { return };
            if core.extras.any() {
                return;
            }
            match ExtrasSeen::in_store(&core.db) {
                Ok(true) => core.extras.seen(),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "looking for tags and lifecycle rules failed; tried again later"),
            }
        }
    })?;
    Ok(())
}

impl Storage {
    /// [`ObjectExtras`] of an item the caller has just read (through a call that checked
    /// its access). One read transaction, none in a store without tags and rules; the
    /// bucket is looked for only when some bucket has lifecycle rules at all.
    pub async fn object_extras(&self, item: &crate::Item) -> Result<ObjectExtras> {
        if !self.core.extras.any() {
            return Ok(ObjectExtras::default());
        }
        let (item, day) = (item.clone(), self.core.config.lifecycle_day);
        self.core
            .db
            .read(move |t| {
                let tags = crate::meta::tags::of_item(&t.open_table(crate::meta::db::TAGS)?, item.id)?;
                let mut out = ObjectExtras { tag_count: tags.len(), expiry: None };
                let rules = t.open_table(LIFECYCLE)?;
                if item.is_folder() || rules.range::<u64>(..)?.next().is_none() {
                    return Ok(out);
                }
                // Up to the top folder of the owner's drive (the bucket), naming the key.
                let items = t.open_table(crate::meta::db::ITEMS)?;
                let root = crate::meta::txn::load_user(t, item.owner)?.root;
                let mut key = vec![item.name.clone()];
                let mut folder = item.parent;
                let mut bucket = None;
                // Bounded by the depth of the tree (paths are at most 4096 bytes).
                for _ in 0..crate::meta::names::MAX_PATH_BYTES {
                    let Some(f) = crate::meta::txn::get_item(&items, folder)? else { break };
                    if f.parent == root {
                        bucket = Some(f.id);
                        break;
                    }
                    key.push(f.name);
                    folder = f.parent;
                }
                let Some(v) = bucket.map(|b| rules.get(b)).transpose()?.flatten() else { return Ok(out) };
                let config: Lifecycle = db::decode(v.value())?;
                key.reverse();
                let key = key.join("/");
                out.expiry = config
                    .rules
                    .iter()
                    .filter(|r| r.enabled && r.filter.matches(&key, item.size, &tags))
                    .filter_map(|r| {
                        let e = r.expiration.as_ref()?;
                        let at = match (e.days, e.date) {
                            (Some(d), _) => due_after_days(item.modified, d, day),
                            (None, Some(secs)) => secs.saturating_mul(1_000_000_000),
                            _ => return None,
                        };
                        Some((at, r.id.clone()))
                    })
                    .min();
                Ok(out)
            })
            .await
    }
}
