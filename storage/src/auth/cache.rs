//! Clients of WebDAV and scripts send their password on every request; argon2 on each would
//! cost ~20 ms of CPU. Verified credentials are remembered for a short time, keyed by a
//! SHA-256 of (login, password) so the cache holds no password. A hit still loads the
//! account, so a password change (epoch), disable or delete takes effect at once.

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
