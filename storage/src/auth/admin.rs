//! What only admins may do: manage accounts and read server statistics. An admin sees other
//! users' metadata (usage, counts), never their file contents: nothing here reads content.
//!
//! Nor does anything here give an admin a way in: an admin cannot mint an app password or an
//! S3 key for someone else (a silent way to read their files), only list and revoke them.
//! Setting another user's password is the one way left, and it is loud: it is logged on the
//! `audit` target, every session of the user ends, and the front end mails the user.

use crate::meta::kv::Readable;

use crate::error::{Error, Result};
use crate::meta::db::{self, CHUNK_DATA, USAGE, USERS};
use crate::meta::model::{Principal, Role, Status, Usage, User};
use crate::{CheckReport, NewUser, Storage};

/// Proof that the caller is an admin; obtained from [`Storage::admin`].
pub struct Admin<'a> {
    pub(crate) storage: &'a Storage,
    pub caller: Principal,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub users: u64,
    pub files: u64,
    /// Sum of file sizes over all drives.
    pub logical_bytes: u64,
    /// Bytes actually stored (sealed chunk files and inline chunks).
    pub stored_bytes: u64,
}

impl Storage {
    pub fn admin(&self, p: &Principal) -> Result<Admin<'_>> {
        if p.role == Role::Admin {
            Ok(Admin { storage: self, caller: p.clone() })
        } else {
            Err(Error::Forbidden("only admins may do this".into()))
        }
    }
}

impl Admin<'_> {
    /// Users in id order after `after`, optionally those whose username or email contains
    /// `query`, with their usage.
    pub async fn list_users(&self, query: Option<String>, after: u64, limit: usize) -> Result<Vec<(User, Usage)>> {
        let query = query.map(|q| q.to_lowercase());
        self.storage
            .core
            .db
            .read(move |t| {
                let users = t.open_table(USERS)?;
                let usage = t.open_table(USAGE)?;
                let mut out = Vec::new();
                for e in users.range(after + 1..)? {
                    if out.len() >= limit {
                        break;
                    }
                    let u: User = db::decode(e?.1.value())?;
                    if let Some(q) = &query
                        && !u.username.contains(q.as_str())
                        && !u.email.as_deref().is_some_and(|m| m.contains(q.as_str()))
                    {
                        continue;
                    }
                    let (bytes, files) = usage.get(u.id)?.map_or((0, 0), |v| v.value());
                    let quota = u.quota;
                    out.push((u, Usage { bytes, files, quota }));
                }
                Ok(out)
            })
            .await
    }

    pub async fn user(&self, id: u64) -> Result<(User, Usage)> {
        let user = self.storage.get_user(id).await?;
        let usage = self.storage.usage(id).await?;
        Ok((user, usage))
    }

    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        let user = self.storage.create_user(new).await?;
        self.storage
            .audit(
                crate::audit::Event::new("admin_user_created")
                    .by(&self.caller)
                    .target(user.id)
                    .with("username", &user.username),
            )
            .await;
        Ok(user)
    }

    /// Changes role, quota or disabled state; disabling ends the user's sessions.
    pub async fn update_user(
        &self,
        id: u64,
        role: Option<Role>,
        quota: Option<u64>,
        disabled: Option<bool>,
    ) -> Result<User> {
        if id == self.caller.user_id && (role.is_some_and(|r| r != Role::Admin) || disabled == Some(true)) {
            return Err(Error::Forbidden("admins cannot demote or disable themselves".into()));
        }
        let user = self
            .storage
            .update_user(id, move |u| {
                if let Some(r) = role {
                    u.role = r;
                }
                if let Some(q) = quota {
                    u.quota = q;
                }
                match disabled {
                    Some(true) => u.status = Status::Disabled,
                    Some(false) if u.status == Status::Disabled => u.status = Status::Active,
                    _ => {}
                }
                u.auth_epoch += 1;
                Ok(())
            })
            .await?;
        if user.status == Status::Disabled {
            self.storage.end_sessions(id, None).await?;
        }
        let e =
            crate::audit::Event::new("admin_user_changed").by(&self.caller).target(id).with("username", &user.username);
        let e = e.with_some("role", role.map(|r| r.as_str())).with_some("quota", quota).with_some("disabled", disabled);
        self.storage.audit(e).await;
        Ok(user)
    }

    /// Sets a user's password: audited, and every session of the user ends (their cached
    /// Basic credentials too, through the epoch `set_password` bumps). The caller mails them.
    pub async fn reset_password(&self, id: u64, password: &str) -> Result<User> {
        // One's own password changes with the current one (`/me/password`): an admin signed
        // in any other way (an app password, a session left open) could otherwise take the
        // admin account for good.
        if id == self.caller.user_id {
            return Err(Error::Forbidden(
                "an admin changes their own password with the current one, at /api/v1/me/password".into(),
            ));
        }
        let user = self.storage.set_password(id, password).await?;
        self.storage.end_sessions(id, None).await?;
        tracing::warn!(
            target: "audit",
            admin = %self.caller.username,
            admin_id = self.caller.user_id,
            user = %user.username,
            user_id = user.id,
            "an admin set the password of a user; every session of the user was ended"
        );
        self.storage
            .audit(
                crate::audit::Event::new("admin_password_set")
                    .by(&self.caller)
                    .target(id)
                    .with("username", &user.username),
            )
            .await;
        Ok(user)
    }

    /// Refuses to make credentials for another user: a key or app password an admin made
    /// would let them read that user's files without the user ever knowing.
    fn own_credentials_only(&self, id: u64) -> Result<()> {
        if id == self.caller.user_id {
            return Ok(());
        }
        Err(Error::Forbidden(
            "admins cannot create credentials (S3 keys, app passwords) for another user: the user creates their own"
                .into(),
        ))
    }

    pub async fn create_access_key(&self, id: u64) -> Result<(crate::meta::model::AccessKey, String)> {
        self.own_credentials_only(id)?;
        self.storage.create_access_key(id).await
    }

    pub async fn create_app_password(&self, id: u64, name: &str) -> Result<(crate::AppPassword, String)> {
        self.own_credentials_only(id)?;
        self.storage.create_app_password(id, name).await
    }

    /// Another user's S3 keys (metadata only: secrets are never shown again).
    pub async fn access_keys(&self, id: u64) -> Result<Vec<crate::meta::model::AccessKey>> {
        self.storage.get_user(id).await?;
        self.storage.access_keys_of(id).await
    }

    pub async fn revoke_access_key(&self, id: u64, key_id: &str) -> Result<()> {
        self.storage.revoke_access_key_of(id, key_id).await?;
        self.storage
            .audit(
                crate::audit::Event::new("admin_access_key_revoked")
                    .by(&self.caller)
                    .target(id)
                    .with("access_key", key_id),
            )
            .await;
        Ok(())
    }

    pub async fn app_passwords(&self, id: u64) -> Result<Vec<crate::AppPassword>> {
        self.storage.get_user(id).await?;
        self.storage.app_passwords_of(id).await
    }

    pub async fn revoke_app_password(&self, id: u64, app_password: u64) -> Result<()> {
        self.storage.revoke_app_password_of(id, app_password).await?;
        let e = crate::audit::Event::new("admin_app_password_revoked")
            .by(&self.caller)
            .target(id)
            .with("app_password", app_password);
        self.storage.audit(e).await;
        Ok(())
    }

    /// Deletes an account with all its data; chunks only it used are freed. Refused while
    /// any of its versions is under object lock (the error names them).
    pub async fn delete_user(&self, id: u64) -> Result<()> {
        self.delete_user_with(id, false).await
    }

    /// [`Self::delete_user`]; `bypass_governance` lets it destroy versions under GOVERNANCE
    /// retention (never COMPLIANCE retention or a legal hold).
    pub async fn delete_user_with(&self, id: u64, bypass_governance: bool) -> Result<()> {
        if id == self.caller.user_id {
            return Err(Error::Forbidden("admins cannot delete their own account".into()));
        }
        self.storage.delete_user_with(id, bypass_governance).await?;
        self.storage.audit(crate::audit::Event::new("user_deleted").by(&self.caller).target(id)).await;
        Ok(())
    }

    pub async fn stats(&self) -> Result<Stats> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || storage.stats_blocking()).await?
    }

    /// The consistency check on a running server. It reads the chunk files, then a
    /// snapshot: a write committed between the two shows as a chunk missing, though it is
    /// not. So a problem counts only if the next pass finds it too (at most three passes);
    /// a real inconsistency stays. Reads only.
    pub async fn check(&self) -> Result<CheckReport> {
        let mut report = self.storage.check().await?;
        for _ in 0..2 {
            if report.problems.is_empty() {
                break;
            }
            let mut again = self.storage.check().await?;
            again.problems.retain(|p| report.problems.contains(p));
            report = again;
        }
        Ok(report)
    }
}

impl Storage {
    /// Server statistics (see [`Stats`]); blocking, for `davit admin stats` offline too.
    pub fn stats_blocking(&self) -> Result<Stats> {
        let core = &self.core;
        let files_on_disk = core.backend.stored_bytes()?;
        core.db.read_sync(|t| {
            let mut s = Stats { stored_bytes: files_on_disk, ..Default::default() };
            s.users = t.open_table(USERS)?.len()?;
            for e in t.open_table(USAGE)?.iter()? {
                let (bytes, files) = e?.1.value();
                s.logical_bytes += bytes;
                s.files += files;
            }
            for e in t.open_table(CHUNK_DATA)?.iter()? {
                s.stored_bytes += e?.1.value().len() as u64;
            }
            Ok(s)
        })
    }
}
