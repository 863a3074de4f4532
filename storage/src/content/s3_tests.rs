//! The chunk store on a real Garage cluster (one node on 127.0.0.1, started through
//! `conformance/lib/garage.sh`), behind the read cache. No mock: a missing Garage binary is
//! a failure that says how to get it (`tests/run.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::meta::model::{Principal, Role};
use crate::tests::{config, pseudo_random, user};
use crate::{ChunkStore, Conditions, Error, S3ChunkConfig, Storage, StorageConfig, WriteOptions};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/lib/garage.sh")
}

/// A Garage cluster for one test, stopped when dropped (also when the test panics).
pub(crate) struct Garage {
    dir: tempfile::TempDir,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
    pub region: String,
}

impl Garage {
    pub fn start(nodes: u32) -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && if [ ! -x "$GARAGE_BIN" ]; then echo "the Garage binary $GARAGE_BIN is missing: run tests/run.sh (or: source conformance/lib/garage.sh && garage_install)" >&2; exit 3; fi && garage_start "$2" "$3" "$3""#)
            .arg("garage-test")
            .arg(script())
            .arg(dir.path())
            .arg(nodes.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash");
        let mut g = Garage {
            dir,
            endpoint: String::new(),
            key_id: String::new(),
            secret: String::new(),
            bucket: String::new(),
            region: String::new(),
        };
        assert!(out.status.success(), "starting Garage failed: {}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(g.dir.path().join("garage.env")).unwrap();
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .unwrap_or_else(|| panic!("{k} missing from garage.env"))
        };
        g.endpoint = get("GARAGE_ENDPOINT");
        g.key_id = get("GARAGE_KEY_ID");
        g.secret = get("GARAGE_SECRET");
        g.bucket = get("GARAGE_BUCKET");
        g.region = get("GARAGE_REGION");
        g
    }

    pub fn chunk_config(&self, bucket: &str, prefix: &str, cache_bytes: u64) -> S3ChunkConfig {
        S3ChunkConfig {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.key_id.clone(),
            secret_access_key: self.secret.clone(),
            cache_bytes,
        }
    }

    /// A plain SDK client, to look at the bucket without davit's code in between.
    pub fn client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(self.region.clone()))
                .endpoint_url(&self.endpoint)
                .force_path_style(true)
                .credentials_provider(Credentials::new(&self.key_id, &self.secret, None, None, "test"))
                .http_client(http)
                .build(),
        )
    }
}

impl Garage {
    /// Runs a function of garage.sh on this cluster and returns its standard output.
    pub fn sh(&self, call: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(r#"source "$1" && GARAGE_DIR="$2" && {call}"#))
            .arg("garage-test")
            .arg(script())
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash");
        assert!(out.status.success(), "{call}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && garage_stop_all "$2""#)
            .arg("garage-test")
            .arg(script())
            .arg(self.dir.path())
            .status();
    }
}

/// Every key under `prefix` in `bucket`, as the cluster lists them.
pub(crate) async fn keys(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    out
}

/// Opens storage on a blocking thread: the S3 backend blocks on its requests, which an
/// async worker must not do.
pub(crate) async fn open(c: StorageConfig) -> crate::Result<Storage> {
    tokio::task::spawn_blocking(move || Storage::open(c)).await.unwrap()
}

/// Opens a data folder just closed, whose threads may still hold the database for a moment.
async fn reopen(c: StorageConfig) -> Storage {
    for _ in 0..50 {
        match open(c.clone()).await {
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            r => return r.unwrap(),
        }
    }
    panic!("the data folder stayed locked for 5 s");
}

fn body(data: &[u8]) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin + Send + 'static {
    let pieces: Vec<std::io::Result<Bytes>> = data.chunks(65_536).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(pieces)
}

async fn read_all(s: &Storage, p: &Principal, path: &str) -> crate::Result<Vec<u8>> {
    let mut r = s.read(p, path, None).await?;
    let mut out = Vec::new();
    while let Some(piece) = r.body.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out)
}

/// Cache files (not temp files) and their total size.
fn cache_files(data_dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(data_dir.join("cache")) else { return out };
    for d in dirs.flatten() {
        if d.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.push((f.path(), f.metadata().unwrap().len()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_on_garage_roundtrip_dedup_delete_and_cache() {
    let garage = Garage::start(1);
    let client = garage.client();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // A bucket that does not exist yet: davit creates it.
    let bucket = "davit-fresh";
    c.chunks = ChunkStore::S3(garage.chunk_config(bucket, "team/chunks", 64 << 20));
    let s = open(c.clone()).await.unwrap();
    let p = user(&s, "alice", Role::User, None).await;

    let small = pseudo_random(10_000, 1);
    let medium = pseudo_random(3 * 1024 * 1024 + 17, 2);
    let large = pseudo_random(9 * 1024 * 1024 + 5, 3);
    for (name, data) in [("/small", &small), ("/medium", &medium), ("/large", &large)] {
        s.write(&p, name, body(data), WriteOptions::default()).await.unwrap();
    }
    for (name, data) in [("/small", &small), ("/medium", &medium), ("/large", &large)] {
        assert_eq!(&read_all(&s, &p, name).await.unwrap(), data, "{name}");
    }
    // Small files stay in the metadata; the others are objects `<prefix>/<hex id>`, no fan-out.
    let stored = keys(&client, bucket, "").await;
    assert!(stored.len() >= 4, "{stored:?}");
    assert!(stored.iter().all(|k| k.starts_with("team/chunks/") && k.len() == "team/chunks/".len() + 64), "{stored:?}");
    let report = s.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.chunk_files as usize, stored.len());

    // The same content again stores nothing new.
    s.write(&p, "/large-again", body(&large), WriteOptions::default()).await.unwrap();
    assert_eq!(keys(&client, bucket, "").await.len(), stored.len(), "identical content is stored once");

    // The reads above went through the cache: the cluster is not asked again.
    let cached = cache_files(dir.path());
    assert_eq!(cached.len(), stored.len(), "every chunk read once is cached");
    assert!(cached.iter().all(|(p, _)| !p.starts_with(dir.path().join("chunks"))));
    assert!(!dir.path().join("chunks").exists(), "no local chunk folder for an S3 store");

    // With the cluster down, what was read is still served, from the cache alone.
    garage.sh("garage_stop_node 1");
    assert_eq!(read_all(&s, &p, "/medium").await.unwrap(), medium);
    assert_eq!(read_all(&s, &p, "/large").await.unwrap(), large);
    garage.sh("garage_start_node 1");

    // A damaged cache file fails authentication, is dropped, and the chunk comes from the cluster.
    let (victim, len) = cached[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[len as usize / 2] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    for name in ["/medium", "/large"] {
        let data = if name == "/medium" { &medium } else { &large };
        assert_eq!(&read_all(&s, &p, name).await.unwrap(), data, "{name} after cache damage");
    }
    let refilled = std::fs::read(&victim).unwrap();
    assert_ne!(refilled, bytes, "the damaged copy was replaced by the cluster's");

    // Deleting frees the objects once nothing references them.
    s.delete(&p, "/large", Conditions::default()).await.unwrap();
    s.sweep().await.unwrap();
    assert_eq!(read_all(&s, &p, "/large-again").await.unwrap(), large);
    s.delete(&p, "/large-again", Conditions::default()).await.unwrap();
    s.delete(&p, "/medium", Conditions::default()).await.unwrap();
    s.sweep().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // The collector runs on its own thread: wait for it, bounded.
    while !keys(&client, bucket, "").await.is_empty() {
        assert!(Instant::now() < deadline, "objects left: {:?}", keys(&client, bucket, "").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_all(&s, &p, "/small").await.unwrap(), small);
    let report = s.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.close();
    drop(s);

    // A tiny cache bound holds: after reading 12 MiB through a 5 MiB cache, at most 5 MiB.
    // And the cache survives a restart (its files are found again and still bounded).
    let dir2 = tempfile::tempdir().unwrap();
    let mut c2 = config(dir2.path());
    c2.chunks = ChunkStore::S3(garage.chunk_config(&garage.bucket, "", 5 << 20));
    let s2 = open(c2.clone()).await.unwrap();
    let p2 = user(&s2, "bobby", Role::User, None).await;
    let data = pseudo_random(12 * 1024 * 1024, 4);
    s2.write(&p2, "/f", body(&data), WriteOptions::default()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(read_all(&s2, &p2, "/f").await.unwrap(), data);
        let total: u64 = cache_files(dir2.path()).iter().map(|f| f.1).sum();
        assert!(total <= 5 << 20 && total > 0, "cache holds {total} bytes");
    }
    s2.close();
    drop(s2);
    // Reopened with a smaller bound, the cache is cut down to it at start.
    if let ChunkStore::S3(s3) = &mut c2.chunks {
        s3.cache_bytes = 2 << 20;
    }
    let s3 = reopen(c2).await;
    let total: u64 = cache_files(dir2.path()).iter().map(|f| f.1).sum();
    assert!(total <= 2 << 20, "cache after restart holds {total} bytes");
    assert_eq!(read_all(&s3, &p2, "/f").await.unwrap(), data);
    s3.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_one_line_at_open() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    let mut s3 = S3ChunkConfig::new("davit", format!("http://127.0.0.1:{port}"));
    s3.access_key_id = "GKexample".into();
    s3.secret_access_key = "very-secret-value".into();
    c.chunks = ChunkStore::S3(s3.clone());
    let started = Instant::now();
    let e = open(c).await.err().expect("open must fail");
    let msg = e.to_string();
    eprintln!("open refused: {msg}");
    assert!(matches!(e, Error::Incompatible(_)), "{e:?}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("davit"), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains("very-secret-value"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(60), "bounded by the timeouts");
    assert!(!format!("{s3:?}").contains("very-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_cannot_be_created_is_one_line_at_open() {
    let garage = Garage::start(1);
    // A key with no right to create buckets.
    let out = garage.sh("garage_cli 1 key create restricted");
    let field =
        |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).expect("key output");
    let mut s3 = garage.chunk_config("not-there", "", 1 << 20);
    s3.access_key_id = field("Key ID:");
    s3.secret_access_key = field("Secret key:");
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.chunks = ChunkStore::S3(s3.clone());
    let e = open(c).await.err().expect("open must fail");
    let msg = e.to_string();
    eprintln!("open refused: {msg}");
    assert!(matches!(e, Error::Incompatible(_)), "{e:?}");
    assert!(
        msg.contains("not-there") && msg.contains(&garage.endpoint) && msg.contains("could not be created"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains(&s3.secret_access_key), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_every_object_with_ages_and_sizes() {
    use crate::content::chunks::{ChunkBackend, LocalDir};
    use std::time::SystemTime;
    let garage = Garage::start(1);
    // More than one page (S3 lists 1000 keys at most per request).
    const N: usize = 1100;
    let cfg = garage.chunk_config(&garage.bucket, "paged", 0);
    let before = SystemTime::now() - Duration::from_secs(60);
    let (listed, aged, bytes) = tokio::task::spawn_blocking(move || {
        let s3 = std::sync::Arc::new(super::s3::S3Chunks::open(&cfg).unwrap());
        std::thread::scope(|sc| {
            for t in 0..8 {
                let s3 = s3.clone();
                sc.spawn(move || {
                    for i in (t..N).step_by(8) {
                        let mut id = [0u8; 32];
                        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                        s3.put(&id, &[7u8; 10]).unwrap();
                    }
                });
            }
        });
        (s3.list().unwrap(), s3.list_with_age().unwrap(), s3.stored_bytes().unwrap())
    })
    .await
    .unwrap();
    let mut ids: Vec<u64> = listed.iter().map(|id| u64::from_be_bytes(id[..8].try_into().unwrap())).collect();
    ids.sort();
    assert_eq!(ids, (0..N as u64).collect::<Vec<_>>());
    assert_eq!(aged.len(), N);
    assert!(aged.iter().all(|(_, t)| *t > before && *t <= SystemTime::now() + Duration::from_secs(60)));
    assert_eq!(bytes, 10 * N as u64);

    // The local folder answers the same questions from its files.
    let dir = tempfile::tempdir().unwrap();
    let local = LocalDir::open(dir.path()).unwrap();
    local.put(&[1; 32], b"sealed bytes").unwrap();
    local.put(&[2; 32], b"more").unwrap();
    let mut aged = local.list_with_age().unwrap();
    aged.sort();
    assert_eq!(aged.iter().map(|a| a.0).collect::<Vec<_>>(), vec![[1; 32], [2; 32]]);
    assert!(aged.iter().all(|(_, t)| *t > before));
    assert_eq!(local.stored_bytes().unwrap(), 16);
}

/// Throughput of a 256 MiB file through `Storage` on a 1-node Garage against the `aws` CLI
/// (`aws s3 cp`) moving the same file to the same Garage, in the same run; and whether one
/// stream's chunks are stored in parallel (its upload against the same chunks put one by one).
/// A measurement, run by hand: `cargo test -p davit-storage --release --lib s3_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: 256 MiB through Garage, and the aws CLI"]
async fn s3_throughput_against_aws_cli() {
    const SIZE: usize = 256 << 20;
    let garage = Garage::start(1);
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.chunks = ChunkStore::S3(garage.chunk_config(&garage.bucket, "davit", 1 << 30));
    let s = open(c.clone()).await.unwrap();
    let p = user(&s, "alice", Role::User, None).await;
    let data = pseudo_random(SIZE, 7);
    let mib = |d: Duration| SIZE as f64 / (1 << 20) as f64 / d.as_secs_f64();

    // The same write to a local folder, for the CPU share of the pipeline on this machine.
    let local_dir = tempfile::tempdir().unwrap();
    let local = open(config(local_dir.path())).await.unwrap();
    let lp = user(&local, "alice", Role::User, None).await;
    let t = Instant::now();
    local.write(&lp, "/big", body(&data), WriteOptions::default()).await.unwrap();
    let put_local = t.elapsed();
    local.close();

    use std::sync::atomic::Ordering;
    super::s3::tests::MAX_PUTS.store(0, Ordering::SeqCst);
    let t = Instant::now();
    let item = s.write(&p, "/big", body(&data), WriteOptions::default()).await.unwrap();
    let put = t.elapsed();
    let max_puts = super::s3::tests::MAX_PUTS.load(Ordering::SeqCst);
    let t = Instant::now();
    let got = read_all(&s, &p, "/big").await.unwrap();
    let get_cold = t.elapsed();
    assert!(got == data);
    let t = Instant::now();
    let got = read_all(&s, &p, "/big").await.unwrap();
    let get_warm = t.elapsed();
    assert!(got == data);
    drop(got);

    // The same chunks, put one after the other from one thread: what a stream would cost
    // if it waited for each PUT in turn.
    let chunks = item.chunks.len();
    let seq_config = garage.chunk_config(&garage.bucket, "sequential", 0);
    let sealed: Vec<Vec<u8>> = data.chunks(crate::content::ingest::AVG_CHUNK).map(|c| c.to_vec()).collect();
    let t = tokio::task::spawn_blocking(move || {
        let s3 = super::s3::S3Chunks::open(&seq_config).unwrap();
        let t = Instant::now();
        for (i, c) in sealed.iter().enumerate() {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            crate::content::chunks::ChunkBackend::put(&s3, &id, c).unwrap();
        }
        let puts = t.elapsed();
        let t = Instant::now();
        for (i, c) in sealed.iter().enumerate() {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert_eq!(crate::content::chunks::ChunkBackend::get(&s3, &id).unwrap().len(), c.len());
        }
        (puts, t.elapsed())
    });
    let (sequential, sequential_gets) = t.await.unwrap();

    // The aws CLI, same file, same cluster.
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let aws = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new("aws")
            .args(["--endpoint-url", &garage.endpoint, "s3", "cp"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &garage.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &garage.secret)
            .env("AWS_DEFAULT_REGION", &garage.region)
            .stdout(std::process::Stdio::null())
            .output()
            .expect("the aws CLI (pip install awscli)");
        assert!(out.status.success(), "aws: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    };
    let url = format!("s3://{}/aws/big.bin", garage.bucket);
    let aws_put = aws(&[file.to_str().unwrap(), &url]);
    let aws_get = aws(&[&url, "-"]);

    eprintln!("davit PUT  {:>7.1} MiB/s ({put:.2?}), {chunks} chunks, up to {max_puts} PUTs at once", mib(put));
    eprintln!("davit PUT to a local folder (same pipeline, same machine): {:.1} MiB/s", mib(put_local));
    eprintln!(
        "davit GET  {:>7.1} MiB/s ({get_cold:.2?}) cold cache, {:.1} MiB/s ({get_warm:.2?}) from the cache",
        mib(get_cold),
        mib(get_warm)
    );
    eprintln!("aws   PUT  {:>7.1} MiB/s ({aws_put:.2?})", mib(aws_put));
    eprintln!("aws   GET  {:>7.1} MiB/s ({aws_get:.2?}) to stdout", mib(aws_get));
    eprintln!(
        "ratio davit/aws: PUT {:.2}, GET {:.2}",
        aws_put.as_secs_f64() / put.as_secs_f64(),
        aws_get.as_secs_f64() / get_cold.as_secs_f64()
    );
    eprintln!(
        "sequential PUTs of {} 1 MiB chunks from one thread: {sequential:.2?} ({:.1} ms each)",
        SIZE / crate::content::ingest::AVG_CHUNK,
        sequential.as_secs_f64() * 1000.0 / (SIZE / crate::content::ingest::AVG_CHUNK) as f64
    );
    eprintln!(
        "sequential GETs of the same: {sequential_gets:.2?} ({:.1} ms each)",
        sequential_gets.as_secs_f64() * 1000.0 / (SIZE / crate::content::ingest::AVG_CHUNK) as f64
    );
    s.close();
}
