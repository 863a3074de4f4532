//! Chunk collection after a grace period (several nodes), on a real data folder with the
//! default engines and a grace of seconds. Times are checked the way that cannot flake: a
//! file seen gone must have been gone no sooner than the rule allows, whatever the load.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::crypto::ChunkId;
use crate::meta::db::CHUNK_GRAVE;
use crate::meta::kv::Readable;
use crate::meta::model::Role;
use crate::meta::txn::{Grave, wall_nanos};
use crate::tests::{Fixture, body, chunk_files, open_with, pseudo_random, read_all, user};
use crate::{Conditions, Error, Storage, WriteOptions};

/// Content of one chunk file: over the inline limit, under the smallest cut.
const ONE_CHUNK: usize = 100 * 1024;

fn shared(grace: Duration) -> Fixture {
    open_with(|c| {
        c.chunk_grace = Some(grace);
        c.sweep_interval = Duration::from_millis(100);
    })
}

fn chunk_path(dir: &Path, id: &ChunkId) -> PathBuf {
    let h = hex::encode(id);
    dir.join("chunks").join(&h[0..2]).join(&h[2..4]).join(h)
}

fn id_of(s: &Storage, plain: &[u8]) -> ChunkId {
    s.core.keys.chunk_id(plain)
}

fn grave_of(s: &Storage, id: &ChunkId) -> Option<Grave> {
    s.core.db.read_sync(|t| t.open_table(CHUNK_GRAVE)?.get(id)?.map(|v| Grave::decode(v.value())).transpose()).unwrap()
}

fn graves(s: &Storage) -> u64 {
    s.core.db.read_sync(|t| t.open_table(CHUNK_GRAVE)?.len()).unwrap()
}

async fn set_grave(s: &Storage, id: ChunkId, state: Option<Grave>) {
    s.core
        .db
        .write((), move |ctx| {
            let mut g = ctx.txn.open_table(CHUNK_GRAVE)?;
            match state {
                Some(state) => g.insert(&id, state.encode())?,
                None => {
                    g.remove(&id)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Polls `done` every 20 ms for at most `limit`; says whether it became true.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_files_chunks_go_only_after_the_grace_period() {
    let grace = Duration::from_secs(1);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let old = pseudo_random(3 * 1024 * 1024, 1);
    f.storage.write(&p, "/f.bin", body(&old), WriteOptions::default()).await.unwrap();
    let files = chunk_files(f.dir.path());
    assert!(files >= 2, "a file of several chunks");

    let released = Instant::now();
    f.storage.write(&p, "/f.bin", body(b"new, small content"), WriteOptions::default()).await.unwrap();
    let (now_files, now_graves) = (chunk_files(f.dir.path()), graves(&f.storage));
    // Looked at within the grace period (on a machine slow enough, this part proves nothing).
    if released.elapsed() < grace {
        assert_eq!(now_files, files, "nothing deleted at once");
        assert_eq!(now_graves, files as u64, "every old chunk waits in the grave");
    }

    assert!(wait_for(grace * 10, || chunk_files(f.dir.path()) == 0).await, "deleted after the grace period");
    assert!(released.elapsed() >= grace, "not before it: {:?}", released.elapsed());
    assert!(wait_for(grace * 5, || graves(&f.storage) == 0).await, "and the grave is emptied");
    assert_eq!(read_all(&f.storage, &p, "/f.bin", None).await.unwrap(), b"new, small content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_written_again_within_the_grace_period_is_revived_not_stored_again() {
    let grace = Duration::from_secs(3);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let data = pseudo_random(ONE_CHUNK, 2);
    let id = id_of(&f.storage, &data);
    let path = chunk_path(f.dir.path(), &id);
    f.storage.write(&p, "/a.bin", body(&data), WriteOptions::default()).await.unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    f.storage.delete(&p, "/a.bin", Conditions::default()).await.unwrap();
    assert!(matches!(grave_of(&f.storage, &id), Some(Grave::Zero { .. })));

    f.storage.write(&p, "/b.bin", body(&data), WriteOptions::default()).await.unwrap();
    assert_eq!(grave_of(&f.storage, &id), None, "revived: out of the grave");
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "the stored file was relied on, not written again");

    // Past the grace period and a few collections, the revived chunk is still there.
    tokio::time::sleep(grace * 2).await;
    f.storage.sweep().await.unwrap();
    assert!(path.exists());
    assert_eq!(read_all(&f.storage, &p, "/b.bin", None).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_renews_an_old_grave_entry_instead_of_storing_the_chunk_again() {
    let grace = Duration::from_secs(4);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let data = pseudo_random(ONE_CHUNK, 3);
    let id = id_of(&f.storage, &data);
    let path = chunk_path(f.dir.path(), &id);
    f.storage.write(&p, "/a.bin", body(&data), WriteOptions::default()).await.unwrap();
    f.storage.delete(&p, "/a.bin", Conditions::default()).await.unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    // Unreferenced for 0.6 g: no longer enough left for a write to rely on as it is.
    let aged = wall_nanos() - (grace.as_nanos() as u64) * 6 / 10;
    set_grave(&f.storage, id, Some(Grave::Zero { since: aged })).await;

    let before = wall_nanos();
    let ingested =
        crate::content::ingest::ingest(&f.storage.core, body(&data), u64::MAX, || unreachable!()).await.unwrap();
    match grave_of(&f.storage, &id) {
        Some(Grave::Zero { since }) => assert!(since >= before, "renewed to now"),
        other => panic!("still in the grave until the commit, renewed: {other:?}"),
    }
    assert!(ingested.commit_by.is_some(), "a write of several nodes has a deadline");
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "not stored again");
    drop(ingested);
    f.storage.write(&p, "/b.bin", body(&data), WriteOptions::default()).await.unwrap();
    assert_eq!(grave_of(&f.storage, &id), None);
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "nor by the write that commits it");
    assert_eq!(read_all(&f.storage, &p, "/b.bin", None).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_a_chunk_being_deleted_then_stores_it() {
    // A long grace: only this test moves the grave.
    let f = shared(Duration::from_secs(600));
    let p = user(&f.storage, "alice", Role::User, None).await;
    let data = pseudo_random(ONE_CHUNK, 5);
    let id = id_of(&f.storage, &data);
    let path = chunk_path(f.dir.path(), &id);
    f.storage.write(&p, "/a.bin", body(&data), WriteOptions::default()).await.unwrap();
    f.storage.delete(&p, "/a.bin", Conditions::default()).await.unwrap();
    // What another node's collector does in its first step and the delete after it.
    set_grave(&f.storage, id, Some(Grave::Deleting { since: wall_nanos() })).await;
    std::fs::remove_file(&path).unwrap();

    let s = f.storage.clone();
    let (p2, d2) = (p.clone(), data.clone());
    let writer = tokio::spawn(async move { s.write(&p2, "/b.bin", body(&d2), WriteOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "the writer waits while the chunk is being deleted");
    assert!(!path.exists());

    set_grave(&f.storage, id, None).await; // the collector's second step
    tokio::time::timeout(Duration::from_secs(20), writer).await.expect("the writer goes on").unwrap().unwrap();
    assert!(path.exists(), "and stores the chunk itself");
    assert_eq!(read_all(&f.storage, &p, "/b.bin", None).await.unwrap(), data);
    let report = f.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_chunk_files_go_after_twice_the_grace_period() {
    let grace = Duration::from_secs(1);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let kept = pseudo_random(ONE_CHUNK, 6);
    f.storage.write(&p, "/kept.bin", body(&kept), WriteOptions::default()).await.unwrap();
    // Stored by a node that stopped before its commit: a sealed chunk no row names.
    let orphan = pseudo_random(ONE_CHUNK, 7);
    let id = id_of(&f.storage, &orphan);
    let mut sealed = orphan.clone();
    f.storage.core.keys.seal_chunk(&id, &mut sealed);
    let stored = Instant::now();
    f.storage.core.backend.put(&id, &sealed).unwrap();
    let path = chunk_path(f.dir.path(), &id);
    assert!(path.exists());

    assert!(wait_for(grace * 12, || !path.exists()).await, "the orphan is removed");
    assert!(stored.elapsed() >= grace * 2, "after two grace periods, not before: {:?}", stored.elapsed());
    assert!(wait_for(grace * 5, || graves(&f.storage) == 0).await);
    assert_eq!(chunk_files(f.dir.path()), 1, "the referenced chunk stays");
    assert_eq!(read_all(&f.storage, &p, "/kept.bin", None).await.unwrap(), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_slower_than_half_the_grace_period_is_refused() {
    let grace = Duration::from_secs(1);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let data = pseudo_random(10 * 1024 * 1024, 8);
    // The first 9 MiB at once (chunks are cut and checked), the rest after 0.8 g.
    let (head, tail) = data.split_at(9 * 1024 * 1024);
    let (head, tail) = (Bytes::copy_from_slice(head), Bytes::copy_from_slice(tail));
    let slow = futures::stream::unfold(0, move |step| {
        let (head, tail) = (head.clone(), tail.clone());
        async move {
            match step {
                0 => Some((Ok(head), 1)),
                1 => {
                    tokio::time::sleep(grace * 8 / 10).await;
                    Some((Ok(tail), 2))
                }
                _ => None,
            }
        }
    });
    let r = f.storage.write(&p, "/slow.bin", Box::pin(slow), WriteOptions::default()).await;
    match r {
        Err(Error::Unavailable(m)) => assert!(m.contains("half the chunk grace period"), "{m}"),
        other => panic!("refused as too slow, got {other:?}"),
    }
    assert!(f.storage.stat(&p, "/slow.bin").await.is_err(), "nothing visible");
    // What it stored is an orphan, removed in time like any other.
    assert!(wait_for(grace * 15, || chunk_files(f.dir.path()) == 0).await);
    // The same upload at speed goes through.
    f.storage.write(&p, "/slow.bin", body(&data), WriteOptions::default()).await.unwrap();
    assert_eq!(read_all(&f.storage, &p, "/slow.bin", None).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_shared_chunks_lose_nothing_and_leave_nothing() {
    let grace = Duration::from_secs(1);
    let f = shared(grace);
    let p = user(&f.storage, "alice", Role::User, None).await;
    let contents: Vec<Vec<u8>> = (0..3).map(|i| pseudo_random(1536 * 1024, 20 + i)).collect();
    let mut tasks = Vec::new();
    for i in 0..8usize {
        let (s, p, contents) = (f.storage.clone(), p.clone(), contents.clone());
        tasks.push(tokio::spawn(async move {
            let path = format!("/f{i}.bin");
            // Write, overwrite with another content (freeing chunks others may be writing),
            // then, for half of them, delete.
            for round in 0..3 {
                let c = &contents[(i + round) % 3];
                s.write(&p, &path, body(c), WriteOptions::default()).await.unwrap();
            }
            if i % 2 == 0 {
                s.delete(&p, &path, Conditions::default()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Past the grace period, what is referenced is all there.
    tokio::time::sleep(grace * 3).await;
    for i in (1..8usize).step_by(2) {
        let want = &contents[(i + 2) % 3];
        assert_eq!(&read_all(&f.storage, &p, &format!("/f{i}.bin"), None).await.unwrap(), want, "f{i}");
    }
    let report = f.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for i in (1..8usize).step_by(2) {
        f.storage.delete(&p, &format!("/f{i}.bin"), Conditions::default()).await.unwrap();
    }
    assert!(wait_for(grace * 10, || chunk_files(f.dir.path()) == 0).await, "everything collected");
    assert!(wait_for(grace * 5, || graves(&f.storage) == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_back_to_one_node_empties_the_grave_and_frees_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::tests::config(dir.path());
    c.chunk_grace = Some(Duration::from_secs(600));
    let s = Storage::open(c.clone()).unwrap();
    let p = user(&s, "alice", Role::User, None).await;
    let data = pseudo_random(ONE_CHUNK, 9);
    s.write(&p, "/a.bin", body(&data), WriteOptions::default()).await.unwrap();
    s.delete(&p, "/a.bin", Conditions::default()).await.unwrap();
    assert_eq!(graves(&s), 1);
    assert_eq!(chunk_files(dir.path()), 1, "kept for the grace period");
    s.close();
    drop(s);

    c.chunk_grace = None;
    // The first open's threads may still hold the file for a moment as they wind down.
    let mut tries = 0;
    let s = loop {
        match Storage::open(c.clone()) {
            Err(Error::Incompatible(m)) if m.contains("another process") && tries < 250 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => break r.unwrap(),
        }
    };
    assert_eq!(graves(&s), 0, "one node keeps no grave");
    assert_eq!(chunk_files(dir.path()), 0, "its start sweep freed the chunk");
    s.write(&p, "/b.bin", body(&data), WriteOptions::default()).await.unwrap();
    assert_eq!(read_all(&s, &p, "/b.bin", None).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_never_references_a_chunk_being_deleted() {
    let f = shared(Duration::from_secs(600));
    let id = [7u8; 32];
    set_grave(&f.storage, id, Some(Grave::Deleting { since: wall_nanos() })).await;
    let r = f
        .storage
        .core
        .db
        .write((), move |ctx| {
            let mut w = crate::meta::txn::W::open(ctx)?;
            w.add_refs(&[crate::meta::model::ChunkRef { id, len: 1 }], None, None)
        })
        .await;
    assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
    assert!(matches!(grave_of(&f.storage, &id), Some(Grave::Deleting { .. })), "and the refusal changed nothing");
    assert!(f.storage.core.db.read_sync(|t| Ok(t.open_table(crate::meta::db::CHUNKS)?.get(&id)?.is_none())).unwrap());
}
