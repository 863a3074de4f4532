//! The embedded engine: redb, one file in the data folder. Every handle of the seam wraps
//! the redb handle of the same name (see `mod.rs`); what is left here is opening the file
//! and turning redb's errors into ours.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::ReadableDatabase as _;

use crate::error::{Error, Result};

/// The database, reopened after a failed write. redb refuses every write after an I/O error
/// in a commit (`PreviousIo`: "close and re-open the database"), so one commit that met a
/// full disk left the server refusing all writes, space freed or not, until a restart. The
/// next write reopens the file instead (redb repairs it on open, as after a crash: nothing
/// committed is lost), and succeeds once the disk can take it.
pub(crate) struct Handle {
    /// None after a reopen failed: every transaction tries again.
    db: RwLock<Option<Arc<redb::Database>>>,
    path: PathBuf,
    opener: Opener,
}

type Opener = Box<dyn Fn() -> Result<redb::Database, redb::DatabaseError> + Send + Sync>;

/// How long a reopen waits for read transactions begun before it to end (each holds the old
/// file, and its lock): reads are short, this is a bound, not a pause.
const REOPEN_WAIT: Duration = Duration::from_secs(10);

impl Handle {
    pub(super) fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = open(path, cache_bytes)?;
        let at = path.to_owned();
        let opener = Box::new(move || redb::Database::builder().set_cache_size(cache_bytes).create(&at));
        Ok(Handle { db: RwLock::new(Some(Arc::new(db))), path: path.to_owned(), opener })
    }

    /// A database on `backend`, opened again by `opener` (for tests that make its writes fail).
    #[cfg(test)]
    pub(crate) fn with_opener(opener: Opener) -> Result<Self> {
        let db = opener().map_err(|e| Error::internal(format_args!("{e}")))?;
        Ok(Handle { db: RwLock::new(Some(Arc::new(db))), path: PathBuf::from("(test)"), opener })
    }

    fn current(&self) -> Option<Arc<redb::Database>> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn closed(&self) -> Error {
        Error::Unavailable(format!("the database {} could not be opened again; retrying", self.path.display()))
    }

    pub(super) fn begin_read(&self) -> Result<redb::ReadTransaction> {
        if let Some(db) = self.current() {
            return Ok(db.begin_read()?);
        }
        self.reopen(None)?;
        self.current().ok_or_else(|| self.closed())?.begin_read().map_err(Error::from)
    }

    pub(super) fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let db = self.current();
        if let Some(db) = &db {
            match db.begin_write() {
                Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)) => {}
                r => return Ok(r?),
            }
            // Reopening drops the handle reads still use, and the open repairs the file,
            // which needs room: while the disk stays full, reads go on and writes are 507.
            if !self.has_room() {
                return Err(Error::StorageFull("the server has no room left to store this; try again later".into()));
            }
        }
        self.reopen(db)?;
        self.current().ok_or_else(|| self.closed())?.begin_write().map_err(Error::from)
    }

    /// Whether the database's disk has room for a reopen's repair and the writes after it (a
    /// disk that cannot say is given the benefit of the doubt).
    fn has_room(&self) -> bool {
        const ROOM: u64 = 16 << 20;
        let dir = self.path.parent().unwrap_or(&self.path);
        match rustix::fs::statvfs(dir) {
            Ok(v) => v.f_bavail.saturating_mul(v.f_frsize) >= ROOM,
            Err(_) => true,
        }
    }

    /// Opens the file again in place of `failed` (unless another caller did already).
    fn reopen(&self, failed: Option<Arc<redb::Database>>) -> Result<()> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        let same = match (&*slot, &failed) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            return Ok(());
        }
        tracing::warn!(path = %self.path.display(), "a write to the database failed earlier (see above); reopening it");
        // The old handle must be gone before the file can be opened again; reads still
        // running hold it until their transaction ends.
        drop(failed);
        *slot = None;
        let started = Instant::now();
        loop {
            match (self.opener)() {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    tracing::info!(path = %self.path.display(), "the database is open again");
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < REOPEN_WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "reopening the database failed");
                    return Err(self.closed());
                }
            }
        }
    }
}

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
crate::error::internal_from!(redb::Error, redb::DatabaseError, redb::TableError);

// Those that can carry a failed write: redb's errors name no `source()`, so the I/O error is
// handed on itself, for `internal_from` to tell a full disk (507) from a failure.
impl From<redb::StorageError> for Error {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => Error::internal_from("redb: I/O", io),
            e => Error::internal_from("redb::StorageError", e),
        }
    }
}

impl From<redb::CommitError> for Error {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => s.into(),
            e => Error::internal_from("redb::CommitError", e),
        }
    }
}

impl From<redb::TransactionError> for Error {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => s.into(),
            e => Error::internal_from("redb::TransactionError", e),
        }
    }
}
