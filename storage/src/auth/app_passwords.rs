//! App passwords: named, revocable secrets for WebDAV Basic auth and scripts, shown once.
//! They are long random strings, so a SHA-256 (not argon2) is enough to store them and lets
//! a Basic attempt find its app password in one lookup.

use crate::meta::kv::Readable;
use serde::{Deserialize, Serialize};

use crate::Storage;
use crate::crypto::{random_string, sha256};
use crate::error::{Error, Result, What};
use crate::meta::db::{self, APP_PASSWORD_HASHES, APP_PASSWORDS};
use crate::meta::model::{Principal, now_nanos};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct AppPassword {
    pub id: u64,
    pub user: u64,
    pub name: String,
    pub hash: [u8; 32],
    pub created: i64,
}
crate::meta::db::stored!(AppPassword = "app password");

impl Storage {
    /// Creates one; the secret is returned this once.
    pub async fn create_app_password(&self, user: u64, name: &str) -> Result<(AppPassword, String)> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::InvalidInput("an app password needs a name of 1 to 100 characters".into()));
        }
        let secret = format!("dvt-{}", random_string(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 32));
        let hash = sha256(secret.as_bytes());
        let now = now_nanos();
        let ap = self
            .core
            .db
            .write((), move |ctx| {
                crate::meta::txn::load_user_w(ctx.txn, user)?;
                let id = ctx.txn.next_id("next_app_password_id")?;
                let ap = AppPassword { id, user, name: name.clone(), hash, created: now };
                ctx.txn.open_table(APP_PASSWORDS)?.insert(id, db::encode(&ap).as_slice())?;
                ctx.txn.open_table(APP_PASSWORD_HASHES)?.insert(&hash, id)?;
                Ok(ap)
            })
            .await?;
        self.audit(
            crate::audit::Event::new("app_password_created")
                .by_id(user)
                .with("app_password", ap.id)
                .with("name", &ap.name),
        )
        .await;
        Ok((ap, secret))
    }

    /// The caller's own app passwords (other users' only through [`crate::Admin`]).
    pub async fn list_app_passwords(&self, p: &Principal) -> Result<Vec<AppPassword>> {
        self.app_passwords_of(p.user_id).await
    }

    pub async fn revoke_app_password(&self, p: &Principal, id: u64) -> Result<()> {
        self.revoke_app_password_of(p.user_id, id).await?;
        self.audit(crate::audit::Event::new("app_password_revoked").by(p).with("app_password", id)).await;
        Ok(())
    }

    pub(crate) async fn app_passwords_of(&self, user: u64) -> Result<Vec<AppPassword>> {
        self.core
            .db
            .read(move |t| {
                let mut out = Vec::new();
                for e in t.open_table(APP_PASSWORDS)?.iter()? {
                    let ap: AppPassword = db::decode(e?.1.value())?;
                    if ap.user == user {
                        out.push(ap);
                    }
                }
                Ok(out)
            })
            .await
    }

    pub(crate) async fn revoke_app_password_of(&self, user: u64, id: u64) -> Result<()> {
        self.core
            .db
            .write((), move |ctx| {
                let mut aps = ctx.txn.open_table(APP_PASSWORDS)?;
                let ap: AppPassword = match aps.get(id)? {
                    Some(v) => db::decode(v.value())?,
                    None => return Err(Error::not_found(What::AppPassword)),
                };
                if ap.user != user {
                    return Err(Error::not_found(What::AppPassword));
                }
                aps.remove(id)?;
                ctx.txn.open_table(APP_PASSWORD_HASHES)?.remove(&ap.hash)?;
                Ok(())
            })
            .await
    }

    /// The owner of an app password, if `secret` is one.
    pub(crate) async fn app_password_owner(&self, secret: &str) -> Result<Option<u64>> {
        let hash = sha256(secret.as_bytes());
        self.core
            .db
            .read(move |t| {
                let Some(id) = t.open_table(APP_PASSWORD_HASHES)?.get(&hash)?.map(|v| v.value()) else {
                    return Ok(None);
                };
                Ok(t.open_table(APP_PASSWORDS)?
                    .get(id)?
                    .map(|v| db::decode::<AppPassword>(v.value()))
                    .transpose()?
                    .map(|a| a.user))
            })
            .await
    }
}
