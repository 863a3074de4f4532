//! The data folder's format: which versions this davit opens, how a new folder starts, and
//! the steps that bring an older folder forward. docs/format.md describes the format itself.
//!
//! A folder is opened in one write transaction: the version check, every migration step
//! and the new version number commit together or not at all, so a crash mid-migration leaves
//! the folder at its old format, to be migrated again at the next start.

mod migrations;
#[cfg(test)]
mod tests;

use crate::meta::kv::{Readable, WriteTxn};

use crate::crypto::{self, KEY_LEN};
use crate::error::{Error, Result};
use crate::meta::db::{self, Db, META};

/// The layout of the whole data folder. Bump it with every change of a table, a key or the
/// meaning of a value, and add the step from the previous version to `migrations`.
pub const FORMAT_VERSION: u32 = 6;
/// The oldest format this davit migrates from.
pub const OLDEST_FORMAT: u32 = 2;

/// META key of the format version (u32, little-endian).
const FORMAT_KEY: &str = "format_version";
/// META key of the data key, wrapped by the master key (`crypto::wrap_data_key`).
const DATA_KEY: &str = "data_key";

/// Brings the metadata to the current format (creating it in a new folder) and returns the
/// data key every subkey derives from. Refuses newer formats, format 1 and a wrong master key.
pub(crate) fn open(db: &Db, master: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN]> {
    let (data_key, _freed) = db.write_sync(|ctx| {
        let txn = ctx.txn;
        let Some(found) = stored_version(txn)? else {
            db::create_tables(txn)?;
            return create(txn, master);
        };
        readable(found)?;
        for step in migrations::from(found) {
            (step.run)(txn, master)?;
            set_version(txn, step.from + 1)?;
            tracing::info!(from = step.from, to = step.from + 1, what = step.what, "migrating the data folder");
        }
        // Tables a migration step did not make (new, empty ones) are made now.
        db::create_tables(txn)?;
        load_data_key(txn, master)
    })?;
    Ok(data_key)
}

/// Whether the store has no format yet: nothing was ever stored in it.
pub(crate) fn is_new(db: &Db) -> Result<bool> {
    // In a write: a new redb file has no META table for a read to open.
    let (new, _) = db.write_sync(|ctx| Ok(ctx.txn.open_table(META)?.get(FORMAT_KEY)?.is_none()))?;
    Ok(new)
}

/// Wraps the data key under `new_master` in place of `current_master`: what changing the
/// master key takes, since nothing else derives from it.
pub(crate) fn rewrap_data_key(
    txn: &WriteTxn,
    current_master: &[u8; KEY_LEN],
    new_master: &[u8; KEY_LEN],
) -> Result<()> {
    let data_key = load_data_key(txn, current_master)?;
    txn.open_table(META)?.insert(DATA_KEY, crypto::wrap_data_key(new_master, &data_key).as_slice())?;
    Ok(())
}

fn create(txn: &WriteTxn, master: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN]> {
    let data_key = crypto::random_bytes::<KEY_LEN>();
    txn.open_table(META)?.insert(DATA_KEY, crypto::wrap_data_key(master, &data_key).as_slice())?;
    set_version(txn, FORMAT_VERSION)?;
    Ok(data_key)
}

fn readable(found: u32) -> Result<()> {
    if found > FORMAT_VERSION {
        return Err(Error::Incompatible(format!(
            "this data folder has format version {found}, written by a newer davit; this davit reads formats \
             {OLDEST_FORMAT} to {FORMAT_VERSION}: run the newer davit (formats are never migrated backwards)"
        )));
    }
    if found < OLDEST_FORMAT {
        return Err(Error::Incompatible(format!(
            "this data folder has format version {found}, which existed only while davit was being developed \
             and cannot be migrated: copy its files out with that build and into a new folder"
        )));
    }
    Ok(())
}

fn stored_version(txn: &WriteTxn) -> Result<Option<u32>> {
    let meta = txn.open_table(META)?;
    let Some(v) = meta.get(FORMAT_KEY)? else { return Ok(None) };
    let bytes: [u8; 4] =
        v.value().try_into().map_err(|_| Error::corrupt("the stored format version is not 4 bytes"))?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

fn set_version(txn: &WriteTxn, version: u32) -> Result<()> {
    txn.open_table(META)?.insert(FORMAT_KEY, version.to_le_bytes().as_slice())?;
    Ok(())
}

fn load_data_key(txn: &WriteTxn, master: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN]> {
    let meta = txn.open_table(META)?;
    let wrapped = meta.get(DATA_KEY)?.ok_or_else(|| Error::corrupt("the data folder has no data key"))?;
    crypto::unwrap_data_key(master, wrapped.value())
}

impl crate::Storage {
    /// Wraps the data key under `new_master`, refusing if `current_master` does not open it.
    /// From the commit on the folder opens only with `new_master`, so the caller must keep it
    /// first (the master-key rotation command builds on this).
    pub async fn rewrap_data_key(&self, current_master: [u8; KEY_LEN], new_master: [u8; KEY_LEN]) -> Result<()> {
        self.core.db.write((), move |ctx| rewrap_data_key(ctx.txn, &current_master, &new_master)).await
    }
}
