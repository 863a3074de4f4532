//! The rules as the core decides them, without a front end: roles against grants, size
//! limits, who may lock, and which accounts get in by which path.

use super::{body, open, open_with, user};
use crate::meta::model::{Role, Status};
use crate::tree::locks::{LockRefused, LockRequest};
use crate::{Conditions, Error, LinkProof, NewLink, WriteOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downloader_cannot_write_even_through_a_read_write_grant() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let dora = user(s, "dora", Role::Downloader, None).await;
    s.mkdir(&alice, "/box").await.unwrap();
    s.write(&alice, "/box/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    s.share(&alice, "/box", "dora", true).await.unwrap();
    // The grant lets her read...
    assert_eq!(super::read_all(s, &dora, "/shared/alice/box/a.txt", None).await.unwrap(), b"a");
    // ...but her role still says she does not write, whoever's folder it is.
    let r = s.write(&dora, "/shared/alice/box/b.txt", body(b"b"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    assert!(matches!(s.mkdir(&dora, "/shared/alice/box/sub").await, Err(Error::Forbidden(_))));
    let r = s.delete(&dora, "/shared/alice/box/a.txt", Default::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // Nor does she share, even a file handed over into her own drive (found by probing).
    s.write(&alice, "/given.txt", body(b"g"), WriteOptions::default()).await.unwrap();
    s.transfer(&alice, "/given.txt", "dora").await.unwrap();
    let r = s.share(&dora, "/given.txt", "alice", false).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = s.create_link(&dora, "/given.txt", NewLink::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "nor publishes it: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_obey_the_server_and_the_role_size_limit() {
    let f = open_with(|c| {
        c.max_file_size = 100;
        c.policy
            .roles
            .insert(Role::Uploader, crate::access::policy::Rule { max_file_size: Some(10), ..Default::default() });
    });
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let ops = user(s, "ops", Role::Uploader, None).await;
    s.write(&alice, "/fits.bin", body(&[1; 100]), WriteOptions::default()).await.unwrap();
    let r = s.write(&alice, "/big.bin", body(&[1; 101]), WriteOptions::default()).await;
    assert!(matches!(&r, Err(Error::TooLarge(m)) if m.contains("100")), "{r:?}");
    // Announced too large: refused before a byte is read.
    let opts = WriteOptions { expected_len: Some(1000), ..Default::default() };
    let r = s.write(&alice, "/announced.bin", futures::stream::empty(), opts).await;
    assert!(matches!(r, Err(Error::TooLarge(_))), "{r:?}");
    // The role's rule is tighter and names itself.
    let r = s.write(&ops, "/eleven.bin", body(&[1; 11]), WriteOptions::default()).await;
    assert!(matches!(&r, Err(Error::TooLarge(m)) if m.contains("uploader role")), "{r:?}");
    assert!(s.stat(&alice, "/big.bin").await.is_err(), "nothing of a refused write is kept");
}

fn lock_request() -> LockRequest {
    LockRequest { href: "/dav/x".into(), deep: true, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_who_may_write_may_lock_refresh_or_unlock() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let dora = user(s, "dora", Role::Downloader, None).await;
    s.mkdir(&alice, "/ro").await.unwrap();
    s.mkdir(&alice, "/rw").await.unwrap();
    s.write(&alice, "/ro/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    s.write(&alice, "/rw/b.txt", body(b"b"), WriteOptions::default()).await.unwrap();
    s.share(&alice, "/ro", "bob", false).await.unwrap();
    s.share(&alice, "/rw", "dora", true).await.unwrap();
    let denied = |r: Result<_, LockRefused>| matches!(r, Err(LockRefused::Denied(Error::Forbidden(_))));

    // A read-only grant, a downloader (even with a read-write grant) and a link cannot.
    assert!(denied(s.lock(&bob, "/shared/alice/ro/a.txt", lock_request()).await));
    assert!(denied(s.lock(&dora, "/shared/alice/rw/b.txt", lock_request()).await));
    assert!(matches!(s.may_lock(&dora, "/own.txt").await, Err(Error::Forbidden(_))));
    let (_, token) = s.create_link(&alice, "/rw", NewLink::default()).await.unwrap();
    let link = s.open_link(&token, LinkProof::None, None).await.unwrap().principal;
    assert!(denied(s.lock(&link, "/b.txt", lock_request()).await));

    // The owner can, and her lock is in everyone's way, but only she may release it.
    let l = s.lock(&alice, "/ro/a.txt", lock_request()).await.unwrap();
    assert!(matches!(s.lock(&alice, "/ro/a.txt", lock_request()).await, Err(LockRefused::Held(_))));
    assert_eq!(s.discover_locks(&bob, "/shared/alice/ro/a.txt").await.len(), 1, "bob sees it");
    assert!(matches!(s.unlock(&bob, "/shared/alice/ro/a.txt", &l.token).await, Err(Error::Forbidden(_))));
    let r = s.refresh_lock(&bob, "/shared/alice/ro/a.txt", &l.token, None).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = s.write(&alice, "/ro/a.txt", body(b"x"), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::Locked(_))), "the token was not presented: {r:?}");
    assert!(s.refresh_lock(&alice, "/ro/a.txt", &l.token, None).await.unwrap().is_some());
    assert!(s.unlock(&alice, "/ro/a.txt", &l.token).await.unwrap());
    assert!(!s.unlock(&alice, "/ro/a.txt", &l.token).await.unwrap(), "released already");
    s.write(&alice, "/ro/a.txt", body(b"x"), WriteOptions::default()).await.unwrap();

    // A read-write grantee may lock, but not lift the owner's lock with its token, which
    // every lock discovery shows (found by probing); the owner lifts the grantee's.
    s.share(&alice, "/rw", "bob", true).await.unwrap();
    let req = |who: &str| LockRequest { principal: Some(who.to_owned()), ..lock_request() };
    let l = s.lock(&alice, "/rw/b.txt", req("alice")).await.unwrap();
    let r = s.unlock(&bob, "/shared/alice/rw/b.txt", &l.token).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // Nor get past it with that token (found in review: a WebDAV MOVE with it did).
    let mut with_hers = bob.clone();
    with_hers.set_lock_tokens(vec![l.token.clone()]);
    let locked = |r: &crate::Result<()>| matches!(r, Err(Error::Locked(_)));
    let w = s.write(&with_hers, "/shared/alice/rw/b.txt", body(b"y"), WriteOptions::default()).await.map(|_| ());
    assert!(locked(&w), "{w:?}");
    let r = s.rename(&with_hers, "/shared/alice/rw/b.txt", "/shared/alice/rw/c.txt", false).await.map(|_| ());
    assert!(locked(&r), "{r:?}");
    let d = s.delete(&with_hers, "/shared/alice/rw/b.txt", Default::default()).await;
    assert!(locked(&d), "{d:?}");
    assert!(s.unlock(&alice, "/rw/b.txt", &l.token).await.unwrap());
    let l = s.lock(&bob, "/shared/alice/rw/b.txt", req("bob")).await.unwrap();
    assert!(s.unlock(&alice, "/rw/b.txt", &l.token).await.unwrap(), "the owner lifts any lock on her files");
}

/// Found by probing: anyone holding an upload link deleted the files in its folder (and a
/// 204 or 404 told which names were there), and a grantee's WebDAV MOVE onto the granted
/// folder emptied it member by member before the folder itself was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_box_removes_nothing_and_a_grantee_replaces_no_granted_folder() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/inbox").await.unwrap();
    s.mkdir(&alice, "/inbox/sub").await.unwrap();
    s.write(&alice, "/inbox/contract.pdf", body(b"precious"), WriteOptions::default()).await.unwrap();
    let (_, token) = s.create_link(&alice, "/inbox", NewLink { upload: true, ..NewLink::default() }).await.unwrap();
    let drop = s.open_link(&token, LinkProof::None, None).await.unwrap().principal;
    for path in ["/contract.pdf", "/sub", "/nothing.pdf"] {
        let r = s.delete_to_trash(&drop, path, Conditions::default()).await;
        assert!(matches!(r, Err(Error::Forbidden(_))), "{path}: {r:?}");
        let r = s.rename(&drop, path, "/elsewhere.pdf", false).await;
        assert!(matches!(r, Err(Error::Forbidden(_))), "{path}: {r:?}");
    }
    assert!(matches!(s.remove_empty_folder(&drop, "/sub").await, Err(Error::Forbidden(_))));

    s.share(&alice, "/inbox", "bob", true).await.unwrap();
    s.mkdir(&bob, "/empty").await.unwrap();
    let r = s.rename(&bob, "/empty", "/shared/alice/inbox", true).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let mut names: Vec<String> =
        s.list(&alice, "/inbox", None, 100).await.unwrap().into_iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, ["contract.pdf", "sub"], "the granted folder is as it was");
    let read = s.read(&alice, "/inbox/contract.pdf", None).await.unwrap();
    assert_eq!(read.item.size, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_is_not_active_gets_in_by_no_path() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let id = alice.user_id;
    let (key, _) = s.create_access_key(id).await.unwrap();
    let (_, app_password) = s.create_app_password(id, "laptop").await.unwrap();
    let tokens = s.start_session(&s.get_user(id).await.unwrap()).await.unwrap();
    s.mkdir(&alice, "/pub").await.unwrap();
    let (_, link) = s.create_link(&alice, "/pub", NewLink::default()).await.unwrap();
    // Every path lets her in while she is active.
    s.authenticate("alice", "password123").await.unwrap();
    s.authenticate_basic("alice", "password123", None).await.unwrap();
    s.authenticate_basic("alice", &app_password, None).await.unwrap();
    s.verify_access_token(&tokens.access_token).await.unwrap();
    s.access_key_principal(&key.id).await.unwrap();
    assert!(s.access_key_secret(&key.id).await.unwrap().owner.is_some());
    s.open_link(&link, LinkProof::None, None).await.unwrap();

    for status in [Status::Disabled, Status::Pending] {
        s.set_status(id, status).await.unwrap();
        let refused = |r: crate::Result<()>| matches!(r, Err(Error::Forbidden(_) | Error::Unauthenticated(_)));
        assert!(refused(s.authenticate("alice", "password123").await.map(|_| ())), "{status:?}: password");
        assert!(refused(s.authenticate_basic("alice", "password123", None).await.map(|_| ())), "{status:?}");
        assert!(refused(s.authenticate_basic("alice", &app_password, None).await.map(|_| ())), "{status:?}");
        assert!(refused(s.verify_access_token(&tokens.access_token).await.map(|_| ())), "{status:?}: token");
        assert!(refused(s.refresh_session(&tokens.refresh_token).await.map(|_| ())), "{status:?}: refresh");
        assert!(matches!(s.access_key_principal(&key.id).await, Err(Error::Forbidden(_))), "{status:?}: S3");
        assert!(s.access_key_secret(&key.id).await.unwrap().owner.is_none(), "{status:?}: S3 signature");
        let r = s.open_link(&link, LinkProof::None, None).await.map(|_| ());
        assert!(matches!(r, Err(Error::Gone(_))), "{status:?}: her links: {r:?}");
        // Back to active for the next state: the same credentials work again.
        s.set_status(id, Status::Active).await.unwrap();
        s.authenticate_basic("alice", &app_password, None).await.unwrap();
        s.access_key_principal(&key.id).await.unwrap();
    }
}

crate::tests::also_on_postgres!(
    a_downloader_cannot_write_even_through_a_read_write_grant,
    single_writes_obey_the_server_and_the_role_size_limit,
    only_who_may_write_may_lock_refresh_or_unlock,
    an_account_that_is_not_active_gets_in_by_no_path,
);
