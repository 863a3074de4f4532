//! Sharing between users: grants of `read` or `read-write` on an item (and what is below
//! it). Grants attach to item ids, so renames and moves keep
//! them; deleting an item or a user ends them in the same transaction (`meta::grant_rows`).
//! Transfers of ownership are in `tree::relocate`.

use crate::meta::kv::{ReadTxn, Readable};

use crate::Storage;
use crate::access;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHILDREN, ITEMS, SHARES, SHARES_BY_ITEM, SHARES_BY_OWNER, USERS};
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
    share: Share,
    kind: Kind,
) -> Result<ShareInfo> {
    Ok(ShareInfo {
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
                let share = match existing {
                    Some(id) => {
                        let mut s: Share = db::decode(
                            txn.open_table(SHARES)?.get(id)?.ok_or_else(|| Error::not_found(What::Share))?.value(),
                        )?;
                        s.write = write;
                        s
                    }
                    None => Share {
                        id: txn.next_id("next_share_id")?,
                        item: item_id,
                        owner,
                        grantee: grantee.id,
                        write,
                        created: now,
                    },
                };
                put_share(txn, &share)?;
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
                owner_view(&items, &users, share, item.kind)
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
                let mut mine = Vec::new();
                for e in t.open_table(SHARES_BY_OWNER)?.range((me, 0)..(me + 1, 0))? {
                    let Some(v) = shares.get(e?.0.value().1)? else { continue };
                    let share: Share = db::decode(v.value())?;
                    let Some(item) = txn::get_item(&items, share.item)? else { continue };
                    mine.push(owner_view(&items, &users, share, item.kind)?);
                }
                let grants = access::grants_to(t, me)?;
                let me_name = username(&users, me)?;
                let mut with_me = Vec::new();
                for g in &grants.top {
                    with_me.push(ShareInfo {
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
        let owner = p.user_id;
        let share = self
            .core
            .db
            .write((), move |ctx| {
                let v = ctx.txn.open_table(SHARES)?.get(id)?.map(|v| db::decode::<Share>(v.value())).transpose()?;
                let mut s = v.filter(|s| s.owner == owner).ok_or_else(|| Error::not_found(What::Share))?;
                s.write = write;
                put_share(ctx.txn, &s)?;
                Ok(s)
            })
            .await?;
        self.audit(
            crate::audit::Event::new("share_changed")
                .by(p)
                .target(share.grantee)
                .with("share", id)
                .with("write", write),
        )
        .await;
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
                remove_share_rows(ctx.txn, &s).map(|()| s)
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
