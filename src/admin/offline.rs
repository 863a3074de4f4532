//! The admin commands on a stopped data folder (the server holds it while it runs).

use anyhow::{Context, bail};
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
            output::user("changed the password of", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Disable { name }) => {
            let id = find(storage, &name)?.id;
            let user = block_on(async {
                let u = storage.set_status(id, Status::Disabled).await?;
                storage.end_sessions(id, None).await?;
                Ok(u)
            })?;
            output::user("disabled", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Enable { name }) => {
            let u = find(storage, &name)?;
            if u.status != Status::Disabled {
                bail!("{name} is not disabled (status {})", u.status.as_str());
            }
            let user = block_on(storage.set_status(u.id, Status::Active))?;
            output::user("enabled", &user_json(&user), as_json);
        }
        AdminCommand::User(UserCommand::Quota { name, size }) => {
            let id = find(storage, &name)?.id;
            let user = block_on(storage.set_quota(id, size))?;
            output::user("set the quota of", &user_json(&user), as_json);
        }
        AdminCommand::Key(KeyCommand::Add { user }) => {
            let u = find(storage, &user)?;
            let (key, secret) = storage.create_access_key_blocking(u.id)?;
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
