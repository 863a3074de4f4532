//! Locks as rows of the metadata store, so that every node of a deployment sees the same
//! locks: a lock taken through one node binds a write through any other, because every
//! change reads these tables in the transaction that commits it.
//!
//! `LOCKS` holds each lock's record; `LOCKS_BY_ITEM` finds the locks taken on an item and
//! `LOCKS_BELOW` those taken on anything below a folder, so a check costs one range scan
//! per id of the path's chain (plus one for what is below it), however many locks the
//! store holds. An expired lock is absent to every rule, and the next lock operation
//! removes it (`LOCK_EXPIRY` lists locks by expiry for that).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Chain, LockInfo};
use crate::access::Place;
use crate::error::{Error, Result};
use crate::meta::db::{self, LOCK_EXPIRY, LOCKS, LOCKS_BELOW, LOCKS_BY_ITEM, ReadTxn, Readable, WriteTxn};
use crate::meta::kv::{ReadTable, WriteTable};
use crate::meta::txn;

/// A lock as stored (see docs/format.md). Times are Unix nanoseconds.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct LockRow {
    pub token: String,
    /// The locked item and its ancestors, root first, the item last.
    pub chain: Vec<u64>,
    pub path: String,
    pub href: String,
    pub principal: Option<String>,
    pub owner_xml: Option<Vec<u8>>,
    /// The timeout asked for, in nanoseconds; none is infinite.
    pub timeout: Option<u64>,
    pub expires: Option<u64>,
    pub shared: bool,
    pub deep: bool,
}
crate::meta::db::stored!(LockRow = "lock");

impl LockRow {
    fn item(&self) -> Result<u64> {
        self.chain.last().copied().ok_or_else(|| Error::corrupt("a stored lock has no item"))
    }

    /// Every lock taken now expires (see `bounded`); one stored with no expiry was taken
    /// before that rule, when a LOCK without `Timeout` lasted for ever, and has lapsed.
    fn live(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| e > now)
    }

    pub fn info(&self, id: u64) -> LockInfo {
        LockInfo {
            id,
            token: self.token.clone(),
            chain: self.chain.clone(),
            path: self.path.clone(),
            href: self.href.clone(),
            principal: self.principal.clone(),
            owner_xml: self.owner_xml.clone(),
            timeout: self.timeout.map(Duration::from_nanos),
            expires: self.expires.map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
            shared: self.shared,
            deep: self.deep,
        }
    }
}

/// Now, as lock times are kept.
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The longest an exclusive and a shared lock live without a refresh: the bounds dav-server
/// gives `Timeout: Infinite`, kept for a LOCK or refresh with no Timeout at all too (it left
/// those for ever: a lock that never expires outlives its holder's grant, account and the
/// server's restarts, and only a WebDAV UNLOCK with the token found by PROPFIND lifted it).
const MAX_EXCLUSIVE: Duration = Duration::from_secs(600);
const MAX_SHARED: Duration = Duration::from_secs(24 * 3600);

/// A lock's timeout: the one asked for, at most the bound; none asked for is the bound.
pub(crate) fn bounded(timeout: Option<Duration>, shared: bool) -> Duration {
    let max = if shared { MAX_SHARED } else { MAX_EXCLUSIVE };
    timeout.map_or(max, |d| d.min(max))
}

/// `now + timeout`, for a lock that expires.
pub(crate) fn expiry(now: u64, timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
}

/// The lock tables a check reads, opened in one read or write transaction.
pub(crate) struct Tables<L, I, B> {
    locks: L,
    by_item: I,
    below: B,
}

type ReadTables = Tables<ReadTable<u64, &'static [u8]>, ReadTable<(u64, u64), u64>, ReadTable<(u64, u64), u64>>;
type WriteTables<'t> =
    Tables<WriteTable<'t, u64, &'static [u8]>, WriteTable<'t, (u64, u64), u64>, WriteTable<'t, (u64, u64), u64>>;

pub(crate) fn open_read(t: &ReadTxn) -> Result<ReadTables> {
    Ok(Tables { locks: t.open_table(LOCKS)?, by_item: t.open_table(LOCKS_BY_ITEM)?, below: t.open_table(LOCKS_BELOW)? })
}

pub(crate) fn open_write(t: &WriteTxn) -> Result<WriteTables<'_>> {
    Ok(Tables { locks: t.open_table(LOCKS)?, by_item: t.open_table(LOCKS_BY_ITEM)?, below: t.open_table(LOCKS_BELOW)? })
}

/// No lock is stored: the one read most changes make here.
pub(crate) fn none_w(t: &WriteTxn) -> Result<bool> {
    Ok(t.open_table(LOCKS)?.iter()?.next().is_none())
}

impl<L, I, B> Tables<L, I, B>
where
    L: Readable<u64, &'static [u8]>,
    I: Readable<(u64, u64), u64>,
    B: Readable<(u64, u64), u64>,
{
    /// No lock is stored (the common case: every check ends here).
    pub fn none(&self) -> Result<bool> {
        Ok(self.locks.iter()?.next().is_none())
    }

    fn row(&self, id: u64) -> Result<Option<LockRow>> {
        self.locks.get(id)?.map(|v| db::decode::<LockRow>(v.value())).transpose()
    }

    /// The live locks taken on `item` with Depth 0.
    pub fn shallow_on(&self, item: u64, now: u64) -> Result<Vec<LockInfo>> {
        let mut out = Vec::new();
        for row in self.by_item.range((item, 0)..=(item, u64::MAX))? {
            let (k, deep) = row?;
            if deep.value() == 0
                && let Some(lock) = self.row(k.value().1)?
                && lock.live(now)
            {
                out.push(lock.info(k.value().1));
            }
        }
        Ok(out)
    }

    /// The live locks a rule about `chain` may need: those taken on its ids (only deep ones
    /// above the item) and, with `below`, those taken under its item. The rules in
    /// `super` filter them exactly as they would the whole set.
    pub fn candidates(&self, chain: &Chain, below: bool, now: u64) -> Result<Vec<LockInfo>> {
        let mut ids = Vec::new();
        let last = chain.ids.len().checked_sub(1);
        for (i, &item) in chain.ids.iter().enumerate() {
            let on_item = chain.complete && Some(i) == last;
            for row in self.by_item.range((item, 0)..=(item, u64::MAX))? {
                let (k, deep) = row?;
                if on_item || deep.value() == 1 {
                    ids.push(k.value().1);
                }
            }
        }
        if below
            && chain.complete
            && let Some(&item) = chain.ids.last()
        {
            for row in self.below.range((item, 0)..=(item, u64::MAX))? {
                ids.push(row?.0.value().1);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.row(id)?
                && row.live(now)
            {
                row.item()?; // a lock the rules can place, or an error, never a panic
                out.push(row.info(id));
            }
        }
        Ok(out)
    }

    /// Every lock taken on `item` or below it, live or not.
    fn on_or_below(&self, item: u64) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for row in self.by_item.range((item, 0)..=(item, u64::MAX))? {
            ids.push(row?.0.value().1);
        }
        for row in self.below.range((item, 0)..=(item, u64::MAX))? {
            ids.push(row?.0.value().1);
        }
        Ok(ids)
    }
}

/// Where `place` is in the tree: the ids from the owner's drive root down, so that every
/// path that reaches an item (one's drive, a share, a link) meets the same locks. `root` is
/// the caller's, for the virtual folders (`/shared`) that are no item.
pub(crate) fn chain_of(
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    root: u64,
    place: &Place,
) -> Result<Chain> {
    if place.is_virtual() {
        return Ok(Chain { ids: vec![root], complete: false });
    }
    let mut ids = Vec::new();
    let mut cur = place.base;
    while cur != 0 && ids.len() < 4096 {
        ids.push(cur);
        cur = txn::get_item(items, cur)?.map_or(0, |i| i.parent);
    }
    ids.reverse();
    let names = place.rel.names();
    let Some(&from) = ids.last() else { return Ok(Chain { ids, complete: false }) };
    let complete = txn::walk(children, from, names, |id| ids.push(id))? == names.len();
    Ok(Chain { ids, complete })
}

/// Stores a new lock; returns its id.
pub(crate) fn insert(t: &WriteTxn, row: &LockRow) -> Result<u64> {
    let id = t.next_id("next_lock_id")?;
    let item = row.item()?;
    t.open_table(LOCKS)?.insert(id, db::encode(row).as_slice())?;
    t.open_table(LOCKS_BY_ITEM)?.insert((item, id), u64::from(row.deep))?;
    let mut below = t.open_table(LOCKS_BELOW)?;
    for &above in &row.chain[..row.chain.len() - 1] {
        below.insert((above, id), item)?;
    }
    if let Some(e) = row.expires {
        t.open_table(LOCK_EXPIRY)?.insert((e, id), item)?;
    }
    Ok(id)
}

/// Removes a lock and its index rows; false if there was none.
pub(crate) fn remove(t: &WriteTxn, id: u64) -> Result<bool> {
    let Some(row) = ({
        let locks = t.open_table(LOCKS)?;
        locks.get(id)?.map(|v| db::decode::<LockRow>(v.value())).transpose()?
    }) else {
        return Ok(false);
    };
    let item = row.item()?;
    t.open_table(LOCKS)?.remove(id)?;
    t.open_table(LOCKS_BY_ITEM)?.remove((item, id))?;
    let mut below = t.open_table(LOCKS_BELOW)?;
    for &above in &row.chain[..row.chain.len() - 1] {
        below.remove((above, id))?;
    }
    if let Some(e) = row.expires {
        t.open_table(LOCK_EXPIRY)?.remove((e, id))?;
    }
    Ok(true)
}

/// Gives a lock a new timeout, counted from `now`.
pub(crate) fn set_timeout(t: &WriteTxn, id: u64, timeout: Option<Duration>, now: u64) -> Result<Option<LockRow>> {
    let mut locks = t.open_table(LOCKS)?;
    let Some(mut row) = locks.get(id)?.map(|v| db::decode::<LockRow>(v.value())).transpose()? else {
        return Ok(None);
    };
    let item = row.item()?;
    let mut expiry_rows = t.open_table(LOCK_EXPIRY)?;
    if let Some(e) = row.expires {
        expiry_rows.remove((e, id))?;
    }
    let timeout = Some(bounded(timeout, row.shared));
    row.timeout = timeout.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    row.expires = expiry(now, timeout);
    if let Some(e) = row.expires {
        expiry_rows.insert((e, id), item)?;
    }
    locks.insert(id, db::encode(&row).as_slice())?;
    Ok(Some(row))
}

/// How many expired locks one operation removes at most: the rest go with the next ones.
const PURGE_AT_ONCE: usize = 256;

/// Removes locks that expired by `now`.
pub(crate) fn purge_expired(t: &WriteTxn, now: u64) -> Result<usize> {
    let keys: Vec<(u64, u64)> = {
        let by_expiry = t.open_table(LOCK_EXPIRY)?;
        let mut keys = Vec::new();
        for row in by_expiry.range((0, 0)..=(now, u64::MAX))?.take(PURGE_AT_ONCE) {
            keys.push(row?.0.value());
        }
        keys
    };
    for &(e, id) in &keys {
        if !remove(t, id)? {
            // An index row without its lock is never written; should one appear, it goes.
            t.open_table(LOCK_EXPIRY)?.remove((e, id))?;
        }
    }
    Ok(keys.len())
}

/// Drops every lock taken on `item` or below it, in the transaction that deletes or moves
/// it: a lock is on an item, and a deleted item's locks would otherwise stay forever (a
/// moved item's locks are released: RFC 4918 says locks do not move with a resource).
pub(crate) fn forget_item(t: &WriteTxn, item: u64) -> Result<()> {
    let ids = {
        let tabs = open_write(t)?;
        if tabs.none()? {
            return Ok(());
        }
        tabs.on_or_below(item)?
    };
    for id in ids {
        remove(t, id)?;
    }
    Ok(())
}
