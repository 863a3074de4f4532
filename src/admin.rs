//! `davit admin …`: offline operations on a data folder, for provisioning and recovery
//! without a running server. Each prints one line of reason and exits non-zero on failure.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;
use davit_storage::{NewUser, Role, Status, Storage};

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage S3 access keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check that chunk reference counts, stored chunks and usage agree; non-zero exit on any
    /// inconsistency
    Check,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an active account
    Add {
        name: String,
        /// Read the password from standard input (first line)
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
        /// admin, user, uploader or downloader
        #[arg(long, default_value = "user")]
        role: String,
        /// Quota in bytes, e.g. 10G (0 = unlimited) [default: the server default]
        #[arg(long, value_parser = crate::config::parse_size)]
        quota: Option<u64>,
    },
    /// List accounts
    List,
    /// Set an account's password
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an S3 access key; prints AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=…
    Add { user: String },
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("reading the password from standard input")?;
    let line = s.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

pub fn run(storage: &Storage, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::User(UserCommand::Add { name, password_stdin: _, email, role, quota }) => {
            let role = Role::parse(&role)
                .with_context(|| format!("unknown role '{role}' (admin, user, uploader, downloader)"))?;
            let password = read_password()?;
            let user = storage.create_user_blocking(NewUser {
                username: name,
                email,
                password,
                role,
                status: Status::Active,
                quota,
            })?;
            println!("created user {} (id {}, role {})", user.username, user.id, user.role.as_str());
        }
        AdminCommand::User(UserCommand::List) => {
            println!("{:<6} {:<24} {:<11} {:<9} {:<14} email", "id", "username", "role", "status", "quota");
            for u in storage.list_users_blocking()? {
                println!(
                    "{:<6} {:<24} {:<11} {:<9} {:<14} {}",
                    u.id,
                    u.username,
                    u.role.as_str(),
                    u.status.as_str(),
                    if u.quota == 0 { "unlimited".to_owned() } else { u.quota.to_string() },
                    u.email.as_deref().unwrap_or("-")
                );
            }
        }
        AdminCommand::User(UserCommand::Passwd { name, password_stdin: _ }) => {
            let password = read_password()?;
            let user = storage.set_password_blocking(&name, &password).map_err(|e| match e {
                davit_storage::Error::NotFound(_) => anyhow::anyhow!("no user named {name}"),
                e => e.into(),
            })?;
            println!("password of {} changed", user.username);
        }
        AdminCommand::Key(KeyCommand::Add { user }) => {
            let u = storage.find_user_blocking(&user).map_err(|_| anyhow::anyhow!("no user named {user}"))?;
            let (key, secret) = storage.create_access_key_blocking(u.id)?;
            println!("AWS_ACCESS_KEY_ID={}", key.id);
            println!("AWS_SECRET_ACCESS_KEY={secret}");
        }
        AdminCommand::Check => {
            let r = storage.check_blocking()?;
            println!(
                "{} items, {} chunks ({} files), {} orphaned chunk files (removed by the next sweep), \
                 {} unreferenced chunk files waiting out the grace period",
                r.items, r.chunks, r.chunk_files, r.orphans, r.waiting
            );
            if !r.problems.is_empty() {
                for p in &r.problems {
                    eprintln!("{p}");
                }
                bail!("{} inconsistencies found", r.problems.len());
            }
            println!("consistent");
        }
    }
    Ok(())
}
