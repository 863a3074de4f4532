//! The core alone: write and read a 1 GiB file through it (chunking, dedup, MD5, sealing,
//! durable commit), then write the same content again. Reports MB/s, peak RSS and the disk
//! added by the second write. Run: `cargo bench -p davit-storage --bench core` (DAVIT_BENCH_MIB sets the size,
//! DAVIT_BENCH_DIR where the data folder goes). DAVIT_BENCH_SMALL=N also writes then reads N
//! files of 4 KiB, 16 at a time (the metadata's share of the work); DAVIT_BENCH_META=postgres://…
//! puts the metadata in that PostgreSQL database instead of redb.

use std::time::Instant;

use bytes::Bytes;
use davit_storage::{MetaStore, NewUser, Role, Status, Storage, StorageConfig, WriteOptions};
use futures::StreamExt;

const PIECE: usize = 256 * 1024;

/// A body of `len` pseudo-random bytes generated as it is read, never held whole.
fn body(len: u64, seed: u64) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin + Send {
    let mut x = seed | 1;
    let mut left = len;
    futures::stream::poll_fn(move |_| {
        if left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = (left as usize).min(PIECE);
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(n);
        left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Bytes::from(v))))
    })
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn main() {
    let mib: u64 = std::env::var("DAVIT_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let len = mib * 1024 * 1024;
    let dir = tempfile::tempdir_in(std::env::var("DAVIT_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut cfg = StorageConfig::new(dir.path());
        cfg.master_key = Some("42".repeat(32));
        if let Ok(url) = std::env::var("DAVIT_BENCH_META") {
            cfg.meta = MetaStore::Postgres { url, pool_size: 16 };
        }
        let storage = Storage::open(cfg).unwrap();
        storage
            .create_user(NewUser {
                username: "bench".into(),
                email: None,
                password: "benchmark-password".into(),
                role: Role::User,
                status: Status::Active,
                quota: Some(0),
            })
            .await
            .unwrap();
        // Signed in as a front end would be: the core makes every principal.
        let p = storage.authenticate_basic("bench", "benchmark-password", None).await.unwrap().principal;

        let t = Instant::now();
        let item = storage.write(&p, "/big.bin", body(len, 7), WriteOptions::default()).await.unwrap();
        let write_s = t.elapsed().as_secs_f64();
        assert_eq!(item.size, len);
        let disk_after_first = disk_bytes(dir.path());

        let t = Instant::now();
        let mut r = storage.read(&p, "/big.bin", None).await.unwrap();
        let mut n = 0u64;
        while let Some(piece) = r.body.next().await {
            n += piece.unwrap().len() as u64;
        }
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!(n, len);
        drop(r);

        let t = Instant::now();
        storage.write(&p, "/again.bin", body(len, 7), WriteOptions::default()).await.unwrap();
        let rewrite_s = t.elapsed().as_secs_f64();
        let disk_after_second = disk_bytes(dir.path());

        let mb = len as f64 / 1e6;
        println!("core benchmark: {mib} MiB file, {} chunks", item.chunks.len());
        println!("write           {:8.1} MB/s  ({write_s:.2} s)", mb / write_s);
        println!("read            {:8.1} MB/s  ({read_s:.2} s)", mb / read_s);
        println!("rewrite (dedup) {:8.1} MB/s  ({rewrite_s:.2} s)", mb / rewrite_s);
        println!(
            "disk added by the identical second write: {:.3} MiB (first write: {:.1} MiB)",
            (disk_after_second.saturating_sub(disk_after_first)) as f64 / 1048576.0,
            disk_after_first as f64 / 1048576.0
        );
        let small: usize = std::env::var("DAVIT_BENCH_SMALL").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        if small > 0 {
            small_files(&storage, &p, small).await;
        }
        println!("peak RSS        {:8.1} MiB", peak_rss_mib());
        storage.close();
    });
}

/// `n` files of 4 KiB written, then read, 16 requests at a time.
async fn small_files(storage: &Storage, p: &davit_storage::Principal, n: usize) {
    storage.mkdir(p, "/small").await.unwrap();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| async move {
            let path = format!("/small/f{i}");
            storage.write(p, &path, body(4096, 2 * i as u64 + 1), WriteOptions::default()).await.unwrap();
        })
        .await;
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| async move {
            let mut r = storage.read(p, &format!("/small/f{i}"), None).await.unwrap();
            let mut got = 0;
            while let Some(piece) = r.body.next().await {
                got += piece.unwrap().len();
            }
            assert_eq!(got, 4096);
        })
        .await;
    let read_s = t.elapsed().as_secs_f64();
    println!(
        "4 KiB files x{n}, 16 at a time: write {:8.0} files/s, read {:8.0} files/s",
        n as f64 / write_s,
        n as f64 / read_s
    );
}
