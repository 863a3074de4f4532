//! Content-defined chunking of a stream, one byte at a time, with the cut points of
//! `fastcdc::v2020::FastCDC` (normalization level 1, no seed) that every stored file was cut
//! with, so that new writes keep deduplicating against old ones.
//!
//! Why not the crate's own `cut`: it wants the whole window up to the largest chunk in one
//! slice, so a write had to hold and copy several MiB before each cut (16 uploads at once
//! held well over 100 MiB). The gear hash only looks at the bytes of the chunk being cut, so
//! it can run as the bytes arrive; a chunk is the pieces of the body it spans ([`Chunk`]),
//! each byte copied once, by the chunk's job, into a buffer that is sealed in place.
//!
//! The crate's rules, restated for a stream: no byte before `min` is hashed; bytes are taken in
//! pairs from `min` on, the first of a pair with the shifted table and masks; offsets before
//! `avg` use the stricter mask; a hit at offset `o` ends the chunk before that byte; a chunk
//! with no hit ends at `max`. At the end of the stream the crate only tests whole pairs, so a
//! hit on the last byte of an odd tail does not count: such a hit is held until the next byte
//! shows whether the stream goes on.

use std::sync::LazyLock;

use bytes::Bytes;
use fastcdc::v2020::{MASKS, get_gear_with_seed, logarithm2};

struct Gear {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    /// Whether `gear_ls` is `gear` shifted left by one, which [`Cutter::scan_lanes`] relies
    /// on (it is, in every fastcdc release so far; checked rather than assumed).
    lanes: bool,
}

static GEAR: LazyLock<Gear> = LazyLock::new(|| {
    let (gear, gear_ls) = get_gear_with_seed(0);
    let lanes = gear.iter().zip(gear_ls.iter()).all(|(g, l)| g << 1 == *l);
    Gear { gear, gear_ls, lanes }
});

/// Bytes one pass of [`Cutter::scan_lanes`] covers, split into `LANES` runs of equal length.
const BLOCK: usize = 16 * 1024;
const LANES: usize = 4;
/// Bytes a lane hashes before its run to reach the hash the sequential scan has there.
const WARMUP: usize = 64;

pub(crate) struct Cutter {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    /// The chunk being filled: the pieces of the body it is made of (see [`Chunk`]).
    parts: Vec<Bytes>,
    len: usize,
    hash: u64,
    /// The last byte of the chunk hit, at an even offset: the cut stands if another byte comes.
    held: bool,
}

/// A cut chunk: the pieces of the body it is made of, not yet copied anywhere.
///
/// Why pieces, not a buffer of its own that the cutter fills: the buffer's size is only known
/// at the cut, so it grew by doubling from `min`, and each growth copied what it held (in
/// `perf record --call-graph dwarf` of a 1 GiB WebDAV PUT, `realloc`'s copy took as many
/// samples as the copy of the bytes themselves), on the one stage that cannot be split over
/// cores. A chunk's job copies its pieces once into a buffer of the exact size (placed where
/// the store wants it, see `ingest::store_chunk`), just before it hashes them, while they are
/// in cache. The pieces share the request's receive buffers, so a chunk holds about its own
/// length of memory either way.
pub(crate) struct Chunk {
    parts: Vec<Bytes>,
    len: usize,
}

impl Chunk {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends the chunk's bytes to `out` (copied, with no zeroing pass before).
    pub(crate) fn extend_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        for p in &self.parts {
            out.extend_from_slice(p);
        }
    }

    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.extend_into(&mut v);
        v
    }
}

impl Cutter {
    pub(crate) fn new(min: usize, avg: usize, max: usize) -> Self {
        let bits = logarithm2(avg as u32);
        Cutter {
            min,
            avg,
            max,
            mask_s: MASKS[(bits + 1) as usize],
            mask_l: MASKS[(bits - 1) as usize],
            parts: Vec::new(),
            len: 0,
            hash: 0,
            held: false,
        }
    }

    /// Appends `b[from..to]` to the chunk (a reference to the body's bytes, no copy).
    fn take(&mut self, b: &Bytes, from: usize, to: usize) {
        if to > from {
            self.parts.push(b.slice(from..to));
            self.len += to - from;
        }
    }

    /// Ends the current chunk: its pieces, and a new one begun.
    fn cut(&mut self) -> Chunk {
        self.hash = 0;
        Chunk { parts: std::mem::take(&mut self.parts), len: std::mem::replace(&mut self.len, 0) }
    }

    /// The stream ended: the last chunk, if any bytes are left.
    pub(crate) fn finish(mut self) -> Option<Chunk> {
        (self.len > 0).then(|| self.cut())
    }

    /// Feeds the next bytes of the stream; each chunk they complete is handed to `out`.
    pub(crate) fn push(&mut self, b: &Bytes, out: &mut impl FnMut(Chunk)) {
        if b.is_empty() {
            return;
        }
        if self.held {
            // More bytes: the held cut stands, and its byte begins the next chunk.
            self.held = false;
            let last = self.parts.pop().expect("a held byte");
            let n = last.len();
            let byte = last.slice(n - 1..);
            if n > 1 {
                self.parts.push(last.slice(..n - 1));
            }
            self.len -= 1;
            out(self.cut());
            self.take(&byte, 0, 1);
        }
        let mut pos = 0;
        while pos < b.len() {
            let s = &b[pos..];
            let len = self.len;
            if len >= self.max {
                out(self.cut());
                continue;
            }
            if len < self.min {
                let n = (self.min - len).min(s.len());
                self.take(b, pos, pos + n);
                pos += n;
                continue;
            }
            // One mask region at a time: [min, avg) strict, [avg, max) loose.
            let (end, mask) = if len < self.avg { (self.avg, self.mask_s) } else { (self.max, self.mask_l) };
            let n = (end - len).min(s.len());
            match self.scan(&s[..n], len, mask) {
                Some(i) if (len + i) % 2 == 1 || i + 1 < s.len() => {
                    self.take(b, pos, pos + i);
                    pos += i;
                    out(self.cut());
                }
                Some(i) => {
                    // An even offset on the last byte given: whether it counts depends on
                    // the next byte (see the module's comment).
                    self.take(b, pos, pos + i + 1);
                    self.held = true;
                    return;
                }
                None => {
                    self.take(b, pos, pos + n);
                    pos += n;
                }
            }
        }
    }

    /// Hashes `s`, whose first byte is at offset `off` of the chunk; the index of a hit.
    ///
    /// Long runs go `BLOCK` bytes at a time through [`scan_lanes`](Self::scan_lanes); the
    /// rest, and a block with a hit in it, through the sequential scan, which gives the exact
    /// first hit and the state after it.
    fn scan(&mut self, s: &[u8], off: usize, mask: u64) -> Option<usize> {
        let mut done = 0;
        // The lanes compare the hash with `mask` where the crate compares it shifted left by
        // one with `mask << 1` (at even offsets): the same test unless the mask's top bit is
        // set, which none of the crate's masks has.
        if GEAR.lanes && mask >> 63 == 0 {
            while s.len() - done >= BLOCK {
                // The state as "the hash before this byte, shifted left by one": at an odd
                // offset the crate keeps exactly that (half a pair done); at an even one the
                // hash of the pair before.
                let at = off + done;
                let g = if at.is_multiple_of(2) { self.hash << 1 } else { self.hash };
                match scan_lanes(&GEAR.gear, &s[done..done + BLOCK], g, mask) {
                    Some(h) => {
                        done += BLOCK;
                        // Back to the crate's form: the hash after an odd offset, shifted after
                        // an even one.
                        self.hash = if (off + done - 1) % 2 == 1 { h } else { h << 1 };
                    }
                    None => break,
                }
            }
        }
        self.scan_seq(&s[done..], off + done, mask).map(|i| i + done)
    }

    /// The sequential scan, as the crate does it: bytes in pairs.
    fn scan_seq(&mut self, s: &[u8], off: usize, mask: u64) -> Option<usize> {
        let (gear, gear_ls) = (&*GEAR.gear, &*GEAR.gear_ls);
        let mask_ls = mask << 1;
        let mut hash = self.hash;
        let mut i = 0;
        if off % 2 == 1 && !s.is_empty() {
            hash = hash.wrapping_add(gear[s[0] as usize]);
            if hash & mask == 0 {
                self.hash = hash;
                return Some(0);
            }
            i = 1;
        }
        while i + 1 < s.len() {
            hash = (hash << 2).wrapping_add(gear_ls[s[i] as usize]);
            if hash & mask_ls == 0 {
                self.hash = hash;
                return Some(i);
            }
            hash = hash.wrapping_add(gear[s[i + 1] as usize]);
            if hash & mask == 0 {
                self.hash = hash;
                return Some(i + 1);
            }
            i += 2;
        }
        if i < s.len() {
            hash = (hash << 2).wrapping_add(gear_ls[s[i] as usize]);
            if hash & mask_ls == 0 {
                self.hash = hash;
                return Some(i);
            }
        }
        self.hash = hash;
        None
    }
}

/// Looks for a hit in `block` (`BLOCK` bytes, all of them hashed bytes of the chunk), `g`
/// being the hash before its first byte shifted left by one: the hash after its last byte, or
/// None if a hit is in it (the caller scans it again sequentially to find which).
///
/// Why: the gear hash is one long chain of dependent shifts and adds (1.5 cycles a byte),
/// which keeps the cutting stage, the one stage of a write that cannot be split over cores,
/// at about 1,900 MB/s. But each byte's contribution is shifted out of the 64-bit hash 64
/// bytes later, so the hash at any point depends only on the 64 bytes before it: four runs
/// of the block, each started 64 bytes early from zero, reach exactly the sequential scan's
/// hashes and go through the CPU side by side. A hit comes about once per MiB, so scanning a
/// hit's block twice costs nothing. Measured on this 2-core machine (Xeon, load 7-9 from
/// other builds; CPU time of the cutting thread, 256 MiB of random bytes in 256 KiB pieces,
/// the copy into the chunk buffers included): sequential 1,790 MB/s, four lanes 2,983 (3
/// rounds each, alternating). In `perf record` of the server during a 1 GiB WebDAV PUT the
/// cutting went from 0.71 to 0.45 of SHA-256's share (16% to 12% of the server's samples).
fn scan_lanes(gear: &[u64; 256], block: &[u8], g: u64, mask: u64) -> Option<u64> {
    let q = BLOCK / LANES;
    let mut h = [g, 0, 0, 0];
    for (j, h) in h.iter_mut().enumerate().skip(1) {
        // A lane after the first starts inside the block, so its warm-up bytes are too.
        for &b in &block[j * q - WARMUP..j * q] {
            *h = h.wrapping_add(gear[b as usize]) << 1;
        }
    }
    let (l0, rest) = block.split_at(q);
    let (l1, rest) = rest.split_at(q);
    let (l2, l3) = rest.split_at(q);
    let [mut g0, mut g1, mut g2, mut g3] = h;
    let mut last = 0;
    for (((&b0, &b1), &b2), &b3) in l0.iter().zip(l1).zip(l2).zip(l3) {
        let t0 = g0.wrapping_add(gear[b0 as usize]);
        let t1 = g1.wrapping_add(gear[b1 as usize]);
        let t2 = g2.wrapping_add(gear[b2 as usize]);
        let t3 = g3.wrapping_add(gear[b3 as usize]);
        // One branch for four tests: a hit is rare.
        if ((t0 & mask == 0) as u8 | (t1 & mask == 0) as u8 | (t2 & mask == 0) as u8 | (t3 & mask == 0) as u8) != 0 {
            return None;
        }
        (g0, g1, g2, g3) = (t0 << 1, t1 << 1, t2 << 1, t3 << 1);
        last = t3;
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{Chunk, Cutter};

    /// The crate's cut points over the whole buffer, as the stored files were cut.
    fn reference(data: &[u8], min: usize, avg: usize, max: usize) -> Vec<usize> {
        let cdc = fastcdc::v2020::FastCDC::new(data, min as u32, avg as u32, max as u32);
        cdc.map(|c| c.length).collect()
    }

    fn streamed(data: &[u8], min: usize, avg: usize, max: usize, mut piece: impl FnMut() -> usize) -> Vec<usize> {
        let mut c = Cutter::new(min, avg, max);
        let mut lens = Vec::new();
        let mut rest = data;
        let mut joined = Vec::new();
        while !rest.is_empty() {
            let n = piece().clamp(1, rest.len());
            c.push(&Bytes::copy_from_slice(&rest[..n]), &mut |chunk: Chunk| {
                lens.push(chunk.len());
                joined.extend(chunk.to_vec());
            });
            rest = &rest[n..];
        }
        if let Some(last) = c.finish() {
            lens.push(last.len());
            joined.extend(last.to_vec());
        }
        assert_eq!(joined, data, "the chunks hold the stream's bytes, in order");
        lens
    }

    /// A small generator, so that the test needs no crate and repeats exactly.
    fn bytes(n: usize, seed: u64, alphabet: u8) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % alphabet as u64) as u8
            })
            .collect()
    }

    #[test]
    fn stream_cuts_where_the_crate_cuts() {
        let (min, avg, max) = (64, 256, 1024);
        let mut cases = 0;
        for seed in 1..40u64 {
            for &alphabet in &[255u8, 4, 1] {
                for len in [0, 1, 63, 64, 65, 257, 1023, 1024, 1025, 3001, 20_000 + seed as usize] {
                    let data = bytes(len, seed, alphabet);
                    let want = reference(&data, min, avg, max);
                    let mut r = seed;
                    let pieces: [&mut dyn FnMut() -> usize; 4] =
                        [&mut || usize::MAX, &mut || 1, &mut || 2, &mut || {
                            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            (r >> 33) as usize % 700
                        }];
                    for piece in pieces {
                        assert_eq!(
                            streamed(&data, min, avg, max, piece),
                            want,
                            "seed {seed} len {len} alphabet {alphabet}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 1000);
    }

    /// The four-lane scan finds the hit the sequential one finds and leaves the same state,
    /// whatever the offset's parity, the mask (loose ones put hits in most blocks, so the
    /// fallback is taken too) and the length.
    #[test]
    fn lanes_scan_as_the_sequential_scan_does() {
        use fastcdc::v2020::MASKS;
        assert!(super::GEAR.lanes, "the crate's shifted table is the table shifted: the lanes are used");
        let mut cases = 0;
        let mut hits = 0;
        for seed in 1..12u64 {
            let data = bytes(5 * super::BLOCK + 777, seed, 255);
            for bits in [10usize, 13, 15, 19, 21] {
                let mask = MASKS[bits];
                for off in [256usize, 257, 1000, 1001] {
                    for len in [super::BLOCK - 1, super::BLOCK, 2 * super::BLOCK + 3, data.len()] {
                        for start_hash in [0u64, 0x9e37_79b9_7f4a_7c15] {
                            let s = &data[..len];
                            let mut a = Cutter::new(64, 256, 1024);
                            let mut b = Cutter::new(64, 256, 1024);
                            a.hash = start_hash;
                            b.hash = start_hash;
                            let got = a.scan(s, off, mask);
                            let want = b.scan_seq(s, off, mask);
                            assert_eq!(got, want, "seed {seed} bits {bits} off {off} len {len}");
                            if want.is_none() {
                                assert_eq!(a.hash, b.hash, "state after seed {seed} bits {bits} off {off} len {len}");
                            } else {
                                hits += 1;
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 1000 && hits > 100 && hits < cases, "{cases} cases, {hits} with a hit");
    }

    #[test]
    fn stream_cuts_where_the_crate_cuts_at_the_stored_sizes() {
        use crate::content::ingest::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
        let data = bytes(12 * 1024 * 1024 + 3, 7, 255);
        let want = reference(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
        assert!(want.len() > 4, "several chunks: {want:?}");
        let mut n = 0usize;
        let got = streamed(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK, || {
            n += 1;
            [65_536, 16_384, 400_000, 7][n % 4]
        });
        assert_eq!(got, want);
        let zeros = vec![0u8; 9 * 1024 * 1024];
        assert_eq!(
            streamed(&zeros, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK, || 100_000),
            reference(&zeros, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        );
    }
}
