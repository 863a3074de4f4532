//! Chunk files past the page cache (O_DIRECT): written by writes short of CPU and by the
//! read cache's fills, read by long reads of what is not cached (see `DirectReads`).
//!
//! Why at all, on this project's machines: the VM hands memory that has been free for about
//! a second back to its host, and the kernel's copy of a file into such memory pays the
//! host's page faults. `dd` measured 3.4 CPU-seconds per GiB written through the page cache
//! into it, 0.3 into memory just freed (`tests/bench/webdav.sh --peer`, which prints both);
//! reading a cold file costs the same way. O_DIRECT moves the bytes between the disk and the
//! process's own buffers, which stay in use.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Alignment of O_DIRECT buffers, offsets and lengths: the largest logical block size of
/// the disks we meet.
pub(crate) const DIRECT_ALIGN: usize = 4096;
/// Bytes written by one O_DIRECT call from an aligned copy (a multiple of `DIRECT_ALIGN`).
const DIRECT_PIECE: usize = 1024 * 1024;

/// Writes `data` to a new private file at `path` with O_DIRECT: for writes short of CPU (see
/// `ChunkBackend::put_uncached`) and the read cache's fills. Its whole blocks go past the page
/// cache, read where they are when `data` starts at a `DIRECT_ALIGN` boundary (the chunks of
/// `ingest` do), else copied a piece at a time into an aligned buffer; the last partial block,
/// if any, goes through the page cache, and a sync by the caller makes both durable with the
/// size.
///
/// Why not as before (every chunk copied into a zeroed aligned buffer, its last block padded
/// with zeros and the file cut back to its length): the copy and the zeroing were about 5% of
/// an S3 PUT's CPU (`perf record`, memmove and memset), and cutting a file back reads its last
/// block from the disk on ext4 (to zero the tail of a block that is not cached), one more
/// read and wait per chunk.
///
/// Not synced here: the chunk store syncs it, the read cache (whose files a crash may lose)
/// does not; its whole blocks are on the device when this returns, its tail in the page cache.
fn write_direct(path: &Path, data: &[u8]) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = crate::perms::private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)?;
        let whole = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
        if data.as_ptr().align_offset(DIRECT_ALIGN) == 0 {
            f.write_all(&data[..whole])?;
        } else if whole > 0 {
            // Aligned by starting at the right offset of a slightly larger buffer (a Vec
            // cannot be allocated aligned); a piece at a time, so that eight chunks being
            // written hold 8 MiB, not eight chunks' worth.
            let piece = whole.min(DIRECT_PIECE);
            let mut buf = vec![0u8; piece + DIRECT_ALIGN];
            let at = buf.as_ptr().align_offset(DIRECT_ALIGN);
            for part in data[..whole].chunks(DIRECT_PIECE) {
                let aligned = &mut buf[at..at + part.len()];
                aligned.copy_from_slice(part);
                f.write_all(aligned)?;
            }
        }
        if whole < data.len() {
            let flags = rustix::fs::fcntl_getfl(&f)?;
            rustix::fs::fcntl_setfl(&f, flags - rustix::fs::OFlags::DIRECT)?;
            f.write_all(&data[whole..])?;
        }
        Ok(f)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, data);
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// Whether O_DIRECT writes are still tried: the file system's first refusal turns them off
/// for good, so that it is not asked again. Shared by the chunk store and the read cache.
pub(crate) struct DirectWrites(AtomicBool);

impl Default for DirectWrites {
    fn default() -> Self {
        DirectWrites(true.into())
    }
}

impl DirectWrites {
    /// The new file at `path` holding `data`, written past the page cache ([`write_direct`]);
    /// `None` if the file system does not allow it, for the caller to write the same bytes
    /// through the page cache (over whatever this left at `path`).
    pub(crate) fn write(&self, path: &Path, data: &[u8]) -> io::Result<Option<File>> {
        if !self.0.load(Relaxed) {
            return Ok(None);
        }
        match write_direct(path, data) {
            Ok(f) => Ok(Some(f)),
            // A file system without O_DIRECT (tmpfs) refuses it when the file is opened or
            // first written.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.0.store(false, Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether long reads still go past the page cache: off for good at the first refusal (no
/// O_DIRECT, as tmpfs; no RWF_NOWAIT to tell what is cached, before Linux 4.14).
///
/// Why (nginx's `directio` does the same for large files): a 1 GiB S3 GET right after the PUT
/// (whose chunks skipped the cache) read its chunks through the page cache into memory the
/// host had taken back. Measured (`BENCH_ONLY=big tests/bench/s3.sh`, a prototype alternated
/// with the build before, two runs each, two helpers loading the machine): 492, 494 -> 1,031,
/// 1,201 MB/s. A file read often stays cached: only reads of at least `read::PAST_CACHE` come
/// here, and a chunk already cached (a WebDAV PUT's, just written) is read from memory.
pub(crate) struct DirectReads(AtomicBool);

impl Default for DirectReads {
    fn default() -> Self {
        DirectReads(true.into())
    }
}

impl DirectReads {
    /// The whole file at `path`, read past the page cache; `None` when its start is cached
    /// (read it through the cache: memory is faster than the disk), or the system does not
    /// allow it.
    pub(crate) fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        if !self.0.load(Relaxed) {
            return Ok(None);
        }
        let file = File::open(path)?;
        // No RWF_NOWAIT (before Linux 4.14), no O_DIRECT (tmpfs).
        let refused = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP));
        match is_cached(&file) {
            Ok(true) => return Ok(None),
            Ok(false) => {}
            Err(e) if refused(&e) => {
                self.0.store(false, Relaxed);
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        let len = file.metadata()?.len() as usize;
        let read = read_direct(path, len);
        drop_probe(&file);
        match read {
            Ok(v) => Ok(Some(v)),
            Err(e) if refused(&e) => {
                self.0.store(false, Relaxed);
                Ok(None)
            }
            // Shorter than it was a moment ago (a file being replaced by hand): as the cache
            // reads it.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether the start of `file` is in the page cache: a read that may not wait for the disk
/// (RWF_NOWAIT) gets its first byte, or EAGAIN. On a miss the kernel still starts reading
/// ahead what it was asked for, which would fill the cache the probe asks about (the next
/// long read would take the chunk for cached) and read the disk once more per chunk: the
/// descriptor is marked for random access first, so that only the one page is read, and the
/// caller drops it ([`drop_probe`]) once its own read is done. (cachestat(2), which reads
/// nothing, needs a system call this workspace has no safe binding for.)
#[cfg(target_os = "linux")]
fn is_cached(file: &File) -> io::Result<bool> {
    rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Random)?;
    let mut one = [0u8; 1];
    match rustix::io::preadv2(file, &mut [io::IoSliceMut::new(&mut one)], 0, rustix::io::ReadWriteFlags::NOWAIT) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::AGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn is_cached(_: &File) -> io::Result<bool> {
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

/// Drops from the page cache the page a missed probe read in (see [`is_cached`]): clean, so
/// it is only forgotten. A page still being read is not dropped, so its read is waited for
/// first (a plain read of its first byte, from memory once it is there).
fn drop_probe(file: &File) {
    let mut one = [0u8; 1];
    let _ = rustix::io::pread(file, &mut one, 0);
    let _ = rustix::fs::fadvise(file, 0, std::num::NonZeroU64::new(DIRECT_ALIGN as u64), rustix::fs::Advice::DontNeed);
}

/// The `len` bytes of the file at `path`, read with O_DIRECT into an aligned place of one
/// buffer, then moved to its start (a Vec cannot be allocated aligned; the move of a chunk
/// in cache costs far less than the page cache's copy into cold memory).
fn read_direct(path: &Path, len: usize) -> io::Result<Vec<u8>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path)?;
        // O_DIRECT reads whole blocks; the file's end stops the last one short.
        let whole = len.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        let mut buf = vec![0u8; whole + DIRECT_ALIGN];
        let at = buf.as_ptr().align_offset(DIRECT_ALIGN);
        let mut got = 0;
        while got < whole {
            match f.read(&mut buf[at + got..at + whole])? {
                0 => break,
                n => got += n,
            }
            // Short of a block: the file's end (and a next read would not be aligned).
            if got % DIRECT_ALIGN != 0 {
                break;
            }
        }
        if got != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("read {got} of {len} bytes")));
        }
        buf.copy_within(at..at + len, 0);
        buf.truncate(len);
        Ok(buf)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, len);
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}
