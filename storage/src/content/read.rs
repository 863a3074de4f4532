//! The read path: a byte range of a file as a stream of decrypted chunks.
//!
//! Only the chunks the range touches are read and opened; a few are prepared ahead on blocking
//! threads so decryption of one overlaps the sending of the one before (two for a local
//! folder; more for a cluster, whose round trips they hide: see `ChunkBackend::read_ahead`).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::Core;
use crate::content::chunks::{ChunkRef, ChunkRow, PinGuard};
use crate::crypto::ChunkId;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHUNK_DATA, CHUNKS, Readable};

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// One chunk's part in a read: which bytes of it to send.
struct Piece {
    id: ChunkId,
    inline: bool,
    from: usize,
    to: usize,
    /// A stored chunk read after the ones being read now, to be fetched ahead (see
    /// `ChunkBackend::prefetch`) when this piece is loaded.
    then: Option<ChunkId>,
}

/// How far beyond the chunks being read the store is asked to fetch ahead.
const PREFETCH: usize = 4;

/// Resolves an inclusive byte range against a size, as HTTP ranges do.
pub fn resolve_range(size: u64, range: Option<(u64, Option<u64>)>) -> Result<(u64, u64)> {
    match range {
        None => Ok((0, size)),
        Some((start, end)) => {
            if start >= size {
                return Err(Error::RangeNotSatisfiable(format!("range starts past the end ({size} bytes)")));
            }
            let end = end.map_or(size, |e| (e + 1).min(size));
            if end <= start {
                return Err(Error::RangeNotSatisfiable("empty range".into()));
            }
            Ok((start, end))
        }
    }
}

/// Opens the byte range `[start, end)` of a file made of `refs`, pinning its chunks for as
/// long as the stream lives. Fails with NotFound if a chunk vanished (the file changed
/// between the caller's snapshot and the pin: the caller looks again).
pub(crate) fn open_range(core: &Arc<Core>, refs: &[ChunkRef], start: u64, end: u64) -> Result<ByteStream> {
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    for r in refs {
        let (cs, ce) = (offset, offset + r.len as u64);
        offset = ce;
        if ce <= start || cs >= end {
            continue;
        }
        let from = start.saturating_sub(cs) as usize;
        let to = (end.min(ce) - cs) as usize;
        pieces.push(Piece { id: r.id, inline: false, from, to, then: None });
    }
    let guard: PinGuard = core.pins.pin(pieces.iter().map(|p| p.id));
    core.db.read_sync(|t| {
        let chunks = t.open_table(CHUNKS)?;
        for p in &mut pieces {
            let row = chunks.get(&p.id)?.ok_or_else(|| Error::not_found(What::Content))?;
            p.inline = db::decode::<ChunkRow>(row.value())?.inline;
        }
        Ok(())
    })?;
    let read_ahead = core.backend.read_ahead().max(1);
    let later: Vec<Option<ChunkId>> =
        (0..pieces.len()).map(|i| pieces.get(i + read_ahead + PREFETCH).filter(|p| !p.inline).map(|p| p.id)).collect();
    for (p, then) in pieces.iter_mut().zip(later) {
        p.then = then;
    }
    // The first pieces' own prefetches are not asked by any piece before them.
    for p in pieces.iter().skip(read_ahead).take(PREFETCH).filter(|p| !p.inline) {
        core.backend.prefetch(&p.id);
    }
    let core = core.clone();
    let stream = futures::stream::iter(pieces)
        .map(move |p| {
            let core = core.clone();
            async move { tokio::task::spawn_blocking(move || load_piece(&core, &p)).await? }
        })
        .buffered(read_ahead)
        .map(move |r| {
            let _pinned = &guard;
            r
        });
    Ok(Box::pin(stream))
}

fn load_piece(core: &Core, p: &Piece) -> Result<Bytes> {
    if let Some(then) = &p.then {
        core.backend.prefetch(then);
    }
    let mut sealed = if p.inline {
        core.db.read_sync(|t| {
            let data = t.open_table(CHUNK_DATA)?;
            let v = data.get(&p.id)?.ok_or_else(|| Error::corrupt("inline chunk data missing"))?;
            Ok(v.value().to_vec())
        })?
    } else {
        fetch(core, &p.id)?
    };
    let n = match core.keys.open_chunk(&p.id, &mut sealed) {
        Ok(plain) => plain.len(),
        // A damaged copy in the local read cache: the store may still hold a good one.
        // Read it once more from there; a second failure is the store's own damage.
        Err(e) if !p.inline && core.backend.drop_cached(&p.id) => {
            tracing::warn!(chunk = %hex::encode(p.id), error = ?e, "cached chunk failed authentication; reading it from the store");
            sealed = fetch(core, &p.id)?;
            core.keys.open_chunk(&p.id, &mut sealed)?.len()
        }
        Err(e) => return Err(e),
    };
    if p.to > n {
        return Err(Error::corrupt("chunk shorter than its reference"));
    }
    sealed.truncate(n);
    Ok(Bytes::from(sealed).slice(p.from..p.to))
}

/// A stored chunk's sealed bytes. A missing one is damage (its row says it is stored); any
/// other failure (a cluster that does not answer) is the server's, not the data's.
fn fetch(core: &Core, id: &ChunkId) -> Result<Vec<u8>> {
    core.backend.get(id).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corrupt(format_args!("chunk {} unreadable: {e}", hex::encode(id)))
        } else {
            super::chunks::store_failure(format_args!("reading chunk {}", hex::encode(id)), e)
        }
    })
}
