//! The lock rules over the tables, and through the core as front ends use it. Nodes share
//! one store but a redb file opens once, so "another node" here is another handle on the
//! same store, opened after the first let go of it: what binds it can only be in tables.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::meta::db::{Db, LOCK_EXPIRY, LOCKS, LOCKS_BELOW, LOCKS_BY_ITEM};
use crate::meta::model::Role;
use crate::tests::{config, open_with, user};
use crate::{Storage, WriteOptions};

fn db_at(path: &std::path::Path) -> Db {
    let db = Db::open(path, 1 << 20, |_| {}).unwrap();
    db.write_sync(|ctx| crate::meta::db::create_tables(ctx.txn)).unwrap();
    db
}

fn chain(ids: &[u64]) -> Chain {
    Chain { ids: ids.to_vec(), complete: true }
}

fn req(deep: bool, timeout: Option<Duration>) -> LockRequest {
    LockRequest { href: "/dav/x".into(), timeout, deep, ..Default::default() }
}

fn now() -> u64 {
    rows::unix_nanos(SystemTime::now())
}

/// Takes a lock in its own transaction, as `Storage::lock` does.
fn take_on(db: &Db, ids: &[u64], r: LockRequest) -> std::result::Result<LockInfo, Box<LockInfo>> {
    let token = format!("urn:uuid:{}", uuid_v4());
    db.write_sync(|ctx| take(ctx.txn, &chain(ids), "/x", &token, &r, now())).unwrap().0
}

/// What a change of `ids` by the holder of `tokens` would break, read in its own snapshot.
fn conflict(db: &Db, c: &Chain, deep: bool, tokens: &[String]) -> Option<LockInfo> {
    db.read_sync(|t| {
        let locks = rows::open_read(t)?.candidates(c, deep, now())?;
        Ok(check_in(&locks, c, None, true, deep, tokens, false).err().map(|l| *l))
    })
    .unwrap()
}

fn applies(db: &Db, c: &Chain, token: &str) -> bool {
    db.read_sync(|t| {
        let locks = rows::open_read(t)?.candidates(c, false, now())?;
        Ok(covering(&locks, c).any(|l| l.token == token))
    })
    .unwrap()
}

fn unlock_on(db: &Db, ids: &[u64], token: &str) -> bool {
    db.write_sync(|ctx| release(ctx.txn, &chain(ids), token, "alice", true, now())).unwrap().0
}

fn rows_in(db: &Db) -> [u64; 4] {
    db.read_sync(|t| {
        Ok([
            t.open_table(LOCKS)?.len()?,
            t.open_table(LOCKS_BY_ITEM)?.len()?,
            t.open_table(LOCKS_BELOW)?.len()?,
            t.open_table(LOCK_EXPIRY)?.len()?,
        ])
    })
    .unwrap()
}

#[test]
fn a_token_applies_only_while_its_lock_is_on_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_at(&dir.path().join("l.redb"));
    let file = chain(&[1, 2, 3]);
    let sibling = chain(&[1, 2, 4]);
    let unmapped_below = Chain { ids: vec![1, 2], complete: false };
    let l = take_on(&db, &[1, 2, 3], req(false, None)).unwrap();
    assert!(applies(&db, &file, &l.token));
    assert!(!applies(&db, &sibling, &l.token), "another resource");
    assert!(!applies(&db, &file, "urn:uuid:00000000-0000-4000-8000-000000000000"), "unknown");
    assert!(!applies(&db, &file, "opaquelocktoken:anything"), "unknown");
    assert!(unlock_on(&db, &[1, 2, 3], &l.token));
    assert!(!applies(&db, &file, &l.token), "released");

    // A deep lock on a folder is on everything below it, mapped or not.
    let folder = take_on(&db, &[1, 2], req(true, None)).unwrap();
    assert!(applies(&db, &file, &folder.token));
    assert!(applies(&db, &unmapped_below, &folder.token));
    assert!(!applies(&db, &chain(&[1]), &folder.token), "not above it");
    // A shallow lock on a folder is not on its children.
    assert!(unlock_on(&db, &[1, 2], &folder.token));
    let shallow = take_on(&db, &[1, 2], req(false, None)).unwrap();
    assert!(!applies(&db, &file, &shallow.token));
}

#[test]
fn a_deep_lock_binds_every_change_below_it_and_only_its_token_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_at(&dir.path().join("l.redb"));
    let folder = take_on(&db, &[1, 2], req(true, None)).unwrap();
    let below = chain(&[1, 2, 3, 4]);
    let new_name = Chain { ids: vec![1, 2, 3], complete: false };
    assert_eq!(conflict(&db, &below, false, &[]).map(|l| l.token), Some(folder.token.clone()));
    assert!(conflict(&db, &new_name, false, &[]).is_some(), "a name not there yet is below it too");
    assert!(conflict(&db, &below, false, std::slice::from_ref(&folder.token)).is_none(), "its holder writes");
    assert!(conflict(&db, &chain(&[1, 5]), false, &[]).is_none(), "a sibling is free");
    // Deleting the drive root (deep) would break it from above.
    assert!(conflict(&db, &chain(&[1]), true, &[]).is_some());
    assert!(conflict(&db, &chain(&[1]), false, &[]).is_none(), "a shallow change of the root does not");
    // Another lock on the same item or below it is refused, naming the lock in the way.
    let refused = take_on(&db, &[1, 2, 3], req(false, None)).unwrap_err();
    assert_eq!(refused.token, folder.token);
    assert!(take_on(&db, &[1], req(true, None)).is_err(), "a deep lock above it is refused too");

    assert!(!unlock_on(&db, &[1, 2], "urn:uuid:00000000-0000-4000-8000-000000000000"), "an unknown token");
    assert!(!unlock_on(&db, &[1, 5], &folder.token), "a path it is not on");
    assert!(conflict(&db, &below, false, &[]).is_some(), "still locked");
    assert!(unlock_on(&db, &[1, 2, 3, 4], &folder.token), "released from below, where it is too");
    assert!(conflict(&db, &below, false, &[]).is_none());
    assert_eq!(rows_in(&db), [0, 0, 0, 0], "no row left behind");
}

#[test]
fn shared_locks_admit_each_other_and_bind_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_at(&dir.path().join("l.redb"));
    let shared = LockRequest { shared: true, ..req(false, None) };
    let a = take_on(&db, &[1, 2], shared.clone()).unwrap();
    let b = take_on(&db, &[1, 2], shared).unwrap();
    assert!(take_on(&db, &[1, 2], req(false, None)).is_err(), "no exclusive lock beside them");
    assert!(conflict(&db, &chain(&[1, 2]), false, &[]).is_some());
    assert!(conflict(&db, &chain(&[1, 2]), false, std::slice::from_ref(&a.token)).is_none());
    assert!(conflict(&db, &chain(&[1, 2]), false, std::slice::from_ref(&b.token)).is_none());
}

#[test]
fn expired_locks_are_absent_and_the_next_lock_operation_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_at(&dir.path().join("l.redb"));
    let c = chain(&[1, 5]);
    let l = take_on(&db, &[1, 5], req(true, Some(Duration::from_millis(1)))).unwrap();
    assert_eq!(rows_in(&db), [1, 1, 1, 1]);
    std::thread::sleep(Duration::from_millis(20));
    assert!(!applies(&db, &c, &l.token));
    assert!(conflict(&db, &c, true, &[]).is_none());
    assert!(!unlock_on(&db, &[1, 5], &l.token), "an expired lock is not released: it is gone");
    assert_eq!(rows_in(&db), [0, 0, 0, 0], "that operation removed it");

    // Refreshing moves the expiry: the lock outlives its first timeout.
    let l = take_on(&db, &[1, 6], req(false, Some(Duration::from_millis(300)))).unwrap();
    let renewed = db
        .write_sync(|ctx| renew(ctx.txn, &chain(&[1, 6]), &l.token, Some(Duration::from_secs(60)), now()))
        .unwrap()
        .0
        .unwrap();
    assert_eq!(renewed.timeout, Some(Duration::from_secs(60)));
    assert!(renewed.expires > l.expires);
    let wrong = db.write_sync(|ctx| renew(ctx.txn, &chain(&[1, 6]), "urn:uuid:x", None, now())).unwrap().0;
    assert!(wrong.is_none(), "only its token refreshes it");
    std::thread::sleep(Duration::from_millis(400));
    assert!(applies(&db, &chain(&[1, 6]), &l.token), "live past its first timeout");
    assert_eq!(rows_in(&db)[3], 1, "one expiry row, the new one");
}

#[test]
fn a_lock_written_through_one_handle_binds_a_check_through_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.redb");
    let db = db_at(&path);
    let l = take_on(&db, &[1, 2], req(true, None)).unwrap();
    db.close();
    drop(db);
    let other = Db::open(&path, 1 << 20, |_| {}).unwrap();
    let found = conflict(&other, &chain(&[1, 2, 3]), false, &[]).expect("the lock is in the store");
    assert_eq!(found.token, l.token);
    assert_eq!(found.chain, [1, 2]);
    assert!(found.deep);
}

// Through the core.

fn body(data: &'static [u8]) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin + Send + 'static {
    futures::stream::iter([Ok(Bytes::from_static(data))])
}

fn locked<T: std::fmt::Debug>(r: crate::Result<T>) -> bool {
    matches!(r, Err(Error::Locked(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_on_a_folder_binds_every_change_below_it_until_released() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/dir").await.unwrap();
    s.mkdir(&alice, "/dir/sub").await.unwrap();
    s.write(&alice, "/dir/sub/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    let l = s.lock(&alice, "/dir", LockRequest { deep: true, ..Default::default() }).await.unwrap();
    // Without its token, nothing below changes, whatever the operation.
    assert!(locked(s.write(&alice, "/dir/sub/a.txt", body(b"b"), WriteOptions::default()).await));
    assert!(locked(s.write(&alice, "/dir/new.txt", body(b"b"), WriteOptions::default()).await));
    assert!(locked(s.mkdir(&alice, "/dir/sub/x").await));
    assert!(locked(s.delete(&alice, "/dir/sub/a.txt", Default::default()).await));
    assert!(locked(s.delete(&alice, "/dir", Default::default()).await));
    assert!(locked(s.rename(&alice, "/dir/sub/a.txt", "/a.txt", false).await));
    assert!(locked(s.copy(&alice, "/dir/sub", "/dir/copy", false).await));
    assert!(locked(s.set_modified(&alice, "/dir/sub/a.txt", 1).await));
    assert!(locked(s.create_upload(&alice, "/dir/up.bin", WriteOptions::default()).await));
    assert!(locked(s.check_delete(&alice, "/dir/sub").await));
    // Outside it, everything does; copying out of it too (a read).
    s.write(&alice, "/free.txt", body(b"f"), WriteOptions::default()).await.unwrap();
    s.copy(&alice, "/dir/sub/a.txt", "/copy.txt", false).await.unwrap();
    assert!(s.conflicting_lock(&alice, "/dir/sub/a.txt", None, true, false, &[]).await.is_some());
    assert_eq!(s.discover_locks(&alice, "/dir/sub/a.txt").await.len(), 1);
    assert!(s.lock_token_applies(&alice, "/dir/sub/a.txt", &l.token).await.unwrap());

    // With its token, the holder writes.
    let mut holder = alice.clone();
    holder.set_lock_tokens(vec![l.token.clone()]);
    s.write(&holder, "/dir/sub/a.txt", body(b"held"), WriteOptions::default()).await.unwrap();

    assert!(!s.unlock(&alice, "/dir", "urn:uuid:00000000-0000-4000-8000-000000000000").await.unwrap());
    assert!(locked(s.mkdir(&alice, "/dir/sub/x").await), "a wrong token released nothing");
    assert!(s.unlock(&alice, "/dir", &l.token).await.unwrap());
    s.mkdir(&alice, "/dir/sub/x").await.unwrap();
    assert!(s.discover_locks(&alice, "/dir").await.is_empty());
    assert!(!s.any_locks().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_or_moving_a_locked_item_drops_its_locks() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/dir").await.unwrap();
    s.write(&alice, "/dir/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    s.write(&alice, "/b.txt", body(b"b"), WriteOptions::default()).await.unwrap();
    let a = s.lock(&alice, "/dir/a.txt", LockRequest::default()).await.unwrap();
    let b = s.lock(&alice, "/b.txt", LockRequest::default()).await.unwrap();
    let mut holder = alice.clone();
    holder.set_lock_tokens(vec![a.token.clone(), b.token.clone()]);
    s.delete(&holder, "/dir", Default::default()).await.unwrap();
    s.rename(&holder, "/b.txt", "/c.txt", false).await.unwrap();
    assert!(!s.any_locks().await.unwrap(), "no lock is left on a deleted or moved item");
    s.write(&alice, "/c.txt", body(b"c"), WriteOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_while_a_write_reads_its_body_refuses_it_at_commit() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/dir").await.unwrap();
    // A body that pauses after its first piece until told to go on.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = futures::stream::unfold((0, Some(started_tx), Some(go_rx)), |(n, started, go)| async move {
        match n {
            0 => {
                let _ = started.map(|t| t.send(()));
                Some((Ok(Bytes::from_static(b"first ")), (1, None, go)))
            }
            1 => {
                let _ = go?.await;
                Some((Ok(Bytes::from_static(b"second")), (2, None, None)))
            }
            _ => None,
        }
    });
    let writer = {
        let (s, alice) = (s.clone(), alice.clone());
        tokio::spawn(async move { s.write(&alice, "/dir/late.txt", Box::pin(slow), WriteOptions::default()).await })
    };
    tokio::time::timeout(Duration::from_secs(10), started_rx).await.unwrap().unwrap();
    // The write passed its early check and is reading its body: now the folder is locked.
    s.lock(&alice, "/dir", LockRequest { deep: true, ..Default::default() }).await.unwrap();
    go_tx.send(()).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    assert!(locked(r), "the commit read the lock taken after the early check");
    assert!(s.stat(&alice, "/dir/late.txt").await.is_err(), "nothing of it is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_outlives_the_handle_that_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let s = Storage::open(config(dir.path())).unwrap();
        let alice = user(&s, "alice", Role::User, None).await;
        s.write(&alice, "/f.txt", body(b"f"), WriteOptions::default()).await.unwrap();
        let l = s.lock(&alice, "/f.txt", LockRequest::default()).await.unwrap();
        s.close();
        l.token
    };
    // The first handle's threads let the file go shortly after close.
    let mut other = None;
    for _ in 0..50 {
        match Storage::open(config(dir.path())) {
            Ok(s) => {
                other = Some(s);
                break;
            }
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    let s = other.expect("the store opens again");
    let alice = Principal::of(&s.find_user("alice").await.unwrap());
    assert!(locked(s.write(&alice, "/f.txt", body(b"g"), WriteOptions::default()).await));
    assert_eq!(s.discover_locks(&alice, "/f.txt").await[0].token, token);
    assert!(s.unlock(&alice, "/f.txt", &token).await.unwrap());
    s.write(&alice, "/f.txt", body(b"g"), WriteOptions::default()).await.unwrap();
}

/// `stat_noting_locks` answers what `stat` does, and says whether any lock is stored only
/// where it reads that in the same round trip (PostgreSQL); a lock it saw none of is still
/// found by the core's own checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stat_notes_whether_any_lock_is_stored() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/dir").await.unwrap();
    s.write(&alice, "/dir/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    let pg = s.core.db.is_postgres();
    let (item, none) = s.stat_noting_locks(&alice, "/dir/a.txt").await;
    assert_eq!(item.unwrap().id, s.stat(&alice, "/dir/a.txt").await.unwrap().id);
    assert_eq!(none, pg.then_some(true));
    let (missing, none) = s.stat_noting_locks(&alice, "/dir/b.txt").await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    assert_eq!(none, pg.then_some(true), "noted for a path with nothing there too");
    let l = s.lock(&alice, "/dir/a.txt", LockRequest::default()).await.unwrap();
    assert_eq!(s.stat_noting_locks(&alice, "/dir/b.txt").await.1, pg.then_some(false));
    assert!(locked(s.write(&alice, "/dir/a.txt", body(b"b"), WriteOptions::default()).await));
    assert!(s.unlock(&alice, "/dir/a.txt", &l.token).await.unwrap());
    assert_eq!(s.stat_noting_locks(&alice, "/dir/a.txt").await.1, pg.then_some(true));
}

crate::tests::pg::also_on_postgres!(a_stat_notes_whether_any_lock_is_stored);

/// Found by probing: a LOCK without a Timeout header, or a refresh asking for Infinite,
/// made a lock that never expired (it outlived a revoked grant, a deleted account and
/// restarts). Every lock now has a timeout, at most the bound.
#[test]
fn every_lock_expires_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_at(&dir.path().join("locks.redb"));
    let ten_min = Some(Duration::from_secs(600));
    let l = take_on(&db, &[1, 2], req(false, None)).unwrap();
    assert_eq!((l.timeout, l.expires.is_some()), (ten_min, true));
    let l = take_on(&db, &[1, 3], req(false, Some(Duration::from_secs(99_999_999)))).unwrap();
    assert_eq!(l.timeout, ten_min);
    let l = take_on(&db, &[1, 4], req(false, Some(Duration::from_secs(30)))).unwrap();
    assert_eq!(l.timeout, Some(Duration::from_secs(30)), "a shorter one is kept");
    let shared = take_on(&db, &[1, 5], LockRequest { shared: true, ..req(false, None) }).unwrap();
    assert_eq!(shared.timeout, Some(Duration::from_secs(24 * 3600)));
    let renewed = db.write_sync(|ctx| renew(ctx.txn, &chain(&[1, 4]), &l.token, None, now())).unwrap().0.unwrap();
    assert_eq!((renewed.timeout, renewed.expires.is_some()), (ten_min, true), "a refresh without one too");

    // A row as davits before the bound stored a LOCK without `Timeout` (no expiry): it has
    // lapsed, binding nothing, and a new lock on its item is taken.
    let legacy = rows::LockRow {
        token: "urn:uuid:legacy".into(),
        chain: vec![1, 9],
        path: "/old".into(),
        href: "/dav/old".into(),
        principal: Some("alice".into()),
        owner_xml: None,
        timeout: None,
        expires: None,
        shared: false,
        deep: true,
    };
    db.write_sync(|ctx| rows::insert(ctx.txn, &legacy)).unwrap();
    assert!(conflict(&db, &chain(&[1, 9]), false, &[]).is_none(), "a lock stored without expiry binds nothing");
    take_on(&db, &[1, 9], req(false, None)).unwrap();
}

/// RFC 4918 §7.4, found missing by probing: a Depth 0 lock on a folder guards its membership
/// (members added, removed, moved in or out) but not what its members hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_depth_0_lock_on_a_folder_guards_its_members_coming_and_going() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/dir").await.unwrap();
    s.mkdir(&alice, "/dir/sub").await.unwrap();
    s.write(&alice, "/dir/m.txt", body(b"m"), WriteOptions::default()).await.unwrap();
    s.write(&alice, "/elsewhere.txt", body(b"e"), WriteOptions::default()).await.unwrap();
    let l = s.lock(&alice, "/dir", LockRequest { deep: false, ..Default::default() }).await.unwrap();
    assert!(locked(s.write(&alice, "/dir/new.txt", body(b"n"), WriteOptions::default()).await));
    assert!(locked(s.mkdir(&alice, "/dir/x").await));
    assert!(locked(s.delete(&alice, "/dir/m.txt", Default::default()).await));
    assert!(locked(s.rename(&alice, "/dir/m.txt", "/out.txt", false).await));
    assert!(locked(s.rename(&alice, "/elsewhere.txt", "/dir/in.txt", false).await));
    assert!(locked(s.copy(&alice, "/elsewhere.txt", "/dir/in.txt", false).await));
    // What members hold, and what is deeper down, is not the folder's membership.
    s.write(&alice, "/dir/m.txt", body(b"changed"), WriteOptions::default()).await.unwrap();
    s.write(&alice, "/dir/sub/deeper.txt", body(b"d"), WriteOptions::default()).await.unwrap();
    let mut holder = alice.clone();
    holder.set_lock_tokens(vec![l.token.clone()]);
    s.write(&holder, "/dir/new.txt", body(b"n"), WriteOptions::default()).await.unwrap();
    s.delete(&holder, "/dir/new.txt", Default::default()).await.unwrap();
}
