//! WebDAV locks, kept in the core so every protocol obeys them: a write through REST or S3
//! to a locked item is refused unless the lock's token is presented. Locks attach to items
//! (by id), so every path that reaches the item is bound by them; they live in memory and
//! expire with their timeout (a restart releases them, as clients re-lock on demand).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::Storage;
use crate::access::Place;
use crate::error::{Error, Result, What};
use crate::meta::db::{CHILDREN, ITEMS};
use crate::meta::model::Principal;
use crate::meta::txn;

#[derive(Clone, Debug)]
pub struct LockInfo {
    pub token: String,
    /// The locked item and its ancestors, root first, the item last.
    pub chain: Vec<u64>,
    /// The drive path the lock was taken on, in the view of `view`.
    pub path: String,
    /// Whose paths `path` is in (a drive, or a link): see [`view_of`].
    pub view: String,
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

/// The store itself is the core's: front ends lock through [`Storage::lock`] and its
/// siblings, which decide who may.
#[derive(Default)]
pub(crate) struct LockStore {
    locks: Mutex<Vec<LockInfo>>,
}

/// Where a path is in the tree: the ids of its existing part, root first, and whether the
/// whole path exists (then the last id is its item).
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub ids: Vec<u64>,
    pub complete: bool,
}

fn held(l: &LockInfo, principal: Option<&str>, ignore_principal: bool, tokens: &[String]) -> bool {
    tokens.contains(&l.token) && (ignore_principal || principal == l.principal.as_deref())
}

impl LockStore {
    /// No lock is held anywhere (the common case: lock discovery can skip path lookups).
    pub fn is_empty(&self) -> bool {
        self.locks.lock().expect("lock store").is_empty()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<LockInfo>> {
        let mut locks = self.locks.lock().expect("lock store");
        let now = SystemTime::now();
        locks.retain(|l| l.expires.is_none_or(|e| e > now));
        locks
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
        for l in Self::covering(locks, chain) {
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
            for l in Self::below(locks, chain) {
                if (!l.shared || !shared_ok) && !held(l, principal, ignore_principal, tokens) {
                    return Err(Box::new(l.clone()));
                }
            }
        }
        Ok(())
    }

    /// Takes a lock on an existing item; a conflicting lock is returned as the error.
    #[allow(clippy::too_many_arguments)]
    pub fn lock(
        &self,
        chain: &Chain,
        view: &str,
        path: &str,
        href: &str,
        principal: Option<&str>,
        owner_xml: Option<Vec<u8>>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> std::result::Result<LockInfo, Box<LockInfo>> {
        let mut locks = self.live();
        Self::check_in(&locks, chain, None, true, deep, &[], shared)?;
        let token = format!("urn:uuid:{}", uuid_v4());
        let lock = LockInfo {
            token,
            chain: chain.ids.clone(),
            view: view.to_owned(),
            path: path.to_owned(),
            href: href.to_owned(),
            principal: principal.map(str::to_owned),
            owner_xml,
            timeout,
            expires: timeout.map(|d| SystemTime::now() + d),
            shared,
            deep,
        };
        locks.push(lock.clone());
        Ok(lock)
    }

    /// Releases a lock that covers the chain; false if there is none with that token.
    pub fn unlock(&self, chain: &Chain, token: &str) -> bool {
        let mut locks = self.live();
        let before = locks.len();
        let covering: Vec<String> =
            Self::covering(&locks, chain).filter(|l| l.token == token).map(|l| l.token.clone()).collect();
        locks.retain(|l| !covering.contains(&l.token));
        locks.len() < before
    }

    pub fn refresh(&self, chain: &Chain, token: &str, timeout: Option<Duration>) -> Option<LockInfo> {
        let mut locks = self.live();
        let ok: Vec<String> =
            Self::covering(&locks, chain).filter(|l| l.token == token).map(|l| l.token.clone()).collect();
        let l = locks.iter_mut().find(|l| ok.contains(&l.token))?;
        l.timeout = timeout;
        l.expires = timeout.map(|d| SystemTime::now() + d);
        Some(l.clone())
    }

    pub fn check(
        &self,
        chain: &Chain,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        tokens: &[String],
    ) -> std::result::Result<(), Box<LockInfo>> {
        let locks = self.live();
        Self::check_in(&locks, chain, principal, ignore_principal, deep, tokens, false)
    }

    /// Whether `token` names a lock that is on the resource now: taken on it, or a deep
    /// lock on a folder above it (RFC 4918 §10.4.1: a state token matches only a current
    /// lock of the resource; an unknown, released or expired token does not).
    pub fn token_applies(&self, chain: &Chain, token: &str) -> bool {
        let locks = self.live();
        Self::covering(&locks, chain).any(|l| l.token == token)
    }

    pub fn discover(&self, chain: &Chain) -> Vec<LockInfo> {
        let locks = self.live();
        Self::covering(&locks, chain).cloned().collect()
    }

    /// Drops the locks taken on `path` or below it (after a DELETE or the source of a MOVE),
    /// in one view only: the same path in another user's drive is another item. (Locks on
    /// a deleted item taken through another view hold an id that no item will have again,
    /// so they bind nothing, and they expire.)
    pub fn delete_path(&self, view: &str, path: &str) {
        let base = path.trim_end_matches('/');
        let mut locks = self.live();
        locks.retain(|l| {
            let p = l.path.trim_end_matches('/');
            l.view != view || !(p == base || p.starts_with(&format!("{base}/")))
        });
    }
}

/// The namespace a principal's paths are in: its drive, or the link it holds.
pub(crate) fn view_of(p: &Principal) -> String {
    match p.scope {
        crate::meta::model::Scope::Drive => format!("drive:{}", p.root),
        crate::meta::model::Scope::Link { link, .. } => format!("link:{link}"),
    }
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
        let chain = self.lock_chain(p, path).await.map_err(LockRefused::Denied)?;
        if !chain.complete {
            return Err(LockRefused::Denied(Error::missing(What::Item, format!("{path} not found"))));
        }
        let view = view_of(p);
        let LockRequest { href, principal, owner_xml, timeout, shared, deep } = req;
        self.core
            .locks
            .lock(&chain, &view, path, &href, principal.as_deref(), owner_xml, timeout, shared, deep)
            .map_err(LockRefused::Held)
    }

    /// Releases the lock `token` on `path`; false if no such lock covers it.
    pub async fn unlock(&self, p: &Principal, path: &str, token: &str) -> Result<bool> {
        self.may_lock(p, path).await?;
        let chain = self.lock_chain(p, path).await?;
        Ok(self.core.locks.unlock(&chain, token))
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
        let chain = self.lock_chain(p, path).await?;
        Ok(self.core.locks.refresh(&chain, token, timeout))
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
        if self.core.locks.is_empty() {
            return None;
        }
        let chain = self.lock_chain(p, path).await.ok()?;
        self.core.locks.check(&chain, principal, ignore_principal, deep, tokens).err().map(|l| *l)
    }

    /// The locks on `path` (deep ones above it included).
    pub async fn discover_locks(&self, p: &Principal, path: &str) -> Vec<LockInfo> {
        if self.core.locks.is_empty() {
            return Vec::new();
        }
        match self.lock_chain(p, path).await {
            Ok(chain) => self.core.locks.discover(&chain),
            Err(_) => Vec::new(),
        }
    }

    /// Drops the caller's locks on `path` and below, once the caller deleted or moved it
    /// (see [`LockStore::delete_path`]).
    pub fn forget_locks(&self, p: &Principal, path: &str) {
        self.core.locks.delete_path(&view_of(p), path);
    }

    /// The chain of ids of `path`: from the owner's drive root, so that every path that
    /// reaches an item (one's drive, a share, a link) meets the same locks.
    pub(crate) async fn lock_chain(&self, p: &Principal, path: &str) -> Result<Chain> {
        let place = self.place(p, path).await?;
        self.chain_of(p, place).await
    }

    async fn chain_of(&self, p: &Principal, place: Place) -> Result<Chain> {
        if place.is_virtual() {
            return Ok(Chain { ids: vec![p.root], complete: false });
        }
        self.core
            .db
            .read(move |t| {
                let children = t.open_table(CHILDREN)?;
                let items = t.open_table(ITEMS)?;
                let mut ids = Vec::new();
                let mut cur = place.base;
                while cur != 0 && ids.len() < 4096 {
                    ids.push(cur);
                    cur = txn::get_item(&items, cur)?.map_or(0, |i| i.parent);
                }
                ids.reverse();
                let names = place.rel.names();
                let from = *ids.last().expect("root");
                if txn::walk(&children, from, names, |id| ids.push(id))? < names.len() {
                    return Ok(Chain { ids, complete: false });
                }
                Ok(Chain { ids, complete: true })
            })
            .await
    }

    /// Whether the lock `token` is on the item at `path` now, as the caller reaches it (see
    /// [`LockStore::token_applies`]): a WebDAV `If` state token is true only then.
    pub async fn lock_token_applies(&self, p: &Principal, path: &str, token: &str) -> Result<bool> {
        if self.core.locks.is_empty() {
            return Ok(false);
        }
        let chain = self.lock_chain(p, path).await?;
        Ok(self.core.locks.token_applies(&chain, token))
    }

    /// Refuses a change of `path` (and, for `deep`, of anything below it) that a lock the
    /// caller does not present a token for forbids.
    pub(crate) async fn check_unlocked(&self, p: &Principal, place: &Place, deep: bool) -> Result<()> {
        if self.core.locks.locks.lock().expect("lock store").is_empty() {
            return Ok(());
        }
        let chain = self.chain_of(p, place.clone()).await?;
        self.core
            .locks
            .check(&chain, None, true, deep, &p.lock_tokens)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(store: &LockStore, ids: &[u64], deep: bool) -> LockInfo {
        let chain = Chain { ids: ids.to_vec(), complete: true };
        store.lock(&chain, "drive:1", "/x", "/dav/x", None, None, None, false, deep).unwrap()
    }

    #[test]
    fn a_token_applies_only_while_its_lock_is_on_the_resource() {
        let store = LockStore::default();
        let file = Chain { ids: vec![1, 2, 3], complete: true };
        let sibling = Chain { ids: vec![1, 2, 4], complete: true };
        let unmapped_below = Chain { ids: vec![1, 2], complete: false };
        let l = take(&store, &[1, 2, 3], false);
        assert!(store.token_applies(&file, &l.token));
        assert!(!store.token_applies(&sibling, &l.token), "another resource");
        assert!(!store.token_applies(&file, "urn:uuid:00000000-0000-4000-8000-000000000000"), "unknown");
        assert!(!store.token_applies(&file, "opaquelocktoken:anything"), "unknown");
        assert!(store.unlock(&file, &l.token));
        assert!(!store.token_applies(&file, &l.token), "released");

        // A deep lock on a folder is on everything below it, mapped or not.
        let folder = take(&store, &[1, 2], true);
        assert!(store.token_applies(&file, &folder.token));
        assert!(store.token_applies(&unmapped_below, &folder.token));
        assert!(!store.token_applies(&Chain { ids: vec![1], complete: true }, &folder.token), "not above it");
        // A shallow lock on a folder is not on its children.
        assert!(store.unlock(&Chain { ids: vec![1, 2], complete: true }, &folder.token));
        let shallow = take(&store, &[1, 2], false);
        assert!(!store.token_applies(&file, &shallow.token));
    }

    #[test]
    fn an_expired_lock_token_does_not_apply() {
        let store = LockStore::default();
        let chain = Chain { ids: vec![1, 5], complete: true };
        let l = store
            .lock(&chain, "drive:1", "/y", "/dav/y", None, None, Some(Duration::from_millis(1)), false, false)
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!store.token_applies(&chain, &l.token));
    }
}
