//! A deployment moved up (redb and a folder to PostgreSQL and Garage) and home again, on the
//! real engines, read back through the ordinary API after each move.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::content::s3_tests::Garage;
use crate::model::{Principal, Role};
use crate::tests::{body, pseudo_random, read_all, user};
use crate::tree::locks::LockRequest;
use crate::{NewLink, WriteOptions};

/// alice's files: empty, inline (up to 64 KiB, kept in the database) and several chunks.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/empty", Vec::new()),
        ("/docs/small.txt", b"hello, davit".to_vec()),
        ("/docs/inline-max.bin", pseudo_random(64 * 1024, 1)),
        ("/docs/one-past-inline.bin", pseudo_random(64 * 1024 + 1, 2)),
        ("/docs/big.bin", pseudo_random(9 * 1024 * 1024 + 123, 3)),
        ("/photos/mid.bin", pseudo_random(3 * 1024 * 1024 + 7, 4)),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Makes the deployment to move: two users, alice's files, bob's copy of one (the same
/// chunks), a share, a link and a lock.
fn populate(config: StorageConfig) {
    let s = Storage::open(config).unwrap();
    runtime().block_on(async {
        let alice = user(&s, "alice", Role::User, None).await;
        let bob = user(&s, "bob", Role::User, None).await;
        for dir in ["/docs", "/photos"] {
            s.mkdir(&alice, dir).await.unwrap();
        }
        for (path, data) in files() {
            s.write(&alice, path, body(&data), WriteOptions::default()).await.unwrap();
        }
        s.write(&bob, "/mine.bin", body(&files()[4].1), WriteOptions::default()).await.unwrap();
        s.share(&alice, "/docs", "bob", false).await.unwrap();
        s.create_link(&alice, "/photos/mid.bin", NewLink::default()).await.unwrap();
        s.lock(&alice, "/docs/big.bin", LockRequest { href: "/dav/docs/big.bin".into(), ..Default::default() })
            .await
            .unwrap();
    });
    s.close();
}

/// Opens a migrated deployment and reads everything through the API.
fn read_back(config: StorageConfig) {
    let s = open_when_free(config).unwrap();
    runtime().block_on(async {
        let alice = principal(&s, "alice").await;
        let bob = principal(&s, "bob").await;
        for (path, data) in files() {
            let got = read_all(&s, &alice, path, None).await.unwrap();
            assert!(got == data, "{path}: {} bytes read, {} expected", got.len(), data.len());
        }
        assert!(read_all(&s, &bob, "/mine.bin", None).await.unwrap() == files()[4].1);
        let (_, received) = s.list_shares(&bob).await.unwrap();
        assert_eq!(received.len(), 1, "bob's share");
        assert_eq!(s.list_links(&alice).await.unwrap().len(), 1, "alice's link");
        let again = s.lock(&bob, "/docs/big.bin", LockRequest { href: "/dav/x".into(), ..Default::default() }).await;
        assert!(again.is_err(), "alice's lock was lost");
        let check = s.check().await.unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    });
    s.close();
}

async fn principal(s: &Storage, name: &str) -> Principal {
    Principal::of(&s.find_user_blocking(name).unwrap())
}

fn assert_clean(r: &MigrateReport) {
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.tables, crate::meta::db::TABLES.len());
    // alice's six and bob's one.
    assert_eq!(r.files_verified, 7);
    let expected: u64 = files().iter().map(|f| f.1.len() as u64).sum::<u64>() + files()[4].1.len() as u64;
    assert_eq!(r.bytes_verified, expected);
}

#[test]
fn embedded_to_postgres_and_garage_and_home_again() {
    let garage = Garage::start(1);
    let home = tempfile::tempdir().unwrap();
    // The master key is made in the data folder, as on a first start without one.
    let mut source = crate::tests::config(home.path());
    source.master_key = None;
    populate(source.clone());
    let key = std::fs::read_to_string(home.path().join(MASTER_KEY_FILE)).unwrap();

    // Up: PostgreSQL and a bucket, no folder of its own.
    let url = crate::tests::pg::database();
    let s3 = garage.chunk_config(&garage.bucket, "moved", 0);
    let up = MigrateTarget {
        meta: MetaStore::Postgres { url: url.clone(), pool_size: 4 },
        chunks: ChunkStore::S3(s3.clone()),
        data_dir: None,
        chunk_grace: Some(Duration::from_secs(3600)),
    };
    let r = migrate(&source, &up).unwrap();
    assert_clean(&r);
    assert!(r.rows > 30, "{} rows", r.rows);
    // 64 KiB + 1, 3 MiB and 9 MiB: at least 1 + 1 + 3 chunks outside the database.
    assert!(r.chunks_referenced >= 5, "{r:?}");
    assert_eq!(r.chunks_copied, r.chunks_referenced);
    assert!(r.chunk_bytes > 12 * 1024 * 1024, "{r:?}");
    assert_eq!(r.master_key_written, None);
    let node = tempfile::tempdir().unwrap();
    let mut cluster = StorageConfig::new(node.path());
    cluster.master_key = Some(key.clone());
    cluster.meta = up.meta.clone();
    cluster.chunks = ChunkStore::S3(crate::S3ChunkConfig { cache_bytes: 8 << 20, ..s3.clone() });
    cluster.chunk_grace = up.chunk_grace;
    read_back(cluster.clone());

    // A second run into the same database is refused, whatever the chunk store.
    let err = migrate(&source, &up).unwrap_err().to_string();
    assert!(err.contains("already holds"), "{err}");

    // Home again: a new redb folder. The key was given to the cluster, so it is given here.
    let back_dir = tempfile::tempdir().unwrap();
    let back_path = back_dir.path().join("davit-data");
    let back = MigrateTarget {
        meta: MetaStore::Redb,
        chunks: ChunkStore::Local,
        data_dir: Some(back_path.clone()),
        chunk_grace: None,
    };
    let r = migrate(&cluster, &back).unwrap();
    assert_clean(&r);
    assert_eq!(r.chunks_copied, r.chunks_referenced);
    assert_eq!(r.master_key_written, None);
    assert!(!back_path.join(MASTER_KEY_FILE).exists());
    let mut home_again = StorageConfig::new(&back_path);
    home_again.master_key = Some(key.clone());
    read_back(home_again);
    assert_eq!(chunk_files(&back_path), r.chunks_referenced as usize);

    // Embedded to embedded: the key the source kept in its folder goes with it.
    let copy_path = back_dir.path().join("copy");
    let local = MigrateTarget { data_dir: Some(copy_path.clone()), ..back };
    let r = migrate(&source, &local).unwrap();
    assert_clean(&r);
    assert_eq!(r.master_key_written, Some(copy_path.join(MASTER_KEY_FILE)));
    assert_eq!(std::fs::read_to_string(copy_path.join(MASTER_KEY_FILE)).unwrap().trim(), key.trim());
    read_back(StorageConfig::new(&copy_path));
}

/// A source folder that holds no deployment is refused, and nothing is made there; so is
/// a target that is the source.
#[test]
fn an_empty_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = MigrateTarget {
        meta: MetaStore::Redb,
        chunks: ChunkStore::Local,
        data_dir: Some(dir.path().join("t")),
        chunk_grace: None,
    };
    let err = migrate(&StorageConfig::new(dir.path().join("nothing")), &target).unwrap_err().to_string();
    assert!(err.contains("no deployment"), "{err}");
    assert!(!dir.path().join("nothing").exists());
    // Nor can a folder be its own target.
    let t = dir.path().join("t");
    populate(crate::tests::config(&t));
    let err = migrate(&crate::tests::config(&t), &target).unwrap_err().to_string();
    assert!(err.contains("own data folder"), "{err}");
}

fn chunk_files(dir: &Path) -> usize {
    crate::tests::chunk_files(dir)
}
