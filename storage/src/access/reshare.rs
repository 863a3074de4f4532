//! Re-sharing: a grant may let its grantee make download links of what it lets them read
//! (Nextcloud's "re-share"). It is off unless the owner gives it, except that a grant to a
//! `downloader` has it unless the owner says otherwise (see [`default_for`]).
//!
//! A link made through a grant belongs to the item's owner (it lists among theirs, their
//! account's state decides it, transfers carry it), and remembers its maker. It lives only
//! while a grant to its maker on the item or a folder above still allows links: revoking or
//! narrowing the grant, the maker's account being disabled or deleted, or the item being
//! moved out of the granted folder ends it. This is decided on every use, from the rows as
//! they are then, so no change elsewhere has to remember to end these links.

use crate::error::{Error, Result, What};
use crate::meta::db::{self, ITEMS, LINK_MAKERS, SHARE_EXPIRY, SHARE_RESHARE, SHARES, SHARES_BY_ITEM, USERS};
use crate::meta::kv::{ReadTxn, Readable};
use crate::meta::model::{Item, Link, Principal, Role, Share, User};
use crate::meta::names::DrivePath;
use crate::meta::txn;

use super::{Access, place, resolve_place};

/// Whether a new grant lets its grantee make links when its owner did not say. A downloader
/// is the "client" of the services davit replaces: it has no drive of its own and the way it
/// hands a file on, or fetches it from a script, is a download URL. The owner chose to let it
/// read the file, sees every link it makes (`GET /links`), and ends them all by revoking or
/// narrowing the grant, so the default gives no reach the owner cannot see and take back.
/// Other roles can write, and a user who can write could re-publish anything anyway, but
/// their grants are usually between colleagues, where a public URL is a surprise: off.
pub(crate) fn default_for(grantee: Role) -> bool {
    grantee == Role::Downloader
}

/// The reason every check below gives, so that nothing tells which part failed.
fn ended() -> Error {
    Error::Gone("this link ended with the grant it was made through".into())
}

/// The tables a grant's terms are read from.
pub(crate) struct GrantTables<S, B, R, E> {
    pub shares: S,
    pub by_item: B,
    pub reshare: R,
    pub expiry: E,
}

/// Whether a grant to `maker` from `owner` on `item` or a folder above it allows links now
/// (it allows them and has not reached its end).
pub(crate) fn grant_allows_links(
    items: &impl Readable<u64, &'static [u8]>,
    g: &GrantTables<
        impl Readable<u64, &'static [u8]>,
        impl Readable<(u64, u64), u64>,
        impl Readable<u64, u64>,
        impl Readable<u64, u64>,
    >,
    maker: u64,
    owner: u64,
    item: u64,
) -> Result<bool> {
    let (shares, by_item, reshare) = (&g.shares, &g.by_item, &g.reshare);
    let now = crate::meta::model::now_nanos();
    let mut cur = item;
    // Bounded like every walk up the tree: a path has at most 4096 bytes.
    for _ in 0..4096 {
        if cur == 0 {
            break;
        }
        if let Some(share_id) = by_item.get((cur, maker))?.map(|v| v.value()) {
            let allows = reshare.get(share_id)?.is_some_and(|v| v.value() == 1)
                && !super::grant_expired(&g.expiry, share_id, now)?;
            if allows
                && let Some(v) = shares.get(share_id)?
                && db::decode::<Share>(v.value())?.owner == owner
            {
                return Ok(true);
            }
        }
        cur = txn::get_item(items, cur)?.map_or(0, |i| i.parent);
    }
    Ok(false)
}

/// A link made through a grant is usable only while the grant allows it (see the module).
/// Links made by their owner pass.
pub(crate) fn check_made_link(
    makers: &impl Readable<u64, u64>,
    users: &impl Readable<u64, &'static [u8]>,
    items: &impl Readable<u64, &'static [u8]>,
    g: &GrantTables<
        impl Readable<u64, &'static [u8]>,
        impl Readable<(u64, u64), u64>,
        impl Readable<u64, u64>,
        impl Readable<u64, u64>,
    >,
    link: &Link,
) -> Result<()> {
    let Some(maker) = makers.get(link.id)?.map(|v| v.value()) else { return Ok(()) };
    let Some(v) = users.get(maker)? else { return Err(ended()) };
    let user: User = db::decode(v.value())?;
    if crate::auth::account_usable(&user).is_err() {
        return Err(ended());
    }
    if !grant_allows_links(items, g, maker, link.owner, link.item)? {
        return Err(ended());
    }
    Ok(())
}

/// The grant tables in a read transaction.
#[allow(clippy::type_complexity)]
fn read_grants(
    t: &ReadTxn,
) -> Result<
    GrantTables<
        crate::meta::kv::ReadTable<u64, &'static [u8]>,
        crate::meta::kv::ReadTable<(u64, u64), u64>,
        crate::meta::kv::ReadTable<u64, u64>,
        crate::meta::kv::ReadTable<u64, u64>,
    >,
> {
    Ok(GrantTables {
        shares: t.open_table(SHARES)?,
        by_item: t.open_table(SHARES_BY_ITEM)?,
        reshare: t.open_table(SHARE_RESHARE)?,
        expiry: t.open_table(SHARE_EXPIRY)?,
    })
}

/// [`check_made_link`] in a read transaction.
pub(crate) fn check_made_link_read(t: &ReadTxn, link: &Link) -> Result<()> {
    check_made_link(&t.open_table(LINK_MAKERS)?, &t.open_table(USERS)?, &t.open_table(ITEMS)?, &read_grants(t)?, link)
}

/// [`check_made_link`] in a write transaction, with its items table (redb opens a table
/// once at a time in a write transaction, and the tree's changes hold that one open).
pub(crate) fn check_made_link_write(
    txn: &crate::meta::kv::WriteTxn,
    items: &impl Readable<u64, &'static [u8]>,
    link: &Link,
) -> Result<()> {
    let g = GrantTables {
        shares: txn.open_table(SHARES)?,
        by_item: txn.open_table(SHARES_BY_ITEM)?,
        reshare: txn.open_table(SHARE_RESHARE)?,
        expiry: txn.open_table(SHARE_EXPIRY)?,
    };
    check_made_link(&txn.open_table(LINK_MAKERS)?, &txn.open_table(USERS)?, items, &g, link)
}

/// What a new link at `path` reaches: the item, its owner, and the grantee making it when
/// it is reached through a grant (then only a download link, and only when the grant
/// allows links).
pub(crate) fn link_target(
    t: &ReadTxn,
    p: &Principal,
    path: &DrivePath,
    upload: bool,
) -> Result<(Item, u64, Option<u64>)> {
    if !path.in_shared() {
        // A downloader links only what is shared with it, not a file transferred to it.
        if !p.role.writes() {
            return Err(Error::Forbidden(format!("the {} role links only what is shared with it", p.role.as_str())));
        }
        return Ok((super::sharing::own_item(t, p, path)?, p.user_id, None));
    }
    let place = place(t, p, path.clone())?;
    if !matches!(place.access, Access::Grant { .. }) {
        return Err(Error::Forbidden(format!("{path} is not an item shared with you")));
    }
    if upload {
        return Err(Error::Forbidden("a link made through a grant can only download".into()));
    }
    place.check_read(p)?;
    let item = resolve_place(&t.open_table(ITEMS)?, &t.open_table(crate::meta::db::CHILDREN)?, &place)?
        .ok_or_else(|| Error::missing(What::Item, format!("{path} not found")))?;
    let allowed = grant_allows_links(&t.open_table(ITEMS)?, &read_grants(t)?, p.user_id, place.owner, item.id)?;
    if !allowed {
        return Err(Error::Forbidden(format!(
            "{path} is shared with you without the right to make links; its owner can give it"
        )));
    }
    Ok((item, place.owner, Some(p.user_id)))
}

/// Revokes, for good, the active links `maker` made that their grants no longer allow: run
/// in the transaction that revokes or narrows a grant, so that giving the right back later
/// does not bring old links back to life.
pub(crate) fn end_links_no_longer_allowed(txn: &crate::meta::kv::WriteTxn, maker: u64) -> Result<()> {
    use crate::meta::db::{LINKS, LINKS_BY_MAKER};
    use crate::meta::model::LinkState;
    let ids: Vec<u64> = txn
        .open_table(LINKS_BY_MAKER)?
        .range((maker, 0)..(maker + 1, 0))?
        .map(|e| e.map(|(k, _)| k.value().1))
        .collect::<std::result::Result<_, _>>()?;
    let items = txn.open_table(ITEMS)?;
    for id in ids {
        let Some(v) = txn.open_table(LINKS)?.get(id)?.map(|v| v.value().to_vec()) else { continue };
        let mut link: Link = db::decode(&v)?;
        if link.state == LinkState::Active && check_made_link_write(txn, &items, &link).is_err() {
            link.state = LinkState::Revoked;
            txn.open_table(LINKS)?.insert(id, db::encode(&link).as_slice())?;
        }
    }
    Ok(())
}
