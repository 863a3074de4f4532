//! Clients of WebDAV and scripts send their password on every request; argon2 on each would
//! cost ~20 ms of CPU. Verified credentials are remembered for a short time, keyed by a
//! SHA-256 of (login, password) so the cache holds no password.
//!
//! An entry holds the user id, the auth epoch and, for an app password, its id. A hit reads
//! the account's row from the metadata store and must find the same epoch (for an account
//! password), a usable status and the login still naming the account; a hit on an app
//! password must also find it not revoked. So a password change (which bumps the epoch), a
//! disable, a delete or a revocation takes effect at once, on whichever node of a
//! deployment it was made: the cache is per process, the truth it is checked against is
//! shared. That costs one small read per hit, against an argon2 run saved; a TTL alone would
//! leave an old password working on the other nodes until it ran out.
//!
//! On PostgreSQL that read is a round trip per request, as much as resolving the path. There
//! an entry also keeps the account as the store last confirmed it, with the engine's
//! credential generation at the time (`Db::auth_generation`, which every node's change to
//! an account, app password or key moves, see `meta::kv::pg::watch`); while the generation
//! has not moved, a hit is answered without the read. A change made on another node then
//! takes effect here within the engine's bound (1 s at most, in practice the time a
//! notification takes), and one made on this node at once. (S3 keys are checked at every
//! signature: not here.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Storage;
use crate::crypto::sha256;
use crate::error::{Error, Result};
use crate::meta::db::{APP_PASSWORD_HASHES, Readable};
use crate::meta::model::User;

const TTL: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 10_000;

/// What a remembered credential was.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The account's password, verified with argon2 at this auth epoch.
    Account(u64),
    /// An app password, by the SHA-256 it is stored under (as in the store: the secret
    /// itself is long and random, see `app_passwords`).
    App([u8; 32]),
}

#[derive(Clone)]
struct Entry {
    user: u64,
    kind: Kind,
    /// When argon2 (or the app password's lookup) verified it: the TTL runs from here.
    at: Instant,
    /// The account as the store last confirmed this entry, and the credential generation
    /// read before that read; trusted while the generation is the same.
    confirmed: Option<(u64, User)>,
}

#[derive(Default)]
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

fn key(login: &str, password: &str) -> [u8; 32] {
    let mut buf = Vec::with_capacity(login.len() + password.len() + 1);
    buf.extend_from_slice(login.as_bytes());
    buf.push(0);
    buf.extend_from_slice(password.as_bytes());
    sha256(&buf)
}

/// Whether `login` names `user` (username, or email in any case); an account password's
/// login is trimmed first, as a sign-in finds the account.
fn names(user: &User, login: &str, kind: Kind) -> bool {
    let login = if matches!(kind, Kind::Account(_)) { login.trim() } else { login };
    user.username == login || user.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(login))
}

impl AuthCache {
    fn hit(&self, k: &[u8; 32]) -> Option<Entry> {
        let hit = self.entries.lock().expect("auth cache").get(k).cloned();
        hit.filter(|e| e.at.elapsed() < TTL)
    }

    fn remember(&self, k: [u8; 32], user: &User, kind: Kind, generation: Option<u64>) {
        let mut entries = self.entries.lock().expect("auth cache");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let confirmed = generation.map(|g| (g, user.clone()));
        entries.insert(k, Entry { user: user.id, kind, at: Instant::now(), confirmed });
    }

    /// The store confirmed the entry again (its TTL still runs from its verification).
    fn confirm(&self, k: &[u8; 32], user: &User, generation: Option<u64>) {
        if let Some(g) = generation
            && let Some(e) = self.entries.lock().expect("auth cache").get_mut(k)
        {
            e.confirmed = Some((g, user.clone()));
        }
    }
}

impl Entry {
    /// The account, when nothing a check reads can have changed since the store confirmed
    /// it (`now`: the engine's generation, when it can vouch for one) and it still passes.
    fn trusted(&self, now: Option<u64>, login: &str) -> Option<User> {
        let (g, user) = self.confirmed.as_ref()?;
        (now == Some(*g) && names(user, login, self.kind) && crate::auth::account_usable(user).is_ok())
            .then(|| user.clone())
    }
}

impl Storage {
    /// `authenticate`, remembering success for a few minutes.
    pub async fn authenticate_cached(&self, login: &str, password: &str) -> Result<User> {
        let k = key(login, password);
        if let Some(e) = self.core.auth_cache.hit(&k)
            && let Kind::Account(epoch) = e.kind
        {
            let now = self.core.db.auth_generation();
            if let Some(user) = e.trusted(now, login) {
                return Ok(user);
            }
            if let Ok(user) = self.get_user(e.user).await
                && user.auth_epoch == epoch
                && names(&user, login, e.kind)
                && crate::auth::account_usable(&user).is_ok()
            {
                self.core.auth_cache.confirm(&k, &user, now);
                return Ok(user);
            }
        }
        let generation = self.core.db.auth_generation();
        let user = self.authenticate(login, password).await?;
        self.core.auth_cache.remember(k, &user, Kind::Account(user.auth_epoch), generation);
        Ok(user)
    }

    /// HTTP Basic credentials: an app password of the account `login` names, else the
    /// account's password. Says which it was (an account with the mailed second factor may
    /// only use app passwords over Basic). A remembered one costs one read transaction, or
    /// none while the store vouches that nothing changed (see above).
    pub(crate) async fn basic_cached(&self, login: &str, password: &str) -> Result<(User, bool)> {
        let k = key(login, password);
        if let Some(e) = self.core.auth_cache.hit(&k) {
            let (user_id, kind) = (e.user, e.kind);
            // Read before the store is: a change heard after this makes the entry stale.
            let now = self.core.db.auth_generation();
            if let Some(user) = e.trusted(now, login) {
                return Ok((user, matches!(kind, Kind::App(_))));
            }
            let checked = self
                .core
                .db
                .read(move |t| {
                    let user = crate::meta::txn::load_user(t, user_id)?;
                    let still = match kind {
                        Kind::Account(epoch) => user.auth_epoch == epoch,
                        // Revoking removes this row; the secret is random, so a row still
                        // there is the same app password, of the same owner.
                        Kind::App(hash) => t.open_table(APP_PASSWORD_HASHES)?.get(&hash)?.is_some(),
                    };
                    Ok(still.then_some(user))
                })
                .await;
            match checked {
                Ok(Some(user)) if names(&user, login, kind) && crate::auth::account_usable(&user).is_ok() => {
                    self.core.auth_cache.confirm(&k, &user, now);
                    return Ok((user, matches!(kind, Kind::App(_))));
                }
                // The store out of reach is no verdict on the credentials.
                Err(e @ Error::Unavailable(_)) => return Err(e),
                _ => {}
            }
        }
        // Not remembered (or no longer true): what an app password's hash leads to, then
        // the account's password.
        let generation = self.core.db.auth_generation();
        if let Some(owner) = self.app_password_owner(password).await? {
            let user =
                self.get_user(owner).await.map_err(|_| Error::Unauthenticated("wrong username or password".into()))?;
            let kind = Kind::App(sha256(password.as_bytes()));
            if names(&user, login, kind) {
                crate::auth::account_usable(&user)?;
                self.core.auth_cache.remember(k, &user, kind, generation);
                return Ok((user, true));
            }
        }
        Ok((self.authenticate_cached(login, password).await?, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::meta::db::{self, Readable, USERS};
    use crate::meta::model::{Role, Status};
    use crate::tests::{open_with, user};
    use std::time::Duration;

    /// Changes the account's row in the store directly, as another node's change arrives:
    /// nothing in this process is told.
    async fn change_row(s: &Storage, id: u64, f: impl Fn(&mut User) + Send + 'static) {
        s.core
            .db
            .write((), move |ctx| {
                let mut users = ctx.txn.open_table(USERS)?;
                let mut u: User = db::decode(users.get(id)?.expect("the user").value())?;
                f(&mut u);
                users.insert(id, db::encode(&u).as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hit_is_checked_against_the_store_not_against_this_process() {
        let f = open_with(|_| {});
        let s = &f.storage;
        let id = user(s, "alice", Role::User, None).await.user_id;
        s.authenticate_cached("alice", "password123").await.unwrap();

        // Another node sets a new password: the hash changes and the epoch moves.
        let hash = crate::auth::users::hash_password("another-pw-456").unwrap();
        change_row(s, id, move |u| {
            u.password_hash = hash.clone();
            u.auth_epoch += 1;
        })
        .await;
        let r = s.authenticate_cached("alice", "password123").await;
        assert!(matches!(r, Err(Error::Unauthenticated(_))), "the old password is refused here too: {r:?}");
        s.authenticate_cached("alice", "another-pw-456").await.unwrap();

        // Another node disables the account (the status alone is enough).
        change_row(s, id, |u| u.status = Status::Disabled).await;
        let r = s.authenticate_cached("alice", "another-pw-456").await;
        assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
        change_row(s, id, |u| u.status = Status::Active).await;
        s.authenticate_cached("alice", "another-pw-456").await.unwrap();

        // The entry is what answered: a hash changed without moving the epoch (which no
        // credential change does) is not seen, which is why every one of them moves it.
        let hash = crate::auth::users::hash_password("third-pw-789").unwrap();
        change_row(s, id, move |u| u.password_hash = hash.clone()).await;
        s.authenticate_cached("alice", "another-pw-456").await.unwrap();
        assert!(s.authenticate("alice", "another-pw-456").await.is_err(), "uncached, the store says no");

        // Another node deletes the account.
        s.core.db.write((), move |ctx| ctx.txn.open_table(USERS)?.remove(id)).await.unwrap();
        assert!(s.authenticate_cached("alice", "another-pw-456").await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remembered_app_password_is_checked_against_the_store() {
        let f = open_with(|_| {});
        let s = &f.storage;
        let id = user(s, "bob", Role::User, None).await.user_id;
        let (ap, secret) = s.create_app_password(id, "laptop").await.unwrap();
        let (u, app) = s.basic_cached("bob", &secret).await.unwrap();
        assert!(app && u.id == id);
        // Remembered: the same answer, and another login with the same secret is not bob.
        let (_, app) = s.basic_cached("bob", &secret).await.unwrap();
        assert!(app);
        assert!(s.basic_cached("mallory", &secret).await.is_err());
        // The account password still works beside it, and is told apart.
        let (_, app) = s.basic_cached("bob", "password123").await.unwrap();
        assert!(!app);

        // Revoked by another node's change: the remembered entry no longer answers.
        let hash = ap.hash;
        s.core
            .db
            .write((), move |ctx| {
                ctx.txn.open_table(crate::meta::db::APP_PASSWORDS)?.remove(ap.id)?;
                ctx.txn.open_table(crate::meta::db::APP_PASSWORD_HASHES)?.remove(&hash)
            })
            .await
            .unwrap();
        assert!(matches!(s.basic_cached("bob", &secret).await, Err(Error::Unauthenticated(_))));
        // Disabled: neither kind answers.
        change_row(s, id, |u| u.status = Status::Disabled).await;
        assert!(s.basic_cached("bob", "password123").await.is_err());
    }

    /// An S3 key answered from `auth::keys::KeyCache` (PostgreSQL, while its watch listens)
    /// still stops working at once when it is revoked or its owner disabled, also by a
    /// change made straight in the store, as another node's arrives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remembered_access_key_is_checked_against_the_store() {
        let f = open_with(|_| {});
        let s = &f.storage;
        let id = user(s, "carol", Role::User, None).await.user_id;
        let (key, secret) = s.create_access_key(id).await.unwrap();
        for _ in 0..2 {
            let got = s.access_key_secret(&key.id).await.unwrap();
            assert_eq!(got.secret, secret);
            assert_eq!(got.owner.map(|p| p.user_id), Some(id));
        }
        if let Some(g) = s.core.db.auth_generation() {
            assert!(s.core.key_cache.get(&key.id, g).is_some(), "remembered while nothing changed");
        }
        change_row(s, id, |u| u.status = Status::Disabled).await;
        assert!(s.access_key_secret(&key.id).await.unwrap().owner.is_none(), "disabled: no owner");
        change_row(s, id, |u| u.status = Status::Active).await;
        assert!(s.access_key_secret(&key.id).await.unwrap().owner.is_some());
        let kid = key.id.clone();
        s.core
            .db
            .write((), move |ctx| ctx.txn.open_table(crate::meta::db::ACCESS_KEYS)?.remove(kid.as_str()))
            .await
            .unwrap();
        let r = s.access_key_secret(&key.id).await.map(|_| ());
        assert!(matches!(r, Err(Error::Unauthenticated(_))), "removed: unknown at once: {r:?}");
    }

    crate::tests::pg::also_on_postgres!(
        a_hit_is_checked_against_the_store_not_against_this_process,
        a_remembered_app_password_is_checked_against_the_store,
        a_remembered_access_key_is_checked_against_the_store,
    );

    /// Whether node `s` would answer `login`'s remembered credential without asking the
    /// store (what the watch allows, see `meta::kv::pg::watch`).
    fn trusted(s: &Storage, login: &str, password: &str) -> bool {
        let e = s.core.auth_cache.hit(&key(login, password)).expect("remembered");
        e.trusted(s.core.db.auth_generation(), login).is_some()
    }

    /// Signs in on `s` until the entry is trusted (at most 5 s): a notification of a change
    /// already seen may still move the generation once.
    async fn confirmed(s: &Storage, login: &str, password: &str) -> bool {
        for _ in 0..100 {
            s.basic_cached(login, password).await.unwrap();
            if trusted(s, login, password) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Polls `f` every 10 ms for up to `secs`: whether it came true.
    async fn within(secs: u64, mut f: impl FnMut() -> bool) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        f()
    }

    /// Two nodes over one PostgreSQL. A remembered credential is answered without a read
    /// while nothing changed; a password change, a disable and an app password's revocation
    /// made on the other node stop it here within the watch's bound; a listener that lost
    /// its connection trusts nothing until it listens again.
    fn nodes_hear_credential_changes() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let fa = open_with(|_| {});
            let dir_b = tempfile::tempdir().unwrap();
            let b = Storage::open(crate::tests::config(dir_b.path())).unwrap();
            let a = &fa.storage;
            let id = user(a, "carol", Role::User, None).await.user_id;
            let (_, secret) = a.create_app_password(id, "phone").await.unwrap();
            assert!(within(10, || a.core.db.auth_generation().is_some()).await, "node A's watch never listened");
            let bound = crate::meta::kv::pg::AUTH_BOUND;
            // Slack over the bound for a loaded machine; the bound itself is what a healthy
            // listener promises, and it says so by `auth_generation` turning `None`.
            let slack = bound.as_secs() + 4;

            // A's own changes above are heard again as notifications, which moves the
            // generation once more: confirmed after that, the entries are trusted.
            let mut both = false;
            for _ in 0..100 {
                a.basic_cached("carol", "password123").await.unwrap();
                a.basic_cached("carol", &secret).await.unwrap();
                both = trusted(a, "carol", "password123") && trusted(a, "carol", &secret);
                if both {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(both, "a confirmed entry is never trusted");

            // B revokes the app password: A stops answering it, the password still works.
            let ap = b.app_passwords_of(id).await.unwrap().remove(0);
            b.revoke_app_password_of(id, ap.id).await.unwrap();
            assert!(within(slack, || !trusted(a, "carol", &secret)).await, "A did not hear the revocation");
            assert!(matches!(a.basic_cached("carol", &secret).await, Err(Error::Unauthenticated(_))));
            assert!(!a.basic_cached("carol", "password123").await.unwrap().1);
            assert!(confirmed(a, "carol", "password123").await, "confirmed again at the new generation");

            // B changes the password: the old one stops on A.
            b.set_password(id, "new-password-456").await.unwrap();
            assert!(within(slack, || !trusted(a, "carol", "password123")).await, "A did not hear the change");
            assert!(matches!(a.basic_cached("carol", "password123").await, Err(Error::Unauthenticated(_))));
            assert!(confirmed(a, "carol", "new-password-456").await);

            // B disables the account.
            change_row(&b, id, |u| u.status = Status::Disabled).await;
            assert!(within(slack, || !trusted(a, "carol", "new-password-456")).await);
            assert!(matches!(a.basic_cached("carol", "new-password-456").await, Err(Error::Forbidden(_))));
            change_row(&b, id, |u| u.status = Status::Active).await;
            assert!(within(slack, || a.core.db.auth_generation().is_some()).await);
            assert!(confirmed(a, "carol", "new-password-456").await);

            // The listeners lose their connections (PostgreSQL ends them): nothing is
            // trusted until they listen again, then it is confirmed once more and trusted.
            let url = match crate::tests::config(dir_b.path()).meta {
                crate::MetaStore::Postgres { url, .. } => url,
                crate::MetaStore::Redb => unreachable!("on PostgreSQL"),
            };
            let ended = crate::tests::pg::admin_query_i64(
                &url,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'davit-watch' AND datname = current_database()",
            );
            assert_eq!(ended, 2, "one listener per node");
            assert!(
                within(slack, || !trusted(a, "carol", "new-password-456")).await,
                "a listener that was ended is not trusted"
            );
            assert!(within(10, || a.core.db.auth_generation().is_some()).await, "A's watch did not listen again");
            assert!(confirmed(a, "carol", "new-password-456").await);
        });
    }

    #[test]
    fn on_postgres_nodes_hear_credential_changes() {
        crate::tests::pg::on_postgres(nodes_hear_credential_changes)
    }
}
