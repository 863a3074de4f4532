//! Master-key rotation and live backups on real stores (redb, and PostgreSQL).

use std::time::Duration;

use super::*;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::tests::{body, config, pseudo_random, read_all, user};
use crate::{Storage, StorageConfig, WriteOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// `f` again while the redb file is still held by a store this test just closed (its
/// writer thread lets go a moment after `close`); bounded.
fn when_free<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    for _ in 0..50 {
        match f() {
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                std::thread::sleep(Duration::from_millis(100))
            }
            out => return out,
        }
    }
    f()
}

const DATA_LEN: usize = 300 * 1024 + 17;

fn populate(c: &StorageConfig) {
    let s = Storage::open(c.clone()).unwrap();
    runtime().block_on(async {
        let alice = user(&s, "alice", Role::User, None).await;
        s.write(&alice, "/big.bin", body(&pseudo_random(DATA_LEN, 9)), WriteOptions::default()).await.unwrap();
        s.write(&alice, "/small.txt", body(b"inline"), WriteOptions::default()).await.unwrap();
    });
    s.close();
}

fn rotation_rewraps_the_data_key_and_refuses_bad_keys_first() {
    let dir = tempfile::tempdir().unwrap();
    crate::tests::pg::next_store_is_new();
    let mut c = config(dir.path());
    populate(&c);
    let new = "22".repeat(32);

    // Refused before anything changes: malformed, the current key, a wrong current key.
    for (bad, why) in [("abc", "64 hex"), (&*"zz".repeat(32), "64 hex"), (&*"11".repeat(32), "the current one")] {
        let e = when_free(|| rotate_master_key(&c, bad)).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let mut wrong = c.clone();
    wrong.master_key = Some("33".repeat(32));
    let e = when_free(|| rotate_master_key(&wrong, &new)).unwrap_err().to_string();
    assert!(e.contains("master key does not match"), "{e}");

    assert_eq!(when_free(|| rotate_master_key(&c, &new)).unwrap(), Rotated::Rewrapped { written: None });
    let old = when_free(|| Storage::open(c.clone())).err().expect("the old key is refused").to_string();
    assert!(old.contains("master key does not match") && old.contains("rotate-master-key"), "{old}");

    c.master_key = Some(new);
    let s = when_free(|| Storage::open(c.clone())).unwrap();
    runtime().block_on(async {
        let alice = reads_back_and_checks(&s, "/big.bin", 9).await;
        assert_eq!(read_all(&s, &alice, "/small.txt", None).await.unwrap(), b"inline");
    });
    s.close();
}

/// Alice's `name` reads back as `pseudo_random(DATA_LEN, seed)` and the store checks
/// consistent; answers alice.
async fn reads_back_and_checks(s: &Storage, name: &str, seed: u64) -> crate::model::Principal {
    let alice = crate::model::Principal::of(&s.find_user("alice").await.unwrap());
    assert!(read_all(s, &alice, name, None).await.unwrap() == pseudo_random(DATA_LEN, seed), "{name}");
    let check = s.check().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    alice
}

/// The backup `to` restored into `into` (verified with no problem) and opened.
fn restored_from(to: &std::path::Path, into: &std::path::Path, c: &StorageConfig) -> Storage {
    let r = restore(to, into, c.master_key.clone()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let mut restored = config(into);
    restored.meta = crate::MetaStore::Redb;
    when_free(|| Storage::open(restored.clone())).unwrap()
}

/// A new store in a temporary folder's `data`, with its folder and configuration.
fn new_store() -> (tempfile::TempDir, StorageConfig, Storage) {
    let dir = tempfile::tempdir().unwrap();
    crate::tests::pg::next_store_is_new();
    let c = config(&dir.path().join("data"));
    let s = Storage::open(c.clone()).unwrap();
    (dir, c, s)
}

#[test]
fn rotation() {
    rotation_rewraps_the_data_key_and_refuses_bad_keys_first();
}

/// A backup taken while files are overwritten (their old chunks freed as it runs) holds
/// every chunk of its snapshot, restores into a folder that verifies, and a second run
/// copies only what changed; an unfinished backup and a non-empty target are refused.
fn a_backup_during_overwrites_restores_and_verifies() {
    let (dir, c, s) = new_store();
    let to = dir.path().join("backup");
    let rt = runtime();
    let (first, second) = rt.block_on(async {
        let root = user(&s, "root", Role::Admin, None).await;
        let alice = user(&s, "alice", Role::User, None).await;
        for i in 0..6u64 {
            s.write(&alice, &format!("/f{i}"), body(&pseudo_random(DATA_LEN, i)), WriteOptions::default())
                .await
                .unwrap();
        }
        // Never changed: the second run finds its chunk in the folder.
        s.write(&alice, "/keep", body(&pseudo_random(DATA_LEN, 99)), WriteOptions::default()).await.unwrap();
        let writer = {
            let (s, alice) = (s.clone(), alice.clone());
            tokio::spawn(async move {
                for n in 0..60u64 {
                    let data = pseudo_random(DATA_LEN, 100 + n);
                    s.write(&alice, &format!("/f{}", n % 6), body(&data), WriteOptions::default()).await.unwrap();
                }
            })
        };
        let first = s.admin(&root).unwrap().backup(to.clone()).await.unwrap();
        writer.await.unwrap();
        let second = s.admin(&root).unwrap().backup(to.clone()).await.unwrap();
        (first, second)
    });
    s.close();
    assert!(first.chunks_referenced >= 6 && first.chunks_copied == first.chunks_referenced, "{first:?}");
    assert!(second.chunks_present > 0, "the second run reuses chunk files: {second:?}");
    assert_eq!(second.chunks_present + second.chunks_copied, second.chunks_referenced);

    // Restored into a redb folder whatever the source engine, and verified file by file;
    // the backup is only read: a chunk file it holds that nothing references (which a
    // store's sweep would remove) is still there after, and its database is unchanged.
    let stray = to.join("chunks/00/00").join("00".repeat(32));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, pseudo_random(100, 7)).unwrap();
    let db_before = std::fs::read(to.join(crate::DB_FILE)).unwrap();
    let into = dir.path().join("restored");
    let r = restore(&to, &into, c.master_key.clone()).unwrap();
    assert!(r.problems.is_empty() && r.files_verified == 7, "{:?} {r:?}", r.problems);
    assert!(stray.exists(), "the backup's unreferenced chunk file is still there");
    assert!(std::fs::read(to.join(crate::DB_FILE)).unwrap() == db_before, "the backup's database is unchanged");
    assert!(!into.join("restore-source").exists(), "the restore's copy of the backup's database is gone");
    let e = restore(&to, &into, c.master_key.clone()).unwrap_err().to_string();
    assert!(e.contains("not empty"), "{e}");
    let e = restore(&dir.path().join("nowhere"), &dir.path().join("x"), c.master_key.clone()).unwrap_err().to_string();
    assert!(e.contains("is not a folder"), "a missing backup is not 'interrupted or still running': {e}");
    // A restore that does not finish (here: the wrong key; a killed one alike) leaves a folder
    // nothing opens: a server on it would have served files whose chunks were never copied.
    let broken = dir.path().join("broken");
    assert!(restore(&to, &broken, Some("ab".repeat(32))).is_err());
    let mut on_broken = c.clone();
    on_broken.data_dir = broken.clone();
    let e = Storage::open(on_broken).err().expect("refused").to_string();
    assert!(e.contains("did not finish"), "{e}");
    let e = restore(&to, &broken, c.master_key.clone()).unwrap_err().to_string();
    assert!(e.contains("did not finish"), "{e}");
    assert!(!into.join(super::backup::RESTORE_UNFINISHED).exists(), "a finished restore has no mark");
    std::fs::remove_file(to.join(BACKUP_COMPLETE)).unwrap();
    let e = restore(&to, &dir.path().join("other"), c.master_key.clone()).unwrap_err().to_string();
    assert!(e.contains("no finished backup"), "{e}");
}

#[test]
fn backup() {
    a_backup_during_overwrites_restores_and_verifies();
}

/// A backup taken while a deleted folder's rows were still being swept restores and
/// verifies: both sides of the copy keep the folder as the backup has it (neither is swept
/// while they are compared), and the restored server finishes it.
fn a_backup_holding_a_deleted_folder_restores_and_verifies() {
    let (dir, c, s) = new_store();
    let to = dir.path().join("backup");
    runtime().block_on(async {
        let root = user(&s, "root", Role::Admin, None).await;
        let alice = user(&s, "alice", Role::User, None).await;
        s.write(&alice, "/keep.bin", body(&pseudo_random(DATA_LEN, 9)), WriteOptions::default()).await.unwrap();
        for i in 0..10u64 {
            let data = body(&pseudo_random(DATA_LEN, 200 + i));
            let parents = WriteOptions { create_parents: true, ..Default::default() };
            s.write(&alice, &format!("/big/a/f{i}"), data, parents).await.unwrap();
        }
        // Detached as a delete does, without waking the sweeper: as if it had not run yet.
        let r = alice.root;
        let detached = s
            .core
            .db
            .write((), move |ctx| {
                let mut w = crate::meta::txn::W::open(ctx)?;
                let big = w.resolve(r, &crate::meta::names::DrivePath::parse("/big")?)?.expect("/big");
                w.remove_item(&big)
            })
            .await
            .unwrap();
        assert!(detached);
        s.admin(&root).unwrap().backup(to.clone()).await.unwrap();
    });
    s.close();
    let s = restored_from(&to, &dir.path().join("restored"), &c);
    runtime().block_on(async {
        s.sweep().await.unwrap();
        let alice = reads_back_and_checks(&s, "/keep.bin", 9).await;
        assert!(s.stat(&alice, "/big").await.is_err());
    });
    s.close();
}

#[test]
fn backup_of_a_deleted_folder() {
    a_backup_holding_a_deleted_folder_restores_and_verifies();
}

crate::tests::pg::also_on_postgres!(
    rotation_rewraps_the_data_key_and_refuses_bad_keys_first,
    a_backup_during_overwrites_restores_and_verifies,
    a_backup_holding_a_deleted_folder_restores_and_verifies,
);

/// PostgreSQL and a bucket are backed up with their own tools, metadata first: a copy of the
/// metadata (what `pg_dump` takes), then changes that free chunks, then a copy of the bucket.
/// The grace period keeps every chunk the metadata copy references until the bucket copy, so
/// the restored pair opens, reads and checks consistent; a chunk the bucket copy lacks is
/// named by `check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_and_bucket_pair_backed_up_metadata_first_checks_consistent() {
    use crate::chunks::ChunkBackend;
    use crate::content::s3::S3Chunks;
    use crate::content::s3_tests::{Garage, open};
    use crate::{ChunkStore, Conditions, MetaStore};

    let garage = Garage::start(1);
    let dir = tempfile::tempdir().unwrap();
    let mut c = StorageConfig::new(dir.path().join("node"));
    c.master_key = Some("11".repeat(32));
    c.meta = MetaStore::Postgres { url: crate::tests::pg::database(), pool_size: 4 };
    c.chunks = ChunkStore::S3(garage.chunk_config("davit-live", "", 0));
    c.chunk_grace = Some(Duration::from_secs(3600));
    let s = open(c.clone()).await.unwrap();
    let alice = user(&s, "alice", Role::User, None).await;
    for (i, name) in ["/a", "/b", "/c"].into_iter().enumerate() {
        s.write(&alice, name, body(&pseudo_random(DATA_LEN, i as u64)), WriteOptions::default()).await.unwrap();
    }

    // 1. The metadata.
    let copy_url = crate::tests::pg::database();
    let (src, url) = (s.clone(), copy_url.clone());
    tokio::task::spawn_blocking(move || {
        let to = crate::meta::db::Db::open_postgres(&url, 2, |_| {})?;
        let copied = crate::meta::copy::copy_all(&src.core.db, &to, crate::meta::copy::BATCH);
        to.close();
        assert!(copied?.problems.is_empty());
        Ok::<_, Error>(())
    })
    .await
    .unwrap()
    .unwrap();
    // 2. Changes after it: the chunks of /a and /b lose their last reference.
    s.write(&alice, "/a", body(&pseudo_random(DATA_LEN, 50)), WriteOptions::default()).await.unwrap();
    s.delete(&alice, "/b", Conditions::default()).await.unwrap();
    s.sweep().await.unwrap();
    // 3. The bucket, after.
    let (live, copy) = (garage.chunk_config("davit-live", "", 0), garage.chunk_config("davit-copy", "", 0));
    let copied = tokio::task::spawn_blocking(move || {
        let (from, to) = (S3Chunks::open(&live)?, S3Chunks::open(&copy)?);
        let ids = from.list()?;
        for id in &ids {
            to.put(id, &from.get(id)?)?;
        }
        Ok::<_, Error>(ids)
    })
    .await
    .unwrap()
    .unwrap();
    s.close();

    let mut r = c.clone();
    r.data_dir = dir.path().join("restored");
    r.meta = MetaStore::Postgres { url: copy_url, pool_size: 4 };
    r.chunks = ChunkStore::S3(garage.chunk_config("davit-copy", "", 0));
    let restored = open(r.clone()).await.unwrap();
    let report = restored.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let alice = crate::model::Principal::of(&restored.find_user("alice").await.unwrap());
    for (i, name) in ["/a", "/b", "/c"].into_iter().enumerate() {
        assert!(read_all(&restored, &alice, name, None).await.unwrap() == pseudo_random(DATA_LEN, i as u64), "{name}");
    }
    // A chunk the restored metadata references and the bucket copy lacks is named.
    let referenced: Vec<crate::crypto::ChunkId> = restored
        .core
        .db
        .read(|t| {
            use crate::meta::db::Readable;
            let mut out = Vec::new();
            for row in t.open_table(crate::meta::db::CHUNKS)?.iter()? {
                let (k, v) = row?;
                if !crate::meta::db::decode::<crate::content::chunks::ChunkRow>(v.value())?.inline {
                    out.push(*k.value());
                }
            }
            Ok(out)
        })
        .await
        .unwrap();
    assert!(referenced.len() >= 3 && referenced.iter().all(|id| copied.contains(id)), "{referenced:?}");
    let missing = referenced[0];
    let copy = garage.chunk_config("davit-copy", "", 0);
    tokio::task::spawn_blocking(move || S3Chunks::open(&copy)?.delete(&missing).map_err(Error::from))
        .await
        .unwrap()
        .unwrap();
    let report = restored.check().await.unwrap();
    restored.close();
    let want = format!("chunk {} is referenced but not stored", hex::encode(missing));
    assert_eq!(report.problems, vec![want], "{report:?}");
}

/// Found by an operations probe: a second backup into a folder that failed (a full disk)
/// had removed `BACKUP-COMPLETE` first, so the folder's one good backup could no longer be
/// restored. A run that fails now leaves the last finished backup restorable.
#[test]
fn a_failed_backup_run_leaves_the_previous_one_restorable() {
    let (dir, c, s) = new_store();
    let to = dir.path().join("backup");
    runtime().block_on(async {
        let root = user(&s, "root", Role::Admin, None).await;
        let alice = user(&s, "alice", Role::User, None).await;
        s.write(&alice, "/keep.bin", body(&pseudo_random(DATA_LEN, 5)), WriteOptions::default()).await.unwrap();
        s.admin(&root).unwrap().backup(to.clone()).await.unwrap();
        s.write(&alice, "/later.bin", body(&pseudo_random(DATA_LEN, 6)), WriteOptions::default()).await.unwrap();
        // The run cannot write its metadata (a folder where its file goes): it fails.
        std::fs::create_dir(to.join("davit.redb.partial")).unwrap();
        assert!(s.admin(&root).unwrap().backup(to.clone()).await.is_err());
    });
    s.close();
    std::fs::remove_dir(to.join("davit.redb.partial")).unwrap();
    let s = restored_from(&to, &dir.path().join("restored"), &c);
    runtime().block_on(async {
        let alice = reads_back_and_checks(&s, "/keep.bin", 5).await;
        assert!(s.stat(&alice, "/later.bin").await.is_err(), "the first backup, as it was");
    });
    s.close();
}

/// A key refused beside a `master.key.new` says that a rotation was cut short and how to
/// finish it (found by a probe that killed a rotation at its rename).
#[test]
fn a_refused_key_beside_a_pending_one_says_how_to_finish_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let refused = || Error::Incompatible("the master key does not match this data folder's".into());
    let plain = super::rotate::explain_refusal(refused(), dir.path()).to_string();
    assert!(!plain.contains("rotate-master-key"), "{plain}");
    std::fs::write(dir.path().join("master.key.new"), "00").unwrap();
    let explained = super::rotate::explain_refusal(refused(), dir.path()).to_string();
    assert!(explained.contains("cut short") && explained.contains("master.key.new"), "{explained}");
}
