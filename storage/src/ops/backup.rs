//! Live backups: the running server writes one consistent snapshot of its metadata and the
//! chunk files that snapshot references into a folder on its host; `restore` makes a new
//! data folder from it, offline.
//!
//! The folder is a data folder without a master key (a backup and its key are kept apart):
//!
//! ```text
//! DAVIT-BACKUP        marks the folder as a backup's, finished or not
//! davit.redb          the metadata of the last finished backup
//! chunks/ab/cd/<id>   sealed chunk files, as in a data folder
//! BACKUP-COMPLETE     JSON, written last (temp file, fsync, rename): the backup is whole
//! ```
//!
//! The metadata goes to `davit.redb.partial` and replaces `davit.redb` only once every chunk
//! it references is in the folder; `BACKUP-COMPLETE` is written then, and only after that are
//! the chunk files the new snapshot no longer references removed (so the folder does not
//! grow without end). So at every moment the folder holds a whole backup, the last finished
//! one, once one has finished: a run cut short (killed, the disk full) leaves the previous
//! backup restorable, and a first run cut short leaves a folder `restore` refuses. Chunk
//! files already there are not copied again (a chunk's bytes never change under its id).
//!
//! Consistency: the collector deletes nothing while a backup runs (`Pins::hold`, taken
//! before the snapshot), so every chunk the snapshot names is still there when it is copied;
//! what it skipped is freed by the sweep that ends the backup. With several nodes deletions
//! already wait out the grace period: a backup must finish within it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::auth::admin::Admin;
use crate::chunks::{LocalDir, Pins};
use crate::error::{Error, Result};
use crate::meta::db::{Db, MetaStore};
use crate::{ChunkStore, DB_FILE, MASTER_KEY_FILE, MigrateReport, MigrateTarget, StorageConfig};

/// Written last: its presence means the folder holds a whole backup.
pub const BACKUP_COMPLETE: &str = "BACKUP-COMPLETE";
/// Written first: the folder is a backup folder (a run may reuse it).
const BACKUP_TAG: &str = "DAVIT-BACKUP";
/// Written first into a restore's new data folder and removed once it is whole: a folder
/// that still has it (the restore was killed, or failed) is refused by `Storage::open`, which
/// would otherwise serve it with chunks missing.
pub(crate) const RESTORE_UNFINISHED: &str = "RESTORE-UNFINISHED";
const PARTIAL: &str = "davit.redb.partial";

/// The folders backups are being written into: two backups into one folder would copy the
/// same chunks and each remove the other's files.
static RUNNING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A folder claimed in [`RUNNING`], released however the backup ends (a panic included).
struct Running(PathBuf);

impl Running {
    fn claim(to: &Path) -> Result<Running> {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if running.iter().any(|p| p == to) {
            return Err(Error::Conflict(format!("a backup into {} is already running", to.display())));
        }
        running.push(to.to_path_buf());
        Ok(Running(to.to_path_buf()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| *p != self.0);
    }
}

/// What a backup did; also the content of `BACKUP-COMPLETE`.
#[derive(Debug, Default, Clone)]
pub struct BackupReport {
    pub format_version: u32,
    /// When the snapshot was taken, in seconds since the Unix epoch.
    pub snapshot_unix: u64,
    pub tables: usize,
    pub rows: u64,
    pub chunks_referenced: u64,
    pub chunks_copied: u64,
    pub chunks_present: u64,
    pub chunk_bytes: u64,
    /// Chunk files of earlier backups the snapshot no longer references, removed.
    pub chunks_removed: u64,
}

impl BackupReport {
    /// The marker's content: JSON, one field a line (written by hand: the core has no JSON).
    fn marker(&self) -> String {
        format!(
            "{{\n  \"format_version\": {},\n  \"snapshot_unix\": {},\n  \"tables\": {},\n  \"rows\": {},\n  \
             \"chunks_referenced\": {},\n  \"chunks_copied\": {},\n  \"chunks_present\": {},\n  \
             \"chunk_bytes\": {},\n  \"chunks_removed\": {}\n}}\n",
            self.format_version,
            self.snapshot_unix,
            self.tables,
            self.rows,
            self.chunks_referenced,
            self.chunks_copied,
            self.chunks_present,
            self.chunk_bytes,
            self.chunks_removed
        )
    }
}

impl Admin<'_> {
    /// Backs the deployment up into `to`, a folder on the server's host: missing, empty, or
    /// a folder earlier backups wrote. Runs on a blocking thread.
    pub async fn backup(&self, to: PathBuf) -> Result<BackupReport> {
        let core = self.storage.core.clone();
        tracing::info!(
            target: "audit",
            admin = %self.caller.username,
            to = %to.display(),
            "an admin started a backup"
        );
        // Copying a whole deployment blocks for minutes: never on an async worker.
        tokio::task::spawn_blocking(move || {
            let _running = Running::claim(&to)?;
            backup_blocking(&core, &to)
        })
        .await?
    }
}

fn check_target(core: &crate::Core, to: &Path) -> Result<()> {
    if !to.is_absolute() {
        return Err(Error::InvalidInput("the backup folder must be an absolute path on the server's host".into()));
    }
    let data = &core.config.data_dir;
    let data_abs = data.canonicalize().unwrap_or_else(|_| data.clone());
    let mut probe = to.to_path_buf();
    // The nearest existing folder decides where `to` really is (symbolic links included).
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p.to_path_buf(),
            None => break,
        }
    }
    let probe = probe.canonicalize().unwrap_or(probe);
    if probe.starts_with(&data_abs) || data_abs.starts_with(to) {
        return Err(Error::InvalidInput("the backup folder must be outside the data folder".into()));
    }
    if to.exists() && !to.is_dir() {
        return Err(Error::InvalidInput(format!("{} is not a folder", to.display())));
    }
    if to.exists() {
        let tagged = to.join(BACKUP_TAG).exists();
        let empty = std::fs::read_dir(to)?.next().is_none();
        if !tagged && !empty {
            return Err(Error::InvalidInput(format!(
                "{} is neither empty nor a davit backup folder: refusing to write into it",
                to.display()
            )));
        }
    }
    Ok(())
}

fn backup_blocking(core: &crate::Core, to: &Path) -> Result<BackupReport> {
    check_target(core, to)?;
    crate::perms::private_dir(to)?;
    if !to.join(BACKUP_TAG).exists() {
        write_atomic(to, BACKUP_TAG, b"a davit backup folder: restore it with `davit admin restore --from`\n")?;
    }
    // A finished backup already here stays one whatever becomes of this run: its database
    // is replaced only once this run's chunks are all in the folder, and its chunk files
    // are removed only after that (see the module's comment).
    remove_if_present(&to.join(PARTIAL))?;
    sync_dir(to)?;

    let hold = core.pins.hold();
    let snapshot_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (dst, _) = Db::open_store(&MetaStore::Redb, &to.join(PARTIAL), 8 << 20, |_| {})?;
    let copied = core.db.read_sync(|src| crate::meta::copy::copy_snapshot(src, &dst, crate::meta::copy::BATCH));
    let rest = copied.and_then(|tables| {
        if let Some(p) = tables.problems.first() {
            return Err(Error::internal(format!("the metadata copy differs from its snapshot: {p}")));
        }
        let local = LocalDir::open(to)?;
        let chunks = crate::migrate::copy_referenced_chunks(core.backend.as_ref(), &local, &dst)?;
        Ok((tables, chunks))
    });
    dst.close();
    drop(dst);
    drop(hold);
    // What the collector skipped meanwhile is freed now (one node; several wait out the grace).
    if core.config.chunk_grace.is_none()
        && let Err(e) = crate::chunks::sweep(&core.db, core.backend.as_ref(), &core.pins)
    {
        tracing::warn!(error = ?e, "the sweep after a backup failed; the next one retries");
    }
    let (tables, chunks) = rest?;
    std::fs::rename(to.join(PARTIAL), to.join(DB_FILE))?;
    sync_dir(to)?;
    let mut report = BackupReport {
        format_version: crate::meta::format::FORMAT_VERSION,
        snapshot_unix,
        tables: tables.tables,
        rows: tables.rows,
        chunks_referenced: chunks.referenced,
        chunks_copied: chunks.copied,
        chunks_present: chunks.present,
        chunk_bytes: chunks.bytes,
        chunks_removed: 0,
    };
    write_atomic(to, BACKUP_COMPLETE, report.marker().as_bytes())?;
    // Files of earlier backups that this snapshot does not reference, removed only now.
    let (db, _) = Db::open_store(&MetaStore::Redb, &to.join(DB_FILE), 8 << 20, |_| {})?;
    let removed = crate::chunks::sweep(&db, &LocalDir::open(to)?, &std::sync::Arc::new(Pins::default()));
    db.close();
    drop(db);
    report.chunks_removed = removed? as u64;
    write_atomic(to, BACKUP_COMPLETE, report.marker().as_bytes())?;
    tracing::info!(to = %to.display(), rows = report.rows, copied = report.chunks_copied, "backup finished");
    Ok(report)
}

/// Makes a new data folder `into` (missing or empty; its metadata in redb, its chunks
/// local) from the finished backup in `from`, then verifies it as `davit admin migrate`
/// does: every table, every file read back on both sides, the consistency check. The
/// master key comes from `master_key` (hex), or else from `from/master.key`. Blocking.
pub fn restore(from: &Path, into: &Path, master_key: Option<String>) -> Result<MigrateReport> {
    if !from.is_dir() {
        return Err(Error::Incompatible(format!("{} is not a folder: give the backup's folder", from.display())));
    }
    if !from.join(BACKUP_COMPLETE).exists() {
        return Err(Error::Incompatible(format!(
            "{} holds no finished backup ({BACKUP_COMPLETE} is missing): the backup was interrupted or is \
             still running; run it again",
            from.display()
        )));
    }
    if !from.join(DB_FILE).exists() {
        return Err(Error::Incompatible(format!("{} holds no {DB_FILE}: not a backup folder", from.display())));
    }
    if master_key.is_none() && !from.join(MASTER_KEY_FILE).exists() {
        return Err(Error::Incompatible(format!(
            "no master key: a backup holds none; give --master-key-file or DAVIT_MASTER_KEY, or put it in {}",
            from.join(MASTER_KEY_FILE).display()
        )));
    }
    if into.join(RESTORE_UNFINISHED).exists() {
        return Err(Error::Incompatible(format!(
            "{} holds a restore that did not finish: remove the folder and run the restore again",
            into.display()
        )));
    }
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        return Err(Error::Incompatible(format!(
            "{} is not empty: restore makes a new data folder, give a missing or empty one",
            into.display()
        )));
    }
    // The backup is only read, so one on a read-only mount restores and a backup restored
    // twice is the same backup both times: its database is copied into a folder of the
    // restore's own (inside `into`, removed at the end), where opening it may migrate an
    // older format, and its chunks are read where they are, through a link.
    crate::perms::private_dir(into)?;
    write_atomic(
        into,
        RESTORE_UNFINISHED,
        b"A restore into this folder has not finished: davit will not open it. Remove the folder and run the restore again.\n",
    )?;
    let scratch = into.join(SOURCE_COPY);
    crate::perms::create_private_dir(&scratch)?;
    let out = (|| {
        copy_private(&from.join(DB_FILE), &scratch.join(DB_FILE))?;
        if from.join(MASTER_KEY_FILE).exists() {
            copy_private(&from.join(MASTER_KEY_FILE), &scratch.join(MASTER_KEY_FILE))?;
        }
        // A backup of files all small enough to live in the database has no chunk folder.
        match std::fs::canonicalize(from.join("chunks")) {
            Ok(chunks) => link_dir(&chunks, &scratch.join("chunks"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::perms::create_private_dir(&scratch.join("chunks"))?
            }
            Err(e) => return Err(e.into()),
        }
        let mut source = StorageConfig::new(&scratch);
        source.master_key = master_key;
        let target = MigrateTarget {
            meta: MetaStore::Redb,
            chunks: ChunkStore::Local,
            data_dir: Some(into.into()),
            chunk_grace: None,
        };
        crate::migrate(&source, &target)
    })();
    // Removes the link, not what it points to.
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        tracing::warn!(error = ?e, path = %scratch.display(), "the restore's copy of the backup's database is left; remove it");
    }
    let report = out?;
    std::fs::remove_file(into.join(RESTORE_UNFINISHED))?;
    sync_dir(into)?;
    Ok(report)
}

/// Copies the file `from` to a new owner-only file `to` (whatever the mode of `from`: a
/// write-protected backup's database must be writable in the copy).
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    let mut src = std::fs::File::open(from)?;
    let mut dst = crate::perms::create_private_file(to)?;
    std::io::copy(&mut src, &mut dst)?;
    Ok(())
}

/// The folder inside a restore's target that holds its copy of the backup's database.
const SOURCE_COPY: &str = "restore-source";

#[cfg(unix)]
fn link_dir(original: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(original, link)
}

#[cfg(windows)]
fn link_dir(original: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(original, link)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Temp file, fsync, rename, fsync of the folder: the file is whole or absent.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    remove_if_present(&tmp)?;
    let mut f = crate::perms::create_private_file(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}
