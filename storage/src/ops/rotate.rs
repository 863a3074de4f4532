//! `davit admin rotate-master-key`: the master key only wraps the data key (see `crypto`),
//! so changing it re-wraps 32 bytes in one transaction, whatever the amount of data.
//!
//! When the key lives in the data folder (`master.key`), the new key is first written
//! beside it (`master.key.new`, fsynced), then the re-wrap commits, then the file is renamed
//! over `master.key`. A crash between the commit and the rename leaves a folder the old key
//! no longer opens; running the same command again sees that the new key already opens it
//! and finishes the rename.

use std::path::Path;

use crate::crypto::{self, KEY_LEN};
use crate::error::{Error, Result};
use crate::meta::db::Db;
use crate::{DB_FILE, MASTER_KEY_FILE, MetaStore, StorageConfig};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The data key is wrapped by the new key now; `written` is the data folder's key file
    /// that now holds it, or None when the operator gives the key (`--master-key-file`,
    /// `DAVIT_MASTER_KEY`) and must give the new one from now on.
    Rewrapped { written: Option<std::path::PathBuf> },
    /// An earlier run had committed the re-wrap but not replaced `master.key`: done now.
    Finished { written: std::path::PathBuf },
}

/// Re-wraps the data key of the stopped deployment `config` names under `new_key_text`
/// (64 hex characters). Everything that can be refused is refused before anything changes:
/// a malformed new key, the current key again, a store without a deployment, a current key
/// that does not open it. Blocking.
pub fn rotate_master_key(config: &StorageConfig, new_key_text: &str) -> Result<Rotated> {
    let new = crypto::parse_master_key(new_key_text)
        .map_err(|_| Error::InvalidInput("the new master key must be 64 hex characters (32 bytes)".into()))?;
    let path = config.data_dir.join(DB_FILE);
    if config.meta == MetaStore::Redb && !path.exists() {
        return Err(Error::Incompatible(format!("no deployment here: {} does not exist", path.display())));
    }
    let current = crate::load_master_key(config, false)?;
    if crypto::ct_eq(&current, &new) {
        return Err(Error::InvalidInput("the new master key is the current one".into()));
    }
    let (db, fresh) = Db::open_store(&config.meta, &path, 1 << 20, |_| {})?;
    let out = (|| {
        if fresh {
            return Err(Error::Incompatible("no deployment here: the metadata store is empty".into()));
        }
        crate::nodes::refuse_if_running(&db, "rotating the master key")?;
        let key_file = config.master_key.is_none().then(|| config.data_dir.join(MASTER_KEY_FILE));
        match crate::meta::format::open(&db, &current) {
            Ok(_) => {}
            Err(Error::Incompatible(m)) if m.contains("master key does not match") => {
                // A run that committed but stopped before replacing the key file.
                if let Some(file) = &key_file
                    && crate::meta::format::open(&db, &new).is_ok()
                {
                    install(&config.data_dir, &new)?;
                    return Ok(Rotated::Finished { written: file.clone() });
                }
                return Err(Error::Incompatible(m));
            }
            Err(e) => return Err(e),
        }
        if key_file.is_some() {
            write_pending(&config.data_dir, &new)?;
        }
        db.write_sync(|ctx| crate::meta::format::rewrap_data_key(ctx.txn, &current, &new))?;
        if key_file.is_some() {
            install(&config.data_dir, &new)?;
        }
        tracing::info!("the data key is wrapped by the new master key");
        Ok(Rotated::Rewrapped { written: key_file })
    })();
    db.close();
    out
}

fn pending_path(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{MASTER_KEY_FILE}.new"))
}

/// Keeps the new key durably beside the old one before the re-wrap commits.
fn write_pending(dir: &Path, new: &[u8; KEY_LEN]) -> Result<()> {
    let pending = pending_path(dir);
    match std::fs::remove_file(&pending) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    crate::write_private(&pending, hex::encode(new).as_bytes())?;
    Ok(())
}

/// Replaces `master.key` with the new key (written again if the pending file is gone).
fn install(dir: &Path, new: &[u8; KEY_LEN]) -> Result<()> {
    let pending = pending_path(dir);
    let ok = std::fs::read_to_string(&pending).ok().and_then(|t| crypto::parse_master_key(&t).ok());
    if ok.is_none_or(|k| !crypto::ct_eq(&k, new)) {
        write_pending(dir, new)?;
    }
    std::fs::rename(&pending, dir.join(MASTER_KEY_FILE))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A master key refused where a rotation was cut short between its commit and its rename:
/// says so, and how to finish it (the message alone sent operators looking for another key).
pub(crate) fn explain_refusal(e: Error, data_dir: &Path) -> Error {
    let pending = pending_path(data_dir);
    match e {
        Error::Incompatible(m) if m.starts_with("the master key does not match") && pending.exists() => {
            Error::Incompatible(format!(
                "{m}; {} is there: a key rotation was cut short, and running `davit admin rotate-master-key \
                 --new-key-file {}` again finishes it",
                pending.display(),
                pending.display()
            ))
        }
        e => e,
    }
}
