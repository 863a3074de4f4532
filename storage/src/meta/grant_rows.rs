//! The rows that keep grants and links attached to items and users: their tables and
//! indexes, kept in step when an item is removed or changes owner, or a user is deleted.
//! This is bookkeeping below the rules (`access::sharing` and `access::links` decide who
//! may grant or link), so the transaction helpers can call it without reaching up.

use crate::meta::kv::{Readable, Table, WriteTxn};

use crate::error::Result;
use crate::meta::db::{
    self, LINKS, LINKS_BY_ITEM, LINKS_BY_OWNER, SHARES, SHARES_BY_GRANTEE, SHARES_BY_ITEM, SHARES_BY_OWNER,
};
use crate::meta::model::{Link, LinkState, Share};

pub(crate) fn remove_share_rows(txn: &WriteTxn, s: &Share) -> Result<()> {
    txn.open_table(SHARES)?.remove(s.id)?;
    txn.open_table(SHARES_BY_ITEM)?.remove((s.item, s.grantee))?;
    txn.open_table(SHARES_BY_GRANTEE)?.remove((s.grantee, s.id))?;
    txn.open_table(SHARES_BY_OWNER)?.remove((s.owner, s.id))?;
    Ok(())
}

/// The rows of an index keyed by (`first`, second): (second, value), in order.
fn index_rows(txn: &WriteTxn, index: Table<(u64, u64), u64>, first: u64) -> Result<Vec<(u64, u64)>> {
    let rows = txn.open_table(index)?;
    let out = rows
        .range((first, 0)..(first + 1, 0))?
        .map(|e| e.map(|(k, v)| (k.value().1, v.value())))
        .collect::<std::result::Result<_, _>>()?;
    Ok(out)
}

/// The records with these ids that exist.
fn records<T: db::Stored>(
    txn: &WriteTxn,
    table: Table<u64, &'static [u8]>,
    ids: impl IntoIterator<Item = u64>,
) -> Result<Vec<T>> {
    let t = txn.open_table(table)?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(v) = t.get(id)? {
            out.push(db::decode(v.value())?);
        }
    }
    Ok(out)
}

fn shares_on(txn: &WriteTxn, item: u64) -> Result<Vec<Share>> {
    records(txn, SHARES, index_rows(txn, SHARES_BY_ITEM, item)?.into_iter().map(|(_, share)| share))
}

fn links_on(txn: &WriteTxn, item: u64) -> Result<Vec<Link>> {
    records(txn, LINKS, index_rows(txn, LINKS_BY_ITEM, item)?.into_iter().map(|(link, _)| link))
}

/// Ends every grant and link on an item that is being removed. Links are kept, marked,
/// so their URL answers 410 Gone rather than 404.
pub(crate) fn forget_item(txn: &WriteTxn, item: u64) -> Result<()> {
    for s in shares_on(txn, item)? {
        remove_share_rows(txn, &s)?;
    }
    for mut l in links_on(txn, item)? {
        txn.open_table(LINKS_BY_ITEM)?.remove((item, l.id))?;
        l.state = LinkState::Deleted;
        txn.open_table(LINKS)?.insert(l.id, db::encode(&l).as_slice())?;
    }
    // A deleted bucket is readable to no one any more (`access::s3_view`).
    txn.open_table(crate::meta::db::S3_AUDIENCE)?.remove(item)?;
    Ok(())
}

/// Grants and links on an item follow it to its new owner; a grant to that owner ends.
pub(crate) fn reown_item(txn: &WriteTxn, item: u64, old: u64, new: u64) -> Result<()> {
    for mut s in shares_on(txn, item)? {
        remove_share_rows(txn, &s)?;
        if s.grantee != new {
            s.owner = new;
            put_share(txn, &s)?;
        }
    }
    for mut l in links_on(txn, item)? {
        txn.open_table(LINKS_BY_OWNER)?.remove((old, l.id))?;
        l.owner = new;
        txn.open_table(LINKS_BY_OWNER)?.insert((new, l.id), item)?;
        txn.open_table(LINKS_BY_ITEM)?.insert((item, l.id), new)?;
        txn.open_table(LINKS)?.insert(l.id, db::encode(&l).as_slice())?;
    }
    Ok(())
}

pub(crate) fn put_share(txn: &WriteTxn, s: &Share) -> Result<()> {
    txn.open_table(SHARES)?.insert(s.id, db::encode(s).as_slice())?;
    txn.open_table(SHARES_BY_ITEM)?.insert((s.item, s.grantee), s.id)?;
    txn.open_table(SHARES_BY_GRANTEE)?.insert((s.grantee, s.id), s.item)?;
    txn.open_table(SHARES_BY_OWNER)?.insert((s.owner, s.id), s.item)?;
    Ok(())
}

/// Ends every grant a user made or received and every link they made (their items are
/// being deleted with them).
pub(crate) fn forget_user(txn: &WriteTxn, user: u64) -> Result<()> {
    let received = index_rows(txn, SHARES_BY_GRANTEE, user)?;
    let made = index_rows(txn, SHARES_BY_OWNER, user)?;
    let shares: Vec<Share> = records(txn, SHARES, received.into_iter().chain(made).map(|(share, _)| share))?;
    for s in shares {
        remove_share_rows(txn, &s)?;
    }
    let links: Vec<Link> = records(txn, LINKS, index_rows(txn, LINKS_BY_OWNER, user)?.into_iter().map(|(l, _)| l))?;
    for mut l in links {
        txn.open_table(LINKS_BY_OWNER)?.remove((user, l.id))?;
        txn.open_table(LINKS_BY_ITEM)?.remove((l.item, l.id))?;
        l.state = LinkState::Deleted;
        txn.open_table(LINKS)?.insert(l.id, db::encode(&l).as_slice())?;
    }
    Ok(())
}
