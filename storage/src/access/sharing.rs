//! Sharing between users: grants of `read` or `read-write` on an item (and what is below
//! it). Grants attach to item ids, so renames and moves keep
//! them; deleting an item or a user ends them in the same transaction (`meta::grant_rows`).
//! Transfers of ownership are in `tree::relocate`.

use crate::meta::kv::{ReadTxn, Readable};

use crate::Storage;
use crate::access;
use crate::error::{Error, Result, What};
use crate::meta::db::{
    self, CHILDREN, ITEMS, SHARE_EXPIRY, SHARE_RESHARE, SHARES, SHARES_BY_ITEM, SHARES_BY_OWNER, USERS,
};
use crate::meta::grant_rows::{put_share, remove_share_rows};
use crate::meta::model::{Item, Kind, Principal, Share, User, now_nanos};
use crate::meta::names::{DrivePath, SHARED_ROOT};
use crate::meta::txn;

/// A grant as its owner or its grantee sees it.
#[derive(Clone, Debug)]
pub struct ShareInfo {
    pub share: Share,
    /// For the owner, the item's path in their drive; for the grantee, where it appears
    /// under `/shared`.
    pub path: String,
    pub kind: Kind,
    pub owner_name: String,
    pub grantee_name: String,
    /// For "who has access": the folder whose grant reaches the asked item, when not itself.
    pub inherited_from: Option<String>,
    /// The grantee may make download links of what the grant lets them read.
    pub reshare: bool,
    /// When the grant ends by itself (Unix nanoseconds); past it, it reaches nothing.
    pub expires: Option<i64>,
}

/// Whether a grant allows links (`access::reshare`).
fn reshare_of(reshare: &impl Readable<u64, u64>, share: u64) -> Result<bool> {
    Ok(reshare.get(share)?.is_some_and(|v| v.value() == 1))
}

/// Sets when a grant ends, in the transaction that writes the grant.
fn put_expiry(txn: &crate::meta::kv::WriteTxn, share: u64, at: i64) -> Result<()> {
    if at <= now_nanos() {
        return Err(Error::InvalidInput("a grant must end in the future".into()));
    }
    txn.open_table(SHARE_EXPIRY)?.insert(share, at as u64)?;
    Ok(())
}

/// Sets whether a grant allows links, in the transaction that writes the grant.
pub(crate) fn put_reshare(txn: &crate::meta::kv::WriteTxn, share: u64, on: bool) -> Result<()> {
    let mut t = txn.open_table(SHARE_RESHARE)?;
    if on {
        t.insert(share, 1)?;
    } else {
        t.remove(share)?;
    }
    Ok(())
}

/// The path of an item in its owner's drive.
pub(crate) fn path_of(items: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<String> {
    let mut names = Vec::new();
    let mut cur = txn::get_item(items, id)?.ok_or_else(|| Error::not_found(What::Item))?;
    while cur.parent != 0 && names.len() < 4096 {
        names.push(cur.name.clone());
        cur = txn::get_item(items, cur.parent)?.ok_or_else(|| Error::not_found(What::Item))?;
    }
    names.reverse();
    Ok(format!("/{}", names.join("/")))
}

/// A grant as its owner sees it: the item's path in their drive.
fn owner_view(
    items: &impl Readable<u64, &'static [u8]>,
    users: &impl Readable<u64, &'static [u8]>,
    (reshare, expiry): (&impl Readable<u64, u64>, &impl Readable<u64, u64>),
    share: Share,
    kind: Kind,
) -> Result<ShareInfo> {
    Ok(ShareInfo {
        reshare: reshare_of(reshare, share.id)?,
        expires: access::grant_end(expiry, share.id)?,
        path: path_of(items, share.item)?,
        kind,
        owner_name: username(users, share.owner)?,
        grantee_name: username(users, share.grantee)?,
        inherited_from: None,
        share,
    })
}

fn username(users: &impl Readable<u64, &'static [u8]>, id: u64) -> Result<String> {
    let v = users.get(id)?.ok_or_else(|| Error::not_found(What::User))?;
    Ok(db::decode::<User>(v.value())?.username)
}

/// The item at `path` in the caller's own drive: only one's own items are shared, linked
/// or transferred.
pub(crate) fn own_item(t: &ReadTxn, p: &Principal, path: &DrivePath) -> Result<Item> {
    if path.in_shared() {
        return Err(Error::Forbidden("only items in your own drive can be shared, linked or transferred".into()));
    }
    if path.is_root() {
        return Err(Error::Forbidden("the drive root cannot be shared, linked or transferred".into()));
    }
    txn::resolve(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, p.root, path)?
        .ok_or_else(|| Error::missing(What::Item, format!("{path} not found")))
}

impl Storage {
    /// Shares the item at `path` of the caller's drive with a user (by username or email),
    /// or changes the permission of an existing grant to them.
    pub async fn share(&self, p: &Principal, path: &str, with: &str, write: bool) -> Result<ShareInfo> {
        self.share_with(p, path, with, write, None, None).await
    }

    /// [`Storage::share`], saying whether the grantee may make download links (`reshare`):
    /// None keeps an existing grant's setting and gives a new one the default of the
    /// grantee's role (`access::reshare::default_for`). `expires_at` (Unix nanoseconds) is
    /// when the grant ends by itself; None keeps an existing grant's end (a new one has none).
    pub async fn share_with(
        &self,
        p: &Principal,
        path: &str,
        with: &str,
        write: bool,
        reshare: Option<bool>,
        expires_at: Option<i64>,
    ) -> Result<ShareInfo> {
        // A downloader shares nothing, even a file transferred into its drive (found by
        // probing: it could, and the grantee read it).
        if !p.role.writes() {
            return Err(Error::Forbidden(format!("the {} role cannot share", p.role.as_str())));
        }
        let path = DrivePath::parse(path)?;
        let grantee =
            self.find_user(with).await.map_err(|_| Error::missing(What::User, format!("no user \'{with}\'")))?;
        if grantee.id == p.user_id {
            return Err(Error::InvalidInput("you cannot share with yourself".into()));
        }
        let p2 = p.clone();
        let item = self.core.db.read(move |t| own_item(t, &p2, &path)).await?;
        let (owner, now) = (p.user_id, now_nanos());
        let item_id = item.id;
        let share = self
            .core
            .db
            .write((), move |ctx| {
                let txn = ctx.txn;
                txn.open_table(ITEMS)?.get(item_id)?.ok_or_else(|| Error::not_found(What::Item))?;
                txn.open_table(USERS)?.get(grantee.id)?.ok_or_else(|| Error::not_found(What::User))?;
                let existing = txn.open_table(SHARES_BY_ITEM)?.get((item_id, grantee.id))?.map(|v| v.value());
                let (share, links) = match existing {
                    Some(id) => {
                        let mut s: Share = db::decode(
                            txn.open_table(SHARES)?.get(id)?.ok_or_else(|| Error::not_found(What::Share))?.value(),
                        )?;
                        s.write = write;
                        let links = reshare_of(&txn.open_table(SHARE_RESHARE)?, id)?;
                        (s, reshare.unwrap_or(links))
                    }
                    None => {
                        let s = Share {
                            id: txn.next_id("next_share_id")?,
                            item: item_id,
                            owner,
                            grantee: grantee.id,
                            write,
                            created: now,
                        };
                        (s, reshare.unwrap_or(crate::access::reshare::default_for(grantee.role)))
                    }
                };
                put_share(txn, &share)?;
                put_reshare(txn, share.id, links)?;
                if let Some(at) = expires_at {
                    put_expiry(txn, share.id, at)?;
                }
                crate::access::reshare::end_links_no_longer_allowed(txn, share.grantee)?;
                Ok(share)
            })
            .await?;
        self.audit(
            crate::audit::Event::new("share_created")
                .by(p)
                .target(share.grantee)
                .with("share", share.id)
                .with("item", share.item)
                .with("write", write),
        )
        .await;
        self.share_info(share).await
    }

    async fn share_info(&self, share: Share) -> Result<ShareInfo> {
        self.core
            .db
            .read(move |t| {
                let items = t.open_table(ITEMS)?;
                let users = t.open_table(USERS)?;
                let item = txn::get_item(&items, share.item)?.ok_or_else(|| Error::not_found(What::Item))?;
                let terms = (&t.open_table(SHARE_RESHARE)?, &t.open_table(SHARE_EXPIRY)?);
                owner_view(&items, &users, terms, share, item.kind)
            })
            .await
    }

    /// What the caller shared, and what was shared with them (with where it appears).
    pub async fn list_shares(&self, p: &Principal) -> Result<(Vec<ShareInfo>, Vec<ShareInfo>)> {
        let me = p.user_id;
        self.core
            .db
            .read(move |t| {
                let items = t.open_table(ITEMS)?;
                let users = t.open_table(USERS)?;
                let shares = t.open_table(SHARES)?;
                let reshare = t.open_table(SHARE_RESHARE)?;
                let expiry = t.open_table(SHARE_EXPIRY)?;
                let mut mine = Vec::new();
                for e in t.open_table(SHARES_BY_OWNER)?.range((me, 0)..(me + 1, 0))? {
                    let Some(v) = shares.get(e?.0.value().1)? else { continue };
                    let share: Share = db::decode(v.value())?;
                    let Some(item) = txn::get_item(&items, share.item)? else { continue };
                    mine.push(owner_view(&items, &users, (&reshare, &expiry), share, item.kind)?);
                }
                let grants = access::grants_to(t, me)?;
                let me_name = username(&users, me)?;
                let mut with_me = Vec::new();
                for g in &grants.top {
                    with_me.push(ShareInfo {
                        reshare: reshare_of(&reshare, g.share.id)?,
                        expires: access::grant_end(&expiry, g.share.id)?,
                        path: format!("/{SHARED_ROOT}/{}/{}", g.owner_name, g.shown_as),
                        kind: g.item.kind,
                        owner_name: g.owner_name.clone(),
                        grantee_name: me_name.clone(),
                        inherited_from: None,
                        share: g.share.clone(),
                    });
                }
                // Grants inside a granted folder appear at their place in it.
                for (&item_id, &(share_id, _)) in &grants.by_item {
                    if grants.top.iter().any(|g| g.item.id == item_id) {
                        continue;
                    }
                    let Some(v) = shares.get(share_id)? else { continue };
                    let share: Share = db::decode(v.value())?;
                    let Some(item) = txn::get_item(&items, item_id)? else { continue };
                    let mut names = vec![item.name.clone()];
                    let mut up = item.parent;
                    let mut top = None;
                    while up != 0 && names.len() < 4096 {
                        if let Some(g) = grants.top.iter().find(|g| g.item.id == up) {
                            top = Some(g);
                            break;
                        }
                        let it = txn::get_item(&items, up)?.ok_or_else(|| Error::not_found(What::Item))?;
                        names.push(it.name.clone());
                        up = it.parent;
                    }
                    let Some(g) = top else { continue };
                    names.reverse();
                    with_me.push(ShareInfo {
                        reshare: reshare_of(&reshare, share.id)?,
                        expires: access::grant_end(&expiry, share.id)?,
                        path: format!("/{SHARED_ROOT}/{}/{}/{}", g.owner_name, g.shown_as, names.join("/")),
                        kind: item.kind,
                        owner_name: g.owner_name.clone(),
                        grantee_name: me_name.clone(),
                        inherited_from: None,
                        share,
                    });
                }
                with_me.sort_by(|a, b| a.path.cmp(&b.path));
                Ok((mine, with_me))
            })
            .await
    }

    /// Changes a grant's permission (its owner only).
    pub async fn update_share(&self, p: &Principal, id: u64, write: bool) -> Result<ShareInfo> {
        self.update_share_terms(p, id, Some(write), None, None).await
    }

    /// Changes a grant's permission, whether it allows links and when it ends (its owner
    /// only); None leaves that part as it is. Turning links off ends the links made through
    /// the grant.
    pub async fn update_share_terms(
        &self,
        p: &Principal,
        id: u64,
        write: Option<bool>,
        reshare: Option<bool>,
        expires_at: Option<i64>,
    ) -> Result<ShareInfo> {
        let owner = p.user_id;
        let share = self
            .core
            .db
            .write((), move |ctx| {
                let v = ctx.txn.open_table(SHARES)?.get(id)?.map(|v| db::decode::<Share>(v.value())).transpose()?;
                let mut s = v.filter(|s| s.owner == owner).ok_or_else(|| Error::not_found(What::Share))?;
                // Links that ended with the grant as it is (past its end) stay ended when
                // the end moves later.
                crate::access::reshare::end_links_no_longer_allowed(ctx.txn, s.grantee)?;
                if let Some(write) = write {
                    s.write = write;
                }
                put_share(ctx.txn, &s)?;
                if let Some(at) = expires_at {
                    put_expiry(ctx.txn, s.id, at)?;
                }
                if let Some(on) = reshare {
                    put_reshare(ctx.txn, s.id, on)?;
                    crate::access::reshare::end_links_no_longer_allowed(ctx.txn, s.grantee)?;
                }
                Ok(s)
            })
            .await?;
        let mut event = crate::audit::Event::new("share_changed").by(p).target(share.grantee).with("share", id);
        // Only what changed, as for an admin's change of a user.
        if let Some(write) = write {
            event = event.with("write", write);
        }
        if let Some(reshare) = reshare {
            event = event.with("reshare", reshare);
        }
        if let Some(at) = expires_at {
            event = event.with("expires_at", at);
        }
        self.audit(event).await;
        self.share_info(share).await
    }

    /// Ends a grant: its owner revokes it, or its grantee leaves it.
    pub async fn delete_share(&self, p: &Principal, id: u64) -> Result<()> {
        let me = p.user_id;
        let s = self
            .core
            .db
            .write((), move |ctx| {
                let v = ctx.txn.open_table(SHARES)?.get(id)?.map(|v| db::decode::<Share>(v.value())).transpose()?;
                let s = v.filter(|s| s.owner == me || s.grantee == me).ok_or_else(|| Error::not_found(What::Share))?;
                put_reshare(ctx.txn, s.id, false)?;
                ctx.txn.open_table(SHARE_EXPIRY)?.remove(s.id)?;
                remove_share_rows(ctx.txn, &s)?;
                crate::access::reshare::end_links_no_longer_allowed(ctx.txn, s.grantee)?;
                Ok(s)
            })
            .await?;
        let other = if s.owner == me { s.grantee } else { s.owner };
        self.audit(
            crate::audit::Event::new("share_revoked").by(p).target(other).with("share", id).with("item", s.item),
        )
        .await;
        Ok(())
    }

    /// Who has access to the item at `path` of the caller's drive: grants on it and on the
    /// folders above it.
    pub async fn shares_of_path(&self, p: &Principal, path: &str) -> Result<Vec<ShareInfo>> {
        let path = DrivePath::parse(path)?;
        let p2 = p.clone();
        self.core
            .db
            .read(move |t| {
                let item = own_item(t, &p2, &path)?;
                let items = t.open_table(ITEMS)?;
                let users = t.open_table(USERS)?;
                let shares = t.open_table(SHARES)?;
                let by_item = t.open_table(SHARES_BY_ITEM)?;
                let reshare = t.open_table(SHARE_RESHARE)?;
                let expiry = t.open_table(SHARE_EXPIRY)?;
                let mut out = Vec::new();
                let mut cur = Some(item.clone());
                while let Some(it) = cur {
                    if it.parent == 0 {
                        break;
                    }
                    for e in by_item.range((it.id, 0)..(it.id + 1, 0))? {
                        let Some(v) = shares.get(e?.1.value())? else { continue };
                        let share: Share = db::decode(v.value())?;
                        out.push(ShareInfo {
                            reshare: reshare_of(&reshare, share.id)?,
                            expires: access::grant_end(&expiry, share.id)?,
                            path: path.to_string(),
                            kind: item.kind,
                            owner_name: username(&users, share.owner)?,
                            grantee_name: username(&users, share.grantee)?,
                            inherited_from: (it.id != item.id).then(|| path_of(&items, it.id)).transpose()?,
                            share,
                        });
                    }
                    cur = txn::get_item(&items, it.parent)?;
                }
                Ok(out)
            })
            .await
    }
}
