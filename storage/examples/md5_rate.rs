//! The MD5 rate of the implementation the server uses (the `md-5` crate, with the features
//! this workspace builds it with), on one core, for `tests/bench/s3.sh` to print beside the
//! S3 PUT it limits. Prints MB/s (10^6 bytes per second). Usage: md5_rate [MIB=512]

use std::time::Instant;

use md5::{Digest, Md5};

fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(512);
    // 1 MiB of varied bytes hashed again and again: the rate of the compression function,
    // not of memory.
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut h = Md5::new();
    h.update(&block);
    let start = Instant::now();
    for _ in 0..mib {
        h.update(&block);
    }
    let secs = start.elapsed().as_secs_f64();
    let digest = h.finalize();
    // The digest is printed to stderr so that the work cannot be optimised away.
    eprintln!("md5 of {mib} MiB: {}", hex::encode(digest));
    println!("{:.1}", (mib << 20) as f64 / secs / 1e6);
}
