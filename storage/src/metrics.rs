//! Counters the core keeps for the metrics endpoint, so a scrape reads a few atomics instead
//! of walking the tables: the chunk store's figures (chunks, their bytes, and the
//! logical bytes of every drive, what users stored before deduplication), and sign-in
//! failures and throttled attempts.
//!
//! How the figures stay right: one walk of the tables when the store opens, then every committed
//! change adds its own difference. A change notes its difference in its `WriteCtx` while
//! it runs and the writer applies it only after the commit, so a change that is rolled
//! back, refused, or run again (group commit, PostgreSQL retries) counts once or not at
//! all. With several nodes each node counts what it saw at its start plus its own changes;
//! [`Storage::refresh_figures`] walks again (the binary does so hourly).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::Storage;
use crate::error::Result;
use crate::meta::db::{self, CHUNKS, ReadTxn, Readable, USAGE};
use crate::meta::model::ChunkRow;

/// What one change did to the figures, applied once it committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub chunks: i64,
    pub chunk_bytes: i64,
    pub logical_bytes: i64,
}

/// The running figures; signed so that a change counted before the walk finished can
/// never wrap below zero.
#[derive(Debug, Default)]
pub struct Figures {
    chunks: AtomicI64,
    chunk_bytes: AtomicI64,
    logical_bytes: AtomicI64,
}

/// A reading of [`Figures`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkFigures {
    /// Distinct chunks stored (each once, however many files use it).
    pub chunks: u64,
    /// Their bytes, each chunk's content once (its seal adds 16 bytes to each on disk).
    pub chunk_bytes: u64,
    /// What every drive holds, counting shared content once per file.
    pub logical_bytes: u64,
}

impl Figures {
    pub(crate) fn apply(&self, d: Delta) {
        if d == Delta::default() {
            return;
        }
        self.chunks.fetch_add(d.chunks, Ordering::Relaxed);
        self.chunk_bytes.fetch_add(d.chunk_bytes, Ordering::Relaxed);
        self.logical_bytes.fetch_add(d.logical_bytes, Ordering::Relaxed);
    }

    fn set(&self, d: Delta) {
        self.chunks.store(d.chunks, Ordering::Relaxed);
        self.chunk_bytes.store(d.chunk_bytes, Ordering::Relaxed);
        self.logical_bytes.store(d.logical_bytes, Ordering::Relaxed);
    }

    pub fn read(&self) -> ChunkFigures {
        let get = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as u64;
        ChunkFigures {
            chunks: get(&self.chunks),
            chunk_bytes: get(&self.chunk_bytes),
            logical_bytes: get(&self.logical_bytes),
        }
    }
}

/// The figures as the tables hold them: the walk at open (and on refresh).
pub(crate) fn walk(t: &ReadTxn) -> Result<Delta> {
    let mut d = Delta::default();
    for e in t.open_table(CHUNKS)?.iter()? {
        let row: ChunkRow = db::decode(e?.1.value())?;
        d.chunks += 1;
        d.chunk_bytes += row.len as i64;
    }
    for e in t.open_table(USAGE)?.iter()? {
        d.logical_bytes += e?.1.value().0 as i64;
    }
    Ok(d)
}

impl Storage {
    /// The chunk store's figures, as kept (no table is read).
    pub fn chunk_figures(&self) -> ChunkFigures {
        self.core.db.figures().read()
    }

    /// Walks the tables again and resets the figures to what they hold: with several nodes,
    /// brings in what the others changed. Takes a read snapshot; changes committing during
    /// the walk may be counted twice or not at all until the next one.
    pub async fn refresh_figures(&self) -> Result<()> {
        let db = self.core.db.clone();
        let d = db.read(walk).await?;
        db.figures().set(d);
        Ok(())
    }
}

/// At open, before the writer has anything to do: the walk and the start agree exactly.
pub(crate) fn load(db: &db::Db) -> Result<()> {
    let d = db.read_sync(walk)?;
    db.figures().set(d);
    Ok(())
}

/// Sign-in failures (wrong passwords, codes, S3 signatures) and attempts the throttle
/// refused, counted by the throttle that sees them all.
#[derive(Debug, Default)]
pub struct AuthCounts {
    failures: AtomicU64,
    throttled: AtomicU64,
}

impl AuthCounts {
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// (failures, throttled) since the start.
    pub fn read(&self) -> (u64, u64) {
        (self.failures.load(Ordering::Relaxed), self.throttled.load(Ordering::Relaxed))
    }
}

impl Storage {
    /// Sign-in failures and throttled attempts since the start: (failures, throttled).
    pub fn auth_counts(&self) -> (u64, u64) {
        self.core.throttle.counted.read()
    }
}
