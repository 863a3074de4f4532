//! The embedded engine: redb, one file in the data folder. Every handle of the seam wraps
//! the redb handle of the same name (see `mod.rs`); what is left here is opening the file
//! and turning redb's errors into ours.

use std::path::Path;

use crate::error::{Error, Result};

pub(super) fn open(path: &Path, cache_bytes: usize) -> Result<redb::Database> {
    redb::Database::builder().set_cache_size(cache_bytes).create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Incompatible(format!(
            "the database {} is open in another process: stop the running server first",
            path.display()
        )),
        e => Error::Incompatible(format!("cannot open the database {}: {e}", path.display())),
    })
}

// redb's errors are internal failures with their cause kept (see `Error::internal_from`).
crate::error::internal_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
