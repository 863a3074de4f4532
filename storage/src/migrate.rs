//! `davit admin migrate`: a stopped deployment copied into an empty one on other stores
//! (redb and a local folder to PostgreSQL and a bucket, or back), then verified.
//!
//! Nothing is re-sealed: the rows are copied as stored (`meta::copy`), META with them, so
//! the target holds the same data key wrapped by the same master key, and each chunk's sealed
//! bytes are valid there as they are. Only the chunks a CHUNKS row keeps outside the
//! database are copied (orphans a crash left stay behind), a few at a time, skipping those the
//! target already holds, so a migration cut short can simply be run again into the same
//! chunk store (after emptying the metadata store it began to fill).
//!
//! The verification opens the target as a server would (`Storage::open`) and reads every
//! file of every user through the ordinary read path on both sides, comparing a SHA-256 of
//! each stream, and runs the consistency check on the target. Both sides are opened passive
//! (`StorageConfig::passive`): a folder deleted but not yet swept, or trash past its time,
//! is copied and compared as it is, and the target's server finishes it when it starts
//! (when one side's sweeper ran during the copy, the comparison found what it had removed
//! missing, and the source's removed chunk files the copy still had to read).

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;

use crate::chunks::ChunkBackend;
use crate::content::chunks::ChunkRow;
use crate::crypto::{ChunkId, KEY_LEN};
use crate::error::{Error, Result};
use crate::meta::db::{self, CHUNKS, Db, ITEMS, MetaStore, Readable};
use crate::model::{Item, Kind};
use crate::{CheckReport, ChunkStore, DB_FILE, MASTER_KEY_FILE, Storage, StorageConfig};

/// Where a deployment moves to.
#[derive(Clone, Debug)]
pub struct MigrateTarget {
    pub meta: MetaStore,
    pub chunks: ChunkStore,
    /// The target's data folder: required for redb metadata or local chunks; with
    /// PostgreSQL and a bucket there is none (each node has its own, for its read cache).
    pub data_dir: Option<PathBuf>,
    /// The target's grace period (see `StorageConfig::chunk_grace`).
    pub chunk_grace: Option<Duration>,
}

/// What a migration did and found.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub tables: usize,
    pub rows: u64,
    /// Chunks kept outside the database that the target's rows reference.
    pub chunks_referenced: u64,
    pub chunks_copied: u64,
    /// Of the referenced chunks, those the target already held.
    pub chunks_present: u64,
    pub chunk_bytes: u64,
    pub files_verified: u64,
    pub bytes_verified: u64,
    /// The master key file written into the target's data folder, if one was.
    pub master_key_written: Option<PathBuf>,
    /// The consistency check of the target.
    pub check: CheckReport,
    /// Every difference found; empty when the target equals the source.
    pub problems: Vec<String>,
}

/// Chunks copied at once: enough to overlap the round trips of a cluster, few enough that
/// their buffers (one chunk each) stay small.
const CHUNKS_AT_ONCE: usize = 4;
/// Ids read from CHUNKS or ITEMS per read transaction.
const PAGE: usize = 1000;

/// Copies the stopped deployment `source` into `target` (whose metadata store must hold
/// none) and verifies it. Blocking: call it outside any async runtime.
pub fn migrate(source: &StorageConfig, target: &MigrateTarget) -> Result<MigrateReport> {
    if let Some(dir) = &target.data_dir
        && source.meta == MetaStore::Redb
        && target.meta == MetaStore::Redb
        && same_path(&source.data_dir, dir)
    {
        return Err(Error::Incompatible("the target is the source's own data folder".into()));
    }
    ensure_deployment(source)?;
    let master = crate::load_master_key(source, false)?;
    // Both sides stay as they are while they are compared (see `StorageConfig::passive`).
    let src = open_when_free(StorageConfig { passive: true, ..source.clone() })?;
    let result = copy_and_verify(&src, source, target, &master);
    src.close();
    result
}

fn copy_and_verify(
    src: &Storage,
    source: &StorageConfig,
    target: &MigrateTarget,
    master: &[u8; KEY_LEN],
) -> Result<MigrateReport> {
    let mut report = MigrateReport::default();
    // The target's folder, or a scratch one for the verification's `Storage::open`.
    let (dir, scratch) = match &target.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("davit-migrate-{}", hex::encode(crate::crypto::random_bytes::<8>()))),
            true,
        ),
    };
    crate::perms::private_dir(&dir)?;
    let out = (|| {
        let dst = open_empty_target(&target.meta, &dir)?;
        let copied = crate::meta::copy::copy_all(&src.core.db, &dst, crate::meta::copy::BATCH);
        if let Ok(c) = &copied {
            tracing::info!(tables = c.tables, rows = c.rows, "metadata copied");
        }
        let chunks = copied.as_ref().ok().map(|_| copy_chunks(source, &dst, target, &dir, &mut report));
        dst.close();
        // The last handle: redb lets go of its file only when it is dropped.
        drop(dst);
        let copied = copied?;
        chunks.transpose()?;
        report.tables = copied.tables;
        report.rows = copied.rows;
        report.problems.extend(copied.problems);
        if source.master_key.is_none() && !scratch {
            report.master_key_written = copy_master_key(&source.data_dir, &dir, master)?;
        }
        verify(src, target, &dir, master, &mut report)?;
        Ok(report)
    })();
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    out
}

/// `Storage::open`, waiting (bounded) for a redb file this process just closed: a closed
/// store's writer thread lets go of the file a moment after `close` returns.
fn open_when_free(config: StorageConfig) -> Result<Storage> {
    for _ in 0..50 {
        match Storage::open(config.clone()) {
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                std::thread::sleep(Duration::from_millis(100));
            }
            out => return out,
        }
    }
    Storage::open(config)
}

/// Refuses a source with no deployment: opening it would make a new, empty one.
fn ensure_deployment(source: &StorageConfig) -> Result<()> {
    let path = source.data_dir.join(DB_FILE);
    if source.meta == MetaStore::Redb && !path.exists() {
        return Err(Error::Incompatible(format!("no deployment to migrate: {} does not exist", path.display())));
    }
    let (db, fresh) = Db::open_store(&source.meta, &path, 1 << 20, |_| {})?;
    let nodes = crate::nodes::refuse_if_running(&db, "admin migrate");
    db.close();
    nodes?;
    if fresh {
        return Err(Error::Incompatible("no deployment to migrate: the source metadata store is empty".into()));
    }
    Ok(())
}

fn open_empty_target(meta: &MetaStore, dir: &Path) -> Result<Db> {
    let (db, fresh) = Db::open_store(meta, &dir.join(DB_FILE), 32 << 20, |_| {})?;
    if !fresh {
        db.close();
        return Err(Error::Incompatible(
            "the target metadata store already holds a davit deployment; migrate copies into an empty one only".into(),
        ));
    }
    Ok(db)
}

/// Copies every chunk the target's CHUNKS rows keep outside the database.
fn copy_chunks(
    source: &StorageConfig,
    dst: &Db,
    target: &MigrateTarget,
    dir: &Path,
    report: &mut MigrateReport,
) -> Result<()> {
    // The source is only read (see `StorageConfig::passive`).
    let from = source.chunks.uncached().open(&source.data_dir, true)?;
    let to = target.chunks.uncached().open(dir, false)?;
    let c = copy_referenced_chunks(from.as_ref(), to.as_ref(), dst)?;
    report.chunks_referenced = c.referenced;
    report.chunks_copied = c.copied;
    report.chunks_present = c.present;
    report.chunk_bytes = c.bytes;
    Ok(())
}

/// What [`copy_referenced_chunks`] did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChunksCopied {
    /// Chunks kept outside the database that `dst`'s rows reference.
    pub referenced: u64,
    pub copied: u64,
    /// Of the referenced chunks, those `to` already held.
    pub present: u64,
    pub bytes: u64,
}

/// Copies from `from` to `to` every chunk `dst`'s CHUNKS rows keep outside the database and
/// `to` does not hold yet (migrations and live backups alike).
pub(crate) fn copy_referenced_chunks(from: &dyn ChunkBackend, to: &dyn ChunkBackend, dst: &Db) -> Result<ChunksCopied> {
    let mut out = ChunksCopied::default();
    let present: HashSet<ChunkId> = to.list()?.into_iter().collect();
    let mut after: Option<ChunkId> = None;
    loop {
        let (page, rows) = dst.read_sync(|t| {
            let chunks = t.open_table(CHUNKS)?;
            let lo = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
            let (mut ids, mut rows) = (Vec::new(), 0);
            for row in chunks.range::<&ChunkId>((lo, Bound::Unbounded))?.take(PAGE) {
                let (k, v) = row?;
                rows += 1;
                after = Some(*k.value());
                if !db::decode::<ChunkRow>(v.value())?.inline {
                    ids.push(*k.value());
                }
            }
            Ok((ids, rows))
        })?;
        out.referenced += page.len() as u64;
        let missing: Vec<ChunkId> = page.into_iter().filter(|id| !present.contains(id)).collect();
        let (n, bytes) = copy_some(from, to, &missing)?;
        out.copied += n;
        out.bytes += bytes;
        if rows < PAGE {
            break;
        }
    }
    out.present = out.referenced - out.copied;
    tracing::info!(copied = out.copied, present = out.present, "chunks copied");
    Ok(out)
}

/// Copies `ids`, `CHUNKS_AT_ONCE` at a time; returns how many and their sealed bytes.
fn copy_some(from: &dyn ChunkBackend, to: &dyn ChunkBackend, ids: &[ChunkId]) -> Result<(u64, u64)> {
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..CHUNKS_AT_ONCE.min(ids.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { return };
                    let done = from
                        .get(id)
                        .map_err(|e| Error::internal_from(format_args!("reading chunk {}", hex::encode(id)), e))
                        .and_then(|sealed| {
                            to.put(id, &sealed).map_err(|e| {
                                Error::internal_from(format_args!("writing chunk {}", hex::encode(id)), e)
                            })?;
                            Ok(sealed.len() as u64)
                        });
                    match done {
                        Ok(n) => {
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // The others stop at their next chunk.
                            next.store(ids.len(), Ordering::Relaxed);
                            failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok((ids.len() as u64, bytes.into_inner()))
}

/// Gives a new redb folder the master key the source kept in its own folder, so the target
/// opens by itself as the source did. Returns the file written (None: the same folder, or
/// already there with the same key).
fn copy_master_key(source_dir: &Path, dir: &Path, master: &[u8; KEY_LEN]) -> Result<Option<PathBuf>> {
    let path = dir.join(MASTER_KEY_FILE);
    if same_path(source_dir, dir) {
        return Ok(None);
    }
    match std::fs::read_to_string(&path) {
        Ok(text) if crate::crypto::parse_master_key(&text)? == *master => Ok(None),
        Ok(_) => Err(Error::Incompatible(format!("{} holds another master key", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::write_private(&path, hex::encode(master).as_bytes())?;
            Ok(Some(path))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Opens the target and reads every file on both sides.
fn verify(
    src: &Storage,
    target: &MigrateTarget,
    dir: &Path,
    master: &[u8; KEY_LEN],
    report: &mut MigrateReport,
) -> Result<()> {
    let mut config = StorageConfig::new(dir);
    config.master_key = Some(hex::encode(master));
    config.meta = target.meta.clone();
    config.chunks = target.chunks.uncached();
    config.chunk_grace = target.chunk_grace;
    config.passive = true;
    let dst = open_when_free(config)?;
    let out = compare_files(src, &dst, report).and_then(|()| dst.check_blocking());
    dst.close();
    report.check = out?;
    report.problems.extend(report.check.problems.iter().map(|p| format!("target check: {p}")));
    Ok(())
}

fn compare_files(src: &Storage, dst: &Storage, report: &mut MigrateReport) -> Result<()> {
    // The read path is asynchronous (chunks prepared ahead on blocking threads).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let mut after = 0u64;
    loop {
        let (page, rows) = src.core.db.read_sync(|t| {
            let (mut items, mut rows) = (Vec::new(), 0);
            for row in t.open_table(ITEMS)?.range(after + 1..)?.take(PAGE) {
                let (k, v) = row?;
                rows += 1;
                after = k.value();
                let item: Item = db::decode(v.value())?;
                if item.kind == Kind::File {
                    items.push(item);
                }
            }
            Ok((items, rows))
        })?;
        for item in &page {
            let theirs: Option<Item> = dst
                .core
                .db
                .read_sync(|t| t.open_table(ITEMS)?.get(item.id)?.map(|v| db::decode(v.value())).transpose())?;
            let Some(theirs) = theirs else {
                report.problems.push(format!("file {} (item {}) is missing from the target", item.name, item.id));
                continue;
            };
            let a = rt.block_on(digest(src, item))?;
            let b = match rt.block_on(digest(dst, &theirs)) {
                Ok(b) => b,
                Err(e) => {
                    report
                        .problems
                        .push(format!("file {} (item {}): the target cannot read it: {e}", item.name, item.id));
                    continue;
                }
            };
            if a != b || a.1 != item.size {
                report.problems.push(format!(
                    "file {} (item {}): the target reads {} bytes, the source {} ({} expected), or other bytes",
                    item.name, item.id, b.1, a.1, item.size
                ));
            }
            report.files_verified += 1;
            report.bytes_verified += a.1;
        }
        if rows < PAGE {
            return Ok(());
        }
    }
}

/// SHA-256 and length of a file's content as the read path gives it.
async fn digest(s: &Storage, item: &Item) -> Result<(Vec<u8>, u64)> {
    let mut stream = crate::content::read::open_range(&s.core, &item.chunks, 0, item.size)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut n = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        n += piece.len() as u64;
        ctx.update(&piece);
    }
    Ok((ctx.finish().as_ref().to_vec(), n))
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
