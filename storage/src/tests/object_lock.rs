//! Object lock in the core: retention and legal hold protect a version from every path that
//! destroys one (deleting the version, MOVE, suspending, deleting the bucket or its owner),
//! GOVERNANCE yields to the owner's bypass only, and retention is extended, never shortened.

use super::{assert_consistent, body, open, user};
use crate::meta::model::{Role, now_nanos};
use crate::{
    Conditions, Error, LockMode, LockPeriod, ObjectCopy, ObjectLock, Principal, Storage, VersionLock, Versioning,
    WriteOptions,
};

const HOUR: i64 = 3_600 * 1_000_000_000;

async fn put(s: &Storage, p: &Principal, path: &str, data: &[u8]) -> String {
    let opts = WriteOptions { create_parents: true, ..Default::default() };
    let item = s.write(p, path, body(data), opts).await.unwrap();
    s.current_version_id(item.id).await.unwrap().expect("a version id")
}

fn forbidden<T: std::fmt::Debug>(r: crate::Result<T>, what: &str) -> String {
    match r {
        Err(Error::Forbidden(m)) => m,
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_legal_hold_protect_versions_everywhere() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/plain").await.unwrap();
    s.write(&p, "/plain/k", body(b"x"), WriteOptions::default()).await.unwrap();
    let e = s.set_retention(&p, "/plain/k", None, Some((LockMode::Governance, now_nanos() + HOUR)), false).await;
    assert!(matches!(e, Err(Error::InvalidInput(m)) if m.contains("ObjectLockConfiguration")));

    s.mkdir(&p, "/lk").await.unwrap();
    s.enable_object_lock(&p, "/lk").await.unwrap();
    assert_eq!(s.versioning(&p, "/lk").await.unwrap(), Versioning::Enabled);
    assert!(matches!(s.set_versioning(&p, "/lk", Versioning::Suspended).await, Err(Error::Conflict(_))));
    assert_eq!(s.object_lock(&p, "/lk").await.unwrap(), Some(ObjectLock::default()));
    assert_eq!(s.object_lock(&p, "/plain").await.unwrap(), None);

    // COMPLIANCE: no one, not even with the bypass; extended, never shortened.
    let v1 = put(s, &p, "/lk/c", b"one").await;
    let until = now_nanos() + HOUR;
    s.set_retention(&p, "/lk/c", None, Some((LockMode::Compliance, until)), false).await.unwrap();
    put(s, &p, "/lk/c", b"two").await; // an overwrite keeps v1 as history: allowed
    let m = forbidden(s.delete_version(&p, "/lk/c", &v1, true).await, "delete a COMPLIANCE version");
    assert!(m.contains("COMPLIANCE") && m.contains("c"), "{m}");
    forbidden(s.set_retention(&p, "/lk/c", Some(&v1), Some((LockMode::Compliance, until - 1)), true).await, "shorten");
    forbidden(s.set_retention(&p, "/lk/c", Some(&v1), Some((LockMode::Governance, until)), true).await, "weaken");
    forbidden(s.set_retention(&p, "/lk/c", Some(&v1), None, true).await, "remove");
    s.set_retention(&p, "/lk/c", Some(&v1), Some((LockMode::Compliance, until + HOUR)), false).await.unwrap();
    let st = s.lock_state(&p, "/lk/c", Some(&v1)).await.unwrap();
    assert_eq!(st.retention.map(|r| (r.mode, r.until)), Some((LockMode::Compliance, until + HOUR)));
    // A plain delete leaves a delete marker, as S3.
    s.delete(&p, "/lk/c", Conditions::default()).await.unwrap();
    assert!(s.latest_marker(&p, "/lk/c").await.unwrap().is_some());

    // GOVERNANCE: only with the bypass, and only the owner or an admin gets it.
    put(s, &p, "/lk/g", b"g").await;
    s.set_retention(&p, "/lk/g", None, Some((LockMode::Governance, now_nanos() + HOUR)), false).await.unwrap();
    let vg = put(s, &p, "/lk/g", b"g2").await;
    let vg_old = s.versions_of(&p, "/lk/g").await.unwrap()[1].id.clone();
    assert_ne!(vg, vg_old);
    forbidden(s.delete_version(&p, "/lk/g", &vg_old, false).await, "GOVERNANCE without bypass");
    forbidden(s.set_retention(&p, "/lk/g", Some(&vg_old), None, false).await, "shorten GOVERNANCE");
    // A grantee with write access neither sets a lock nor gets the bypass.
    let bob = user(s, "bob", Role::User, None).await;
    s.share(&p, "/lk", "bob", true).await.unwrap();
    let until = now_nanos() + 2 * HOUR;
    forbidden(
        s.set_retention(&bob, "/shared/alice/lk/g", None, Some((LockMode::Compliance, until)), false).await,
        "grantee",
    );
    forbidden(s.set_legal_hold(&bob, "/shared/alice/lk/g", None, true).await, "grantee's legal hold");
    forbidden(s.delete_version(&bob, "/shared/alice/lk/g", &vg_old, true).await, "grantee's bypass");
    s.delete_version(&p, "/lk/g", &vg_old, true).await.unwrap();

    // Legal hold: no one, until it is taken off.
    let vh = put(s, &p, "/lk/h", b"h").await;
    s.set_legal_hold(&p, "/lk/h", None, true).await.unwrap();
    assert!(s.lock_state(&p, "/lk/h", None).await.unwrap().legal_hold);
    forbidden(s.rename(&p, "/lk/h", "/lk/h2", false).await, "MOVE a held version away");
    let m = forbidden(s.delete_version(&p, "/lk/h", &vh, true).await, "delete a held version");
    assert!(m.contains("legal hold"), "{m}");
    s.set_legal_hold(&p, "/lk/h", None, false).await.unwrap();
    s.delete_version(&p, "/lk/h", &vh, false).await.unwrap();

    // Default retention applies to new versions.
    let cfg = ObjectLock { default: Some((LockMode::Governance, LockPeriod::Days(1))) };
    s.set_object_lock(&p, "/lk", cfg.clone()).await.unwrap();
    assert_eq!(s.object_lock(&p, "/lk").await.unwrap(), Some(cfg));
    let vd = put(s, &p, "/lk/d", b"d").await;
    let r = s.lock_state(&p, "/lk/d", Some(&vd)).await.unwrap().retention.expect("default retention");
    assert_eq!(r.mode, LockMode::Governance);
    assert!((r.until - now_nanos() - 24 * HOUR).abs() < HOUR, "about a day");

    // Deleting the bucket or its owner is refused, naming what holds it.
    let m = forbidden(s.delete(&p, "/lk", Conditions::default()).await, "delete a locked bucket");
    assert!(m.contains("c (version") && m.contains("d (version"), "{m}");
    let m = forbidden(s.delete_user(p.user_id).await, "delete a user with locked versions");
    assert!(m.contains("c (version"), "{m}");
    let m = forbidden(s.delete_user_with(p.user_id, true).await, "the bypass does not reach COMPLIANCE");
    assert!(m.contains("c (version") && !m.contains("d (version"), "GOVERNANCE yields to the bypass: {m}");
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_yields_to_an_admins_bypass_when_deleting_a_user() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/lk").await.unwrap();
    s.enable_object_lock(&p, "/lk").await.unwrap();
    put(s, &p, "/lk/k", b"k").await;
    put(s, &p, "/lk/k", b"k2").await;
    let old = s.versions_of(&p, "/lk/k").await.unwrap()[1].id.clone();
    s.set_retention(&p, "/lk/k", Some(&old), Some((LockMode::Governance, now_nanos() + HOUR)), false).await.unwrap();
    s.set_retention(&p, "/lk/k", None, Some((LockMode::Governance, now_nanos() + HOUR)), false).await.unwrap();
    let m = forbidden(s.delete_user(p.user_id).await, "GOVERNANCE without the bypass");
    assert!(m.contains("k (version"), "{m}");
    s.delete_user_with(p.user_id, true).await.unwrap();
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_end_when_retention_ends() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/lk").await.unwrap();
    s.enable_object_lock(&p, "/lk").await.unwrap();
    let v = put(s, &p, "/lk/k", b"k").await;
    s.set_retention(&p, "/lk/k", None, Some((LockMode::Compliance, now_nanos() + 1_500_000_000)), false).await.unwrap();
    forbidden(s.delete_user(p.user_id).await, "delete a user while retention lasts");
    tokio::time::sleep(std::time::Duration::from_millis(1_700)).await;
    s.delete_version(&p, "/lk/k", &v, false).await.unwrap();
    put(s, &p, "/lk/k2", b"k").await;
    s.delete_user(p.user_id).await.unwrap();
    assert_consistent(s).await;
}

/// The lock a write asks for (S3's `x-amz-object-lock-*` on PutObject, CopyObject and
/// CreateMultipartUpload) commits with its version: a write whose lock is refused leaves
/// nothing behind, and one that succeeds is protected the moment it is visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writes_lock_commits_with_its_version() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/lk").await.unwrap();
    s.enable_object_lock(&p, "/lk").await.unwrap();
    s.set_object_lock(&p, "/lk", ObjectLock { default: Some((LockMode::Governance, LockPeriod::Days(1))) })
        .await
        .unwrap();
    let until = now_nanos() + HOUR;
    let both = VersionLock { retention: Some((LockMode::Compliance, until)), legal_hold: Some(true) };
    let locked = |lock| WriteOptions { create_parents: true, lock, ..Default::default() };

    // PutObject: the version is retained and held by its own write, replacing the default.
    let item = s.write(&p, "/lk/a", body(b"a"), locked(both)).await.unwrap();
    let va = s.current_version_id(item.id).await.unwrap().expect("a version id");
    let st = s.lock_state(&p, "/lk/a", Some(&va)).await.unwrap();
    assert_eq!(st.retention.map(|r| (r.mode, r.until)), Some((LockMode::Compliance, until)));
    assert!(st.legal_hold);
    forbidden(s.delete_version(&p, "/lk/a", &va, true).await, "delete a version locked by its write");

    // A write whose lock is refused is refused whole: nothing is written, the current
    // version stays, and no version is added.
    let bob = user(s, "bob", Role::User, None).await;
    s.share(&p, "/lk", "bob", true).await.unwrap();
    forbidden(s.write(&bob, "/shared/alice/lk/a", body(b"b"), locked(both)).await, "a grantee's locked overwrite");
    forbidden(s.write(&bob, "/shared/alice/lk/new", body(b"b"), locked(both)).await, "a grantee's locked write");
    assert!(matches!(s.stat(&p, "/lk/new").await, Err(Error::NotFound(_))), "the refused write left a file");
    assert_eq!(s.versions_of(&p, "/lk/a").await.unwrap().len(), 1, "the refused overwrite left a version");
    let past = VersionLock { retention: Some((LockMode::Governance, now_nanos() - HOUR)), legal_hold: None };
    let e = s.write(&p, "/lk/late", body(b"x"), locked(past)).await;
    assert!(matches!(e, Err(Error::InvalidInput(_))), "{e:?}");
    assert!(matches!(s.stat(&p, "/lk/late").await, Err(Error::NotFound(_))));
    s.mkdir(&p, "/plain").await.unwrap();
    let e = s.write(&p, "/plain/k", body(b"x"), locked(both)).await;
    assert!(matches!(e, Err(Error::InvalidInput(ref m)) if m.contains("ObjectLockConfiguration")), "{e:?}");
    assert!(matches!(s.stat(&p, "/plain/k").await, Err(Error::NotFound(_))));

    // CopyObject, from the current object and from a version.
    let hold = VersionLock { retention: None, legal_hold: Some(true) };
    let (copy, _) = s.copy_object(&p, "/lk/a", "/lk/c", ObjectCopy { lock: hold, ..Default::default() }).await.unwrap();
    let vc = s.current_version_id(copy.id).await.unwrap().expect("a version id");
    let st = s.lock_state(&p, "/lk/c", Some(&vc)).await.unwrap();
    assert!(st.legal_hold);
    assert_eq!(st.retention.map(|r| r.mode), Some(LockMode::Governance), "the default retention stays");
    forbidden(
        s.copy_object(
            &bob,
            "/shared/alice/lk/a",
            "/shared/alice/lk/d",
            ObjectCopy { lock: hold, ..Default::default() },
        )
        .await,
        "grantee's copy",
    );
    assert!(matches!(s.stat(&p, "/lk/d").await, Err(Error::NotFound(_))));
    let restored = s.copy_version_locked(&p, "/lk/a", &va, "/lk/e", true, both).await.unwrap();
    let ve = s.current_version_id(restored.id).await.unwrap().expect("a version id");
    assert!(s.lock_state(&p, "/lk/e", Some(&ve)).await.unwrap().legal_hold);

    // CompleteMultipartUpload.
    let up = s.create_upload(&p, "/lk/m", WriteOptions::default()).await.unwrap();
    let part = s.upload_part(&p, up.id, 1, body(b"part"), Default::default()).await.unwrap();
    let done =
        s.complete_upload_with(&p, up.id, vec![(1, part.etag.clone())], None, both, Default::default()).await.unwrap();
    let vm = s.current_version_id(done.id).await.unwrap().expect("a version id");
    let st = s.lock_state(&p, "/lk/m", Some(&vm)).await.unwrap();
    assert!(st.legal_hold && st.retention.is_some_and(|r| r.mode == LockMode::Compliance));
    assert_consistent(s).await;
}

super::also_on_postgres!(
    a_writes_lock_commits_with_its_version,
    retention_and_legal_hold_protect_versions_everywhere,
    locks_end_when_retention_ends,
    governance_yields_to_an_admins_bypass_when_deleting_a_user,
);
