//! A bounded local cache of sealed chunks in front of a remote chunk store.
//!
//! Files are `cache/ab/<hex id>` in the data folder (never under `chunks/`, which is the
//! local store's own). Only reads fill it: an upload's chunks go to the cluster only, so a
//! large upload does not push out what readers use. The least recently used chunks go when
//! the total passes the bound. The cache holds sealed bytes, which are authenticated when
//! opened, so a damaged file is detected by the reader, which drops it (`drop_cached`) and
//! reads the chunk from the store again; nothing here is ever trusted as content.
//!
//! Nothing is fsynced: a file lost or torn by a crash is at worst a miss, or a failed
//! authentication and a second read. Files are still written to a temp name and renamed, so
//! a reader never sees a half-written one in normal running.
//!
//! Fills skip the page cache (O_DIRECT, `direct::DirectWrites`, unsynced): `perf record` of a
//! node during a 1 GiB GET from a 3-node Garage put 34% of its CPU in the kernel's copy into
//! the page cache for the fill. Measured (`BENCH_MIB=1024 tests/bench/cluster.sh`, the two
//! builds alternated, 2 runs each): davit CPU of the GET 3.5, 3.6 -> 1.9, 2.1 s, the GET
//! 233, 231 -> 254, 250 MB/s (0.53, 0.50 -> 0.59, 0.53 of Garage's own `aws s3 cp`); a second
//! GET, from the cache, 509, 585 -> 499, 465 MB/s, now read from the disk.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::content::chunks::ChunkBackend;
use crate::crypto::{ChunkId, random_string};

pub struct CachedBackend<B> {
    inner: B,
    root: PathBuf,
    tmp: PathBuf,
    max_bytes: u64,
    lru: Mutex<Lru>,
    /// Fills skip the page cache while the file system allows it.
    direct: crate::content::direct::DirectWrites,
}

/// Which chunks are cached, and in which order they were last used.
#[derive(Default)]
struct Lru {
    entries: HashMap<ChunkId, Entry>,
    by_use: BTreeMap<u64, ChunkId>,
    clock: u64,
    bytes: u64,
}

struct Entry {
    size: u64,
    used: u64,
}

impl Lru {
    fn touch(&mut self, id: &ChunkId) -> bool {
        self.clock += 1;
        let Some(e) = self.entries.get_mut(id) else { return false };
        self.by_use.remove(&e.used);
        e.used = self.clock;
        self.by_use.insert(self.clock, *id);
        true
    }

    fn insert(&mut self, id: ChunkId, size: u64) {
        if self.touch(&id) {
            return;
        }
        self.entries.insert(id, Entry { size, used: self.clock });
        self.by_use.insert(self.clock, id);
        self.bytes += size;
    }

    fn remove(&mut self, id: &ChunkId) -> bool {
        match self.entries.remove(id) {
            Some(e) => {
                self.by_use.remove(&e.used);
                self.bytes -= e.size;
                true
            }
            None => false,
        }
    }

    /// The least recently used entry, taken out.
    fn pop_oldest(&mut self) -> Option<ChunkId> {
        let (_, id) = self.by_use.pop_first()?;
        let e = self.entries.remove(&id)?;
        self.bytes -= e.size;
        Some(id)
    }
}

impl<B: ChunkBackend> CachedBackend<B> {
    /// Opens the cache in `<data_dir>/cache`, keeping what a previous run left (in the order
    /// of the files' times, which a hit refreshes) up to `max_bytes`.
    pub fn open(inner: B, data_dir: &Path, max_bytes: u64) -> io::Result<Self> {
        let root = data_dir.join("cache");
        let tmp = root.join("tmp");
        // Private like the whole data folder: sealed, but sizes and counts are nobody's.
        crate::perms::private_dir(&root)?;
        crate::perms::private_dir(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        let cache =
            CachedBackend { inner, root, tmp, max_bytes, lru: Mutex::new(Lru::default()), direct: Default::default() };
        let mut found = Vec::new();
        for dir in fs::read_dir(&cache.root)? {
            let dir = dir?;
            if dir.file_name() == "tmp" || !dir.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(dir.path())? {
                let f = f?;
                let id = f.file_name().to_str().and_then(|n| hex::decode(n).ok()).and_then(|v| v.try_into().ok());
                let meta = f.metadata()?;
                match id {
                    Some(id) => found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), id, meta.len())),
                    None => {
                        let _ = fs::remove_file(f.path());
                    }
                }
            }
        }
        found.sort();
        {
            let mut lru = cache.lru.lock().expect("cache lock");
            for (_, id, size) in found {
                lru.insert(id, size);
            }
            cache.evict(&mut lru, 0);
        }
        Ok(cache)
    }

    fn path_of(&self, id: &ChunkId) -> PathBuf {
        let h = hex::encode(id);
        self.root.join(&h[0..2]).join(h)
    }

    /// Removes the least recently used chunks until `room` more bytes fit under the bound.
    fn evict(&self, lru: &mut Lru, room: u64) {
        while lru.bytes + room > self.max_bytes {
            let Some(id) = lru.pop_oldest() else { break };
            // Under the lock, so that a concurrent fill of the same chunk is not undone.
            let _ = fs::remove_file(self.path_of(&id));
        }
    }

    /// The cached copy of `id`, if there is one (a hit refreshes its place and its time).
    fn read_cached(&self, id: &ChunkId) -> Option<Vec<u8>> {
        if !self.lru.lock().expect("cache lock").touch(id) {
            return None;
        }
        let path = self.path_of(id);
        let read = File::open(&path).and_then(|mut f| {
            let mut buf = Vec::with_capacity(f.metadata()?.len() as usize);
            f.read_to_end(&mut buf)?;
            // The order survives a restart through the files' times.
            let _ = f.set_modified(SystemTime::now());
            Ok(buf)
        });
        match read {
            Ok(buf) => Some(buf),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, path = %path.display(), "unreadable chunk cache file; reading the store");
                }
                self.drop_cached(id);
                None
            }
        }
    }

    /// Keeps a copy of `sealed`. Failing to is no error: the read it serves has its bytes.
    fn fill(&self, id: &ChunkId, sealed: &[u8]) {
        let size = sealed.len() as u64;
        if size > self.max_bytes {
            return;
        }
        if let Err(e) = self.write_file(id, sealed) {
            tracing::warn!(error = %e, "could not fill the chunk cache");
            return;
        }
        let mut lru = self.lru.lock().expect("cache lock");
        if lru.entries.contains_key(id) {
            lru.touch(id);
            return;
        }
        self.evict(&mut lru, size);
        lru.insert(*id, size);
    }

    fn write_file(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        let dest = self.path_of(id);
        let tmp_path = self.tmp.join(random_string(b"0123456789abcdef", 24));
        let written = (|| {
            if self.direct.write(&tmp_path, sealed)?.is_none() {
                let mut f = crate::perms::create_private_file(&tmp_path)?;
                f.write_all(sealed)?;
            }
            if let Err(e) = fs::rename(&tmp_path, &dest) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
                crate::perms::create_private_dir(dest.parent().expect("fan-out dir"))?;
                fs::rename(&tmp_path, &dest)?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        written
    }
}

impl<B: ChunkBackend> ChunkBackend for CachedBackend<B> {
    fn put(&self, id: &ChunkId, sealed: &[u8]) -> io::Result<()> {
        self.inner.put(id, sealed)
    }

    fn get(&self, id: &ChunkId) -> io::Result<Vec<u8>> {
        if let Some(sealed) = self.read_cached(id) {
            return Ok(sealed);
        }
        let sealed = self.inner.get(id)?;
        self.fill(id, &sealed);
        Ok(sealed)
    }

    fn delete(&self, id: &ChunkId) -> io::Result<()> {
        self.drop_cached(id);
        self.inner.delete(id)
    }

    fn list(&self) -> io::Result<Vec<ChunkId>> {
        self.inner.list()
    }

    fn list_with_age(&self) -> io::Result<Vec<(ChunkId, SystemTime)>> {
        self.inner.list_with_age()
    }

    fn stored_bytes(&self) -> io::Result<u64> {
        self.inner.stored_bytes()
    }

    fn read_ahead(&self) -> usize {
        self.inner.read_ahead()
    }

    fn drop_cached(&self, id: &ChunkId) -> bool {
        let mut lru = self.lru.lock().expect("cache lock");
        let had = lru.remove(id);
        let _ = fs::remove_file(self.path_of(id));
        had
    }
}
