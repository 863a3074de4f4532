//! Where a caller's path lands, and what the caller may do there.
//!
//! A signed-in user's paths reach their own drive, or, under `/shared/<owner>/<name>`, an
//! item another user shared with them; a link's paths reach the linked item and nothing
//! else. Every operation of the tree resolves its paths here first, so a grant or a link
//! means the same thing over WebDAV, S3 and REST.

pub(crate) mod links;
pub mod policy;
pub(crate) mod reshare;
pub mod s3_grants;
pub mod s3_policy;
pub mod s3_view;
pub(crate) mod sharing;

use std::collections::{HashMap, HashSet};

use crate::meta::kv::{ReadTxn, Readable};

use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, ITEMS, LINKS, SHARE_EXPIRY, SHARES, SHARES_BY_GRANTEE, USERS};
use crate::meta::model::{Item, Link, LinkState, Principal, Scope, Share, User, child_key, now_nanos};
use crate::meta::names::{DrivePath, SHARED_ROOT};
use crate::meta::txn::{self, W};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Own,
    Grant {
        share: u64,
        write: bool,
    },
    Link {
        link: u64,
        upload: bool,
    },
    /// A bucket its owner made readable to every user or to anyone (`s3_view`).
    Public {
        item: u64,
    },
    /// `/shared`: the owners who shared something with the caller.
    SharedRoot,
    /// `/shared/<owner>`: what that owner shared with the caller.
    SharedOwner {
        name: String,
    },
}

/// A resolved path: the item it starts from, the names below it, and the right to use it.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    /// The path as the caller named it.
    pub path: DrivePath,
    /// Who owns what is reached: new items, quota and usage are theirs.
    pub owner: u64,
    /// The item `rel` starts from: a drive root, a granted item, a linked item.
    pub base: u64,
    pub rel: DrivePath,
    /// How many of `path`'s names lead to `base`.
    pub depth: usize,
    pub access: Access,
    /// The name a granted item is shown under (distinct among one owner's grants).
    pub shown_as: Option<String>,
}

impl Place {
    pub fn own(p: &Principal, path: DrivePath) -> Place {
        Place { owner: p.user_id, base: p.root, rel: path.clone(), path, depth: 0, access: Access::Own, shown_as: None }
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self.access, Access::SharedRoot | Access::SharedOwner { .. })
    }

    /// Names and metadata below an upload link stay hidden: it is a drop box.
    pub fn hides_names(&self) -> bool {
        matches!(self.access, Access::Link { upload: true, .. })
    }

    /// May download contents.
    pub fn check_read(&self, p: &Principal) -> Result<()> {
        match &self.access {
            Access::Own if !p.role.reads_contents() => {
                Err(Error::Forbidden(format!("the {} role cannot download file contents", p.role.as_str())))
            }
            Access::Link { upload: true, .. } => Err(Error::Forbidden("an upload link cannot download".into())),
            Access::SharedRoot | Access::SharedOwner { .. } => {
                Err(Error::Conflict(format!("{} is a folder", self.path)))
            }
            _ => Ok(()),
        }
    }

    /// May change what is at this place (write, make folders, set properties).
    pub fn check_write(&self, p: &Principal) -> Result<()> {
        let role_writes = || {
            if p.role.writes() {
                Ok(())
            } else {
                Err(Error::Forbidden(format!("the {} role cannot change files", p.role.as_str())))
            }
        };
        match &self.access {
            Access::Own => {
                role_writes()?;
                if self.rel.is_root() {
                    return Err(Error::Forbidden("the drive root cannot be changed".into()));
                }
                Ok(())
            }
            Access::Grant { write: false, .. } => {
                Err(Error::Forbidden(format!("{} is shared with you read-only", self.path)))
            }
            Access::Grant { .. } => role_writes(),
            Access::Link { upload: false, .. } => Err(Error::Forbidden("this link is read-only".into())),
            // The drop box itself stays as it is: files go into it.
            Access::Link { .. } if self.rel.is_root() => {
                Err(Error::Forbidden("an upload link takes files into its folder, not changes to it".into()))
            }
            Access::Link { .. } => Ok(()),
            Access::Public { .. } => Err(Error::Forbidden(format!("{} is readable to you, not writable", self.path))),
            Access::SharedRoot | Access::SharedOwner { .. } => {
                Err(Error::Forbidden("/shared holds what others share with you; it cannot be changed".into()))
            }
        }
    }

    /// May delete or move away the item itself: a granted or linked item stays its owner's.
    pub fn check_detach(&self, p: &Principal) -> Result<()> {
        if self.hides_names() {
            // A drop box takes new files; what is in it (and which names are) stays hidden.
            return Err(Error::Forbidden("an upload link cannot delete or move what is in its folder".into()));
        }
        self.check_write(p)?;
        if self.rel.is_root() {
            return Err(Error::Forbidden(format!(
                "{} is shared with you: only its owner can delete or move it",
                self.path
            )));
        }
        Ok(())
    }
}

/// A grant as the grantee sees it.
#[derive(Clone, Debug)]
pub(crate) struct Granted {
    pub share: Share,
    pub item: Item,
    pub owner_name: String,
    pub shown_as: String,
}

pub(crate) struct Grants {
    /// What appears in `/shared/<owner>/`, ordered by owner name then shown name. A grant
    /// inside another granted folder of the same owner does not appear on its own.
    pub top: Vec<Granted>,
    /// Every grant to the caller, by item: (share, allows writes).
    pub by_item: HashMap<u64, (u64, bool)>,
}

/// `report.txt`, then `report (2).txt`, `report (3).txt`…
fn distinct(name: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(name) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    (2..=taken.len() + 2).map(|k| format!("{stem} ({k}){ext}")).find(|n| !taken.contains(n)).expect("a free name")
}

/// When a grant ends by itself (Unix nanoseconds), if it was given an end.
pub(crate) fn grant_end(expiry: &impl Readable<u64, u64>, share: u64) -> Result<Option<i64>> {
    Ok(expiry.get(share)?.map(|v| v.value().min(i64::MAX as u64) as i64))
}

/// Whether a grant has reached its end: then it reaches nothing, as if revoked.
pub(crate) fn grant_expired(expiry: &impl Readable<u64, u64>, share: u64, now: i64) -> Result<bool> {
    Ok(grant_end(expiry, share)?.is_some_and(|end| end <= now))
}

pub(crate) fn grants_to(t: &ReadTxn, grantee: u64) -> Result<Grants> {
    let items = t.open_table(ITEMS)?;
    let shares = t.open_table(SHARES)?;
    let expiry = t.open_table(SHARE_EXPIRY)?;
    let now = now_nanos();
    let users = t.open_table(USERS)?;
    // An owner's name, or None while their account cannot be used: what a disabled account
    // shared reaches nothing until it is enabled again, as its links answer 410 meanwhile.
    let mut owner_names: HashMap<u64, Option<String>> = HashMap::new();
    let mut all = Vec::new();
    for e in t.open_table(SHARES_BY_GRANTEE)?.range((grantee, 0)..(grantee + 1, 0))? {
        let share_id = e?.0.value().1;
        let Some(v) = shares.get(share_id)? else { continue };
        let share: Share = db::decode(v.value())?;
        if grant_expired(&expiry, share.id, now)? {
            continue;
        }
        let owner_name = match owner_names.get(&share.owner) {
            Some(n) => n.clone(),
            None => {
                let n = usable_owner_name(&users, share.owner)?;
                owner_names.insert(share.owner, n.clone());
                n
            }
        };
        if owner_name.is_none() {
            continue;
        }
        let Some(item) = txn::get_item(&items, share.item)? else { continue };
        all.push((share, item));
    }
    let by_item: HashMap<u64, (u64, bool)> = all.iter().map(|(s, i)| (i.id, (s.id, s.write))).collect();
    let mut taken: HashMap<u64, HashSet<String>> = HashMap::new();
    let mut top = Vec::new();
    // Share ids grow with time, so the older grant keeps the plain name.
    all.sort_by_key(|(s, _)| s.id);
    'grants: for (share, item) in all {
        let mut up = item.parent;
        for _ in 0..4096 {
            if up == 0 {
                break;
            }
            if by_item.contains_key(&up) {
                continue 'grants;
            }
            up = txn::get_item(&items, up)?.map_or(0, |i| i.parent);
        }
        let Some(Some(owner_name)) = owner_names.get(&share.owner).cloned() else { continue };
        let names = taken.entry(share.owner).or_default();
        let shown_as = distinct(&item.name, names);
        names.insert(shown_as.clone());
        top.push(Granted { share, item, owner_name, shown_as });
    }
    top.sort_by(|a, b| {
        (a.owner_name.as_str(), child_key(&a.shown_as, a.item.kind))
            .cmp(&(b.owner_name.as_str(), child_key(&b.shown_as, b.item.kind)))
    });
    Ok(Grants { top, by_item })
}

/// The owner's username if their account can be used now (see `grants_to`).
pub(crate) fn usable_owner_name(users: &impl Readable<u64, &'static [u8]>, owner: u64) -> Result<Option<String>> {
    let Some(v) = users.get(owner)? else { return Ok(None) };
    let u: User = db::decode(v.value())?;
    Ok(crate::auth::account_usable(&u).is_ok().then_some(u.username))
}

/// Resolves a caller's path.
pub(crate) fn place(t: &ReadTxn, p: &Principal, path: DrivePath) -> Result<Place> {
    if let Scope::Link { link, item, owner, upload } = p.scope {
        // A principal made before its link ended reaches nothing: the item of a deleted
        // folder's link may still have a row while the sweeper works (`tree::detach`).
        let l: Link = db::decode(
            t.open_table(LINKS)?.get(link)?.ok_or_else(|| Error::Gone("this link was removed".into()))?.value(),
        )?;
        link_usable(&l)?;
        return Ok(Place {
            owner,
            base: item,
            rel: path.clone(),
            path,
            depth: 0,
            access: Access::Link { link, upload },
            shown_as: None,
        });
    }
    if let Scope::S3Bucket(route) = &p.scope
        && let Some(place) = s3_view::place(t, p, route, &path)?
    {
        return Ok(place);
    }
    if !path.in_shared() {
        return Ok(Place::own(p, path));
    }
    let names = path.names().to_vec();
    let virtual_place = |access| Place {
        owner: p.user_id,
        base: 0,
        rel: DrivePath::root(),
        path: path.clone(),
        depth: names.len(),
        access,
        shown_as: None,
    };
    if names.len() == 1 {
        return Ok(virtual_place(Access::SharedRoot));
    }
    let grants = grants_to(t, p.user_id)?;
    let not_found = || Error::missing(What::Item, format!("{path} not found"));
    let owner_name = &names[1];
    let first = grants.top.iter().find(|g| &g.owner_name == owner_name).ok_or_else(not_found)?;
    if names.len() == 2 {
        return Ok(Place {
            owner: first.share.owner,
            ..virtual_place(Access::SharedOwner { name: owner_name.clone() })
        });
    }
    let g = grants.top.iter().find(|g| &g.owner_name == owner_name && g.shown_as == names[2]).ok_or_else(not_found)?;
    let mut place = Place {
        owner: g.share.owner,
        base: g.item.id,
        rel: path.skip(3),
        path: path.clone(),
        depth: 3,
        access: Access::Grant { share: g.share.id, write: g.share.write },
        shown_as: Some(g.shown_as.clone()),
    };
    // A wider grant on something inside applies from there down.
    let mut depth = 3;
    txn::walk(&t.open_table(CHILDREN)?, g.item.id, &names[3..], |id| {
        depth += 1;
        if let Some(&(share, true)) = grants.by_item.get(&id)
            && place.access == (Access::Grant { share: g.share.id, write: false })
        {
            place.base = id;
            place.depth = depth;
            place.rel = path.skip(depth);
            place.access = Access::Grant { share, write: true };
            place.shown_as = None;
        }
    })?;
    Ok(place)
}

/// The item at a place (a virtual folder for `/shared` and `/shared/<owner>`).
pub(crate) fn resolve_place(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    place: &Place,
) -> Result<Option<Item>> {
    match &place.access {
        Access::SharedRoot => return Ok(Some(Item::folder(0, place.owner, 0, SHARED_ROOT, 0))),
        Access::SharedOwner { name } => return Ok(Some(Item::folder(0, place.owner, 0, name, 0))),
        _ => {}
    }
    let mut item = txn::resolve(items, children, place.base, &place.rel)?;
    if place.rel.is_root()
        && let (Some(it), Some(shown)) = (item.as_mut(), &place.shown_as)
    {
        it.name = shown.clone();
    }
    Ok(item)
}

/// Whether a link can be used now; the reason it cannot otherwise.
pub(crate) fn link_usable(link: &Link) -> Result<()> {
    match link.state {
        LinkState::Revoked => return Err(Error::Gone("this link was revoked".into())),
        LinkState::Deleted => return Err(Error::Gone("what this link pointed to was deleted".into())),
        LinkState::Active => {}
    }
    if link.expires <= now_nanos() {
        return Err(Error::Gone("this link has expired".into()));
    }
    if link.max_downloads.is_some_and(|m| link.downloads >= m) {
        return Err(Error::Gone("this link has reached its download limit".into()));
    }
    Ok(())
}

/// Confirms, inside the committing transaction, that the grant or link a place was
/// resolved through still allows the change: a revocation wins over a change in flight.
pub(crate) fn recheck(w: &W<'_>, place: &Place) -> Result<()> {
    recheck_for(w, place, true)
}

/// The same for a place that is only read (the source of a copy).
pub(crate) fn recheck_read(w: &W<'_>, place: &Place) -> Result<()> {
    recheck_for(w, place, false)
}

fn recheck_for(w: &W<'_>, place: &Place, write: bool) -> Result<()> {
    match place.access {
        Access::Grant { share, .. } => {
            let shares = w.txn.open_table(SHARES)?;
            let ok = match shares.get(share)? {
                Some(v) => {
                    let s: Share = db::decode(v.value())?;
                    (!write || s.write) && usable_owner_name(&w.txn.open_table(USERS)?, s.owner)?.is_some()
                }
                None => false,
            } && !grant_expired(&w.txn.open_table(SHARE_EXPIRY)?, share, now_nanos())?;
            if !ok {
                return Err(Error::Forbidden(format!("{} is no longer shared with you for that", place.path)));
            }
        }
        Access::Link { link, .. } => {
            let links = w.txn.open_table(LINKS)?;
            let l: Link =
                db::decode(links.get(link)?.ok_or_else(|| Error::Gone("this link was removed".into()))?.value())?;
            link_usable(&l)?;
            // Disabled while the write was in flight: refused as `open_link` would refuse it.
            if usable_owner_name(&w.txn.open_table(USERS)?, l.owner)?.is_none() {
                return Err(Error::Gone("this link is not available".into()));
            }
            reshare::check_made_link_write(w.txn, &w.items, &l)?;
        }
        Access::Public { item } => {
            // Made private, renamed or deleted since: nothing more is read through it.
            let bucket = txn::get_item(&w.items, item)?.map(|i| i.name).unwrap_or_default();
            if write || s3_view::AudienceTables::in_change(w)?.audience_of(item, &bucket)?.is_none() {
                return Err(Error::Forbidden(format!("{} is no longer readable to you", place.path)));
            }
        }
        _ => return Ok(()),
    }
    // A transfer in between gave the item to someone else: what is written now would
    // be charged to, and owned by, the wrong account.
    if w.get(place.base)?.owner != place.owner {
        return Err(Error::Conflict(format!("{} changed owner meanwhile; try again", place.path)));
    }
    Ok(())
}

/// The folder an item at `place` goes in and its name there. With `create_parents`,
/// missing folders on the way are made (S3 keys imply them).
pub(crate) fn slot(w: &mut W<'_>, place: &Place, create_parents: bool, now: i64) -> Result<(Item, String)> {
    match (place.rel.parent(), place.rel.name()) {
        (Some(parent), Some(name)) => {
            let folder = if create_parents {
                w.ensure_folder(place.base, &parent, place.owner, now)?
            } else {
                w.resolve_folder(place.base, &parent)?
            };
            Ok((folder, name.to_owned()))
        }
        _ => {
            let item = w.get(place.base)?;
            let parent =
                w.get(item.parent).map_err(|_| Error::Forbidden(format!("{} cannot be replaced", place.path)))?;
            Ok((parent, item.name))
        }
    }
}

/// What finding the folder of `place` and a file there reads (the folders from its base
/// down with their items, then the file's row and item; see [`slot`]), and whether any lock
/// is stored (the first rows of `locks`, as `tree::locks` asks first): one round trip on
/// PostgreSQL (`meta::kv::fetch_ahead`) before a change or its check starts, where these
/// are read one after the other. Nothing on redb.
pub(crate) fn fetch_place<'t>(
    items: &'t impl Readable<u64, &'static [u8]>,
    children: &'t impl Readable<(u64, &'static str), u64>,
    locks: &'t impl Readable<u64, &'static [u8]>,
    place: &Place,
) -> Result<()> {
    if children.on_postgres().is_none() {
        return Ok(());
    }
    let folder = place.rel.parent();
    let steps = folder.iter().flat_map(crate::meta::txn::folder_steps).chain(place.rel.name().map(str::to_owned));
    let chain = crate::meta::kv::folder_chain_ahead(children, items, place.base, steps);
    crate::meta::kv::fetch_ahead([locks.range_ahead::<u64>(..), chain])
}

/// The folder an item at `place` goes in and its name there, in a read (see [`slot`]).
pub(crate) fn slot_read(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    place: &Place,
) -> Result<(Item, String)> {
    match (place.rel.parent(), place.rel.name()) {
        (Some(parent), Some(name)) => Ok((txn::resolve_folder(items, children, place.base, &parent)?, name.to_owned())),
        _ => {
            let item = txn::get_item(items, place.base)?.ok_or_else(|| Error::not_found(What::Item))?;
            let parent = txn::get_item(items, item.parent)?
                .ok_or_else(|| Error::Forbidden(format!("{} cannot be replaced", place.path)))?;
            Ok((parent, item.name))
        }
    }
}

/// A name in `folder` not taken yet, starting from `name` (upload links never overwrite).
pub(crate) fn free_name(children: &impl Readable<(u64, &'static str), u64>, folder: u64, name: &str) -> Result<String> {
    let mut taken = HashSet::new();
    let mut candidate = name.to_owned();
    for _ in 0..10_000 {
        if txn::lookup_child(children, folder, &candidate)?.is_none() {
            return Ok(candidate);
        }
        taken.insert(candidate);
        candidate = distinct(name, &taken);
    }
    Err(Error::Conflict(format!("too many files named like '{name}'")))
}
