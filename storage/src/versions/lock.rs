//! S3 Object Lock: a bucket's lock configuration, and the retention and legal hold of its
//! versions, enforced wherever a version is destroyed.
//!
//! Why it is kept this way:
//! - Object lock is switched on only when a bucket is made (S3's rule), and it switches
//!   versioning on for good: a version can only be protected if overwrites and deletes keep
//!   it, so [`crate::Storage::set_versioning`] refuses to suspend such a bucket.
//! - Retention and legal hold are rows keyed by (bucket folder id, version `seq`): `seq` is
//!   the stable id of a version whether it is current (CURRENT_VERSIONS) or noncurrent
//!   (VERSIONS), so a lock set on the current version still holds once it is overwritten,
//!   with no row to move. A current `null` version without a seq gets one when locked.
//! - Each row repeats the version's key, so a refusal (deleting a bucket or a user) can
//!   name the objects that hold it without a scan of the history.
//! - Every path that destroys a version calls [`W::release_lock`] first (history rows:
//!   `remove_history`; a current version: `delete_version`, a suspended `null` replace, a
//!   MOVE out of the key) or [`W::check_bucket_unlocked`] (a bucket's or a user's
//!   deletion), so the rule holds for WebDAV, REST and S3 alike. COMPLIANCE and legal hold
//!   yield to no one; GOVERNANCE to the bucket's owner or an admin who asks for the bypass.

use serde::{Deserialize, Serialize};

use super::{Versioning, version_id};
use crate::Storage;
use crate::access::{Access, Place};
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CURRENT_VERSIONS, LEGAL_HOLD, OBJECT_LOCK, RETENTION, VERSIONING, VERSIONS};
use crate::meta::kv::Readable;
use crate::meta::model::{Item, Kind, Principal, Role, now_nanos};
use crate::meta::txn::W;
use crate::tree::locks::LockGuard;

crate::meta::db::stored!(ObjectLock = "object lock", Retention = "retention");

/// How strictly a version is retained.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Only the bucket's owner or an admin, asking for the bypass, may shorten or destroy.
    Governance,
    /// No one may shorten the retention or destroy the version before it ends.
    Compliance,
}

/// The period of a bucket's default retention, as configured (kept as given so that a
/// client reads back what it wrote).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockPeriod {
    Days(u32),
    Years(u32),
}

impl LockPeriod {
    fn nanos(self) -> i64 {
        const DAY: i64 = 86_400 * 1_000_000_000;
        match self {
            LockPeriod::Days(d) => i64::from(d) * DAY,
            LockPeriod::Years(y) => i64::from(y) * 365 * DAY,
        }
    }
}

/// A bucket's object lock configuration (a row of OBJECT_LOCK: lock enabled).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectLock {
    /// The retention every new version gets, when set.
    pub default: Option<(LockMode, LockPeriod)>,
}

/// A version's retention (a row of RETENTION).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    /// Retained until (Unix nanoseconds).
    pub until: i64,
    /// The version's key in its bucket (for messages naming it).
    pub key: String,
}

impl Retention {
    fn active(&self, now: i64) -> bool {
        self.until > now
    }
}

/// A version's lock state, as GET/HEAD answer it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockState {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

/// The lock a write asks for on the version it makes (S3's `x-amz-object-lock-*` headers
/// of PutObject, CopyObject and CreateMultipartUpload). It is set in the write's own
/// transaction: set afterwards, a crash or a concurrent delete in between would leave the
/// version unprotected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionLock {
    /// Mode and retain-until (Unix nanoseconds); replaces the bucket's default retention.
    pub retention: Option<(LockMode, i64)>,
    /// Legal hold on (`Some(true)`) or explicitly off.
    pub legal_hold: Option<bool>,
}

impl VersionLock {
    /// Whether the write asks for anything.
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.legal_hold.is_none()
    }
}

/// How every refusal of this module begins (`Error::Forbidden`), so that a front end can
/// tell a lock's refusal from a permission's and name it (REST: `object_locked`).
pub const REFUSAL: &str = "object lock: ";

/// The longest a refusal lists objects by name (the rest are counted).
const NAMED: usize = 20;

impl W<'_> {
    /// Whether version `seq` of bucket `bucket` may not be destroyed now, and why.
    fn lock_refusal(&self, bucket: u64, seq: u64, bypass: bool, now: i64) -> Result<Option<String>> {
        if let Some(key) = self.txn.open_table(LEGAL_HOLD)?.get((bucket, seq))? {
            return Ok(Some(format!(
                "object lock: {} (version {}) is under legal hold",
                key.value(),
                version_id(seq, false)
            )));
        }
        let Some(r) = self.txn.open_table(RETENTION)?.get((bucket, seq))?.map(|v| db::decode::<Retention>(v.value()))
        else {
            return Ok(None);
        };
        let r = r?;
        if !r.active(now) || (r.mode == LockMode::Governance && bypass) {
            return Ok(None);
        }
        let mode = if r.mode == LockMode::Compliance { "COMPLIANCE" } else { "GOVERNANCE" };
        Ok(Some(format!(
            "object lock: {} (version {}) is under {mode} retention until {}",
            r.key,
            version_id(seq, false),
            rfc3339(r.until)
        )))
    }

    /// Before version `seq` of `bucket` is destroyed: refuses (Forbidden) while it is
    /// retained or held, else forgets its lock rows. `bypass` is GOVERNANCE's bypass, already
    /// checked to be the owner's or an admin's.
    pub(crate) fn release_lock(&mut self, bucket: u64, seq: u64, bypass: bool) -> Result<()> {
        if let Some(why) = self.lock_refusal(bucket, seq, bypass, now_nanos())? {
            return Err(Error::Forbidden(why));
        }
        self.txn.open_table(RETENTION)?.remove((bucket, seq))?;
        Ok(())
    }

    /// Whether version `seq` is protected now (for a background task that must skip it,
    /// such as lifecycle expiry, rather than fail).
    #[allow(dead_code)] // for lifecycle expiry, which another change wires to versions
    pub(crate) fn version_locked(&self, bucket: u64, seq: u64) -> Result<bool> {
        Ok(self.lock_refusal(bucket, seq, false, now_nanos())?.is_some())
    }

    /// Before a whole bucket's history goes (its folder or its owner is deleted): refuses,
    /// naming the objects, while any version in it is retained or held (GOVERNANCE yields
    /// to `bypass`); else forgets its lock configuration and rows.
    pub(crate) fn check_bucket_unlocked(&mut self, bucket: u64, bypass: bool) -> Result<()> {
        let now = now_nanos();
        let mut held = Vec::new();
        for e in self.txn.open_table(LEGAL_HOLD)?.range((bucket, 0)..(bucket + 1, 0))? {
            let (k, key) = e?;
            held.push(format!("{} (version {}, legal hold)", key.value(), version_id(k.value().1, false)));
        }
        let mut seqs = Vec::new();
        for e in self.txn.open_table(RETENTION)?.range((bucket, 0)..(bucket + 1, 0))? {
            let (k, v) = e?;
            let r: Retention = db::decode(v.value())?;
            seqs.push(k.value().1);
            if r.active(now) && !(bypass && r.mode == LockMode::Governance) {
                held.push(format!(
                    "{} (version {}, retained until {})",
                    r.key,
                    version_id(k.value().1, false),
                    rfc3339(r.until)
                ));
            }
        }
        if !held.is_empty() {
            let more = held.len().saturating_sub(NAMED);
            held.truncate(NAMED);
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            return Err(Error::Forbidden(format!(
                "object lock: objects are retained or held: {}{tail}",
                held.join(", ")
            )));
        }
        for seq in seqs {
            self.txn.open_table(RETENTION)?.remove((bucket, seq))?;
        }
        self.txn.open_table(OBJECT_LOCK)?.remove(bucket)?;
        Ok(())
    }

    /// The file `item`, just written at `place` (as its new current version), gets the lock
    /// its write asked for, in the same transaction: refused unless the caller owns the
    /// bucket and it has object lock, so the write is refused whole.
    pub(crate) fn lock_written(&mut self, place: &Place, item: &Item, lock: &VersionLock) -> Result<()> {
        if lock.is_empty() {
            return Ok(());
        }
        check_owner(place)?;
        if item.kind != Kind::File {
            return Err(Error::InvalidInput("only a file's version can be retained or held".into()));
        }
        let Some((b, prefix)) = self.versioned_bucket(item.owner, item.parent)? else { return Err(missing_config()) };
        if self.txn.open_table(OBJECT_LOCK)?.get(b.id)?.is_none() {
            return Err(missing_config());
        }
        let Some((seq, _)) = self.current_tag(item.id)? else {
            return Err(Error::internal("a file written in a versioned bucket has no version id"));
        };
        let key = format!("{prefix}{}", item.name);
        if let Some((mode, until)) = lock.retention {
            if until <= now_nanos() {
                return Err(Error::InvalidInput("the retain-until date must be in the future".into()));
            }
            let r = Retention { mode, until, key: key.clone() };
            self.txn.open_table(RETENTION)?.insert((b.id, seq), db::encode(&r).as_slice())?;
        }
        match lock.legal_hold {
            Some(true) => {
                self.txn.open_table(LEGAL_HOLD)?.insert((b.id, seq), key.as_str())?;
            }
            Some(false) => {
                self.txn.open_table(LEGAL_HOLD)?.remove((b.id, seq))?;
            }
            None => {}
        }
        Ok(())
    }

    /// A new version `seq` of `key` in bucket `bucket` gets the bucket's default retention.
    pub(crate) fn apply_default_retention(&mut self, bucket: u64, key: &str, seq: u64) -> Result<()> {
        let Some(cfg) = self.txn.open_table(OBJECT_LOCK)?.get(bucket)?.map(|v| db::decode::<ObjectLock>(v.value()))
        else {
            return Ok(());
        };
        if let Some((mode, period)) = cfg?.default {
            let r = Retention { mode, until: now_nanos().saturating_add(period.nanos()), key: key.to_owned() };
            self.txn.open_table(RETENTION)?.insert((bucket, seq), db::encode(&r).as_slice())?;
        }
        Ok(())
    }
}

/// A time as RFC 3339 (UTC), for messages.
fn rfc3339(nanos: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether `p` may use GOVERNANCE's bypass at `place`: the bucket's owner or an admin.
fn may_bypass(p: &Principal, place: &Place) -> bool {
    place.access == Access::Own || p.role == Role::Admin
}

/// The bypass a caller asked for, granted only to those who may use it.
pub(crate) fn bypass_of(p: &Principal, place: &Place, asked: bool) -> bool {
    asked && may_bypass(p, place)
}

/// The version a lock call names: its bucket, key and seq (giving a current `null`
/// version without one its seq: the caller is in a write).
fn target(w: &mut W<'_>, place: &Place, id: Option<&str>) -> Result<(u64, String, u64)> {
    let versioning = w.txn.open_table(VERSIONING)?;
    let located = super::ops::locate(&w.items, &w.children, &versioning, place)?;
    drop(versioning);
    let Some((b, key)) = located else { return Err(missing_config()) };
    if w.txn.open_table(OBJECT_LOCK)?.get(b.id)?.is_none() {
        return Err(missing_config());
    }
    let found = {
        let (versions, current) = (w.txn.open_table(VERSIONS)?, w.txn.open_table(CURRENT_VERSIONS)?);
        let id = id.unwrap_or(CURRENT);
        super::ops::find(&w.items, &w.children, &versions, &current, place, (&b, &key), id)?
    };
    match found {
        super::ops::Found::Current(_, Some((seq, _))) => Ok((b.id, key, seq)),
        super::ops::Found::Current(item, None) => {
            let seq = w.txn.next_id("next_version_id")?;
            w.txn.open_table(CURRENT_VERSIONS)?.insert(item.id, (seq, 1))?;
            Ok((b.id, key, seq))
        }
        super::ops::Found::Row(v, _) if v.marker => {
            Err(Error::InvalidInput("a delete marker cannot be retained or held".into()))
        }
        super::ops::Found::Row(v, _) => Ok((b.id, key, v.seq)),
    }
}

/// Retention and legal hold bind the owner's data (and the owner's account: it cannot be
/// deleted while they last), so only the owner sets them, never a share's grantee.
fn check_owner(place: &Place) -> Result<()> {
    if place.access != Access::Own {
        return Err(Error::Forbidden("object lock: retention and legal hold are set by the bucket's owner".into()));
    }
    Ok(())
}

/// The id standing for "the current version" in [`super::ops::find`].
pub(super) const CURRENT: &str = "";

fn missing_config() -> Error {
    Error::InvalidInput("Bucket is missing ObjectLockConfiguration".into())
}

/// Whether a change of retention from `old` to `new` is allowed (`bypass` granted).
fn may_change(old: Option<&Retention>, new: Option<&Retention>, bypass: bool, now: i64) -> Result<()> {
    let Some(old) = old.filter(|o| o.active(now)) else { return Ok(()) };
    // A change of mode is not an extension (s3-tests' test_object_lock_changing_mode_from_
    // governance_without_bypass): from GOVERNANCE it needs the bypass, from COMPLIANCE never.
    let extends = new.is_some_and(|n| n.until >= old.until && n.mode == old.mode);
    if extends {
        return Ok(());
    }
    match old.mode {
        LockMode::Compliance => Err(Error::Forbidden(format!(
            "object lock: {} is under COMPLIANCE retention until {}: it can be extended, never shortened",
            old.key,
            rfc3339(old.until)
        ))),
        LockMode::Governance if bypass => Ok(()),
        LockMode::Governance => Err(Error::Forbidden(format!(
            "object lock: {} is under GOVERNANCE retention until {}: shortening it needs the bypass (by the bucket's owner or an admin)",
            old.key,
            rfc3339(old.until)
        ))),
    }
}

impl Storage {
    /// Makes the top-level folder `bucket` (of the caller's drive, just made) a bucket with
    /// object lock: versioning enabled for good, no default retention yet.
    pub async fn enable_object_lock(&self, p: &Principal, bucket: &str) -> Result<()> {
        let place = self.change_target(p, bucket).await?;
        if place.access != Access::Own || place.rel.names().len() != 1 {
            return Err(Error::Forbidden("object lock is enabled by a bucket's owner, on a top-level folder".into()));
        }
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let folder = w
                .resolve(place.base, &place.rel)?
                .filter(Item::is_folder)
                .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
            w.txn.open_table(VERSIONING)?.insert((folder.owner, folder.id), Versioning::Enabled.row().unwrap_or(1))?;
            if w.txn.open_table(OBJECT_LOCK)?.get(folder.id)?.is_none() {
                w.txn.open_table(OBJECT_LOCK)?.insert(folder.id, db::encode(&ObjectLock::default()).as_slice())?;
            }
            Ok(())
        })
        .await
    }

    /// The bucket's object lock configuration; `None` when object lock is not enabled.
    pub async fn object_lock(&self, p: &Principal, bucket: &str) -> Result<Option<ObjectLock>> {
        let place = self.place(p, bucket).await?;
        place.check_read(p)?;
        self.core
            .db
            .read(move |t| {
                let (items, children) = (t.open_table(db::ITEMS)?, t.open_table(db::CHILDREN)?);
                let folder = crate::access::resolve_place(&items, &children, &place)?
                    .filter(Item::is_folder)
                    .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
                let row = t.open_table(OBJECT_LOCK)?.get(folder.id)?.map(|v| db::decode(v.value()));
                row.transpose()
            })
            .await
    }

    /// Sets the default retention of a bucket with object lock (its owner's call).
    pub async fn set_object_lock(&self, p: &Principal, bucket: &str, cfg: ObjectLock) -> Result<()> {
        let place = self.change_target(p, bucket).await?;
        if place.access != Access::Own || place.rel.names().len() != 1 {
            return Err(Error::Forbidden("object lock is configured by a bucket's owner".into()));
        }
        if let Some((_, LockPeriod::Days(0) | LockPeriod::Years(0))) = cfg.default {
            return Err(Error::InvalidInput("a default retention period must be positive".into()));
        }
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let folder = w
                .resolve(place.base, &place.rel)?
                .filter(Item::is_folder)
                .ok_or_else(|| Error::missing(What::Folder, format!("{} not found", place.path)))?;
            if w.txn.open_table(OBJECT_LOCK)?.get(folder.id)?.is_none() {
                return Err(Error::Conflict("object lock is enabled only when a bucket is made".into()));
            }
            w.txn.open_table(OBJECT_LOCK)?.insert(folder.id, db::encode(&cfg).as_slice())?;
            Ok(())
        })
        .await
    }

    /// The retention and legal hold of version `id` (the current one when `None`) of the
    /// file at `path`; nothing outside a bucket with object lock.
    pub async fn lock_state(&self, p: &Principal, path: &str, id: Option<&str>) -> Result<LockState> {
        let place = self.place(p, path).await?;
        place.check_read(p)?;
        let id = id.map(str::to_owned);
        self.core.db.read(move |t| lock_state_in(t, &place, id.as_deref())).await
    }

    /// Sets (or with `None` removes) the retention of version `id` (the current one when
    /// `None`) of the file at `path` (the owner's call): extending is always allowed; shortening a
    /// GOVERNANCE retention needs `bypass` (honoured for the bucket's owner or an admin);
    /// a COMPLIANCE one is never shortened.
    pub async fn set_retention(
        &self,
        p: &Principal,
        path: &str,
        id: Option<&str>,
        retention: Option<(LockMode, i64)>,
        bypass: bool,
    ) -> Result<()> {
        let place = self.change_target(p, path).await?;
        check_owner(&place)?;
        let bypass = bypass_of(p, &place, bypass);
        let id = id.map(str::to_owned);
        let now = now_nanos();
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let (bucket, key, seq) = target(w, place, id.as_deref())?;
            let old = w.txn.open_table(RETENTION)?.get((bucket, seq))?.map(|v| db::decode::<Retention>(v.value()));
            let old = old.transpose()?;
            let new = retention.map(|(mode, until)| Retention { mode, until, key });
            if let Some(n) = &new
                && n.until <= now
            {
                return Err(Error::InvalidInput("the retain-until date must be in the future".into()));
            }
            may_change(old.as_ref(), new.as_ref(), bypass, now)?;
            let mut t = w.txn.open_table(RETENTION)?;
            match new {
                Some(n) => t.insert((bucket, seq), db::encode(&n).as_slice())?,
                None => {
                    t.remove((bucket, seq))?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Puts a legal hold on (or takes it off) version `id` (the current one when `None`).
    pub async fn set_legal_hold(&self, p: &Principal, path: &str, id: Option<&str>, on: bool) -> Result<()> {
        let place = self.change_target(p, path).await?;
        check_owner(&place)?;
        let id = id.map(str::to_owned);
        self.commit_at(place, LockGuard::of(p, false), (), move |w, place| {
            let (bucket, key, seq) = target(w, place, id.as_deref())?;
            let mut t = w.txn.open_table(LEGAL_HOLD)?;
            if on {
                t.insert((bucket, seq), key.as_str())?;
            } else {
                t.remove((bucket, seq))?;
            }
            Ok(())
        })
        .await
    }
}

/// [`Storage::lock_state`] of the file at `place`, in a read already open (a whole S3 GET
/// reads it in the snapshot of its bytes: `Storage::read_with_lock_state`).
pub(crate) fn lock_state_in(t: &db::ReadTxn, place: &Place, id: Option<&str>) -> Result<LockState> {
    let (items, children) = (t.open_table(db::ITEMS)?, t.open_table(db::CHILDREN)?);
    let Some((b, key)) = super::ops::locate(&items, &children, &t.open_table(VERSIONING)?, place)? else {
        return Ok(LockState::default());
    };
    if t.open_table(OBJECT_LOCK)?.get(b.id)?.is_none() {
        return Ok(LockState::default());
    }
    let (versions, current) = (t.open_table(VERSIONS)?, t.open_table(CURRENT_VERSIONS)?);
    let want = id.unwrap_or(CURRENT);
    let seq = match super::ops::find(&items, &children, &versions, &current, place, (&b, &key), want)? {
        super::ops::Found::Current(_, tag) => tag.map(|t| t.0),
        super::ops::Found::Row(v, _) => Some(v.seq),
    };
    let Some(seq) = seq else { return Ok(LockState::default()) };
    let retention =
        t.open_table(RETENTION)?.get((b.id, seq))?.map(|v| db::decode::<Retention>(v.value())).transpose()?;
    let legal_hold = t.open_table(LEGAL_HOLD)?.get((b.id, seq))?.is_some();
    Ok(LockState { retention, legal_hold })
}
