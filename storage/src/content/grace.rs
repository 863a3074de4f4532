//! Chunk collection when several nodes share one metadata store and one chunk store.
//!
//! One node collects exactly with in-memory pins (`chunks::Pins`). Pins cannot reach across
//! processes, so with several nodes a chunk file is deleted only a grace period `g` after it
//! was last known needed, and whoever needs it again in that window says so in the store:
//!
//! - A commit that drops a chunk's last reference removes its CHUNKS row and puts it in
//!   CHUNK_GRAVE as `Zero{now}`, in the same transaction (`meta::txn::W::release_refs`).
//! - A writer checks each chunk before storing it ([`needs_upload`]): a row, or a grave entry
//!   younger than g/2, means the file stays for at least g/2 more, so it is not stored again;
//!   an older grave entry is first renewed ("touched") to now; a chunk being deleted is
//!   waited for, then stored. The write must commit within g/2 of its first check, or it is
//!   refused (`W::add_refs`), so nothing it relied on can have gone in between.
//! - The commit revives a chunk it finds in the grave as `Zero` (removes the entry, makes the
//!   row). Finding it `Deleting` cannot happen within g/2 and is refused.
//! - The collector ([`collect`], on every node, concurrently safe) marks `Zero` entries older
//!   than g as `Deleting{now}` (if still unreferenced) in one transaction, deletes their
//!   files, and removes the entries in a second. An entry left `Deleting` by a collector that
//!   stopped in between is deleted again after g (deleting is idempotent).
//! - Files no row or grave entry names (uploaded by a node that stopped before committing)
//!   and older than g enter the grave as `Zero{now}` ([`mark_orphans`]), and go the same way.
//!
//! A chunk with an inline row keeps its bytes in the database: for its file, if one exists,
//! that row counts as no row.
//!
//! Grave times are wall-clock nanoseconds written by any node, so the nodes' clocks must
//! agree to well within g/2 (NTP does, by orders of magnitude, for a grace of hours).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::Core;
use crate::content::chunks::{ChunkBackend, ChunkRow};
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::meta::db::{self, CHUNK_GRAVE, CHUNKS, Db, META};
use crate::meta::kv::{Readable, WriteTxn};
use crate::meta::txn::{CHUNK_GRACE_KEY, Grave, wall_nanos};

/// How long a writer waits for a chunk that a collector is deleting to be gone. A collector
/// deletes a batch in seconds; one that stopped halfway leaves its entries for g, which no
/// request should wait out.
const DELETING_WAIT: Duration = Duration::from_secs(30);
const DELETING_POLL: Duration = Duration::from_millis(100);
/// Chunks handled per transaction by the collector and the orphan sweep.
const BATCH: usize = 1024;
/// Batches one collection handles at most; the rest waits for the next round.
const MAX_BATCHES: usize = 1024;

/// What a chunk is in the store, as a writer or the collector sees it.
enum Found {
    /// A row that references its file (not inline).
    Row,
    Grave(Grave),
    Nothing,
}

/// An inline row counts as none: its bytes live and die with the row, with no grace, so a
/// writer that relied on it could commit a reference to a file nobody stored.
fn found(
    chunks: &impl Readable<&'static ChunkId, &'static [u8]>,
    grave: &impl Readable<&'static ChunkId, (u64, u64)>,
    id: &ChunkId,
) -> Result<Found> {
    if let Some(v) = chunks.get(id)?
        && !db::decode::<ChunkRow>(v.value())?.inline
    {
        return Ok(Found::Row);
    }
    Ok(match grave.get(id)? {
        Some(v) => Found::Grave(Grave::decode(v.value())?),
        None => Found::Nothing,
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Records at open whether this store collects chunks after a grace period, so that every
/// change sees it in its own transaction (`meta::txn::CHUNK_GRACE_KEY`). Going back to one
/// node empties the grave: that node's collector deletes any unreferenced file at once,
/// and a grave entry left for a file it deleted would later tell a writer the file exists.
/// Writes only when something changes, so an unchanged start costs one read.
pub(crate) fn record_mode(db: &Db, grace: Option<Duration>) -> Result<()> {
    let want = grace.map(|g| nanos(g).to_le_bytes().to_vec());
    let (stored, graves) = db.read_sync(|t| {
        let stored = t.open_table(META)?.get(CHUNK_GRACE_KEY)?.map(|v| v.value().to_vec());
        // Only a single node (no grace) empties it, and one entry is all it needs to see.
        let graves = grace.is_none() && t.open_table(CHUNK_GRAVE)?.iter()?.next().is_some();
        Ok((stored, graves))
    })?;
    if stored == want && !graves {
        return Ok(());
    }
    db.write_sync(|ctx| {
        let mut meta = ctx.txn.open_table(META)?;
        match &want {
            Some(v) => meta.insert(CHUNK_GRACE_KEY, v.as_slice())?,
            None => {
                meta.remove(CHUNK_GRACE_KEY)?;
                clear_graves(ctx.txn)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn clear_graves(txn: &WriteTxn) -> Result<()> {
    let mut grave = txn.open_table(CHUNK_GRAVE)?;
    let ids: Vec<ChunkId> = grave.iter()?.map(|e| e.map(|(k, _)| *k.value())).collect::<Result<_>>()?;
    for id in &ids {
        grave.remove(id)?;
    }
    Ok(())
}

/// Before a writer stores chunk `id`: whether it must (true), or may rely on the file
/// already stored, which then stays for at least g/2 (false). Runs on a blocking thread: it
/// may wait (bounded) for a chunk being deleted.
pub(crate) fn needs_upload(db: &Db, id: &ChunkId, grace: Duration) -> Result<bool> {
    let give_up = Instant::now() + DELETING_WAIT;
    loop {
        let state = db.read_sync(|t| found(&t.open_table(CHUNKS)?, &t.open_table(CHUNK_GRAVE)?, id))?;
        match state {
            Found::Row => return Ok(false),
            Found::Nothing => return Ok(true),
            // Not deletable before since + g, which is more than g/2 away.
            Found::Grave(Grave::Zero { since }) if since > wall_nanos().saturating_sub(nanos(grace) / 2) => {
                return Ok(false);
            }
            Found::Grave(Grave::Zero { .. }) => match touch(db, *id)? {
                Found::Row | Found::Grave(Grave::Zero { .. }) => return Ok(false),
                Found::Nothing => return Ok(true),
                Found::Grave(Grave::Deleting { .. }) => {}
            },
            Found::Grave(Grave::Deleting { .. }) => {}
        }
        // A collector is deleting the file: once it is gone, this writer stores it anew.
        if Instant::now() >= give_up {
            return Err(Error::Unavailable(format!(
                "a chunk of this upload has been being deleted for over {} s; try again later",
                DELETING_WAIT.as_secs()
            )));
        }
        // A blocking thread (see `ingest`), so sleeping holds no async worker.
        std::thread::sleep(DELETING_POLL);
    }
}

/// Renews an old `Zero` grave entry to now, so the collector leaves the file for another
/// full grace period; says what the chunk was when the transaction looked.
fn touch(db: &Db, id: ChunkId) -> Result<Found> {
    // The change goes through the writer like any other; this thread may block on it.
    futures::executor::block_on(db.write((), move |ctx| {
        let mut grave = ctx.txn.open_table(CHUNK_GRAVE)?;
        let state = found(&ctx.txn.open_table(CHUNKS)?, &grave, &id)?;
        if let Found::Grave(Grave::Zero { .. }) = state {
            grave.insert(&id, Grave::Zero { since: wall_nanos() }.encode())?;
        }
        Ok(state)
    }))
}

/// Deletes the files of grave entries older than g, in the two steps the module comment
/// describes; returns how many files it deleted.
pub(crate) fn collect(db: &Db, backend: &dyn ChunkBackend, grace: Duration) -> Result<usize> {
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        let cutoff = wall_nanos().saturating_sub(nanos(grace));
        let due: Vec<ChunkId> = db.read_sync(|t| {
            let mut out = Vec::new();
            for e in t.open_table(CHUNK_GRAVE)?.iter()? {
                let (k, v) = e?;
                let (Grave::Zero { since } | Grave::Deleting { since }) = Grave::decode(v.value())?;
                if since <= cutoff {
                    out.push(*k.value());
                    if out.len() == BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        if due.is_empty() {
            break;
        }
        let full = due.len() == BATCH;
        let marked = futures::executor::block_on(db.write((), move |ctx| mark_deleting(ctx.txn, &due, cutoff)))?;
        let mut gone = Vec::with_capacity(marked.len());
        let mut failed = None;
        for id in marked {
            match backend.delete(&id) {
                Ok(()) => gone.push(id),
                // Its entry stays `Deleting`, deleted again after g by any collector: a
                // delete that failed may still land later, and until then no writer may
                // store the chunk anew.
                Err(e) => failed = Some(e),
            }
        }
        deleted += gone.len();
        futures::executor::block_on(db.write((), move |ctx| {
            let mut grave = ctx.txn.open_table(CHUNK_GRAVE)?;
            for id in &gone {
                let state = grave.get(id)?.map(|v| Grave::decode(v.value())).transpose()?;
                if let Some(Grave::Deleting { .. }) = state {
                    grave.remove(id)?;
                }
            }
            Ok(())
        }))?;
        if let Some(e) = failed {
            return Err(Error::internal_from("deleting chunks past their grace", e));
        }
        if !full {
            break;
        }
    }
    Ok(deleted)
}

/// Step one of a collection: the entries of `due` still past `cutoff` and unreferenced
/// become `Deleting{now}`; returns them.
fn mark_deleting(txn: &WriteTxn, due: &[ChunkId], cutoff: u64) -> Result<Vec<ChunkId>> {
    let mut grave = txn.open_table(CHUNK_GRAVE)?;
    let chunks = txn.open_table(CHUNKS)?;
    let now = wall_nanos();
    let mut marked = Vec::new();
    for id in due {
        match found(&chunks, &grave, id)? {
            Found::Grave(Grave::Zero { since } | Grave::Deleting { since }) if since <= cutoff => {
                grave.insert(id, Grave::Deleting { since: now }.encode())?;
                marked.push(*id);
            }
            Found::Row => {
                // A row references the file again: whatever the entry says, it must stay.
                // A row beside `Deleting` breaks the protocol (commits refuse it): say so.
                if let Some(Grave::Deleting { .. }) = grave.get(id)?.map(|v| Grave::decode(v.value())).transpose()? {
                    tracing::error!(
                        chunk = %hex::encode(id),
                        "a referenced chunk was being deleted; its file may be missing (see `davit admin check`)"
                    );
                }
                grave.remove(id)?;
            }
            // Touched or revived since the read, or already handled by another collector.
            _ => {}
        }
    }
    Ok(marked)
}

/// Puts in the grave the stored chunks older than g that no row or grave entry names: left
/// by a node that stopped between storing them and committing. Their age is the file's, so
/// a write in progress (which commits within g/2 of checking) is never taken for one.
pub(crate) fn mark_orphans(db: &Db, backend: &dyn ChunkBackend, grace: Duration) -> Result<usize> {
    let now = SystemTime::now();
    let old: Vec<ChunkId> = backend
        .list_with_age()?
        .into_iter()
        .filter(|(_, at)| now.duration_since(*at).is_ok_and(|age| age > grace))
        .map(|(id, _)| id)
        .collect();
    let mut marked = 0;
    for part in old.chunks(BATCH) {
        let orphans: Vec<ChunkId> = db.read_sync(|t| {
            let (chunks, grave) = (t.open_table(CHUNKS)?, t.open_table(CHUNK_GRAVE)?);
            let mut out = Vec::new();
            for id in part {
                if let Found::Nothing = found(&chunks, &grave, id)? {
                    out.push(*id);
                }
            }
            Ok(out)
        })?;
        if orphans.is_empty() {
            continue;
        }
        marked += futures::executor::block_on(db.write((), move |ctx| {
            let mut grave = ctx.txn.open_table(CHUNK_GRAVE)?;
            let chunks = ctx.txn.open_table(CHUNKS)?;
            let mut n = 0;
            for id in &orphans {
                // Looked at again inside the change: a writer may have committed it since.
                if let Found::Nothing = found(&chunks, &grave, id)? {
                    grave.insert(id, Grave::Zero { since: wall_nanos() }.encode())?;
                    n += 1;
                }
            }
            Ok(n)
        }))?;
    }
    Ok(marked)
}

/// One full round: orphans into the grave, then what is past its grace deleted. Returns the
/// files deleted.
pub(crate) fn sweep(db: &Db, backend: &dyn ChunkBackend, grace: Duration) -> Result<usize> {
    let orphans = mark_orphans(db, backend, grace)?;
    if orphans > 0 {
        tracing::info!(orphans, "chunk files no committed file references enter the grace period");
    }
    collect(db, backend, grace)
}

/// Runs the collector on its own thread: the grave every `min(sweep_interval, g/4)` (cheap:
/// the grave table only), and the listing of the whole store for orphans once at start and
/// then every `g/2`: a listing of a large bucket is not cheap and every node makes it, but an
/// orphan waits out a grace period anyway, so listing more often gains nothing, and less
/// often would keep a dead node's uploads longer than the 2.5 grace periods README promises.
pub(crate) fn start(core: &Arc<Core>, grace: Duration) -> Result<()> {
    let weak: Weak<Core> = Arc::downgrade(core);
    let every = grace / 2;
    let tick = core.config.sweep_interval.min(grace / 4).max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("davit-grace".into())
        .spawn(move || {
            let mut last_listing: Option<Instant> = None;
            loop {
                let Some(core) = weak.upgrade() else { return };
                if last_listing.is_none_or(|t| t.elapsed() >= every) {
                    last_listing = Some(Instant::now());
                    if let Err(e) = mark_orphans(&core.db, core.backend.as_ref(), grace) {
                        tracing::warn!(error = ?e, "the sweep for orphaned chunks failed; the next one retries");
                    }
                }
                if let Err(e) = collect(&core.db, core.backend.as_ref(), grace) {
                    tracing::warn!(error = ?e, "chunk collection failed; the next round retries");
                }
                drop(core);
                std::thread::sleep(tick);
            }
        })
        .map_err(Error::from)?;
    Ok(())
}
