//! The admin commands on a stopped data folder (the server holds it while it runs).
//!
//! Each change is recorded in the audit trail as the live admin API records it (the same
//! actions), but by the operator at the machine: nobody signs in offline, so the event names
//! the operating system's account that ran the tool (`davit_storage::Storage::audit_offline`).

use anyhow::{Context, bail};
use davit_storage::audit::Event;
use davit_storage::{NewUser, Role, Status, Storage, User};
use serde_json::{Value, json};

use super::{AdminCommand, KeyCommand, UserCommand, output};

/// The REST API's own shape of a user, so offline and live output agree.
fn user_json(u: &User) -> Value {
    davit_api::user_json(u, None)
}

fn find(storage: &Storage, name: &str) -> anyhow::Result<User> {
    storage.find_user_blocking(name).map_err(|_| anyhow::anyhow!("no user named {name}"))
}

/// The core's changes of one user are async (the writer thread answers through a channel).
fn block_on<T>(f: impl std::future::Future<Output = davit_storage::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(rt.block_on(f)?)
}

/// Who ran the tool, as the operating system names them.
fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return v;
        }
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().next().map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Records an offline action in the audit trail (the store, and the audit log's line).
/// A failure is reported, never the action's failure: the action has happened.
pub(super) fn audit(storage: &Storage, event: Event) {
    let recorded = block_on(async {
        storage.audit_offline(event, &os_user()).await;
        Ok(())
    });
    if let Err(e) = recorded {
        eprintln!("davit: done, but the audit trail could not record it: {e}");
    }
}

/// An admin action on one account, named as the live admin API names it.
fn on_user(action: &str, u: &User) -> Event {
    Event::new(action).target(u.id).with("username", &u.username)
}

pub fn run(storage: &Storage, cmd: AdminCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::User(UserCommand::Add { name, password_stdin: _, email, role, quota }) => {
            let role = Role::parse(&role)
                .with_context(|| format!("unknown role '{role}' (admin, user, uploader, downloader)"))?;
            let password = super::read_password()?;
            let user = storage.create_user_blocking(NewUser {
                username: name,
                email,
                password,
                role,
                status: Status::Active,
                quota,
            })?;
            audit(storage, on_user("admin_user_created", &user));
            output::user("created", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::List) => {
            let users: Vec<Value> = storage.list_users_blocking()?.iter().map(user_json).collect();
            output::users(&users, as_json);
        }
        AdminCommand::User(UserCommand::Passwd { name, password_stdin: _ }) => {
            let password = super::read_password()?;
            let user = storage.set_password_blocking(&name, &password).map_err(|e| match e {
                davit_storage::Error::NotFound(_) => anyhow::anyhow!("no user named {name}"),
                e => e.into(),
            })?;
            audit(storage, on_user("admin_password_set", &user));
            output::user("changed the password of", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Disable { name }) => {
            let id = find(storage, &name)?.id;
            let user = block_on(async {
                let u = storage.set_status(id, Status::Disabled).await?;
                storage.end_sessions(id, None).await?;
                Ok(u)
            })?;
            audit(storage, on_user("admin_user_changed", &user).with("disabled", true));
            output::user("disabled", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Enable { name }) => {
            let u = find(storage, &name)?;
            if u.status != Status::Disabled {
                bail!("{name} is not disabled (status {})", u.status.as_str());
            }
            let user = block_on(storage.set_status(u.id, Status::Active))?;
            audit(storage, on_user("admin_user_changed", &user).with("disabled", false));
            output::user("enabled", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Quota { name, size }) => {
            let id = find(storage, &name)?.id;
            let user = block_on(storage.set_quota(id, size))?;
            audit(storage, on_user("admin_user_changed", &user).with("quota", size));
            output::user("set the quota of", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Delete { name }) => {
            let u = find(storage, &name)?;
            block_on(storage.delete_user(u.id))?;
            audit(storage, on_user("user_deleted", &u));
            output::user("deleted", &user_json(&u), as_json);
        }
        AdminCommand::Key(KeyCommand::Add { user }) => {
            let u = find(storage, &user)?;
            let (key, secret) = storage.create_access_key_blocking(u.id)?;
            audit(storage, on_user("admin_access_key_created", &u).with("access_key", &key.id));
            output::key(&json!({ "access_key_id": key.id, "secret_access_key": secret }), as_json);
        }
        AdminCommand::Stats => {
            let s = storage.stats_blocking()?;
            output::stats(&davit_api::stats_json(&s), as_json);
        }
        AdminCommand::Check => {
            let r = storage.check_blocking()?;
            output::check(&davit_api::check_json(&r), as_json)?;
        }
        AdminCommand::Backup { .. }
        | AdminCommand::Restore { .. }
        | AdminCommand::RotateMasterKey { .. }
        | AdminCommand::Migrate(_) => bail!("this command opens the stores itself (see admin::main)"),
    }
    Ok(())
}
