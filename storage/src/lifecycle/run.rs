//! Applying lifecycle rules: expiring current objects and aborting old multipart uploads
//! (a versioned bucket's history is `history`'s).
//!
//! A pass reads the rules, walks each bucket in read transactions of at most `WALK_BATCH`
//! entries, and removes each expired object in a transaction of its own through the same
//! path as an S3 delete by the bucket's owner (`commit_at`: grants, locks and the owner's
//! role apply; quota is released as by any delete). That transaction checks again that the
//! object is the one found (same id, same modification time) and still matches the rule, so
//! a pass never removes what was rewritten or re-tagged meanwhile, and two nodes running
//! passes at once only find the second removal has nothing left to do.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Lifecycle, Rule};
use crate::error::{Error, Result};
use crate::meta::db::{self, CHILDREN, ITEMS, LIFECYCLE, TAGS, UPLOADS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Principal, now_nanos};
use crate::meta::tags;
use crate::meta::txn;
use crate::meta::uploads::Upload;
use crate::tree::locks::{self, LockGuard};
use crate::{Core, Storage};

/// Entries of a bucket read in one transaction.
const WALK_BATCH: usize = 1000;
/// Objects one pass removes from one bucket at most; the rest waits for the next pass.
const MAX_PER_PASS: usize = 10_000;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub expired: usize,
    pub aborted: usize,
    /// Noncurrent versions and lone delete markers removed from versioned buckets.
    pub versions: usize,
}

/// A folder of a bucket still to read: its key prefix below the bucket, and the last name
/// read in it (empty: none yet).
#[derive(Clone)]
struct Cursor {
    folder: u64,
    base: String,
    after: String,
}

/// A file found by the walk whose rule says it is due.
struct Due {
    key: String,
    id: u64,
    modified: i64,
}

impl Rule {
    /// Whether the current object (key below the bucket) is due to expire at `now`.
    fn expires(&self, key: &str, item: &Item, tags: &[(String, String)], now: i64, day: Duration) -> bool {
        let Some(e) = &self.expiration else { return false };
        if !self.enabled || !self.filter.matches(key, item.size, tags) {
            return false;
        }
        if let Some(days) = e.days {
            return now >= super::due_after_days(item.modified, days, day);
        }
        e.date.is_some_and(|d| now >= d.saturating_mul(1_000_000_000))
    }
}

fn due(config: &Lifecycle, key: &str, item: &Item, tags: &[(String, String)], now: i64, day: Duration) -> bool {
    config.rules.iter().any(|r| r.expires(key, item, tags, now, day))
}

/// Whether any rule expires objects at all (and whether one needs their tags).
fn expiring(config: &Lifecycle) -> (bool, bool) {
    let mut rules = config
        .rules
        .iter()
        .filter(|r| r.enabled && r.expiration.as_ref().is_some_and(|e| e.days.is_some() || e.date.is_some()))
        .peekable();
    let any = rules.peek().is_some();
    (any, rules.any(|r| !r.filter.tags.is_empty()))
}

impl Storage {
    /// Runs one pass of every bucket's lifecycle rules now, a "day" lasting `day` (a real
    /// day but in tests). Safe to run on several nodes at once.
    pub async fn run_lifecycle(&self, day: Duration) -> Result<RunReport> {
        let configs: Vec<(u64, Lifecycle)> = self
            .core
            .db
            .read(|t| {
                let mut out = Vec::new();
                for e in t.open_table(LIFECYCLE)?.range::<u64>(..)? {
                    let (k, v) = e?;
                    out.push((k.value(), db::decode(v.value())?));
                }
                Ok(out)
            })
            .await?;
        let mut report = RunReport::default();
        for (folder, config) in configs {
            match self.run_bucket(folder, &config, day).await {
                Ok(r) => {
                    report.expired += r.expired;
                    report.aborted += r.aborted;
                    report.versions += r.versions;
                }
                Err(e) => tracing::warn!(error = %e, bucket = folder, "applying a bucket's lifecycle failed"),
            }
        }
        Ok(report)
    }

    async fn run_bucket(&self, folder: u64, config: &Lifecycle, day: Duration) -> Result<RunReport> {
        // The bucket's owner, as whom the rules act; a folder that is no longer at the top of
        // its owner's drive is no bucket, and its rules wait.
        let found = self
            .core
            .db
            .read(move |t| {
                let Some(bucket) = txn::get_item(&t.open_table(ITEMS)?, folder)? else { return Ok(None) };
                let user = txn::load_user(t, bucket.owner)?;
                Ok((bucket.parent == user.root).then(|| (bucket, Principal::of(&user))))
            })
            .await?;
        let Some((bucket, owner)) = found else { return Ok(RunReport::default()) };
        let now = now_nanos();
        let mut report = RunReport::default();
        if expiring(config).0 {
            report.expired = self.expire_bucket(&owner, &bucket, config, now, day).await?;
        }
        if config.rules.iter().any(|r| r.enabled && r.abort_upload_days.is_some()) {
            report.aborted = self.abort_old_uploads(&owner, &bucket, config, now, day).await?;
        }
        // After the expiration above, so that a lone marker it just left is judged too.
        if super::history::acts_on_history(config) {
            report.versions = self.expire_history(bucket.id, config, day).await?;
        }
        Ok(report)
    }

    async fn expire_bucket(
        &self,
        owner: &Principal,
        bucket: &Item,
        config: &Lifecycle,
        now: i64,
        day: Duration,
    ) -> Result<usize> {
        let needs_tags = expiring(config).1;
        let mut stack = vec![Cursor { folder: bucket.id, base: String::new(), after: String::new() }];
        // Only folders an expiring rule's prefix can reach are walked.
        let prefixes: Vec<String> = config
            .rules
            .iter()
            .filter(|r| r.enabled && r.expiration.as_ref().is_some_and(|e| e.days.is_some() || e.date.is_some()))
            .map(|r| r.filter.prefix.clone())
            .collect();
        let mut expired = 0;
        while !stack.is_empty() && expired < MAX_PER_PASS {
            let (top, config2, prefixes2) = (stack.clone(), config.clone(), prefixes.clone());
            let (stack2, found) =
                self.core.db.read(move |t| walk_batch(t, top, &config2, &prefixes2, needs_tags, now, day)).await?;
            stack = stack2;
            for d in found {
                match self.expire_one(owner, &bucket.name, &d, config, day).await {
                    Ok(true) => expired += 1,
                    Ok(false) => {}
                    // Refused (a lock, a role that may not delete): the object stays, as it
                    // would for the owner's own delete; the next pass tries again.
                    Err(e) => tracing::debug!(error = %e, key = %d.key, "lifecycle left an object in place"),
                }
            }
        }
        Ok(expired)
    }

    /// Removes one object found due, if it is still the one found and still due: S3's
    /// delete as the bucket's owner, tidying the folders it leaves empty (but the bucket).
    /// In a bucket with versioning Enabled or Suspended this is the versions' delete
    /// (`W::delete_item`): the object becomes a noncurrent version (or, the `null` version of
    /// a suspended bucket, goes) under a new delete marker, as S3 expires it.
    async fn expire_one(
        &self,
        owner: &Principal,
        bucket: &str,
        d: &Due,
        config: &Lifecycle,
        day: Duration,
    ) -> Result<bool> {
        let path = format!("/{bucket}/{}", d.key);
        let place = self.change_target(owner, &path).await?;
        place.check_detach(owner)?;
        let (id, modified, key, config) = (d.id, d.modified, d.key.clone(), config.clone());
        let now = now_nanos();
        let detached = self
            .commit_at(place, LockGuard::of(owner, true), (), move |w, place| {
                let Some(item) = w.resolve(place.base, &place.rel)? else { return Ok(None) };
                if item.id != id || item.modified != modified || item.is_folder() {
                    return Ok(None);
                }
                let tags = tags::of_item(&w.txn.open_table(TAGS)?, item.id)?;
                if !due(&config, &key, &item, &tags, now, day) {
                    return Ok(None);
                }
                locks::forget_item(w.txn, item.id)?;
                let detached = w.delete_item(&item, now)?;
                let mut up = place.rel.parent();
                while let Some(dir) = up {
                    if dir.names().len() <= 1 {
                        break;
                    }
                    let Some(folder) = w.resolve(place.base, &dir)? else { break };
                    if w.children.range((folder.id, "")..(folder.id + 1, ""))?.next().is_some() {
                        break;
                    }
                    w.remove_subtree(&folder)?;
                    locks::forget_item(w.txn, folder.id)?;
                    up = dir.parent();
                }
                Ok(Some(detached))
            })
            .await?;
        if let Some(detached) = detached {
            self.swept_later(detached);
        }
        Ok(detached.is_some())
    }

    async fn abort_old_uploads(
        &self,
        owner: &Principal,
        bucket: &Item,
        config: &Lifecycle,
        now: i64,
        day: Duration,
    ) -> Result<usize> {
        let (user, root) = (owner.user_id, format!("/{}/", bucket.name));
        let rules: Vec<(String, u32)> = config
            .rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| Some((r.filter.prefix.clone(), r.abort_upload_days?)))
            .collect();
        let old: Vec<u64> = self
            .core
            .db
            .read(move |t| {
                let mut out = Vec::new();
                for e in t.open_table(UPLOADS)?.range::<u64>(..)? {
                    let up: Upload = db::decode(e?.1.value())?;
                    // Uploads the owner began in their own bucket (not through a grant).
                    let Some(key) = up.path.strip_prefix(&root) else { continue };
                    if up.owner != user || up.payer != user {
                        continue;
                    }
                    let age = Duration::from_nanos(now.saturating_sub(up.created).max(0) as u64);
                    if rules.iter().any(|(prefix, days)| key.starts_with(prefix.as_str()) && age >= day * *days) {
                        out.push(up.id);
                    }
                    if out.len() >= MAX_PER_PASS {
                        break;
                    }
                }
                Ok(out)
            })
            .await?;
        let mut aborted = 0;
        for id in old {
            match self.abort_upload(owner, id).await {
                Ok(()) => aborted += 1,
                // Completed or aborted meanwhile (by a client or another node).
                Err(Error::NotFound(_)) => {}
                Err(e) => tracing::debug!(error = %e, upload = id, "lifecycle could not abort an upload"),
            }
        }
        Ok(aborted)
    }
}

/// Reads at most `WALK_BATCH` entries from the folders on `stack`, returning the stack left
/// and the files due. Folders whose keys no rule's prefix can reach are not entered.
fn walk_batch(
    t: &crate::meta::kv::ReadTxn,
    mut stack: Vec<Cursor>,
    config: &Lifecycle,
    prefixes: &[String],
    needs_tags: bool,
    now: i64,
    day: Duration,
) -> Result<(Vec<Cursor>, Vec<Due>)> {
    let items = t.open_table(ITEMS)?;
    let children = t.open_table(CHILDREN)?;
    let tag_rows = t.open_table(TAGS)?;
    let mut found = Vec::new();
    let mut budget = WALK_BATCH;
    while budget > 0 {
        let Some(Cursor { folder, base, after }) = stack.pop() else { break };
        let mut last = after.clone();
        let mut sub = Vec::new();
        let mut read = 0;
        let start = (folder, after.as_str());
        for e in children.range(start..(folder + 1, ""))? {
            let (k, v) = e?;
            let name = k.value().1;
            if name == after && !after.is_empty() {
                continue;
            }
            read += 1;
            last = name.to_owned();
            let key = format!("{base}{name}");
            if name.ends_with('/') {
                if prefixes.iter().any(|p| p.starts_with(&key) || key.starts_with(p.as_str())) {
                    sub.push(Cursor { folder: v.value(), base: key, after: String::new() });
                }
            } else if let Some(item) = txn::get_item(&items, v.value())? {
                let tags = if needs_tags { tags::of_item(&tag_rows, item.id)? } else { Vec::new() };
                if due(config, &key, &item, &tags, now, day) {
                    found.push(Due { key, id: item.id, modified: item.modified });
                }
            }
            if read >= budget {
                break;
            }
        }
        budget -= read.min(budget);
        let more = read > 0 && budget == 0;
        if more {
            stack.push(Cursor { folder, base, after: last });
        }
        stack.extend(sub);
        if more {
            break;
        }
    }
    Ok((stack, found))
}

/// Starts the periodic pass in its own thread (with a small runtime of its own, since the
/// store may be opened outside any), every `every`, a "day" lasting `day`.
pub(crate) fn start(core: &Arc<Core>, every: Duration, day: Duration) -> Result<()> {
    let weak: Weak<Core> = Arc::downgrade(core);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new().name("davit-lifecycle".into()).spawn(move || {
        loop {
            // Slept in short steps so the thread ends soon after the store is dropped.
            let steps = (every.as_millis() / 100).max(1);
            for _ in 0..steps {
                if weak.strong_count() == 0 {
                    return;
                }
                std::thread::sleep(every.min(Duration::from_millis(100)));
            }
            let Some(core) = weak.upgrade() else { return };
            let storage = Storage { core };
            match rt.block_on(storage.run_lifecycle(day)) {
                Ok(r) if r == RunReport::default() => {}
                Ok(r) => tracing::info!(
                    expired = r.expired,
                    aborted = r.aborted,
                    versions = r.versions,
                    "applied bucket lifecycle rules"
                ),
                Err(e) => tracing::warn!(error = %e, "applying bucket lifecycle rules failed; the next pass retries"),
            }
        }
    })?;
    Ok(())
}
