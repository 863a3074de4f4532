//! S3 access keys. SigV4 needs the secret itself, so it is kept sealed under a key derived
//! from the master key and the access key's id, and shown to its owner once.

use crate::Storage;
use crate::auth::account_usable;
use crate::crypto::random_string;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, ACCESS_KEYS};
use crate::meta::kv::Readable;
use crate::meta::model::{AccessKey, Principal, User, now_nanos};

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An access key's secret for a signature check, with whom the request acts as once the
/// signature holds.
pub struct KeySecret {
    pub secret: String,
    /// None when the owner's account is not usable ([`Storage::access_key_principal`] says
    /// why). Trust it only after the signature was checked with `secret`.
    pub owner: Option<Principal>,
}

/// Access keys with their owners as the store last answered, each with the engine's
/// credential generation read before that read (`Db::auth_generation`, which every node's
/// change to an account or a key moves, see `meta::kv::pg::watch`): trusted while it has
/// not moved, so a signed request costs no read of PostgreSQL while nothing changed, and a
/// revocation or a disabled account made on any node takes effect within the engine's
/// bound (on this node at once), as remembered Basic credentials do (`auth::cache`). Only
/// what the store holds is kept: the secret stays sealed and is opened per request. Never
/// used on redb (no generation), where the read is local.
#[derive(Default)]
pub(crate) struct KeyCache(std::sync::Mutex<std::collections::HashMap<String, (u64, AccessKey, User)>>);

/// Keys remembered at most (past it, all are forgotten: each is read again when used).
const KEYS_REMEMBERED: usize = 10_000;

impl KeyCache {
    pub(super) fn get(&self, key_id: &str, generation: u64) -> Option<(AccessKey, User)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key_id).filter(|(g, _, _)| *g == generation).map(|(_, k, u)| (k.clone(), u.clone()))
    }

    fn put(&self, generation: u64, key: &AccessKey, user: &User) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= KEYS_REMEMBERED {
            m.clear();
        }
        m.insert(key.id.clone(), (generation, key.clone(), user.clone()));
    }
}

impl Storage {
    pub async fn create_access_key(&self, user_id: u64) -> Result<(AccessKey, String)> {
        let this = self.clone();
        let (key, secret) = tokio::task::spawn_blocking(move || this.create_access_key_blocking(user_id)).await??;
        self.audit(crate::audit::Event::new("access_key_created").by_id(user_id).with("access_key", &key.id)).await;
        Ok((key, secret))
    }

    pub fn create_access_key_blocking(&self, user_id: u64) -> Result<(AccessKey, String)> {
        let id = format!("DV{}", random_string(ID_ALPHABET, 18));
        let secret = random_string(SECRET_ALPHABET, 40);
        let key = AccessKey {
            sealed_secret: self.core.keys.seal_secret(&id, secret.as_bytes()),
            id,
            user: user_id,
            created: now_nanos(),
        };
        self.core.db.write_sync(|ctx| {
            crate::meta::txn::load_user_w(ctx.txn, user_id)?;
            ctx.txn.open_table(ACCESS_KEYS)?.insert(key.id.as_str(), db::encode(&key).as_slice())?;
            Ok(())
        })?;
        Ok((key, secret))
    }

    /// The owner and secret of an access key, for signature checks.
    async fn access_key(&self, key_id: &str) -> Result<AccessKey> {
        let key_id = key_id.to_owned();
        self.core
            .db
            .read(move |t| {
                let keys = t.open_table(ACCESS_KEYS)?;
                let v =
                    keys.get(key_id.as_str())?.ok_or_else(|| Error::Unauthenticated("unknown access key".into()))?;
                db::decode(v.value())
            })
            .await
    }

    /// The owner and secret of an access key, for signature checks: one read, as it runs
    /// for every S3 request, or none while the store vouches that no key or account
    /// changed since it last answered ([`KeyCache`]).
    pub async fn access_key_secret(&self, key_id: &str) -> Result<KeySecret> {
        // Read before the store is: a change heard after this makes the entry stale.
        let generation = self.core.db.auth_generation();
        let (key, user) = match generation.and_then(|g| self.core.key_cache.get(key_id, g)) {
            Some(known) => known,
            None => {
                let id = key_id.to_owned();
                let (key, user) = self
                    .core
                    .db
                    .read(move |t| {
                        let keys = t.open_table(ACCESS_KEYS)?;
                        let v = keys
                            .get(id.as_str())?
                            .ok_or_else(|| Error::Unauthenticated("unknown access key".into()))?;
                        let key: AccessKey = db::decode(v.value())?;
                        let user = crate::meta::txn::load_user(t, key.user)?;
                        Ok((key, user))
                    })
                    .await?;
                if let Some(g) = generation {
                    self.core.key_cache.put(g, &key, &user);
                }
                (key, user)
            }
        };
        let secret = self.core.keys.open_secret(&key.id, &key.sealed_secret)?;
        let owner = account_usable(&user).ok().map(|()| Principal::of(&user));
        Ok(KeySecret { secret: String::from_utf8(secret).map_err(Error::internal)?, owner })
    }

    /// Whom a request signed with this key acts as (no need to open its secret): refused
    /// as `Forbidden` when the owner's account is not usable, `Unauthenticated` for an
    /// unknown key.
    pub async fn access_key_principal(&self, key_id: &str) -> Result<Principal> {
        let key = self.access_key(key_id).await?;
        let user = self.get_user(key.user).await.map_err(|_| Error::Unauthenticated("unknown access key".into()))?;
        account_usable(&user)?;
        Ok(Principal::of(&user))
    }

    /// The caller's own keys (other users' only through [`crate::Admin`]).
    pub async fn list_access_keys(&self, p: &Principal) -> Result<Vec<AccessKey>> {
        self.access_keys_of(p.user_id).await
    }

    pub async fn revoke_access_key(&self, p: &Principal, key_id: &str) -> Result<()> {
        self.revoke_access_key_of(p.user_id, key_id).await?;
        self.audit(crate::audit::Event::new("access_key_revoked").by(p).with("access_key", key_id)).await;
        Ok(())
    }

    pub(crate) async fn access_keys_of(&self, user_id: u64) -> Result<Vec<AccessKey>> {
        self.core
            .db
            .read(move |t| {
                let keys = t.open_table(ACCESS_KEYS)?;
                let mut out = Vec::new();
                for e in keys.iter()? {
                    let key: AccessKey = db::decode(e?.1.value())?;
                    if key.user == user_id {
                        out.push(key);
                    }
                }
                Ok(out)
            })
            .await
    }

    pub(crate) async fn revoke_access_key_of(&self, user_id: u64, key_id: &str) -> Result<()> {
        let key_id = key_id.to_owned();
        self.core
            .db
            .write((), move |ctx| {
                let mut keys = ctx.txn.open_table(ACCESS_KEYS)?;
                let owner = match keys.get(key_id.as_str())? {
                    Some(v) => db::decode::<AccessKey>(v.value())?.user,
                    None => return Err(Error::not_found(What::AccessKey)),
                };
                if owner != user_id {
                    return Err(Error::not_found(What::AccessKey));
                }
                keys.remove(key_id.as_str())?;
                Ok(())
            })
            .await
    }
}
