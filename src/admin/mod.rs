//! `davit admin …`: provisioning and recovery. Offline on a stopped data folder (the
//! default), or through a running server's REST admin API with `--server URL`. Plain text by
//! default, `--json` for scripts; a failure prints one line of reason and exits non-zero.

mod migrate;
mod offline;
mod output;
mod remote;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use davit_storage::audit::Event;

use crate::config::Config;
pub use migrate::{MigrateArgs, migrate, migrate_target};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Work through this running server's REST admin API (as DAVIT_ADMIN_USER, default
    /// `admin`, with DAVIT_ADMIN_PASSWORD) instead of on a stopped data folder
    #[arg(long, env = "DAVIT_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Print JSON, for scripts
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage S3 access keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Users, files, logical and stored bytes, dedup ratio
    Stats,
    /// Check that chunk reference counts, stored chunks and usage agree; non-zero exit on any
    /// inconsistency (read-only; with --server, on the running server)
    Check,
    /// With --server: the running server writes a consistent backup into DIR on its host
    /// (incremental: chunk files already there are not copied again)
    Backup {
        /// Absolute path on the server's host: missing, empty, or an earlier backup
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Make a new data folder (--data-dir, missing or empty) from a finished backup, then
    /// verify it; the master key comes from --master-key-file, DAVIT_MASTER_KEY or DIR/master.key
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Wrap the data key under a new master key: constant time, nothing else is rewritten;
    /// afterwards only the new key opens the deployment (redb: stop the server first)
    RotateMasterKey {
        /// File holding the new key: 64 hex characters (e.g. `openssl rand -hex 32`)
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
    /// Copy this (stopped) deployment into empty stores elsewhere, then verify the copy
    #[command(long_about = migrate::MIGRATE_ABOUT)]
    Migrate(MigrateArgs),
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
    /// Set an account's password (offline only: a live server mails the user; use the REST API)
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: every way in is refused and its sessions end
    Disable { name: String },
    /// Enable a disabled account again
    Enable { name: String },
    /// Set an account's quota, e.g. 10G (0 = unlimited)
    Quota {
        name: String,
        #[arg(value_parser = crate::config::parse_size)]
        size: u64,
    },
    /// Delete an account with all its files, shares and links
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an S3 access key; prints AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=…
    /// (with --server, only for the admin signing in: admins mint no credentials for others)
    Add { user: String },
}

/// Runs one admin command: through the server when one is named, offline otherwise.
pub fn main(config: &Config, args: AdminArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.server {
        return remote::run(url, args.json, args.command);
    }
    match &args.command {
        AdminCommand::Migrate(a) => return migrate(config, a),
        AdminCommand::Restore { from } => return restore(config, from, args.json),
        AdminCommand::RotateMasterKey { new_key_file } => return rotate(config, new_key_file, args.json),
        AdminCommand::Backup { .. } => {
            bail!("backup is made by the running server: give --server URL (or DAVIT_SERVER)")
        }
        _ => {}
    }
    let mut sc = config.storage()?;
    // A check only reads: opened passive, it reports the chunk files a crash left (which
    // the server's start removes) instead of removing them first and reporting none.
    sc.passive = matches!(args.command, AdminCommand::Check);
    let storage = davit_storage::Storage::open(sc)?;
    let result = offline::run(&storage, args.command, args.json);
    storage.close();
    result
}

fn rotate(config: &Config, new_key_file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("reading the new master key {}", new_key_file.display()))?;
    let done = davit_storage::ops::rotate_master_key(&config.storage()?, &text)?;
    let (written, finished) = match done {
        davit_storage::ops::Rotated::Rewrapped { written } => (written, false),
        davit_storage::ops::Rotated::Finished { written } => (Some(written), true),
    };
    // Recorded under the new key: opening with it is the proof the rotation took.
    let mut sc = config.storage()?;
    sc.master_key = Some(text.trim().to_owned());
    audited(sc, Event::new("master_key_rotated").with("key_file_written", written.is_some()));
    if json {
        output::json(&serde_json::json!({ "rotated": true, "finished_earlier_run": finished, "key_file": written }));
        return Ok(());
    }
    match written {
        Some(path) => println!("the data key is wrapped by the new master key, now in {}", path.display()),
        None => println!(
            "the data key is wrapped by the new master key: start every davit with it from now on \
             (--master-key-file {})",
            new_key_file.display()
        ),
    }
    println!("the old master key no longer opens this deployment: destroy its copies once the nodes run");
    Ok(())
}

fn restore(config: &Config, from: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let key = config.storage()?.master_key;
    let given = key.is_some();
    let r = davit_storage::ops::restore(from, &config.data_dir, key)?;
    let problems = r.problems.len();
    if json {
        output::json(&serde_json::json!({
            "tables": r.tables,
            "rows": r.rows,
            "chunks_copied": r.chunks_copied,
            "chunk_bytes": r.chunk_bytes,
            "files_verified": r.files_verified,
            "bytes_verified": r.bytes_verified,
            "problems": r.problems,
            "master_key_written": r.master_key_written,
        }));
    } else {
        println!("{} tables, {} rows restored", r.tables, r.rows);
        println!("{} chunks copied ({} bytes)", r.chunks_copied, r.chunk_bytes);
        println!("{} files verified ({} bytes)", r.files_verified, r.bytes_verified);
        match (&r.master_key_written, given) {
            (Some(p), _) => println!("master key copied to {}", p.display()),
            (None, true) => println!("the restored folder uses the master key you gave: keep giving it"),
            (None, false) => {}
        }
        for p in &r.problems {
            eprintln!("{p}");
        }
    }
    if problems > 0 {
        bail!("{problems} differences between the backup and the restored folder");
    }
    audited(
        config.storage()?,
        Event::new("restored").with("from", from.display()).with("files_verified", r.files_verified),
    );
    if !json {
        println!("restored into {} and verified", config.data_dir.display());
    }
    Ok(())
}

/// Opens the stores to record one offline action in their audit trail, then closes them.
/// The stores were just closed by the command itself: redb lets go of its file a moment
/// later, so a refusal for "another process" is waited out (bounded). As on the server, a
/// failure to record is reported, never the action's failure: the action has happened.
pub(crate) fn audited(sc: davit_storage::StorageConfig, event: Event) {
    let mut tries = 0;
    let storage = loop {
        match davit_storage::Storage::open(sc.clone()) {
            Err(davit_storage::Error::Incompatible(m)) if m.contains("another process") && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Ok(s) => break s,
            Err(e) => {
                eprintln!("davit: done, but the audit trail could not record it: {e}");
                return;
            }
        }
    };
    offline::audit(&storage, event);
    storage.close();
}

/// The first line of standard input, for `--password-stdin`.
pub(super) fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the password from standard input")?;
    let line = s.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}
