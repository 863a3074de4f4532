//! WebDAV locks, kept in the core so every protocol obeys them: a write through REST or S3
//! to a locked item is refused unless the lock's token is presented. Locks attach to items
//! (by id), so every path that reaches the item is bound by them. They live in the
//! metadata store (see `rows`), so every node of a deployment sees the same locks and a
//! restart keeps them; they expire with their timeout.
//!
//! Every change checks the locks in the transaction that commits it (`check_in_write`,
//! from `commit_at` and the other writes of the tree), so a lock taken an instant before,
//! through any node, binds it. Writes that read a body first also check before reading it
//! (`check_unlocked`), to refuse without taking the upload.

mod rows;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use crate::Storage;
use crate::access::Place;
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS, ReadTxn, Readable, WriteTxn};
use crate::meta::model::Principal;
use crate::meta::txn::W;
pub(crate) use rows::forget_item;
use rows::{LockRow, Tables};

#[derive(Clone, Debug)]
pub struct LockInfo {
    pub(crate) id: u64,
    pub token: String,
    /// The locked item and its ancestors, root first, the item last.
    pub chain: Vec<u64>,
    /// The path the lock was taken on, as its taker named it.
    pub path: String,
    /// The same as the client's protocol names it (a WebDAV URL path), for lock discovery.
    pub href: String,
    pub principal: Option<String>,
    /// The client's `owner` element, as XML.
    pub owner_xml: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub expires: Option<SystemTime>,
    pub shared: bool,
    pub deep: bool,
}

impl LockInfo {
    fn item(&self) -> u64 {
        *self.chain.last().expect("a lock has an item")
    }
}

/// Where a path is in the tree: the ids of its existing part, root first, and whether the
/// whole path exists (then the last id is its item).
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub ids: Vec<u64>,
    pub complete: bool,
}

// The rules, over the locks that may matter for one chain (`Tables::candidates` finds them;
// given every lock they decide the same).

/// Whether a lock is held by who presents `tokens`: its token, and (unless
/// `ignore_principal`) presented by who took it. A lock taken with no principal is anyone's
/// who has its token.
fn held(l: &LockInfo, principal: Option<&str>, ignore_principal: bool, tokens: &[String]) -> bool {
    tokens.contains(&l.token) && (ignore_principal || l.principal.is_none() || principal == l.principal.as_deref())
}

/// Locks on the chain (deep ones on ancestors, any on the item itself).
fn covering<'a>(locks: &'a [LockInfo], chain: &Chain) -> impl Iterator<Item = &'a LockInfo> {
    let last = if chain.complete { chain.ids.last().copied() } else { None };
    let ids = chain.ids.clone();
    locks
        .iter()
        .filter(move |l| Some(l.item()) == last || (l.deep && ids.contains(&l.item()) && Some(l.item()) != last))
}

/// Locks on the item or below it.
fn below<'a>(locks: &'a [LockInfo], chain: &Chain) -> impl Iterator<Item = &'a LockInfo> {
    let item = if chain.complete { chain.ids.last().copied() } else { None };
    locks.iter().filter(move |l| item.is_some_and(|i| l.chain.contains(&i)))
}

fn check_in(
    locks: &[LockInfo],
    chain: &Chain,
    principal: Option<&str>,
    ignore_principal: bool,
    deep: bool,
    tokens: &[String],
    shared_ok: bool,
) -> std::result::Result<(), Box<LockInfo>> {
    let mut holds = false;
    let mut first_shared = None;
    for l in covering(locks, chain) {
        if held(l, principal, ignore_principal, tokens) {
            holds = true;
        } else if !l.shared {
            return Err(Box::new(l.clone()));
        } else if !shared_ok {
            first_shared.get_or_insert(l);
        }
    }
    if !holds && let Some(l) = first_shared {
        return Err(Box::new(l.clone()));
    }
    if deep {
        for l in below(locks, chain) {
            if (!l.shared || !shared_ok) && !held(l, principal, ignore_principal, tokens) {
                return Err(Box::new(l.clone()));
            }
        }
    }
    Ok(())
}

/// The folder whose members a change at `chain` adds or takes away, if it does: a new item
/// (the chain ends at its nearest existing folder), or one deleted, moved or replaced whole
/// (`deep`). RFC 4918 §7.4: a lock on a folder, even with Depth 0, protects its membership;
/// deeper locks already cover the whole chain.
fn membership_changed(chain: &Chain, deep: bool) -> Option<u64> {
    match (chain.complete, chain.ids.len()) {
        (false, _) => chain.ids.last().copied(),
        (true, n) if deep && n >= 2 => Some(chain.ids[n - 2]),
        _ => None,
    }
}

/// What a change must get past: every lock on its place (and below it, for `deep`) that
/// the caller presents no token for. A token counts for who took its lock, and for the owner
/// of what is locked: every lock discovery shows it, so a grantee presenting the owner's
/// token would otherwise move, replace or delete the owner's locked file.
#[derive(Clone, Debug)]
pub(crate) struct LockGuard {
    root: u64,
    tokens: Vec<String>,
    who: String,
    deep: bool,
}

impl LockGuard {
    pub fn of(p: &Principal, deep: bool) -> Self {
        LockGuard { root: p.root, tokens: p.lock_tokens.clone(), who: p.username().to_owned(), deep }
    }
}

fn check_place<L, I, B>(
    tabs: &Tables<L, I, B>,
    items: &impl Readable<u64, &'static [u8]>,
    children: &impl Readable<(u64, &'static str), u64>,
    place: &Place,
    guard: &LockGuard,
) -> Result<()>
where
    L: Readable<u64, &'static [u8]>,
    I: Readable<(u64, u64), u64>,
    B: Readable<(u64, u64), u64>,
{
    let chain = rows::chain_of(items, children, guard.root, place)?;
    let now = rows::unix_nanos(SystemTime::now());
    let (who, owner) = (Some(guard.who.as_str()), place.access == crate::access::Access::Own);
    if let Some(folder) = membership_changed(&chain, guard.deep) {
        let locks = tabs.shallow_on(folder, now)?;
        if !locks.is_empty() && !locks.iter().any(|l| held(l, who, owner, &guard.tokens)) {
            return Err(Error::Locked(format!(
                "the folder holding {} is locked: its members cannot change",
                place.path
            )));
        }
    }
    let locks = tabs.candidates(&chain, guard.deep, now)?;
    check_in(&locks, &chain, who, owner, guard.deep, &guard.tokens, false)
        // Named as the caller sees it: the lock may have been taken through another's view.
        .map_err(|l| {
            let what = if l.chain == chain.ids {
                place.path.to_string()
            } else if chain.ids.starts_with(&l.chain) {
                format!("a folder above {}", place.path)
            } else {
                format!("an item inside {}", place.path)
            };
            Error::Locked(format!("{what} is locked{}", if l.shared { " (shared lock)" } else { "" }))
        })
}

// Every change passes one of these, so the common case (no lock stored at all) opens one
// table and reads one row.

/// Refuses the change at `place` if a lock forbids it, reading the locks in the change's
/// own transaction.
pub(crate) fn check_in_write(w: &W<'_>, place: &Place, guard: &LockGuard) -> Result<()> {
    if rows::none_w(w.txn)? {
        return Ok(());
    }
    check_place(&rows::open_write(w.txn)?, &w.items, &w.children, place, guard)
}

/// The same, for a change that opens no [`W`].
pub(crate) fn check_in_txn(t: &WriteTxn, place: &Place, guard: &LockGuard) -> Result<()> {
    if rows::none_w(t)? {
        return Ok(());
    }
    check_place(&rows::open_write(t)?, &t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, place, guard)
}

/// Whether no lock at all is stored (what every check asks first), in a read.
pub(crate) fn none_stored(t: &ReadTxn) -> Result<bool> {
    rows::open_read(t)?.none()
}

/// The same, in a read (before a write reads its body).
pub(crate) fn check_in_read(t: &ReadTxn, place: &Place, guard: &LockGuard) -> Result<()> {
    let tabs = rows::open_read(t)?;
    if tabs.none()? {
        return Ok(());
    }
    check_place(&tabs, &t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, place, guard)
}

fn uuid_v4() -> String {
    let mut b = crate::crypto::random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// What a LOCK asks for, besides where.
#[derive(Clone, Debug, Default)]
pub struct LockRequest {
    /// The same place as the client's protocol names it (a WebDAV URL path).
    pub href: String,
    pub principal: Option<String>,
    /// The client's `owner` element, as XML.
    pub owner_xml: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub shared: bool,
    pub deep: bool,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockRefused {
    /// Another lock is in the way: shown to the client (lock discovery in a 423).
    Held(Box<LockInfo>),
    /// The caller may not lock here, or the path is not there.
    Denied(Error),
}

/// The chain of `place`, read in a write.
fn chain_in_write(t: &WriteTxn, root: u64, place: &Place) -> Result<Chain> {
    rows::chain_of(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, root, place)
}

/// The live lock `token` among those covering `chain`.
fn covering_token(t: &WriteTxn, chain: &Chain, token: &str, now: u64) -> Result<Option<LockInfo>> {
    let locks = rows::open_write(t)?.candidates(chain, false, now)?;
    Ok(covering(&locks, chain).find(|l| l.token == token).cloned())
}

// Each lock operation first removes locks that expired (up to `PURGE_AT_ONCE`): the rules
// ignore them already, this keeps the tables from growing with them.

/// Takes a lock on the item of `chain` (whole) unless another is in the way, which is
/// returned.
fn take(
    t: &WriteTxn,
    chain: &Chain,
    path: &str,
    token: &str,
    req: &LockRequest,
    now: u64,
) -> Result<std::result::Result<LockInfo, Box<LockInfo>>> {
    rows::purge_expired(t, now)?;
    let locks = rows::open_write(t)?.candidates(chain, req.deep, now)?;
    if let Err(l) = check_in(&locks, chain, None, true, req.deep, &[], req.shared) {
        return Ok(Err(l));
    }
    let timeout = Some(rows::bounded(req.timeout, req.shared));
    let row = LockRow {
        token: token.to_owned(),
        chain: chain.ids.clone(),
        path: path.to_owned(),
        href: req.href.clone(),
        principal: req.principal.clone(),
        owner_xml: req.owner_xml.clone(),
        timeout: timeout.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        expires: rows::expiry(now, timeout),
        shared: req.shared,
        deep: req.deep,
    };
    let id = rows::insert(t, &row)?;
    Ok(Ok(row.info(id)))
}

/// Releases the lock `token` if it covers `chain` and `by` may release it: who took it, or
/// (`owner`) the owner of what it locks. Its token is in every lock discovery, so holding it
/// proves nothing: a grantee who may write could otherwise lift the owner's lock and write.
fn release(t: &WriteTxn, chain: &Chain, token: &str, by: &str, owner: bool, now: u64) -> Result<bool> {
    rows::purge_expired(t, now)?;
    let Some(l) = covering_token(t, chain, token, now)? else { return Ok(false) };
    if !owner && l.principal.as_deref().is_some_and(|taker| taker != by) {
        return Err(Error::Forbidden("only who took a lock, or the owner, may release it".into()));
    }
    rows::remove(t, l.id)
}

/// Gives the lock `token`, if it covers `chain`, a new timeout from `now`.
fn renew(t: &WriteTxn, chain: &Chain, token: &str, timeout: Option<Duration>, now: u64) -> Result<Option<LockInfo>> {
    rows::purge_expired(t, now)?;
    let Some(id) = covering_token(t, chain, token, now)?.map(|l| l.id) else { return Ok(None) };
    Ok(rows::set_timeout(t, id, timeout, now)?.map(|row| row.info(id)))
}

impl Storage {
    /// Whether the caller may take, refresh or release a lock on `path`. A lock blocks
    /// everyone else's writes, so only who may write may take one: a read-only grant, a
    /// downloader or a link must not be able to freeze the owner's files. Releasing too: a
    /// lock's token is in every lock discovery, so holding it proves nothing. Links take no
    /// locks at all: a lock's root would show the link's token to others.
    pub async fn may_lock(&self, p: &Principal, path: &str) -> Result<()> {
        if matches!(p.scope, crate::meta::model::Scope::Link { .. }) {
            return Err(Error::Forbidden("a link cannot lock".into()));
        }
        self.check_change(p, path).await
    }

    /// Takes a lock on the existing item at `path`, if the caller may (see [`Self::may_lock`]).
    pub async fn lock(&self, p: &Principal, path: &str, req: LockRequest) -> Result<LockInfo, LockRefused> {
        self.may_lock(p, path).await.map_err(LockRefused::Denied)?;
        let place = self.place(p, path).await.map_err(LockRefused::Denied)?;
        let (root, path) = (p.root, path.to_owned());
        let token = format!("urn:uuid:{}", uuid_v4());
        let taken = self
            .core
            .db
            .write((), move |ctx| {
                let t = ctx.txn;
                let now = rows::unix_nanos(SystemTime::now());
                let chain = chain_in_write(t, root, &place)?;
                if !chain.complete {
                    return Err(Error::missing(What::Item, format!("{path} not found")));
                }
                take(t, &chain, &path, &token, &req, now)
            })
            .await
            .map_err(LockRefused::Denied)?;
        taken.map_err(LockRefused::Held)
    }

    /// Releases the lock `token` on `path`; false if no such lock covers it.
    pub async fn unlock(&self, p: &Principal, path: &str, token: &str) -> Result<bool> {
        self.may_lock(p, path).await?;
        let place = self.place(p, path).await?;
        let (root, token) = (p.root, token.to_owned());
        let (by, owner) = (p.username().to_owned(), place.access == crate::access::Access::Own);
        self.core
            .db
            .write((), move |ctx| {
                let t = ctx.txn;
                let now = rows::unix_nanos(SystemTime::now());
                release(t, &chain_in_write(t, root, &place)?, &token, &by, owner, now)
            })
            .await
    }

    /// Gives the lock `token` on `path` a new timeout; none if no such lock covers it.
    pub async fn refresh_lock(
        &self,
        p: &Principal,
        path: &str,
        token: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<LockInfo>> {
        self.may_lock(p, path).await?;
        let place = self.place(p, path).await?;
        let (root, token) = (p.root, token.to_owned());
        self.core
            .db
            .write((), move |ctx| {
                let t = ctx.txn;
                let now = rows::unix_nanos(SystemTime::now());
                renew(t, &chain_in_write(t, root, &place)?, &token, timeout, now)
            })
            .await
    }

    /// Runs `f` over the lock tables and the chain of `path`, in one snapshot; `None` when
    /// no lock is stored at all.
    async fn with_locks<T: Send + 'static>(
        &self,
        p: &Principal,
        path: &str,
        f: impl FnOnce(Vec<LockInfo>, &Chain) -> T + Send + 'static,
        with_below: bool,
    ) -> Result<Option<T>> {
        let place = self.place(p, path).await?;
        let root = p.root;
        self.core
            .db
            .read(move |t| {
                let tabs = rows::open_read(t)?;
                if tabs.none()? {
                    return Ok(None);
                }
                let chain = rows::chain_of(&t.open_table(ITEMS)?, &t.open_table(CHILDREN)?, root, &place)?;
                let locks = tabs.candidates(&chain, with_below, rows::unix_nanos(SystemTime::now()))?;
                Ok(Some(f(locks, &chain)))
            })
            .await
    }

    /// The lock, if any, that a change of `path` (and below it, for `deep`) by the holder
    /// of `tokens` would break. Reading locks needs no right: lock discovery is public to
    /// whoever reaches the item. A path the caller cannot reach has no locks for them.
    pub async fn conflicting_lock(
        &self,
        p: &Principal,
        path: &str,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        tokens: &[String],
    ) -> Option<LockInfo> {
        let (principal, tokens) = (principal.map(str::to_owned), tokens.to_vec());
        let check = move |locks: Vec<LockInfo>, chain: &Chain| {
            check_in(&locks, chain, principal.as_deref(), ignore_principal, deep, &tokens, false).err()
        };
        self.with_locks(p, path, check, deep).await.ok().flatten().flatten().map(|l| *l)
    }

    /// The locks on `path` (deep ones above it included).
    pub async fn discover_locks(&self, p: &Principal, path: &str) -> Vec<LockInfo> {
        let found = |locks: Vec<LockInfo>, chain: &Chain| covering(&locks, chain).cloned().collect();
        self.with_locks(p, path, found, false).await.ok().flatten().unwrap_or_default()
    }

    /// Whether the store holds any lock at all: a front end that asks about many paths in
    /// one request (a PROPFIND's lock discovery) asks this once instead.
    pub async fn any_locks(&self) -> Result<bool> {
        self.core.db.read(|t| Ok(!rows::open_read(t)?.none()?)).await
    }

    /// Whether the lock `token` is on the item at `path` now, as the caller reaches it (RFC
    /// 4918 §10.4.1: a state token matches only a current lock of the resource; an unknown,
    /// released or expired token does not): a WebDAV `If` state token is true only then.
    pub async fn lock_token_applies(&self, p: &Principal, path: &str, token: &str) -> Result<bool> {
        let token = token.to_owned();
        let applies = move |locks: Vec<LockInfo>, chain: &Chain| covering(&locks, chain).any(|l| l.token == token);
        Ok(self.with_locks(p, path, applies, false).await?.unwrap_or(false))
    }

    /// Refuses a change of `place` (and, for `deep`, of anything below it) that a lock the
    /// caller does not present a token for forbids. Only for checks before the change's
    /// transaction (before reading a body); the transaction checks again.
    pub(crate) async fn check_unlocked(&self, p: &Principal, place: &Place, deep: bool) -> Result<()> {
        let (place, guard) = (place.clone(), LockGuard::of(p, deep));
        self.core.db.read(move |t| check_in_read(t, &place, &guard)).await
    }
}
