//! What a one-stream write must spend per byte on this machine, stage by stage, with the
//! code the write path runs: for the benchmarks (`storage/examples/stage_costs.rs`), which
//! turn it into a ceiling on the PUT rate two cores can reach at all.
//!
//! Why this exists: the performance issue's PUT goals are ratios to the disk and to MD5,
//! and on a two-core machine shared with the client the work a write cannot skip (cutting,
//! the keyed chunk id, sealing, MD5 for S3, the client's own sending) already fills the
//! cores near those rates. Measured in the run that compares, the ceiling says whether a
//! figure is short of the machine or of the server.

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::content::cdc::Cutter;
use crate::content::ingest::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use crate::crypto::{Keys, TAG_LEN};

/// CPU nanoseconds per byte of each stage, on one core (the thread's own CPU time, so that
/// other load on the machine shows less than in wall time).
#[derive(Debug, Clone, Copy)]
pub struct StageCosts {
    /// Finding the content-defined cut points (`cdc::Cutter`).
    pub cut: f64,
    /// Copying a chunk's pieces into its own buffer (`ingest::Plain`).
    pub copy: f64,
    /// The keyed SHA-256 of a chunk just copied (`Keys::chunk_id`).
    pub keyed_hash: f64,
    /// AES-256-GCM in place (`Keys::seal_chunk_at`).
    pub seal: f64,
    /// MD5 of the body (an S3 single PUT only).
    pub md5: f64,
}

impl StageCosts {
    /// Every stage of a write without MD5 (WebDAV, REST).
    pub fn without_md5(&self) -> f64 {
        self.cut + self.copy + self.keyed_hash + self.seal
    }

    fn min(self, o: StageCosts) -> StageCosts {
        StageCosts {
            cut: self.cut.min(o.cut),
            copy: self.copy.min(o.copy),
            keyed_hash: self.keyed_hash.min(o.keyed_hash),
            seal: self.seal.min(o.seal),
            md5: self.md5.min(o.md5),
        }
    }
}

/// Measures each stage over `mib` MiB of random bytes (more than any cache, as a large
/// upload is), `rounds` times, keeping each stage's lowest cost: the ceiling built from them
/// is then the most generous this machine allows.
pub fn measure(mib: usize, rounds: usize) -> StageCosts {
    let body = random_body(mib);
    let keys = Keys::derive(&[7; 32]);
    (0..rounds.max(1)).map(|_| one_round(&body, &keys)).reduce(StageCosts::min).expect("one round at least")
}

fn one_round(body: &[Bytes], keys: &Keys) -> StageCosts {
    let bytes: usize = body.iter().map(Bytes::len).sum();
    let per_byte = |ns: u64| ns as f64 / bytes as f64;

    let start = thread_cpu_ns();
    let mut chunks = Vec::new();
    let mut cutter = Cutter::new(MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
    for b in body {
        cutter.push(b, &mut |c| chunks.push(c));
    }
    chunks.extend(cutter.finish());
    let cut = thread_cpu_ns() - start;

    // As a chunk's job does it: copy, hash while the copy is in cache, seal in place.
    let (mut copy, mut keyed_hash, mut seal) = (0, 0, 0);
    let mut ids = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        let t0 = thread_cpu_ns();
        let mut buf = Vec::with_capacity(chunk.len() + TAG_LEN);
        chunk.extend_into(&mut buf);
        drop(chunk);
        let t1 = thread_cpu_ns();
        let id = keys.chunk_id(&buf);
        let t2 = thread_cpu_ns();
        keys.seal_chunk_at(&id, &mut buf, 0);
        let t3 = thread_cpu_ns();
        (copy, keyed_hash, seal) = (copy + t1 - t0, keyed_hash + t2 - t1, seal + t3 - t2);
        ids.push(id[0] ^ buf[buf.len() - 1]);
    }

    let start = thread_cpu_ns();
    let mut md5 = Md5::new();
    for b in body {
        md5.update(b);
    }
    let digest = md5.finalize();
    let md5_ns = thread_cpu_ns() - start;
    // Used, so that no stage's work can be optimised away.
    std::hint::black_box((ids, digest));

    StageCosts {
        cut: per_byte(cut),
        copy: per_byte(copy),
        keyed_hash: per_byte(keyed_hash),
        seal: per_byte(seal),
        md5: per_byte(md5_ns),
    }
}

/// `mib` MiB of xorshift bytes in 1 MiB pieces, as a body arrives.
fn random_body(mib: usize) -> Vec<Bytes> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..mib)
        .map(|_| {
            let mut v = Vec::with_capacity(1 << 20);
            while v.len() < 1 << 20 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(v)
        })
        .collect()
}

fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_stage_costs_something() {
        let c = super::measure(8, 1);
        for (name, v) in [("cut", c.cut), ("copy", c.copy), ("hash", c.keyed_hash), ("seal", c.seal), ("md5", c.md5)] {
            assert!(v > 0.0 && v.is_finite(), "{name}: {v}");
        }
    }
}
