//! Accounts: creation, passwords, roles, status, quota, and deletion with all their data.

use crate::meta::kv::Readable;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::Storage;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, ACCESS_KEYS, APP_PASSWORD_HASHES, APP_PASSWORDS, CODES, EMAILS, USAGE, USERNAMES, USERS};
use crate::meta::model::{AccessKey, Item, Kind, Role, Status, Usage, User, now_nanos};
use crate::meta::names::{normalize_email, validate_username};
use crate::meta::txn::{self, W};

pub const MIN_PASSWORD_LEN: usize = 8;

pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    pub role: Role,
    pub status: Status,
    /// None: the server's default quota.
    pub quota: Option<u64>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid params"))
}

pub fn check_password_rules(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!("a password has at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > 1024 {
        return Err(Error::InvalidInput("a password has at most 1024 bytes".into()));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String> {
    check_password_rules(password)?;
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>()).map_err(Error::internal)?;
    Ok(argon2().hash_password(password.as_bytes(), &salt).map_err(Error::internal)?.to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// Runs every argon2 hash and check of the server, a bounded number at a time: each takes
/// 19 MiB, so without a cap a burst of registrations or logins grows the server by that much
/// per request (up to tokio's 512 blocking threads). Beyond the cap, requests queue in order.
pub(crate) struct Hasher {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// The most argon2 runs seen at once, for the test of the cap.
    #[cfg(test)]
    peak: std::sync::Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher::new((cores * 2).max(2))
    }
}

impl Hasher {
    pub(crate) fn new(permits: usize) -> Self {
        Hasher {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(permits)),
            #[cfg(test)]
            peak: Default::default(),
        }
    }

    /// `f` on a blocking thread once a slot is free. The permit moves into the thread, so a
    /// request that goes away while argon2 runs does not free its slot before the memory.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = self.slots.clone().acquire_owned().await.map_err(Error::internal)?;
        #[cfg(test)]
        let peak = self.peak.clone();
        Ok(tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            {
                let now = peak.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.1.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            }
            let out = f();
            #[cfg(test)]
            peak.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            drop(permit);
            out
        })
        .await?)
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move || hash_password(&password)).await?
    }

    pub(crate) async fn verify(&self, hash: &str, password: &str) -> Result<bool> {
        let (hash, password) = (hash.to_owned(), password.to_owned());
        self.run(move || verify_password(&hash, &password)).await
    }

    /// `verify` against a hash no password matches, for an account that does not exist.
    pub(crate) async fn verify_none(&self, password: &str) -> Result<bool> {
        let password = password.to_owned();
        self.run(move || verify_password(dummy_hash(), &password)).await
    }
}

/// A hash that verifies no password, checked when the account does not exist so that the
/// answer takes as long either way.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not-a-real-password").expect("hash"))
}

impl Storage {
    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        validate_username(&new.username)?;
        let email = new.email.as_deref().map(normalize_email).transpose()?;
        let hash = self.core.hasher.hash(&new.password).await?;
        let quota = new.quota.unwrap_or(self.core.config.default_quota);
        let now = now_nanos();
        let (username, role, status) = (new.username, new.role, new.status);
        self.core
            .db
            .write((), move |ctx| create_user_txn(ctx, &username, email.as_deref(), &hash, role, status, quota, now))
            .await
    }

    /// The same for the offline admin commands, which run without a server.
    pub fn create_user_blocking(&self, new: NewUser) -> Result<User> {
        validate_username(&new.username)?;
        let email = new.email.as_deref().map(normalize_email).transpose()?;
        let hash = hash_password(&new.password)?;
        let quota = new.quota.unwrap_or(self.core.config.default_quota);
        let (user, _) = self.core.db.write_sync(|ctx| {
            create_user_txn(ctx, &new.username, email.as_deref(), &hash, new.role, new.status, quota, now_nanos())
        })?;
        Ok(user)
    }

    pub async fn get_user(&self, id: u64) -> Result<User> {
        self.core.db.read(move |t| crate::meta::txn::load_user(t, id)).await
    }

    /// By username or (case-insensitive) email.
    pub async fn find_user(&self, login: &str) -> Result<User> {
        let login = login.trim().to_owned();
        self.core.db.read(move |t| find_user_txn(t, &login)).await
    }

    pub fn find_user_blocking(&self, login: &str) -> Result<User> {
        self.core.db.read_sync(|t| find_user_txn(t, login))
    }

    pub async fn list_users(&self, after: u64, limit: usize) -> Result<Vec<User>> {
        self.core
            .db
            .read(move |t| {
                let users = t.open_table(USERS)?;
                let mut out = Vec::new();
                for entry in users.range(after + 1..)? {
                    if out.len() >= limit {
                        break;
                    }
                    out.push(db::decode(entry?.1.value())?);
                }
                Ok(out)
            })
            .await
    }

    pub fn list_users_blocking(&self) -> Result<Vec<User>> {
        self.core.db.read_sync(|t| {
            let users = t.open_table(USERS)?;
            users.iter()?.map(|e| db::decode(e?.1.value())).collect()
        })
    }

    /// Checks a password (the login's, or Basic auth's). Fails the same way for an unknown
    /// account and a wrong password, and spends the same time on both.
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<User> {
        let user = self.find_user(login).await.ok();
        let ok = match &user {
            Some(u) => self.core.hasher.verify(&u.password_hash, password).await?,
            None => self.core.hasher.verify_none(password).await?,
        };
        match user {
            Some(u) if ok => crate::auth::account_usable(&u).map(|()| u),
            _ => Err(Error::Unauthenticated("wrong username or password".into())),
        }
    }

    /// Sets a new password; tokens issued before stop working.
    pub async fn set_password(&self, user_id: u64, password: &str) -> Result<User> {
        let hash = self.core.hasher.hash(password).await?;
        self.core
            .db
            .write((), move |ctx| {
                let user = update_user_txn(ctx, user_id, &|u: &mut User| {
                    u.password_hash = hash.clone();
                    u.auth_epoch += 1;
                    Ok(())
                })?;
                Self::forget_account_codes(ctx, user_id)?;
                Ok(user)
            })
            .await
    }

    pub fn set_password_blocking(&self, login: &str, password: &str) -> Result<User> {
        let hash = hash_password(password)?;
        let user = self.find_user_blocking(login)?;
        let (u, _) = self.core.db.write_sync(|ctx| {
            let u = update_user_txn(ctx, user.id, &|u: &mut User| {
                u.password_hash = hash.clone();
                u.auth_epoch += 1;
                Ok(())
            })?;
            Self::forget_account_codes(ctx, user.id)?;
            Ok(u)
        })?;
        Ok(u)
    }

    pub async fn set_role(&self, user_id: u64, role: Role) -> Result<User> {
        self.update_user(user_id, move |u| {
            u.role = role;
            u.auth_epoch += 1;
            Ok(())
        })
        .await
    }

    pub async fn set_status(&self, user_id: u64, status: Status) -> Result<User> {
        self.update_user(user_id, move |u| {
            u.status = status;
            u.auth_epoch += 1;
            Ok(())
        })
        .await
    }

    pub async fn set_quota(&self, user_id: u64, quota: u64) -> Result<User> {
        self.update_user(user_id, move |u| {
            u.quota = quota;
            Ok(())
        })
        .await
    }

    pub async fn update_user(
        &self,
        user_id: u64,
        f: impl Fn(&mut User) -> Result<()> + Send + 'static,
    ) -> Result<User> {
        self.core.db.write((), move |ctx| update_user_txn(ctx, user_id, &f)).await
    }

    /// Deletes an account and everything it owns: its tree (releasing chunk references;
    /// chunks other files use stay), keys and usage. One transaction: all or nothing.
    /// Refused, naming the objects, while any of its versions is under object lock.
    pub async fn delete_user(&self, user_id: u64) -> Result<()> {
        self.delete_user_with(user_id, false).await
    }

    /// [`Self::delete_user`]; `bypass_governance` (an admin's explicit choice) lets versions
    /// under GOVERNANCE retention go, never those under COMPLIANCE or a legal hold.
    pub async fn delete_user_with(&self, user_id: u64, bypass_governance: bool) -> Result<()> {
        self.core.db.write((), move |ctx| delete_user_txn(ctx, user_id, bypass_governance)).await?;
        // Folders of their trash were handed to the sweeper.
        self.swept_later(true);
        Ok(())
    }

    /// Whether any admin account exists (the first start creates one when none does).
    pub fn has_admin_blocking(&self) -> Result<bool> {
        Ok(self.list_users_blocking()?.iter().any(|u| u.role == Role::Admin))
    }

    pub async fn usage(&self, user_id: u64) -> Result<Usage> {
        self.core
            .db
            .read(move |t| {
                let user = txn::load_user(t, user_id)?;
                let (bytes, files) = t.open_table(USAGE)?.get(user_id)?.map_or((0, 0), |v| v.value());
                Ok(Usage { bytes, files, quota: user.quota })
            })
            .await
    }
}

#[allow(clippy::too_many_arguments)]
fn create_user_txn(
    ctx: &mut db::WriteCtx<'_>,
    username: &str,
    email: Option<&str>,
    hash: &str,
    role: Role,
    status: Status,
    quota: u64,
    now: i64,
) -> Result<User> {
    let txn = ctx.txn;
    {
        let names = txn.open_table(USERNAMES)?;
        if names.get(username)?.is_some() {
            return Err(Error::AlreadyExists(format!("user {username} already exists")));
        }
        if let Some(e) = email
            && txn.open_table(EMAILS)?.get(e)?.is_some()
        {
            return Err(Error::AlreadyExists("that email address is already in use".into()));
        }
    }
    let id = txn.next_id("next_user_id")?;
    let mut w = W::open(ctx)?;
    let root = Item::folder(w.next_item_id()?, id, 0, "", now);
    w.put(&root)?;
    w.usage.insert(id, (0, 0))?;
    drop(w);
    let user = User {
        id,
        username: username.to_owned(),
        email: email.map(str::to_owned),
        password_hash: hash.to_owned(),
        role,
        status,
        quota,
        created: now,
        root: root.id,
        second_factor: false,
        auth_epoch: 0,
    };
    txn.open_table(USERS)?.insert(id, db::encode(&user).as_slice())?;
    txn.open_table(USERNAMES)?.insert(username, id)?;
    if let Some(e) = email {
        txn.open_table(EMAILS)?.insert(e, id)?;
    }
    Ok(user)
}

fn find_user_txn(t: &crate::meta::kv::ReadTxn, login: &str) -> Result<User> {
    let id = if login.contains('@') {
        t.open_table(EMAILS)?.get(login.to_ascii_lowercase().as_str())?.map(|v| v.value())
    } else {
        t.open_table(USERNAMES)?.get(login)?.map(|v| v.value())
    };
    let id = id.ok_or_else(|| Error::not_found(What::User))?;
    crate::meta::txn::load_user(t, id)
}

fn update_user_txn(ctx: &mut db::WriteCtx<'_>, user_id: u64, f: &dyn Fn(&mut User) -> Result<()>) -> Result<User> {
    let mut users = ctx.txn.open_table(USERS)?;
    let mut user: User = db::decode(users.get(user_id)?.ok_or_else(|| Error::not_found(What::User))?.value())?;
    let old_email = user.email.clone();
    f(&mut user)?;
    users.insert(user_id, db::encode(&user).as_slice())?;
    if old_email != user.email {
        let mut emails = ctx.txn.open_table(EMAILS)?;
        if let Some(new) = &user.email {
            if emails.get(new.as_str())?.is_some_and(|v| v.value() != user_id) {
                return Err(Error::AlreadyExists("that email address is already in use".into()));
            }
            emails.insert(new.as_str(), user_id)?;
        }
        if let Some(old) = &old_email {
            emails.remove(old.as_str())?;
        }
    }
    Ok(user)
}

fn delete_user_txn(ctx: &mut db::WriteCtx<'_>, user_id: u64, bypass_governance: bool) -> Result<()> {
    let txn = ctx.txn;
    let user: User = {
        let users = txn.open_table(USERS)?;
        db::decode(users.get(user_id)?.ok_or_else(|| Error::not_found(What::User))?.value())?
    };
    {
        let mut w = W::open(ctx)?;
        // The trash first: its folders go to the sweeper, its files' references here.
        w.purge_all_trash(user_id)?;
        let root = w.get(user.root)?;
        for item in w.descendants(root.id)? {
            w.unlink(&item)?;
            w.items.remove(item.id)?;
            crate::meta::grant_rows::forget_item(w.txn, item.id)?;
            crate::meta::tags::forget_item(w.txn, item.id)?;
            crate::meta::tags::forget_lifecycle(w.txn, item.id)?;
            if item.kind == Kind::File {
                w.release_refs(&item.chunks)?;
            } else {
                w.drop_folder_totals(item.id)?;
            }
        }
        w.items.remove(root.id)?;
        w.drop_folder_totals(root.id)?;
        crate::meta::uploads::drop_uploads_of(&mut w, user_id)?;
        w.drop_user_versions(user_id, bypass_governance)?;
        w.drop_usage(user_id)?;
    }
    crate::meta::grant_rows::forget_user(txn, user_id)?;
    txn.open_table(USERS)?.remove(user_id)?;
    txn.open_table(USERNAMES)?.remove(user.username.as_str())?;
    if let Some(e) = &user.email {
        txn.open_table(EMAILS)?.remove(e.as_str())?;
    }
    let mut keys = txn.open_table(ACCESS_KEYS)?;
    let mine: Vec<String> = keys
        .iter()?
        .filter_map(|e| e.ok())
        .filter_map(|(k, v)| {
            let key: AccessKey = db::decode(v.value()).ok()?;
            (key.user == user_id).then(|| k.value().to_owned())
        })
        .collect();
    for k in mine {
        keys.remove(k.as_str())?;
    }
    drop(keys);
    crate::auth::sessions::remove_sessions(txn, |s| s.user == user_id)?;
    let mut codes = txn.open_table(CODES)?;
    let purposes: Vec<String> = codes
        .range((user_id, "")..(user_id + 1, ""))?
        .filter_map(|e| e.ok())
        .map(|(k, _)| k.value().1.to_owned())
        .collect();
    for p in purposes {
        codes.remove((user_id, p.as_str()))?;
    }
    let mut aps = txn.open_table(APP_PASSWORDS)?;
    let mut hashes = txn.open_table(APP_PASSWORD_HASHES)?;
    let mine: Vec<crate::AppPassword> = aps
        .iter()?
        .filter_map(|e| e.ok())
        .filter_map(|(_, v)| db::decode::<crate::AppPassword>(v.value()).ok())
        .filter(|a| a.user == user_id)
        .collect();
    for a in mine {
        aps.remove(a.id)?;
        hashes.remove(&a.hash)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_runs_at_most_as_many_at_once_as_there_are_permits() {
        let hasher = std::sync::Arc::new(Hasher::new(2));
        let runs: Vec<_> = (0..8)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        hasher.hash("a-good-password").await.map(|_| ())
                    } else {
                        hasher.verify_none("a-good-password").await.map(|ok| assert!(!ok))
                    }
                })
            })
            .collect();
        for run in runs {
            run.await.unwrap().unwrap();
        }
        let peak = hasher.peak.1.load(SeqCst);
        assert!((1..=2).contains(&peak), "{peak} at once");
        assert_eq!(hasher.peak.0.load(SeqCst), 0);
    }
}
