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
use crate::content::ingest::INLINE_MAX;
use crate::crypto::ChunkId;
use crate::error::{Error, Result, What};
use crate::meta::db::{self, CHUNK_DATA, CHUNKS, ReadTxn, Readable};

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
/// A read of at least this many bytes streams its chunks past the page cache when they are
/// not cached (`ChunkBackend::get_streamed`, figures at `direct::DirectReads`): a file read
/// whole at this size is seldom read again soon, and one that is stays cached from its
/// first read over a shorter range or its write. nginx's `directio` draws the same line.
pub(crate) const PAST_CACHE: u64 = 32 * 1024 * 1024;

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
    let streamed = end - start >= PAST_CACHE;
    // A streamed read asks for no prefetch: the one store that prefetches (a local folder)
    // reads ahead into the page cache, which a streamed read skips; its reads ahead are the
    // chunks being read at once.
    if !streamed {
        let later: Vec<Option<ChunkId>> = (0..pieces.len())
            .map(|i| pieces.get(i + read_ahead + PREFETCH).filter(|p| !p.inline).map(|p| p.id))
            .collect();
        for (p, then) in pieces.iter_mut().zip(later) {
            p.then = then;
        }
        // The first pieces' own prefetches are not asked by any piece before them.
        for p in pieces.iter().skip(read_ahead).take(PREFETCH).filter(|p| !p.inline) {
            core.backend.prefetch(&p.id);
        }
    }
    let core = core.clone();
    let stream = futures::stream::iter(pieces)
        .map(move |p| {
            let core = core.clone();
            async move { tokio::task::spawn_blocking(move || load_piece(&core, &p, streamed)).await? }
        })
        .buffered(read_ahead)
        .map(move |r| {
            let _pinned = &guard;
            r
        });
    Ok(Box::pin(stream))
}

/// The range `[start, end)` of a small file whose one chunk lives in the database, read in
/// the snapshot `t` that found the file: the same transaction as the item, so a small GET
/// costs one read transaction (two round trips on PostgreSQL: the path, the bytes). Such
/// bytes need no pin: the snapshot holds them, and no collector deletes anything for them.
/// `None` when the chunk is in the chunk store: the caller pins it and opens the range.
pub(crate) fn read_inline(
    core: &Core,
    t: &ReadTxn,
    refs: &[ChunkRef],
    start: u64,
    end: u64,
) -> Result<Option<ByteStream>> {
    let r = match refs {
        [] => return Ok(Some(Box::pin(futures::stream::empty()))),
        [r] if r.len as usize <= INLINE_MAX => r,
        _ => return Ok(None),
    };
    // A CHUNK_DATA row exists exactly while the chunk's row says inline (`W::add_refs` and
    // `W::release_refs` write both together), so the row itself need not be read.
    let data = t.open_table(CHUNK_DATA)?;
    let Some(v) = data.get(&r.id)? else { return Ok(None) };
    let mut sealed = v.value().to_vec();
    // Opened here, already on a blocking thread: a few KiB, cheaper than another hop.
    let n = core.keys.open_chunk(&r.id, &mut sealed)?.len();
    let (from, to) = (start as usize, end as usize);
    if to > n || from > to {
        return Err(Error::corrupt("chunk shorter than its reference"));
    }
    sealed.truncate(n);
    let piece = Bytes::from(sealed).slice(from..to);
    Ok(Some(Box::pin(futures::stream::once(async move { Ok(piece) }))))
}

fn load_piece(core: &Core, p: &Piece, streamed: bool) -> Result<Bytes> {
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
        fetch(core, &p.id, streamed)?
    };
    let n = match core.keys.open_chunk(&p.id, &mut sealed) {
        Ok(plain) => plain.len(),
        // A damaged copy in the local read cache: the store may still hold a good one.
        // Read it once more from there; a second failure is the store's own damage.
        Err(e) if !p.inline && core.backend.drop_cached(&p.id) => {
            tracing::warn!(chunk = %hex::encode(p.id), error = ?e, "cached chunk failed authentication; reading it from the store");
            sealed = fetch(core, &p.id, streamed)?;
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
fn fetch(core: &Core, id: &ChunkId, streamed: bool) -> Result<Vec<u8>> {
    let got = if streamed { core.backend.get_streamed(id) } else { core.backend.get(id) };
    got.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corrupt(format_args!("chunk {} unreadable: {e}", hex::encode(id)))
        } else {
            super::chunks::store_failure(format_args!("reading chunk {}", hex::encode(id)), e)
        }
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use crate::meta::model::Role;
    use crate::tests::{body, open_with, read_all, user};
    use crate::{Error, WriteOptions};

    /// A small file is read whole in the transaction that finds it (`read_inline`): what an
    /// open read sends is the version it found, whatever is written after; ranges of it are
    /// exact; and a grant ended before the read still refuses it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_file_is_read_as_it_was_when_opened() {
        let f = open_with(|_| {});
        let s = &f.storage;
        let alice = user(s, "alice", Role::User, None).await;
        let bob = user(s, "bob", Role::User, None).await;
        let old: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        s.mkdir(&alice, "/box").await.unwrap();
        s.write(&alice, "/box/small.bin", body(&old), WriteOptions::default()).await.unwrap();
        s.write(&alice, "/box/empty.bin", body(b""), WriteOptions::default()).await.unwrap();
        assert_eq!(read_all(s, &alice, "/box/small.bin", Some((100, Some(199)))).await.unwrap(), old[100..200]);
        assert_eq!(read_all(s, &alice, "/box/small.bin", Some((4000, None))).await.unwrap(), old[4000..]);
        assert_eq!(read_all(s, &alice, "/box/empty.bin", None).await.unwrap(), b"");
        let r = read_all(s, &alice, "/box/small.bin", Some((4096, None))).await;
        assert!(matches!(r, Err(Error::RangeNotSatisfiable(_))), "{r:?}");

        let mut open = s.read(&alice, "/box/small.bin", None).await.unwrap();
        s.write(&alice, "/box/small.bin", body(b"new"), WriteOptions::default()).await.unwrap();
        s.delete(&alice, "/box/small.bin", Default::default()).await.unwrap();
        let mut got = Vec::new();
        while let Some(piece) = open.body.next().await {
            got.extend_from_slice(&piece.unwrap());
        }
        assert_eq!((open.item.size, got), (4096, old));

        s.write(&alice, "/box/small.bin", body(b"again"), WriteOptions::default()).await.unwrap();
        let share = s.share(&alice, "/box", "bob", false).await.unwrap();
        assert_eq!(read_all(s, &bob, "/shared/alice/box/small.bin", None).await.unwrap(), b"again");
        s.delete_share(&alice, share.share.id).await.unwrap();
        let r = read_all(s, &bob, "/shared/alice/box/small.bin", None).await;
        assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    }

    crate::tests::also_on_postgres!(a_small_file_is_read_as_it_was_when_opened);
}
