//! Clients of WebDAV and scripts send their password on every request; argon2 on each would
//! cost ~20 ms of CPU. Verified credentials are remembered for a short time, keyed by a
//! SHA-256 of (login, password) so the cache holds no password.
//!
//! An entry holds only the user id, the auth epoch and, for an app password, its id. Every
//! hit reads the account's row from the metadata store and must find the same epoch (for an
//! account password), a usable status and the login still naming the account; a hit on an
//! app password must also find it not revoked. So a password change (which bumps the
//! epoch), a disable, a delete or a revocation takes effect at once, on whichever node of a
//! deployment it was made: the cache is per process, the truth it is checked against is
//! shared. That costs one small read per hit (one read transaction, whichever the kind),
//! against an argon2 run saved; a TTL alone would leave an old password working on the
//! other nodes until it ran out. (S3 keys are checked at every signature: not here.)

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

#[derive(Default)]
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], (u64, Kind, Instant)>>,
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
    fn hit(&self, k: &[u8; 32]) -> Option<(u64, Kind)> {
        let hit = self.entries.lock().expect("auth cache").get(k).copied();
        hit.filter(|(_, _, at)| at.elapsed() < TTL).map(|(user, kind, _)| (user, kind))
    }

    fn remember(&self, k: [u8; 32], user: u64, kind: Kind) {
        let mut entries = self.entries.lock().expect("auth cache");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, _, at)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(k, (user, kind, Instant::now()));
    }
}

impl Storage {
    /// `authenticate`, remembering success for a few minutes.
    pub async fn authenticate_cached(&self, login: &str, password: &str) -> Result<User> {
        let k = key(login, password);
        if let Some((user_id, Kind::Account(epoch))) = self.core.auth_cache.hit(&k)
            && let Ok(user) = self.get_user(user_id).await
            && user.auth_epoch == epoch
            && names(&user, login, Kind::Account(epoch))
            && crate::auth::account_usable(&user).is_ok()
        {
            return Ok(user);
        }
        let user = self.authenticate(login, password).await?;
        self.core.auth_cache.remember(k, user.id, Kind::Account(user.auth_epoch));
        Ok(user)
    }

    /// HTTP Basic credentials: an app password of the account `login` names, else the
    /// account's password. Says which it was (an account with the mailed second factor may
    /// only use app passwords over Basic). A remembered one costs one read transaction.
    pub(crate) async fn basic_cached(&self, login: &str, password: &str) -> Result<(User, bool)> {
        let k = key(login, password);
        if let Some((user_id, kind)) = self.core.auth_cache.hit(&k) {
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
                    return Ok((user, matches!(kind, Kind::App(_))));
                }
                // The store out of reach is no verdict on the credentials.
                Err(e @ Error::Unavailable(_)) => return Err(e),
                _ => {}
            }
        }
        // Not remembered (or no longer true): what an app password's hash leads to, then
        // the account's password.
        if let Some(owner) = self.app_password_owner(password).await? {
            let user =
                self.get_user(owner).await.map_err(|_| Error::Unauthenticated("wrong username or password".into()))?;
            let kind = Kind::App(sha256(password.as_bytes()));
            if names(&user, login, kind) {
                crate::auth::account_usable(&user)?;
                self.core.auth_cache.remember(k, user.id, kind);
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
}
