//! The write pipeline: a body stream becomes sealed, durable chunks and a list of references.
//!
//! Stages, so that one stream keeps both cores busy (see `run`): the request's task reads
//! the body and hands it on in batches (`BATCH` bytes, more while few writes run: see
//! [`Streams`]); a chain of short blocking jobs cuts it at content-defined points (`cdc`),
//! copying each byte once into its chunk's own buffer; another chain feeds MD5, when the
//! write needs it; each finished chunk is keyed-hashed, sealed in place, written and fsynced
//! by a job of its own, several at once. Queues between the stages hold one batch, and the
//! chunk jobs of all writes share `CHUNK_SLOTS`, so a write holds about its chunk being
//! filled, a few batches, and its share of the slots.
//!
//! Why this shape, from `perf record -g` of the server during one 1 GiB WebDAV PUT (release,
//! dedup and encryption on, the share of the server's CPU samples). Before: MD5 27%, SHA-256
//! of the keyed chunk ids 13%, FastCDC 9%, memmove 7% (8 MiB segments, their tails, the
//! sealed copies), and reading stopped while each segment was hashed and cut. With these
//! stages: the kernel's copy into the page cache 36%, SHA-256 14%, cutting 9%. Chunk files
//! were then written with O_DIRECT, and are again through the page cache, for the GET that
//! follows a PUT (figures at `chunks::write_synced`).
//!
//! A stage's blocking job takes every batch already queued before it returns (the cutting
//! job stops early at a chunk, which goes to its job at once): a stage that keeps up still
//! runs one job per batch, but one that falls behind (MD5 on an S3 PUT, the cutting under
//! load) no longer hands each batch back through the async side, a wake-up of a blocking
//! thread and of a worker each time. Measured (1 GiB PUT with curl, release, 3 runs each
//! alternating with the previous build, load 5-7 from other builds; `perf stat` on the
//! server): WebDAV 23.1k -> 19.4k context switches, 3.05 -> 2.86 CPU-s per GiB, 360 -> 389
//! MB/s; S3 single PUT (presigned) 36.3k -> 31.0k, 4.23 -> 4.10 CPU-s, 302 -> 318 MB/s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Core;
use crate::content::cdc::{Chunk, Cutter};
use crate::content::chunks::{ChunkRef, PinGuard};
use crate::content::direct::DIRECT_ALIGN;
use crate::content::grace;
use crate::crypto::{ChunkId, TAG_LEN};
use crate::error::{Error, Result};
use crate::meta::db::{CHUNKS, Readable};

pub const MIN_CHUNK: usize = 256 * 1024;
pub const AVG_CHUNK: usize = 1024 * 1024;
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;
/// A whole file up to this size is kept inside the database (one fsync for many small files).
pub const INLINE_MAX: usize = 64 * 1024;
/// Body bytes handed from one stage to the next at once: large enough that the blocking
/// jobs' overhead (tens of microseconds) vanishes, small enough that the queues stay small.
const BATCH: usize = 256 * 1024;
/// The batch of a write that runs with at most `FEW_STREAMS - 1` others (see [`Streams`]).
const BATCH_FEW: usize = 1024 * 1024;
const FEW_STREAMS: usize = 2;
/// Chunks of one write being sealed and written at once: enough to hide fsync latency.
const IN_FLIGHT: usize = 8;
/// The same across all writes. Each slot holds a chunk and a blocking thread, so without a
/// shared bound ten concurrent uploads would hold eighty of each. A slot is taken only for
/// bytes that have arrived and is freed by CPU and disk work alone, so a slow client never
/// holds one while others wait.
pub(crate) const CHUNK_SLOTS: usize = 8;

/// What a body became: ready to be referenced by a commit.
pub struct Ingested {
    pub refs: Vec<ChunkRef>,
    pub size: u64,
    /// None when the write did not ask for it (see `ingest_with`) and the body was not small.
    pub md5: Option<[u8; 16]>,
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
        if let Some(want) = md5
            && self.md5 != Some(want)
        {
            return Err(Error::DigestMismatch(format!("the {what} does not match its Content-MD5")));
        }
        Ok(())
    }

    /// The ETag of the written content, without quotes: its hex MD5 when it was computed;
    /// otherwise a digest of its chunk ids (keyed hashes of the content, so equal content
    /// gets equal tags and nothing about the content shows) followed by `-` and the number
    /// of chunks. S3 clients read a tag with a `-` as a multipart one, never as an MD5: rclone
    /// then looks for the MD5 in the metadata and skips the check when it is absent, the aws
    /// CLI does not check downloads against the ETag, so such files stay readable over S3.
    pub fn etag(&self) -> String {
        match self.md5 {
            Some(md5) => hex::encode(md5),
            None => {
                let ids: Vec<u8> = self.refs.iter().flat_map(|r| r.id).collect();
                format!("{}-{}", hex::encode(&crate::crypto::sha256(&ids)[..16]), self.refs.len())
            }
        }
    }
}

/// Reads `body` to its end, with its MD5. `max` bounds its length: past it, `over()` is the
/// refusal.
pub async fn ingest<S>(core: &Arc<Core>, body: S, max: u64, over: impl Fn() -> Error) -> Result<Ingested>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    ingest_with(core, body, max, over, true).await
}

/// [`ingest`], computing the MD5 only if `md5` (or the body is small, where it costs
/// nothing). Why it is optional: MD5 is the costliest step per byte and cannot be split
/// over cores. Measured here (2 cores, by CPU time so that other load does not count):
/// md-5 0.10 at 630 MB/s, with its `asm` feature (now on, see the workspace Cargo.toml) 815;
/// the figures on an idle machine: md-5 445 MB/s against cutting, keyed hashing and
/// sealing together at about 1.6 ns/B. `tests/bench/s3.sh` prints the rate of the build in
/// use. S3 needs it (a single PUT's ETag is the MD5, and its clients compare it); WebDAV and
/// REST do not, and their large files get the tag of [`Ingested::etag`] instead.
pub async fn ingest_with<S>(
    core: &Arc<Core>,
    body: S,
    max: u64,
    over: impl Fn() -> Error,
    md5: bool,
) -> Result<Ingested>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    let mut in_flight = VecDeque::new();
    let result = run(core, body, max, &over, md5, &mut in_flight).await;
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

/// The writes now in the stages (past the small-body check), which sets their batch size.
///
/// Why larger batches when few writes run: each batch wakes a blocking job per stage and
/// the request's task again after it, and on this VM a wake-up is a context switch and often
/// an IPI. A lone 1 GiB S3 PUT (presigned, curl; `/proc` of the server and the machine,
/// 2 runs each, alternating) with batches of 256 KiB -> 1 MiB: 32.7k, 33.5k -> 24.9k, 25.7k
/// context switches, the same CPU (3.73, 4.00 s), the machine idle 0.54, 0.40 -> 0.25, 0.19
/// s, 409, 402 -> 445, 425 MB/s. A write holds about four batches (the one filling, one
/// queued for each stage, one in its stage), so 1 MiB batches for every write would add
/// 3 MiB to each of 16 multipart parts at once; for `FEW_STREAMS` writes at most it adds 6.
#[derive(Default)]
pub struct Streams(std::sync::atomic::AtomicUsize);

impl Streams {
    fn enter(&self) -> StreamGuard<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StreamGuard(self)
    }

    fn batch(&self) -> usize {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) <= FEW_STREAMS { BATCH_FEW } else { BATCH }
    }
}

struct StreamGuard<'a>(&'a Streams);

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The next piece of the body, with the running size checked against `max`.
async fn next_frame<S>(body: &mut S, size: &mut u64, max: u64, over: &impl Fn() -> Error) -> Result<Option<Bytes>>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    match body.next().await {
        Some(Ok(b)) => {
            *size += b.len() as u64;
            if *size > max {
                return Err(over());
            }
            Ok(Some(b))
        }
        Some(Err(e)) => Err(Error::Incomplete(format!("the request body ended early: {e}"))),
        None => Ok(None),
    }
}

async fn run<S>(
    core: &Arc<Core>,
    mut body: S,
    max: u64,
    over: &impl Fn() -> Error,
    want_md5: bool,
    in_flight: &mut VecDeque<ChunkJob>,
) -> Result<Ingested>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    // A small body is read whole first: it goes into the database, not through the stages.
    let mut size = 0u64;
    let mut head = Vec::new();
    let mut eof = false;
    while size <= INLINE_MAX as u64 {
        match next_frame(&mut body, &mut size, max, over).await? {
            Some(b) => head.push(b),
            None => {
                eof = true;
                break;
            }
        }
    }
    if eof {
        let data: Bytes = match head.len() {
            0 => Bytes::new(),
            1 => head.pop().expect("one"),
            _ => head.concat().into(),
        };
        let core = core.clone();
        return tokio::task::spawn_blocking(move || ingest_small(&core, data)).await?;
    }

    let _stream = core.streams.enter();
    let streams = &core.streams;
    let (cut_tx, cut_rx) = mpsc::channel::<Vec<Bytes>>(1);
    let (md5_tx, md5_rx) = if want_md5 {
        let (tx, rx) = mpsc::channel::<Vec<Bytes>>(1);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let read = async move {
        let mut batch = head;
        let mut batch_len: usize = batch.iter().map(Bytes::len).sum();
        let mut end = false;
        loop {
            // Handed on before waiting for more: a body that pauses must not hold back what
            // already came (its chunks would be checked late, see `commit_by`).
            if (end && !batch.is_empty()) || batch_len >= streams.batch() {
                let full = std::mem::take(&mut batch);
                batch_len = 0;
                if let Some(tx) = &md5_tx {
                    // A stage gone has failed; its error is the one try_join reports.
                    let _ = tx.send(full.clone()).await;
                }
                let _ = cut_tx.send(full).await;
            }
            if end {
                return Ok::<u64, Error>(size);
            }
            match next_frame(&mut body, &mut size, max, over).await? {
                Some(b) => {
                    batch_len += b.len();
                    batch.push(b);
                }
                None => end = true,
            }
        }
    };
    let hash = async move {
        let Some(mut rx) = md5_rx else { return Ok(None) };
        let mut md5 = Md5::new();
        while let Some(batch) = rx.recv().await {
            // One job for every batch already queued (see the module comment), not one per batch.
            (md5, rx) = tokio::task::spawn_blocking(move || {
                let mut batch = batch;
                loop {
                    for b in &batch {
                        md5.update(b);
                    }
                    match rx.try_recv() {
                        Ok(next) => batch = next,
                        Err(_) => return (md5, rx),
                    }
                }
            })
            .await?;
        }
        Ok::<_, Error>(Some(md5.finalize().into()))
    };
    // A write that computes MD5 is short of CPU: its chunks skip the page cache (see
    // `LocalDir::put_uncached`); others stay cached for the GET that often follows.
    let cut = cut_and_store(core, cut_rx, in_flight, want_md5);
    let (size, md5, (refs, pins, first_check)) = futures::try_join!(read, hash, cut)?;
    let commit_by = core.config.chunk_grace.zip(first_check).map(|(grace, first)| first + grace / 2);
    Ok(Ingested { refs, size, md5, inline: None, pins, commit_by })
}

/// The cutting stage and the chunk jobs it starts: the chunks' references in stream order,
/// their pins, and when the first chunk was checked.
async fn cut_and_store(
    core: &Arc<Core>,
    mut rx: mpsc::Receiver<Vec<Bytes>>,
    in_flight: &mut VecDeque<ChunkJob>,
    uncached: bool,
) -> Result<(Vec<ChunkRef>, PinGuard, Option<Instant>)> {
    let mut refs = Vec::new();
    let mut pins = PinGuard::empty(&core.pins);
    // Taken before the first chunk is checked, so never later than that check.
    let mut first_check: Option<Instant> = None;
    let mut cutter = Some(Cutter::new(MIN_CHUNK, AVG_CHUNK, MAX_CHUNK));
    loop {
        let batch = rx.recv().await;
        let mut c = cutter.take().expect("the cutter comes back from each job");
        let (c, back, chunks) = tokio::task::spawn_blocking(move || {
            let mut chunks = Vec::new();
            let mut batch = batch;
            loop {
                let Some(b) = batch else {
                    chunks.extend(c.finish());
                    return (None, rx, chunks);
                };
                for b in &b {
                    c.push(b, &mut |chunk| chunks.push(chunk));
                }
                // A chunk goes to its job at once; otherwise the next batch, if it is here
                // (see the module comment).
                if !chunks.is_empty() {
                    return (Some(c), rx, chunks);
                }
                batch = match rx.try_recv() {
                    Ok(next) => Some(next),
                    Err(mpsc::error::TryRecvError::Empty) => return (Some(c), rx, chunks),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                };
            }
        })
        .await?;
        rx = back;
        for chunk in chunks {
            while in_flight.len() >= IN_FLIGHT {
                let (r, g) = in_flight.pop_front().expect("non-empty").await??;
                refs.push(r);
                pins.add(g);
            }
            let slot = core.chunk_slots.clone().acquire_owned().await.map_err(Error::internal)?;
            first_check.get_or_insert_with(Instant::now);
            let core = core.clone();
            in_flight.push_back(tokio::task::spawn_blocking(move || {
                let stored = store_chunk(&core, chunk, uncached);
                drop(slot);
                stored
            }));
        }
        match c {
            Some(c) => cutter = Some(c),
            None => break,
        }
    }
    while let Some(h) = in_flight.pop_front() {
        let (r, g) = h.await??;
        refs.push(r);
        pins.add(g);
    }
    Ok((refs, pins, first_check))
}

/// A chunk's bytes in a buffer of their own, copied from the body's pieces, at the offset of
/// the buffer the store wants them at: aligned to `DIRECT_ALIGN` for a write past the page
/// cache, whose O_DIRECT write then reads them where they are (no aligned copy, no zeroed
/// buffer per chunk), at its start otherwise. Room is left for the tag: sealing is in place.
struct Plain {
    buf: Vec<u8>,
    at: usize,
}

impl Plain {
    fn new(chunk: &Chunk, aligned: bool) -> Self {
        let room = if aligned { DIRECT_ALIGN } else { 0 };
        let mut buf: Vec<u8> = Vec::with_capacity(chunk.len() + TAG_LEN + room);
        let at = match buf.as_ptr().align_offset(DIRECT_ALIGN) {
            at if aligned && at < room => at,
            _ => 0,
        };
        buf.resize(at, 0);
        chunk.extend_into(&mut buf);
        Plain { buf, at }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}

/// Seals and stores one chunk unless it is already stored.
fn store_chunk(core: &Arc<Core>, chunk: Chunk, uncached: bool) -> Result<(ChunkRef, PinGuard)> {
    // Copied once, and hashed right after while in cache; the pieces (the body's receive
    // buffers) go at once. Measured with ring here (1 MiB chunks out of 256 MiB, one core,
    // load 6): HMAC-SHA-256 of bytes no longer in cache 1,120-1,145 MB/s, the copy and then
    // the HMAC 1,440-1,457 MB/s, copy included (copying and hashing 64 KiB at a time: no
    // better, 1,360-1,448).
    let plain = Plain::new(&chunk, uncached);
    drop(chunk);
    let id = core.keys.chunk_id(plain.bytes());
    let chunk = ChunkRef { id, len: plain.bytes().len() as u32 };
    if let Some(grace) = core.config.chunk_grace {
        // Several nodes: no pin reaches another node's collector; the grave does.
        if grace::needs_upload(&core.db, &id, grace)? {
            put_sealed(core, &id, plain, uncached)?;
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
        put_sealed(core, &id, plain, uncached)?;
        // If no commit adopts this file, the collector removes it when the pin goes.
        guard.collect_on_release(&core.collector);
    }
    Ok((chunk, guard))
}

fn put_sealed(core: &Core, id: &ChunkId, mut plain: Plain, uncached: bool) -> Result<()> {
    core.keys.seal_chunk_at(id, &mut plain.buf, plain.at);
    let sealed = plain.bytes();
    let put = if uncached { core.backend.put_uncached(id, sealed) } else { core.backend.put(id, sealed) };
    put.map_err(|e| super::chunks::store_failure(format_args!("storing chunk {}", hex::encode(id)), e))
}

fn ingest_small(core: &Arc<Core>, data: Bytes) -> Result<Ingested> {
    let md5 = Some(Md5::digest(&data).into());
    if data.is_empty() {
        return Ok(Ingested {
            refs: Vec::new(),
            size: 0,
            md5,
            inline: None,
            pins: PinGuard::empty(&core.pins),
            commit_by: None,
        });
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
        pins: PinGuard::empty(&core.pins),
        // Its bytes come with the commit: nothing stored needs to outlive the write.
        commit_by: None,
    })
}
