//! The write pipeline: a body stream becomes sealed, durable chunks and a list of references.
//!
//! The body is read into segments; each segment is cut by content-defined chunking and fed
//! to MD5 (the S3 ETag) on a blocking thread, in stream order, while the chunks of earlier
//! segments are hashed, sealed and written on other blocking threads. On two cores that
//! splits the per-byte cost (MD5 + FastCDC on one side, HMAC-SHA-256 + AES-GCM on the other)
//! about evenly. Nothing holds more than a few segments of a body at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::task::JoinHandle;

use crate::Core;
use crate::content::chunks::{ChunkRef, PinGuard};
use crate::content::grace;
use crate::crypto::{ChunkId, TAG_LEN};
use crate::error::{Error, Result};
use crate::meta::db::{CHUNKS, Readable};

pub const MIN_CHUNK: usize = 256 * 1024;
pub const AVG_CHUNK: usize = 1024 * 1024;
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;
/// A whole file up to this size is kept inside the database (one fsync for many small files).
pub const INLINE_MAX: usize = 64 * 1024;
/// Bytes read before a cutting pass; at least MAX_CHUNK so every cut but the last is content-defined.
const SEGMENT: usize = 2 * MAX_CHUNK;
/// Chunks of one write being sealed and written at once: enough to hide fsync latency.
const IN_FLIGHT: usize = 8;
/// The same across all writes. Each slot holds a sealed copy of its chunk and a blocking
/// thread, so without a shared bound ten concurrent uploads would hold eighty of each. A
/// slot is taken only for bytes that have arrived and is freed by CPU and disk work alone,
/// so a slow client never holds one while others wait.
pub(crate) const CHUNK_SLOTS: usize = 8;

/// What a body became: ready to be referenced by a commit.
pub struct Ingested {
    pub refs: Vec<ChunkRef>,
    pub size: u64,
    pub md5: [u8; 16],
    /// Sealed bytes of a small file's single chunk, stored in the database by the commit.
    pub inline: Option<(ChunkId, Vec<u8>)>,
    /// Keeps the chunks from collection until the commit that references them is durable.
    pub pins: PinGuard,
    /// With several nodes, when the commit must happen at the latest: half the grace period
    /// after the first chunk was checked (see `content::grace`). None on one node, where the
    /// pins hold the chunks however long the write takes.
    pub commit_by: Option<Instant>,
}

impl Ingested {
    /// Refuses a body that is not what the client announced: its length, or its MD5
    /// (Content-MD5); `what` names it in the refusal ("body", "part").
    pub fn check_announced(&self, len: Option<u64>, md5: Option<[u8; 16]>, what: &str) -> Result<()> {
        if let Some(len) = len
            && self.size != len
        {
            return Err(Error::Incomplete(format!("the {what} had {} bytes, {len} were announced", self.size)));
        }
        if md5.is_some_and(|want| want != self.md5) {
            return Err(Error::DigestMismatch(format!("the {what} does not match its Content-MD5")));
        }
        Ok(())
    }
}

/// Reads `body` to its end. `max` bounds its length: past it, `over()` is the refusal.
pub async fn ingest<S>(core: &Arc<Core>, body: S, max: u64, over: impl Fn() -> Error) -> Result<Ingested>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    let mut in_flight = VecDeque::new();
    let result = run(core, body, max, &over, &mut in_flight).await;
    if result.is_err() {
        // Chunk jobs already started run on regardless: wait for them, so that what a
        // refused write stored is released (to the collector) before the refusal returns.
        for h in in_flight {
            let _ = h.await;
        }
    }
    result
}

type ChunkJob = JoinHandle<Result<(ChunkRef, PinGuard)>>;

async fn run<S>(
    core: &Arc<Core>,
    mut body: S,
    max: u64,
    over: &impl Fn() -> Error,
    in_flight: &mut VecDeque<ChunkJob>,
) -> Result<Ingested>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    let mut buf = BytesMut::new();
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut eof = false;
    let mut refs = Vec::new();
    let mut pins = PinGuard::empty(&core.pins);
    // Taken before the first chunk is checked, so never later than that check.
    let mut first_check: Option<Instant> = None;

    loop {
        // One allocation per segment, instead of doubling through every size up to it.
        buf.reserve(SEGMENT + 256 * 1024 - buf.len().min(SEGMENT));
        while !eof && buf.len() < SEGMENT {
            match body.next().await {
                Some(Ok(b)) => {
                    size += b.len() as u64;
                    if size > max {
                        return Err(over());
                    }
                    buf.extend_from_slice(&b);
                }
                Some(Err(e)) => {
                    return Err(Error::Incomplete(format!("the request body ended early: {e}")));
                }
                None => eof = true,
            }
        }
        if eof && refs.is_empty() && in_flight.is_empty() && buf.len() <= INLINE_MAX {
            let data = buf.split().freeze();
            let core = core.clone();
            return tokio::task::spawn_blocking(move || ingest_small(&core, md5, data, pins)).await?;
        }
        if buf.is_empty() {
            break;
        }
        let data = buf.split().freeze();
        let (next_md5, cuts, tail) = tokio::task::spawn_blocking(move || cut_segment(md5, data, eof)).await?;
        md5 = next_md5;
        buf.extend_from_slice(&tail);
        for chunk in cuts {
            while in_flight.len() >= IN_FLIGHT {
                let (r, g) = in_flight.pop_front().expect("non-empty").await??;
                refs.push(r);
                pins.add(g);
            }
            let slot = core.chunk_slots.clone().acquire_owned().await.map_err(Error::internal)?;
            first_check.get_or_insert_with(Instant::now);
            let core = core.clone();
            in_flight.push_back(tokio::task::spawn_blocking(move || {
                let stored = store_chunk(&core, chunk);
                drop(slot);
                stored
            }));
        }
        if eof && buf.is_empty() {
            break;
        }
    }
    while let Some(h) = in_flight.pop_front() {
        let (r, g) = h.await??;
        refs.push(r);
        pins.add(g);
    }
    let commit_by = core.config.chunk_grace.zip(first_check).map(|(grace, first)| first + grace / 2);
    Ok(Ingested { refs, size, md5: md5.finalize().into(), inline: None, pins, commit_by })
}

/// Cuts `data` at content-defined points, hashing what it hands on; the tail that may still
/// grow (less than MAX_CHUNK before the end of a stream that goes on) is returned uncut.
fn cut_segment(mut md5: Md5, data: Bytes, eof: bool) -> (Md5, Vec<Bytes>, Bytes) {
    let cdc = fastcdc::v2020::FastCDC::new(&data, MIN_CHUNK as u32, AVG_CHUNK as u32, MAX_CHUNK as u32);
    let mut pos = 0;
    let mut cuts = Vec::new();
    while pos < data.len() && (eof || data.len() - pos >= MAX_CHUNK) {
        let (_, end) = cdc.cut(pos, data.len() - pos);
        cuts.push(data.slice(pos..end));
        pos = end;
    }
    md5.update(&data[..pos]);
    (md5, cuts, data.slice(pos..))
}

/// Seals and stores one chunk unless it is already stored.
fn store_chunk(core: &Arc<Core>, plain: Bytes) -> Result<(ChunkRef, PinGuard)> {
    let id = core.keys.chunk_id(&plain);
    let chunk = ChunkRef { id, len: plain.len() as u32 };
    if let Some(grace) = core.config.chunk_grace {
        // Several nodes: no pin reaches another node's collector; the grave does.
        if grace::needs_upload(&core.db, &id, grace)? {
            put_sealed(core, &id, &plain)?;
        }
        return Ok((chunk, PinGuard::empty(&core.pins)));
    }
    // Pinned before the existence check, so the collector cannot delete it in between.
    let mut guard = core.pins.pin([id]);
    // An inline row is no file: its bytes go with it if the small file that holds them is
    // deleted before this write commits, so the file is written all the same.
    let exists = core.db.read_sync(|t| {
        Ok(match t.open_table(CHUNKS)?.get(&id)? {
            Some(v) => !crate::meta::db::decode::<crate::meta::model::ChunkRow>(v.value())?.inline,
            None => false,
        })
    })?;
    if !exists {
        put_sealed(core, &id, &plain)?;
        // If no commit adopts this file, the collector removes it when the pin goes.
        guard.collect_on_release(&core.collector);
    }
    Ok((chunk, guard))
}

fn put_sealed(core: &Core, id: &ChunkId, plain: &[u8]) -> Result<()> {
    let mut sealed = Vec::with_capacity(plain.len() + TAG_LEN);
    sealed.extend_from_slice(plain);
    core.keys.seal_chunk(id, &mut sealed);
    core.backend
        .put(id, &sealed)
        .map_err(|e| super::chunks::store_failure(format_args!("storing chunk {}", hex::encode(id)), e))
}

fn ingest_small(core: &Arc<Core>, mut md5: Md5, data: Bytes, pins: PinGuard) -> Result<Ingested> {
    md5.update(&data);
    let md5 = md5.finalize().into();
    if data.is_empty() {
        return Ok(Ingested { refs: Vec::new(), size: 0, md5, inline: None, pins, commit_by: None });
    }
    let id = core.keys.chunk_id(&data);
    let mut sealed = Vec::with_capacity(data.len() + TAG_LEN);
    sealed.extend_from_slice(&data);
    core.keys.seal_chunk(&id, &mut sealed);
    Ok(Ingested {
        refs: vec![ChunkRef { id, len: data.len() as u32 }],
        size: data.len() as u64,
        md5,
        inline: Some((id, sealed)),
        pins,
        // Its bytes come with the commit: nothing stored needs to outlive the write.
        commit_by: None,
    })
}
