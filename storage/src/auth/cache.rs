//! Clients of WebDAV and scripts send their password on every request; argon2 on each would
//! cost ~20 ms of CPU. Verified credentials are remembered for a short time, keyed by a
//! SHA-256 of (login, password) so the cache holds no password.
//!
//! An entry holds only (user id, auth epoch). Every hit reads the account's row from the
//! metadata store and must find the same epoch and a usable status, so a password change
//! (which bumps the epoch), a disable or a delete takes effect at once, on whichever node of
//! a deployment it was made: the cache is per process, the truth it is checked against is
//! shared. That costs one small read per hit, against an argon2 run saved; a TTL alone
//! would leave an old password working on the other nodes until it ran out. (App passwords
//! are looked up on every request, and S3 keys at every signature check: neither is here.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Storage;
use crate::crypto::sha256;
use crate::error::Result;
use crate::meta::model::User;

const TTL: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], (u64, u64, Instant)>>,
}

fn key(login: &str, password: &str) -> [u8; 32] {
    let mut buf = Vec::with_capacity(login.len() + password.len() + 1);
    buf.extend_from_slice(login.as_bytes());
    buf.push(0);
    buf.extend_from_slice(password.as_bytes());
    sha256(&buf)
}

impl Storage {
    /// `authenticate`, remembering success for a few minutes.
    pub async fn authenticate_cached(&self, login: &str, password: &str) -> Result<User> {
        let k = key(login, password);
        let hit = self.core.auth_cache.entries.lock().expect("auth cache").get(&k).copied();
        if let Some((user_id, epoch, at)) = hit
            && at.elapsed() < TTL
            && let Ok(user) = self.get_user(user_id).await
            && user.auth_epoch == epoch
            && crate::auth::account_usable(&user).is_ok()
        {
            return Ok(user);
        }
        let user = self.authenticate(login, password).await?;
        let mut entries = self.core.auth_cache.entries.lock().expect("auth cache");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, _, at)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(k, (user.id, user.auth_epoch, Instant::now()));
        Ok(user)
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
}
