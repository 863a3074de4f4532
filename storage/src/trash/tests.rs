//! The trash in the core: deletes to it keep content and usage, restore puts back whole
//! trees, purge and expiry free chunks, and what must not be trashed (S3 deletes, versioned
//! buckets, `trash_days` 0) is not. Every test ends with `davit admin check`'s verdict.

use std::time::Duration;

use crate::meta::model::{Kind, Role};
use crate::tests::{assert_consistent, body, chunk_files, open_with, pseudo_random, read_all, user};
use crate::{Conditions, Error, Principal, Storage, Versioning, WriteOptions};

async fn put(s: &Storage, p: &Principal, path: &str, data: &[u8]) {
    let opts = WriteOptions { create_parents: true, ..Default::default() };
    s.write(p, path, body(data), opts).await.unwrap();
}

async fn trash(s: &Storage, p: &Principal, path: &str) {
    s.delete_to_trash(p, path, Conditions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_listed_counted_and_restored_whole() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let big = pseudo_random(3 * 1024 * 1024 + 17, 7);
    put(s, &alice, "/docs/report.bin", &big).await;
    let before = s.usage(alice.user_id).await.unwrap();
    trash(s, &alice, "/docs/report.bin").await;
    assert!(matches!(s.stat(&alice, "/docs/report.bin").await, Err(Error::NotFound(_))));

    let list = s.trash_list(&alice).await.unwrap();
    assert_eq!(list.len(), 1);
    let e = &list[0];
    assert_eq!((e.path.as_str(), e.kind, e.size, e.files), ("/docs/report.bin", Kind::File, big.len() as u64, 1));
    assert_eq!(e.deleted_by_name.as_deref(), Some("alice"));
    assert_eq!(e.expires_at - e.deleted_at, (Duration::from_secs(86_400) * 30).as_nanos() as i64);
    let during = s.usage(alice.user_id).await.unwrap();
    assert_eq!((during.bytes, during.files), (before.bytes, before.files - 1), "the trash keeps counting bytes");
    assert_consistent(s).await;

    let item = s.trash_restore(&alice, e.id, None).await.unwrap();
    assert_eq!(item.name, "report.bin");
    assert_eq!(read_all(s, &alice, "/docs/report.bin", None).await.unwrap(), big);
    assert!(s.trash_list(&alice).await.unwrap().is_empty());
    let after = s.usage(alice.user_id).await.unwrap();
    assert_eq!((after.bytes, after.files), (before.bytes, before.files));
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_folder_comes_back_whole_where_it_was_or_elsewhere() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let big = pseudo_random(2 * 1024 * 1024, 3);
    put(s, &alice, "/top/proj/src/main.rs", b"fn main() {}").await;
    put(s, &alice, "/top/proj/data.bin", &big).await;
    s.mkdir(&alice, "/top/proj/empty").await.unwrap();
    trash(s, &alice, "/top/proj").await;
    assert_consistent(s).await; // the sweeper keeps a trashed folder
    let list = s.trash_list(&alice).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].kind, list[0].files, list[0].size), (Kind::Folder, 2, big.len() as u64 + 12));
    // The parent is gone too: it is made again.
    s.delete(&alice, "/top", Conditions::default()).await.unwrap();
    s.trash_restore(&alice, list[0].id, None).await.unwrap();
    assert_eq!(read_all(s, &alice, "/top/proj/src/main.rs", None).await.unwrap(), b"fn main() {}");
    assert_eq!(read_all(s, &alice, "/top/proj/data.bin", None).await.unwrap(), big);
    assert!(s.stat(&alice, "/top/proj/empty").await.unwrap().is_folder());
    assert_consistent(s).await;

    // Something at the old place now: a conflict, then a restore to a path of one's choice.
    trash(s, &alice, "/top/proj").await;
    s.mkdir(&alice, "/top/proj").await.unwrap();
    let id = s.trash_list(&alice).await.unwrap()[0].id;
    assert!(matches!(s.trash_restore(&alice, id, None).await, Err(Error::Conflict(_))));
    assert_eq!(s.trash_list(&alice).await.unwrap().len(), 1, "a refused restore keeps the entry");
    s.trash_restore(&alice, id, Some("/elsewhere/proj2")).await.unwrap();
    assert_eq!(read_all(s, &alice, "/elsewhere/proj2/data.bin", None).await.unwrap(), big);
    assert!(matches!(s.trash_restore(&alice, id, None).await, Err(Error::NotFound(_))));
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_empty_free_usage_and_chunks() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, Some(5 * 1024 * 1024)).await;
    let big = pseudo_random(3 * 1024 * 1024, 11);
    put(s, &alice, "/a.bin", &big).await;
    trash(s, &alice, "/a.bin").await;
    // Deleting does not free quota: the trash still counts.
    let r = s.write(&alice, "/b.bin", body(&pseudo_random(3 * 1024 * 1024, 12)), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::QuotaExceeded(_))), "{r:?}");
    let id = s.trash_list(&alice).await.unwrap()[0].id;
    s.trash_purge(&alice, id).await.unwrap();
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0);
    s.sweep().await.unwrap();
    assert_eq!(chunk_files(f.dir.path()), 0, "purged content leaves the disk");
    put(s, &alice, "/b.bin", &pseudo_random(3 * 1024 * 1024, 12)).await;

    put(s, &alice, "/dir/c.bin", &pseudo_random(1024 * 1024, 13)).await;
    trash(s, &alice, "/b.bin").await;
    trash(s, &alice, "/dir").await;
    assert_eq!(s.trash_empty(&alice).await.unwrap(), 2);
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0);
    assert_consistent(s).await;
    assert_eq!(chunk_files(f.dir.path()), 0);
    assert!(matches!(s.trash_purge(&alice, id).await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_collected_and_their_chunks_freed() {
    let f = open_with(|c| {
        c.trash_days = 2;
        c.trash_day = Duration::from_millis(300);
    });
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/old/x.bin", &pseudo_random(2 * 1024 * 1024, 21)).await;
    put(s, &alice, "/y.bin", &pseudo_random(2 * 1024 * 1024, 22)).await;
    trash(s, &alice, "/old").await;
    trash(s, &alice, "/y.bin").await;
    assert_eq!(s.trash_list(&alice).await.unwrap().len(), 2);
    // Collected by the sweeper's own rounds (every 500 ms here): bounded wait.
    let mut left = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = s.trash_list(&alice).await.unwrap().len();
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "expired entries are collected");
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0);
    assert_consistent(s).await;
    assert_eq!(chunk_files(f.dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_deletes_versioned_buckets_and_zero_days_do_not_trash() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/bucket/k", b"s3").await;
    s.delete_object(&alice, "/bucket/k", 1).await.unwrap();
    assert!(s.trash_list(&alice).await.unwrap().is_empty(), "an S3 delete keeps S3 semantics");

    s.mkdir(&alice, "/v").await.unwrap();
    s.set_versioning(&alice, "/v", Versioning::Enabled).await.unwrap();
    put(s, &alice, "/v/dir/k", b"one").await;
    trash(s, &alice, "/v/dir/k").await;
    trash(s, &alice, "/v/dir").await;
    assert!(s.trash_list(&alice).await.unwrap().is_empty(), "a versioned bucket keeps history instead");
    let versions = s.versions_of(&alice, "/v/dir/k").await.unwrap();
    assert!(versions.iter().any(|v| v.marker), "a delete marker");
    trash(s, &alice, "/v").await;
    assert!(s.trash_list(&alice).await.unwrap().is_empty(), "a versioned bucket's folder goes with its history");
    assert_consistent(s).await;

    let g = open_with(|c| c.trash_days = 0);
    let s = &g.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/a.bin", &pseudo_random(1024 * 1024, 5)).await;
    trash(s, &alice, "/a.bin").await;
    assert!(s.trash_list(&alice).await.unwrap().is_empty(), "0 days: deletes are final");
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0);
    assert_consistent(s).await;
    assert_eq!(chunk_files(g.dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantees_delete_goes_to_the_owners_trash_and_grants_stay_ended() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let carol = user(s, "carol", Role::User, None).await;
    put(s, &alice, "/box/f.txt", b"alice's").await;
    put(s, &alice, "/box/sub/g.txt", b"below").await;
    s.share(&alice, "/box", "bob", true).await.unwrap();
    s.share(&alice, "/box/sub", "carol", false).await.unwrap();
    s.delete_to_trash(&bob, "/shared/alice/box/f.txt", Conditions::default()).await.unwrap();
    s.delete_to_trash(&bob, "/shared/alice/box/sub", Conditions::default()).await.unwrap();
    assert!(s.trash_list(&bob).await.unwrap().is_empty());
    let list = s.trash_list(&alice).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|e| e.deleted_by == bob.user_id && e.deleted_by_name.as_deref() == Some("bob")));
    assert!(s.read(&carol, "/shared/alice/sub/g.txt", None).await.is_err(), "the grant ended at the delete");
    for e in &list {
        s.trash_restore(&alice, e.id, None).await.unwrap();
    }
    assert_eq!(read_all(s, &alice, "/box/sub/g.txt", None).await.unwrap(), b"below");
    assert!(s.read(&carol, "/shared/alice/sub/g.txt", None).await.is_err(), "and does not come back");
    assert!(s.trash_restore(&bob, list[0].id, None).await.is_err(), "only the owner restores");
    assert_consistent(s).await;

    // A user who goes takes their trash along.
    trash(s, &alice, "/box").await;
    s.delete_user(alice.user_id).await.unwrap();
    assert_consistent(s).await;
    assert_eq!(chunk_files(f.dir.path()), 0);
}

/// A process told not to collect (an offline admin command, which cannot know the server's
/// setting) keeps even expired entries, through its sweeper rounds and an explicit sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_does_not_collect_keeps_expired_entries() {
    let f = open_with(|c| {
        c.trash_days = 1;
        c.trash_day = Duration::from_millis(1);
        c.trash_collect = false;
    });
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/a.bin", b"kept").await;
    trash(s, &alice, "/a.bin").await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // past two sweeper rounds
    s.sweep().await.unwrap();
    let list = s.trash_list(&alice).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].expires_at < crate::meta::model::now_nanos(), "expired, and still kept");
    assert_consistent(s).await;
}

/// Two collections at once, as on two nodes sharing the stores: every entry is purged by
/// exactly one of them, and the chunks go through the grave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_at_once_purge_each_entry_once_on_several_nodes() {
    let f = open_with(|c| c.chunk_grace = Some(Duration::from_secs(3600)));
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    for i in 0..30 {
        put(s, &alice, &format!("/f{i:02}.bin"), &pseudo_random(70_000, i)).await;
        trash(s, &alice, &format!("/f{i:02}.bin")).await;
    }
    for d in ["/d1", "/d2"] {
        put(s, &alice, &format!("{d}/x.bin"), &pseudo_random(300_000, 99)).await;
        trash(s, &alice, d).await;
    }
    // The configured 30 days keep the sweeper's own rounds away; these collect everything.
    let run =
        |s: Storage| tokio::task::spawn_blocking(move || super::collect(&s.core.db, &s.core.collector, Duration::ZERO));
    let (a, b) = tokio::join!(run(s.clone()), run(s.clone()));
    assert_eq!(a.unwrap().unwrap() + b.unwrap().unwrap(), 32);
    assert!(s.trash_list(&alice).await.unwrap().is_empty());
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0);
    s.sweep().await.unwrap();
    let r = s.check().await.unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.chunks, r.orphans), (0, 0));
    assert!(r.waiting > 0, "freed chunk files wait out the grace period");
}

crate::tests::also_on_postgres!(
    collections_at_once_purge_each_entry_once_on_several_nodes,
    a_deleted_file_is_listed_counted_and_restored_whole,
    a_deleted_folder_comes_back_whole_where_it_was_or_elsewhere,
    purge_and_empty_free_usage_and_chunks,
    expired_entries_are_collected_and_their_chunks_freed,
    s3_deletes_versioned_buckets_and_zero_days_do_not_trash,
    a_grantees_delete_goes_to_the_owners_trash_and_grants_stay_ended,
);
