//! Chunk content: where sealed chunks live, which are in use, and their collection.
//!
//! A chunk's reference count lives in the CHUNKS table and changes in the same transaction as
//! the references themselves. Files are only deleted by the collector, and only when no row
//! names the chunk and no in-flight write or read has pinned it: a writer pins a chunk before
//! it checks whether the chunk exists, and a reader pins a file's chunks before trusting its
//! snapshot, so neither can lose a file to a concurrent delete.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::content::direct::{DirectReads, DirectWrites};
use crate::crypto::{ChunkId, random_string};
use crate::error::{Error, Result};
use crate::meta::db::{self, CHUNKS, Db, Readable};

/// Where sealed chunks are kept. Small and synchronous on purpose: callers are already on
/// blocking threads (never on an async worker: the S3 backend blocks on its requests), and a
/// backend on an S3-compatible cluster fits the same calls.
pub trait ChunkBackend: Send + Sync + 'static {
    /// Stores sealed bytes durably under `id` (visible only once complete).
    fn put(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()>;
    /// [`put`](Self::put) for a write short of CPU, where the store may skip work that only
    /// later reads gain from: a local folder then writes past the page cache (O_DIRECT).
    fn put_uncached(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        self.put(id, sealed)
    }
    /// Reads the sealed bytes of `id`.
    fn get(&self, id: &ChunkId) -> io::Result<Vec<u8>>;
    /// [`get`](Self::get) for a long read, start to end, of what is seldom read again soon:
    /// a local folder then reads what is not cached past the page cache (O_DIRECT).
    fn get_streamed(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        self.get(id)
    }
    fn delete(&self, id: &ChunkId) -> io::Result<()>;
    /// Every stored chunk id, for the sweep and `check`.
    fn list(&self) -> io::Result<Vec<ChunkId>>;
    /// Every stored chunk id with the time it was last written, for a collector that only
    /// removes what is older than a grace period.
    fn list_with_age(&self) -> io::Result<Vec<(ChunkId, SystemTime)>>;
    /// Bytes on disk, for statistics.
    fn stored_bytes(&self) -> io::Result<u64>;
    /// Forgets a local copy of `id` kept in front of the real store, if there is one, so
    /// the next `get` reads the store: for a cached chunk that failed authentication.
    /// Returns whether there was one (and so whether reading again can help).
    fn drop_cached(&self, _id: &ChunkId) -> bool {
        false
    }
    /// Chunks one read fetches ahead of the one it sends: enough to overlap decryption with
    /// sending on a local disk; a store with round trips of milliseconds wants more.
    fn read_ahead(&self) -> usize {
        2
    }
    /// A hint that `id` will be read soon, so the store can start fetching it without the
    /// reader holding its bytes yet. Best effort: failures are ignored.
    fn prefetch(&self, _id: &ChunkId) {}
}

/// A chunk store's failure as the core reports it: a store that does not answer (a cluster
/// timing out or refusing connections) is `Unavailable`, so clients are told to try again
/// (503) rather than that the server failed; its cause is logged here, since `Unavailable`
/// carries only what a client may read. Anything else is the server's own failure.
pub(crate) fn store_failure(what: std::fmt::Arguments<'_>, e: io::Error) -> Error {
    use io::ErrorKind::*;
    if matches!(e.kind(), TimedOut | ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected) {
        tracing::warn!(error = ?e, "{what}: the chunk store does not answer");
        return Error::Unavailable("the chunk store does not answer; try again shortly".into());
    }
    Error::internal_from(what, e)
}

/// Chunks as files under `chunks/ab/cd/<hex id>`: two levels of fan-out keep directories
/// small. Each file is written to `tmp/`, fsynced, renamed into place, and its directory
/// fsynced, so a crash leaves either the whole chunk or a temp file the start sweep removes.
pub struct LocalDir {
    root: PathBuf,
    tmp: PathBuf,
    direct: DirectWrites,
    direct_reads: DirectReads,
    /// The second-level folders whose entry in their parent this process has synced, one bit
    /// each (65,536): see `store`.
    synced_dirs: Vec<std::sync::atomic::AtomicU64>,
}

/// Makes the 256 first-level fan-out folders that are missing, then makes their entries
/// durable: a chunk's write then makes at most its second-level folder, whose entry only
/// its parent must hold (see `LocalDir::store`). Why at open: on a fresh store nearly every
/// chunk of the first GiBs lands in a folder of its own, and each new first-level folder
/// cost a `mkdir` and an fsync of `chunks/` inside the write (`strace -c` of one presigned
/// 1 GiB S3 PUT on a fresh store: 3 fsyncs, 1.6 mkdirs and 4 opens per chunk). 256 empty
/// folders cost 1 MiB of disk, once.
fn make_first_level(root: &Path) -> io::Result<()> {
    for i in 0..=255u8 {
        let dir = root.join(hex::encode([i]));
        crate::perms::make_private_dir(&dir)?;
    }
    // Synced at every open, not only when a folder was made: an open that died after making
    // some would leave them unsynced, and the next would find them all there.
    File::open(root)?.sync_all()
}

impl LocalDir {
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join("chunks");
        let tmp = data_dir.join("tmp");
        // Private like the whole data folder (see `perms`): chunks are sealed, but their
        // sizes and number are nobody else's business.
        crate::perms::private_dir(&root)?;
        crate::perms::private_dir(&tmp)?;
        // `chunks/` and `tmp/` themselves, made on a fresh store.
        File::open(data_dir)?.sync_all()?;
        make_first_level(&root)?;
        // Temp files left by a crash are never referenced: sweep them now.
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(LocalDir::at(data_dir))
    }

    /// The chunk folder of `data_dir` taken as it is: nothing is made, synced or swept (what
    /// [`open`](Self::open) does first), so a folder on a read-only mount opens, to be read
    /// (see [`ReadOnly`]).
    pub fn at(data_dir: &Path) -> Self {
        let synced_dirs = (0..65_536 / 64).map(|_| Default::default()).collect();
        LocalDir {
            root: data_dir.join("chunks"),
            tmp: data_dir.join("tmp"),
            direct: DirectWrites::default(),
            direct_reads: DirectReads::default(),
            synced_dirs,
        }
    }

    fn path_of(&self, id: &ChunkId) -> PathBuf {
        let h = hex::encode(id);
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }
}

/// A chunk store opened only to be read (see `StorageConfig::passive`): every write or
/// delete is refused, so nothing that reaches it by mistake changes what is copied or
/// compared.
pub(crate) struct ReadOnly(pub Arc<dyn ChunkBackend>);

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "this chunk store is opened only to be read")
}

impl ChunkBackend for ReadOnly {
    fn put(&self, _: &ChunkId, _: &[u8]) -> io::Result<()> {
        Err(refused())
    }
    fn get(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        self.0.get(id)
    }
    fn get_streamed(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        self.0.get_streamed(id)
    }
    fn delete(&self, _: &ChunkId) -> io::Result<()> {
        Err(refused())
    }
    fn list(&self) -> io::Result<Vec<ChunkId>> {
        self.0.list()
    }
    fn list_with_age(&self) -> io::Result<Vec<(ChunkId, SystemTime)>> {
        self.0.list_with_age()
    }
    fn stored_bytes(&self) -> io::Result<u64> {
        self.0.stored_bytes()
    }
    fn drop_cached(&self, id: &ChunkId) -> bool {
        self.0.drop_cached(id)
    }
    fn read_ahead(&self) -> usize {
        self.0.read_ahead()
    }
    fn prefetch(&self, id: &ChunkId) {
        self.0.prefetch(id)
    }
}

/// Writes `data` to a new private file at `path` through the page cache, then fdatasyncs it:
/// the pages stay cached, clean, so a GET soon after the PUT (a sync client checking what it
/// sent, a preview) is served from memory as a plain file server's would be.
///
/// Why not O_DIRECT, which the previous round chose (the page-cache copy was then 36% of a
/// PUT's CPU): it made the GET right after a PUT read the disk, 0.58-1.28x nginx's GET of its
/// cached file in one run each (goal 0.8). Measured in one sitting, release build, the
/// machine shared with five compiling helpers (`BENCH_ONLY=big tests/bench/webdav.sh --peer`,
/// 1 GiB, MB = 10^6 B; the ratio to nginx and, for the PUT, to `dd conv=fdatasync` just
/// before):
///
/// | chunk files written | GET / nginx | PUT / disk | server CPU per GiB PUT |
/// |---|---|---|---|
/// | O_DIRECT (before), read-ahead 4 | 0.58, 0.91, 1.21, 1.28 | 0.60, 1.12, 1.24, 1.59 | 2.4-2.9 s |
/// | O_DIRECT, read-ahead 8, prefetch 12 | 1.23, 1.64 | 0.69, 2.00 | |
/// | O_DIRECT, then POSIX_FADV_WILLNEED | 0.75, 1.76 | 1.17, 1.78 | |
/// | page cache (this) | 0.96, 1.02, 2.52, 2.55 (later: 1.43-3.62, 6 runs) | 0.57, 0.77, 0.98, 1.05 (later: 0.42, 0.69-1.21) | 3.0-4.7 s |
///
/// Only the page cache met the GET goal in every run (ten); the PUT met its goal (0.5x the
/// disk) in nine of ten, at about a second more CPU per GiB (the copy, most of it the first
/// touch of pages the VM had given back: `dd` pays it too). S3 writes, which are short of
/// CPU, skip the cache (see `put_uncached`).
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = crate::perms::create_private_file(path)?;
    f.write_all(data)?;
    f.sync_data()
}

/// Removes its temp file unless the write completed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl LocalDir {
    /// Writes the chunk file; past the page cache when `direct` (and the file system allows).
    fn store(&self, id: &ChunkId, sealed: &[u8], direct: bool) -> io::Result<()> {
        let dest = self.path_of(id);
        let dir = dest.parent().expect("fan-out dir");
        let tmp_path = self.tmp.join(random_string(b"0123456789abcdef", 24));
        let mut guard = TempFile(Some(tmp_path.clone()));
        let direct_file = if direct { self.direct.write(&tmp_path, sealed)? } else { None };
        match direct_file {
            Some(f) => f.sync_data()?,
            None => write_synced(&tmp_path, sealed)?,
        }
        if let Err(e) = fs::rename(&tmp_path, &dest) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            // The first level was made (and synced) at open; if its folder is gone since
            // (removed by hand), it is made again, with `chunks/` synced for it and the new
            // folder for the second: this process may have marked that one synced before.
            match crate::perms::make_private_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    crate::perms::create_private_dir(dir)?;
                    for made in [dir.parent().expect("fan-out parent"), &self.root] {
                        File::open(made)?.sync_all()?;
                    }
                }
                Err(e) => return Err(e),
            }
            fs::rename(&tmp_path, &dest)?;
        }
        guard.0 = None;
        // The folder's own entry must be durable too, or a crash could lose the folder, and
        // with it a chunk a commit already references: its parent is synced by the first
        // write into it of this process, whoever made it (another write may have made it a
        // moment ago and not synced it yet), and marked only after.
        let n = usize::from(id[0]) << 8 | usize::from(id[1]);
        let (word, bit) = (&self.synced_dirs[n / 64], 1u64 << (n % 64));
        if word.load(std::sync::atomic::Ordering::Acquire) & bit == 0 {
            File::open(dir.parent().expect("fan-out parent"))?.sync_all()?;
            word.fetch_or(bit, std::sync::atomic::Ordering::Release);
        }
        File::open(dir)?.sync_all()
    }
}

impl ChunkBackend for LocalDir {
    fn put(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        self.store(id, sealed, false)
    }

    /// An S3 PUT (which must compute MD5) is CPU-bound here: measured (`perf record`, one
    /// presigned 1 GiB PUT, page-cache writes) 5.7 s of server CPU per GiB, of it the
    /// page-cache copy 26%, MD5 23%, SHA-256 13%, cutting 8%. Its chunks skip the cache:
    /// 4.6 s per GiB then (MD5 31%), and `BENCH_ONLY=big tests/bench/s3.sh` went from 0.39,
    /// 0.52, 0.88x the disk (135-155 MB/s) to 0.92, 0.74x (231-243 MB/s; goal min(0.5x the
    /// disk, 0.8x MD5)), in runs shared with five compiling helpers. A GET right after an S3
    /// PUT then reads the disk, as every GET did before this round.
    fn put_uncached(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        self.store(id, sealed, true)
    }

    fn get(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        fs::read(self.path_of(id))
    }

    fn get_streamed(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        let path = self.path_of(id);
        match self.direct_reads.read(&path)? {
            Some(sealed) => Ok(sealed),
            None => fs::read(path),
        }
    }

    /// Four reads under way: a chunk no longer in the page cache comes from the disk, which
    /// two kept too idle (a cold 1 GiB GET at 0.77x nginx's cached one).
    fn read_ahead(&self) -> usize {
        4
    }

    /// Asks the kernel to read the file into the page cache now (POSIX_FADV_WILLNEED): more
    /// of the disk's parallelism for a cold read, at no cost to this process's memory.
    fn prefetch(&self, id: &ChunkId) {
        if let Ok(f) = File::open(self.path_of(id)) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::WillNeed);
        }
    }

    fn delete(&self, id: &ChunkId) -> io::Result<()> {
        match fs::remove_file(self.path_of(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    fn list(&self) -> io::Result<Vec<ChunkId>> {
        let mut out = Vec::new();
        self.each_file(|id, _| {
            out.push(id);
            Ok(())
        })?;
        Ok(out)
    }

    fn list_with_age(&self) -> io::Result<Vec<(ChunkId, SystemTime)>> {
        let mut out = Vec::new();
        self.each_file(|id, path| {
            match fs::metadata(path).and_then(|m| m.modified()) {
                Ok(t) => out.push((id, t)),
                // Deleted since the folder was read: nothing to collect.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn stored_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for a in fs::read_dir(&self.root)? {
            for b in fs::read_dir(a?.path())? {
                for f in fs::read_dir(b?.path())? {
                    total += f?.metadata()?.len();
                }
            }
        }
        Ok(total)
    }
}

impl LocalDir {
    /// Calls `f` with every chunk file's id and path.
    fn each_file(&self, mut f: impl FnMut(ChunkId, &Path) -> io::Result<()>) -> io::Result<()> {
        for a in fs::read_dir(&self.root)? {
            for b in fs::read_dir(a?.path())? {
                for entry in fs::read_dir(b?.path())? {
                    let entry = entry?;
                    let name = entry.file_name();
                    if let Some(id) = name.to_str().and_then(|n| hex::decode(n).ok()).and_then(|v| v.try_into().ok()) {
                        f(id, &entry.path())?;
                    }
                }
            }
        }
        Ok(())
    }
}

// The stored chunk types live with the other stored types; kept here by name too.
pub use crate::meta::model::{ChunkRef, ChunkRow};

/// In-flight uses of chunks, which the collector must not delete under them.
#[derive(Default)]
pub struct Pins {
    counts: Mutex<HashMap<ChunkId, u32>>,
    /// Holds on every deletion (a live backup copying the chunks of one snapshot): while
    /// any is taken the collector deletes nothing, and the next sweep frees what it skipped.
    holds: std::sync::atomic::AtomicUsize,
}

/// Releases a hold of [`Pins::hold`] when dropped.
pub struct HoldGuard(Arc<Pins>);

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.0.holds.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Releases its pins when dropped; chunks it wrote that no commit adopted go to the collector.
pub struct PinGuard {
    pins: Arc<Pins>,
    ids: Vec<ChunkId>,
    collector: Option<Arc<Collector>>,
}

impl Pins {
    pub fn pin(self: &Arc<Self>, ids: impl IntoIterator<Item = ChunkId>) -> PinGuard {
        let ids: Vec<ChunkId> = ids.into_iter().collect();
        let mut counts = self.counts.lock().expect("pins lock");
        for id in &ids {
            *counts.entry(*id).or_default() += 1;
        }
        PinGuard { pins: self.clone(), ids, collector: None }
    }

    /// Stops every deletion until the guard drops. Taken under the lock `collect` holds
    /// across its check and delete, so no deletion decided before is still under way: a
    /// snapshot read after this returns names only files that stay.
    pub fn hold(self: &Arc<Self>) -> HoldGuard {
        let _counts = self.counts.lock().expect("pins lock");
        self.holds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        HoldGuard(self.clone())
    }
}

impl PinGuard {
    pub fn empty(pins: &Arc<Pins>) -> Self {
        PinGuard { pins: pins.clone(), ids: Vec::new(), collector: None }
    }

    pub fn add(&mut self, other: PinGuard) {
        let mut other = other;
        self.ids.append(&mut other.ids);
        if self.collector.is_none() {
            self.collector = other.collector.take();
        }
    }

    /// On release, offer the pinned chunks to the collector (for writes, whose new chunk
    /// files are orphans if the change never commits).
    pub fn collect_on_release(&mut self, collector: &Arc<Collector>) {
        self.collector = Some(collector.clone());
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        {
            let mut counts = self.pins.counts.lock().expect("pins lock");
            for id in &self.ids {
                if let Some(c) = counts.get_mut(id) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(id);
                    }
                }
            }
        }
        if let Some(c) = &self.collector {
            c.offer(std::mem::take(&mut self.ids));
        }
    }
}

/// Deletes chunk files that no row names and nobody has pinned, on its own thread.
pub struct Collector {
    tx: std::sync::mpsc::Sender<Vec<ChunkId>>,
}

impl Collector {
    pub fn start(db: Db, backend: Arc<dyn ChunkBackend>, pins: Arc<Pins>) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<ChunkId>>();
        std::thread::Builder::new()
            .name("davit-collector".into())
            .spawn(move || {
                while let Ok(mut ids) = rx.recv() {
                    while let Ok(more) = rx.try_recv() {
                        ids.extend(more);
                    }
                    if let Err(e) = collect(&db, backend.as_ref(), &pins, &ids) {
                        tracing::warn!(error = ?e, "chunk collection failed; the next sweep retries");
                    }
                }
            })
            .expect("spawn collector thread");
        Arc::new(Collector { tx })
    }

    pub fn offer(&self, ids: Vec<ChunkId>) {
        let _ = self.tx.send(ids);
    }
}

/// Deletes those of `ids` that are unreferenced and unpinned. The pins lock is held across
/// the check and the delete so that a writer cannot pin, find the row missing and skip
/// rewriting a file the collector is about to remove.
pub fn collect(db: &Db, backend: &dyn ChunkBackend, pins: &Pins, ids: &[ChunkId]) -> Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let counts = pins.counts.lock().expect("pins lock");
    if pins.holds.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        return Ok(0);
    }
    let candidates: Vec<ChunkId> = ids.iter().filter(|id| !counts.contains_key(*id)).copied().collect();
    let unreferenced = db.read_sync(|txn| {
        let table = txn.open_table(CHUNKS)?;
        let mut out = Vec::new();
        for id in &candidates {
            let row = table.get(id)?;
            match row {
                None => out.push(*id),
                Some(v) if db::decode::<ChunkRow>(v.value())?.inline => out.push(*id),
                Some(_) => {}
            }
        }
        Ok(out)
    })?;
    for id in &unreferenced {
        backend.delete(id).map_err(Error::from)?;
    }
    Ok(unreferenced.len())
}

/// Offers every stored chunk to the collector's check: run at start and periodically, it
/// frees what a crash or a lost notification left behind.
pub fn sweep(db: &Db, backend: &dyn ChunkBackend, pins: &Pins) -> Result<usize> {
    let all = backend.list()?;
    let mut removed = 0;
    for part in all.chunks(4096) {
        removed += collect(db, backend, pins, part)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::direct::{DIRECT_ALIGN, DirectReads};

    /// Every length comes back exactly, whatever its remainder to a block, and no temp file
    /// stays.
    #[test]
    fn local_chunks_of_any_length_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::open(dir.path()).unwrap();
        for (i, len) in
            [16usize, 17, 4095, 4096, 4097, 8192, 1_048_576 + 3, 2_097_152 + 4096 + 5].into_iter().enumerate()
        {
            let data: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
            // The same bytes starting at a block boundary, as `ingest` hands them over.
            let mut room = vec![0u8; len + DIRECT_ALIGN];
            let at = room.as_ptr().align_offset(DIRECT_ALIGN);
            room[at..at + len].copy_from_slice(&data);
            let aligned = &room[at..at + len];
            assert_eq!(aligned.as_ptr().align_offset(DIRECT_ALIGN), 0);
            // Through the page cache, and past it (O_DIRECT, whole aligned blocks) from
            // anywhere in memory and from a block boundary.
            for (n, uncached, bytes) in [(0u8, false, &data[..]), (100, true, &data[..]), (200, true, aligned)] {
                let id = [i as u8 + 1 + n; 32];
                if uncached { store.put_uncached(&id, bytes) } else { store.put(&id, bytes) }.unwrap();
                assert_eq!(fs::metadata(store.path_of(&id)).unwrap().len(), len as u64, "length {len}");
                assert_eq!(store.get(&id).unwrap(), data, "length {len}, uncached {uncached}, at {:p}", bytes.as_ptr());
                assert_eq!(store.get_streamed(&id).unwrap(), data, "streamed, length {len}, uncached {uncached}");
            }
        }
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temp file left");
    }

    /// A chunk written past the page cache is read past it too, whole; one written through
    /// the cache (a WebDAV PUT's) is left to the cache.
    #[test]
    fn streamed_reads_skip_the_cache_only_for_what_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..3 * DIRECT_ALIGN + 100).map(|j| (j * 7) as u8).collect();
        let (past, through) = ([1u8; 32], [2u8; 32]);
        store.put_uncached(&past, &data).unwrap();
        store.put(&through, &data).unwrap();
        let reads = DirectReads::default();
        assert_eq!(reads.read(&store.path_of(&past)).unwrap(), Some(data.clone()), "read past the cache");
        // Asking left nothing in the cache: the next long read goes past it too.
        assert_eq!(reads.read(&store.path_of(&past)).unwrap(), Some(data.clone()), "still not cached");
        assert_eq!(reads.read(&store.path_of(&through)).unwrap(), None, "cached: left to the cache");
        assert_eq!(store.get_streamed(&past).unwrap(), data);
    }

    /// The first level of fan-out is there from the start; a chunk whose folders are gone
    /// (removed by hand since) is stored all the same; reopening keeps what is there.
    #[test]
    fn fan_out_folders_are_made_as_needed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("chunks");
        let store = LocalDir::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 256);
        assert!(root.join("00").is_dir() && root.join("ff").is_dir());
        let (a, b) = ([0xabu8; 32], [0xacu8; 32]);
        store.put(&a, b"first").unwrap();
        fs::remove_dir(root.join("ac")).unwrap();
        store.put_uncached(&b, b"second").unwrap();
        assert_eq!(store.get(&a).unwrap(), b"first");
        assert_eq!(store.get(&b).unwrap(), b"second");
        drop(store);
        let store = LocalDir::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 256);
        assert_eq!(store.list().unwrap().len(), 2);
    }
}
