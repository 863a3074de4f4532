//! A bucket's policy and ACLs, read from and written to the share rows (`sharing`) and the
//! bucket's audience (`S3_AUDIENCE`): there is no stored policy, so a share made over REST
//! is in GetBucketPolicy, and a policy's grant is in `GET /shares` and under the grantee's
//! `shared/<owner>/…`, over every protocol. `s3_policy` translates; this applies.
//!
//! Putting a policy replaces every share of the owner on the bucket and what is inside it,
//! and its audience; a bucket ACL replaces the shares on the bucket itself and its
//! audience; an object ACL the shares on that object. Only the bucket's owner reads or
//! changes them.

use std::collections::BTreeMap;

use crate::meta::kv::Readable;

use super::s3_policy::{Asked, Audience, Shown, Who};
use super::s3_view::AudienceTables;
use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::db::{
    self, CHILDREN, ITEMS, S3_AUDIENCE, S3_AUDIENCE_NAMES, SHARE_EXPIRY, SHARES, SHARES_BY_ITEM, SHARES_BY_OWNER, USERS,
};
use crate::meta::grant_rows::{put_share, remove_share_rows};
use crate::meta::model::{Item, Principal, Scope, Share, User, now_nanos};
use crate::meta::txn;

/// What a policy or ACL call covers.
#[derive(Clone, Debug)]
pub enum Within {
    /// The bucket and everything in it (a bucket policy).
    Everything,
    /// The bucket itself (a bucket ACL).
    Bucket,
    /// One object, by key (an object ACL).
    Object(String),
}

/// One share, as a policy or ACL shows it.
#[derive(Clone, Debug)]
pub struct SharedPart {
    pub share: u64,
    pub grantee: String,
    pub grantee_id: String,
    /// Below the bucket; "" for the bucket itself.
    pub path: String,
    pub folder: bool,
    pub write: bool,
}

/// A bucket's (or an object's) sharing, as S3 shows it.
#[derive(Clone, Debug)]
pub struct BucketSharing {
    pub owner_name: String,
    pub owner_id: String,
    pub shares: Vec<SharedPart>,
    pub audience: Audience,
}

impl BucketSharing {
    /// The bucket policy document; None when nothing is shared.
    pub fn policy(&self, bucket: &str) -> Option<String> {
        let shown: Vec<Shown> = self
            .shares
            .iter()
            .map(|s| Shown {
                share: s.share,
                grantee: s.grantee.clone(),
                path: s.path.clone(),
                folder: s.folder,
                write: s.write,
            })
            .collect();
        super::s3_policy::policy_document(bucket, &shown, self.audience)
    }
}

/// The caller's bucket: only its owner manages its policy and ACLs.
fn owned_bucket(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    p: &Principal,
    bucket: &str,
) -> Result<Item> {
    match &p.scope {
        Scope::Drive => {}
        Scope::S3Bucket(r) if r.find(bucket).is_none() => {}
        _ => {
            return Err(Error::Forbidden(format!(
                "only the owner of bucket {bucket} reads or changes its policy and ACL"
            )));
        }
    }
    if bucket == crate::meta::names::SHARED_ROOT {
        return Err(Error::Forbidden(
            "the shared bucket shows what others share with you; it has no policy or ACL".into(),
        ));
    }
    let id = txn::lookup_child(children, p.root, bucket)?
        .ok_or_else(|| Error::missing(What::Folder, format!("no bucket {bucket}")))?;
    let item = txn::get_item(items, id)?.ok_or_else(|| Error::not_found(What::Folder))?;
    if !item.is_folder() {
        return Err(Error::missing(What::Folder, format!("no bucket {bucket}")));
    }
    Ok(item)
}

/// The item `path` names below the bucket ("" is the bucket).
fn below(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    bucket: &Item,
    path: &str,
) -> Result<Item> {
    let mut cur = bucket.clone();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        let id = txn::lookup_child(children, cur.id, name)?.ok_or_else(|| {
            Error::missing(What::Item, format!("no object or prefix {path} in bucket {}", bucket.name))
        })?;
        cur = txn::get_item(items, id)?.ok_or_else(|| Error::not_found(What::Item))?;
    }
    Ok(cur)
}

/// The path of `item` below `bucket`, if it is inside it.
fn path_below(items: &impl Readable<u64, &'static [u8]>, bucket: u64, item: &Item) -> Result<Option<String>> {
    if item.id == bucket {
        return Ok(Some(String::new()));
    }
    let mut names = vec![item.name.clone()];
    let mut up = item.parent;
    for _ in 0..4096 {
        if up == bucket {
            names.reverse();
            return Ok(Some(names.join("/")));
        }
        let Some(parent) = txn::get_item(items, up)? else { return Ok(None) };
        if parent.parent == 0 {
            return Ok(None);
        }
        names.push(parent.name);
        up = parent.parent;
    }
    Ok(None)
}

/// Whether a share on `item` (at `path` below the bucket) is one the call covers.
fn covers(within: &Within, path: &str, target: u64, item: u64) -> bool {
    match within {
        Within::Everything => true,
        Within::Bucket => path.is_empty(),
        Within::Object(_) => item == target,
    }
}

/// What one change did, for the audit trail.
enum Change {
    Created(Share),
    Changed(Share),
    Revoked(Share),
}

impl Storage {
    /// The shares and audience of the caller's bucket that `within` covers.
    pub async fn bucket_sharing(&self, p: &Principal, bucket: &str, within: Within) -> Result<BucketSharing> {
        let (p2, name) = (p.clone(), bucket.to_owned());
        let (owner_name, rows, audience) = self
            .core
            .db
            .read(move |t| {
                let items = t.open_table(ITEMS)?;
                let children = t.open_table(CHILDREN)?;
                let users = t.open_table(USERS)?;
                let b = owned_bucket(&items, &children, &p2, &name)?;
                let target = match &within {
                    Within::Object(key) => below(&items, &children, &b, key)?.id,
                    _ => b.id,
                };
                let shares = t.open_table(SHARES)?;
                let expiry = t.open_table(SHARE_EXPIRY)?;
                let now = now_nanos();
                let mut rows = Vec::new();
                for e in t.open_table(SHARES_BY_OWNER)?.range((p2.user_id, 0)..(p2.user_id + 1, 0))? {
                    let Some(v) = shares.get(e?.0.value().1)? else { continue };
                    let share: Share = db::decode(v.value())?;
                    if super::grant_expired(&expiry, share.id, now)? {
                        continue;
                    }
                    let Some(item) = txn::get_item(&items, share.item)? else { continue };
                    let Some(path) = path_below(&items, b.id, &item)? else { continue };
                    if !covers(&within, &path, target, item.id) {
                        continue;
                    }
                    let grantee: User =
                        db::decode(users.get(share.grantee)?.ok_or_else(|| Error::not_found(What::User))?.value())?;
                    rows.push((share, grantee.username, path, item.is_folder()));
                }
                let audience = match within {
                    Within::Object(_) => Audience::Private,
                    _ => AudienceTables::read(t)?.audience_of(b.id, &name)?.map_or(Audience::Private, |(_, a)| a),
                };
                Ok((p2.username.clone(), rows, audience))
            })
            .await?;
        let shares = rows
            .into_iter()
            .map(|(s, grantee, path, folder)| SharedPart {
                share: s.id,
                grantee,
                grantee_id: self.canonical_id(s.grantee),
                path,
                folder,
                write: s.write,
            })
            .collect();
        Ok(BucketSharing { owner_name, owner_id: self.canonical_id(p.user_id), shares, audience })
    }

    /// Makes the shares and audience of the caller's bucket that `within` covers what
    /// `asked` says: new grants are made, others changed or revoked, as over REST (the
    /// grantee's default for links, the audit events), in one transaction.
    pub async fn set_bucket_sharing(&self, p: &Principal, bucket: &str, within: Within, asked: Asked) -> Result<()> {
        // As `share_with`: a downloader shares nothing.
        if !p.role.writes() {
            return Err(Error::Forbidden(format!("the {} role cannot share", p.role.as_str())));
        }
        if asked.audience == Audience::Public && !self.s3_public_read() {
            return Err(Error::Forbidden(
                "anonymous public read is off on this server (an administrator turns it on with --s3-public-read)"
                    .into(),
            ));
        }
        if matches!(within, Within::Object(_)) && asked.audience != Audience::Private {
            return Err(Error::InvalidInput("an object cannot be made readable to everyone; its bucket can".into()));
        }
        let mut wanted = Vec::new();
        for w in asked.grants {
            let user = match &w.who {
                Who::User(name) => self
                    .find_user(name)
                    .await
                    .map_err(|_| Error::InvalidInput(format!("Invalid principal: no user {name}")))?,
                Who::Canonical(id) => self
                    .user_by_canonical_id(id)
                    .await
                    .map_err(|_| Error::InvalidInput(format!("Invalid principal: no user has the id {id}")))?,
            };
            if user.id != p.user_id {
                wanted.push((user, w.path, w.object, w.write));
            }
        }
        let (p2, name, audience) = (p.clone(), bucket.to_owned(), asked.audience);
        let changes = self
            .core
            .db
            .write((), move |ctx| {
                let t = ctx.txn;
                let items = t.open_table(ITEMS)?;
                let children = t.open_table(CHILDREN)?;
                let b = owned_bucket(&items, &children, &p2, &name)?;
                let target = match &within {
                    Within::Object(key) => below(&items, &children, &b, key)?.id,
                    _ => b.id,
                };
                // (item, grantee) -> (write, grantee role)
                let mut want: BTreeMap<(u64, u64), (bool, crate::Role)> = BTreeMap::new();
                for (user, path, object, write) in &wanted {
                    let item = match &within {
                        Within::Everything => below(&items, &children, &b, path)?,
                        _ => txn::get_item(&items, target)?.ok_or_else(|| Error::not_found(What::Item))?,
                    };
                    if matches!(within, Within::Everything) && *object == item.is_folder() && !path.is_empty() {
                        return Err(Error::InvalidInput(if *object {
                            format!("{path} is a prefix: name it {path}/*")
                        } else {
                            format!("{path} is an object, not a prefix")
                        }));
                    }
                    let e = want.entry((item.id, user.id)).or_insert((false, user.role));
                    e.0 |= *write;
                }
                let shares = t.open_table(SHARES)?;
                let mut existing = Vec::new();
                for e in t.open_table(SHARES_BY_OWNER)?.range((p2.user_id, 0)..(p2.user_id + 1, 0))? {
                    let Some(v) = shares.get(e?.0.value().1)? else { continue };
                    let share: Share = db::decode(v.value())?;
                    let Some(item) = txn::get_item(&items, share.item)? else { continue };
                    if let Some(path) = path_below(&items, b.id, &item)?
                        && covers(&within, &path, target, item.id)
                    {
                        existing.push(share);
                    }
                }
                // The link and share helpers below open these tables themselves.
                drop((shares, items, children));
                let mut changes = Vec::new();
                let now = now_nanos();
                for s in existing {
                    if !want.contains_key(&(s.item, s.grantee)) {
                        super::sharing::put_reshare(t, s.id, false)?;
                        t.open_table(SHARE_EXPIRY)?.remove(s.id)?;
                        remove_share_rows(t, &s)?;
                        changes.push(Change::Revoked(s));
                    }
                }
                for (&(item, grantee), &(write, role)) in &want {
                    let found = t.open_table(SHARES_BY_ITEM)?.get((item, grantee))?.map(|v| v.value());
                    match found {
                        Some(id) => {
                            let mut s: Share = db::decode(
                                t.open_table(SHARES)?.get(id)?.ok_or_else(|| Error::not_found(What::Share))?.value(),
                            )?;
                            // A policy has no end: a grant it names again that had ended
                            // is given again, not left ended.
                            let ended = super::grant_expired(&t.open_table(SHARE_EXPIRY)?, id, now)?;
                            if ended {
                                t.open_table(SHARE_EXPIRY)?.remove(id)?;
                            }
                            if s.write != write || ended {
                                s.write = write;
                                put_share(t, &s)?;
                                changes.push(Change::Changed(s));
                            }
                        }
                        None => {
                            let s = Share {
                                id: t.next_id("next_share_id")?,
                                item,
                                owner: p2.user_id,
                                grantee,
                                write,
                                created: now,
                            };
                            put_share(t, &s)?;
                            super::sharing::put_reshare(t, s.id, super::reshare::default_for(role))?;
                            changes.push(Change::Created(s));
                        }
                    }
                }
                for c in &changes {
                    let (Change::Created(s) | Change::Changed(s) | Change::Revoked(s)) = c;
                    super::reshare::end_links_no_longer_allowed(t, s.grantee)?;
                }
                if !matches!(within, Within::Object(_)) {
                    if audience != Audience::Private {
                        // One name, one readable bucket: unsigned requests and users who
                        // own no such bucket find it by name alone.
                        let readable = AudienceTables::write(t)?.readable_named(&name)?;
                        if readable.is_some_and(|(other, _)| other.id != b.id) {
                            return Err(Error::Conflict(format!(
                                "another user's bucket named {name} is already readable to everyone; rename yours to \
                                 make it so"
                            )));
                        }
                    }
                    let mut aud = t.open_table(S3_AUDIENCE)?;
                    let mut names = t.open_table(S3_AUDIENCE_NAMES)?;
                    if audience == Audience::Private {
                        aud.remove(b.id)?;
                        if names.get(name.as_str())?.is_some_and(|v| v.value() == b.id) {
                            names.remove(name.as_str())?;
                        }
                    } else {
                        aud.insert(b.id, audience.code())?;
                        names.insert(name.as_str(), b.id)?;
                    }
                }
                Ok(changes)
            })
            .await?;
        for c in changes {
            let (action, s) = match c {
                Change::Created(s) => ("share_created", s),
                Change::Changed(s) => ("share_changed", s),
                Change::Revoked(s) => ("share_revoked", s),
            };
            let event = crate::audit::Event::new(action)
                .by(p)
                .target(s.grantee)
                .with("share", s.id)
                .with("item", s.item)
                .with("write", s.write);
            self.audit(event).await;
        }
        Ok(())
    }
}
