//! Sharing and links in the core: whose quota pays, what a revocation ends, and that
//! download counting holds under concurrency.

use std::sync::Arc;

use super::{assert_consistent, body, open, pseudo_random, read_all, user};
use crate::meta::model::Role;
use crate::{Conditions, Error, NewLink, WriteOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_pays_for_what_grantees_write_and_move_in() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, Some(100)).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/box").await.unwrap();
    s.share(&alice, "/box", "bob", true).await.unwrap();

    s.write(&bob, "/shared/alice/box/a.bin", body(&[1; 60]), WriteOptions::default()).await.unwrap();
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 60);
    assert_eq!(s.usage(bob.user_id).await.unwrap().bytes, 0);
    // Alice's quota refuses, whoever writes.
    let r = s.write(&bob, "/shared/alice/box/b.bin", body(&[2; 60]), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::QuotaExceeded(_))), "{r:?}");

    // A move in changes the owner and the usage, never the data; one that does not fit is
    // refused whole.
    s.write(&bob, "/mine.bin", body(&[3; 30]), WriteOptions::default()).await.unwrap();
    s.write(&bob, "/big.bin", body(&[4; 50]), WriteOptions::default()).await.unwrap();
    s.rename(&bob, "/mine.bin", "/shared/alice/box/mine.bin", false).await.unwrap();
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 90);
    assert_eq!(s.usage(bob.user_id).await.unwrap().bytes, 50);
    let r = s.rename(&bob, "/big.bin", "/shared/alice/box/big.bin", false).await;
    assert!(matches!(r, Err(Error::QuotaExceeded(_))), "{r:?}");
    assert_eq!(read_all(s, &bob, "/big.bin", None).await.unwrap(), [4; 50]);
    assert_eq!(read_all(s, &alice, "/box/mine.bin", None).await.unwrap(), [3; 30]);
    // And back out: the item is bob's again.
    s.rename(&bob, "/shared/alice/box/mine.bin", "/back.bin", false).await.unwrap();
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 60);
    assert_eq!(s.usage(bob.user_id).await.unwrap().bytes, 80);

    // Multipart inside a share: the parts count against the owner too.
    s.set_quota(alice.user_id, 0).await.unwrap();
    let up = s.create_upload(&bob, "/shared/alice/box/parts/big.bin", WriteOptions::default()).await.unwrap();
    let part = pseudo_random(1000, 1);
    let etag = s.upload_part(&bob, up.id, 1, body(&part), Default::default()).await.unwrap().etag;
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 1060);
    s.complete_upload(&bob, up.id, vec![(1, etag)]).await.unwrap();
    assert_eq!(read_all(s, &alice, "/box/parts/big.bin", None).await.unwrap(), part);
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 1060);
    assert_eq!(s.usage(bob.user_id).await.unwrap().bytes, 80);

    // A revoked grant ends uploads begun through it: no more parts on the owner's quota.
    let up = s.create_upload(&bob, "/shared/alice/box/late.bin", WriteOptions::default()).await.unwrap();
    let share = s.list_shares(&alice).await.unwrap().0.remove(0);
    s.update_share(&alice, share.share.id, false).await.unwrap();
    let r = s.upload_part(&bob, up.id, 1, body(&part), Default::default()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_deletion_end_access_and_links() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/docs").await.unwrap();
    s.write(&alice, "/docs/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    let share = s.share(&alice, "/docs", "bob", false).await.unwrap();
    assert_eq!(read_all(s, &bob, "/shared/alice/docs/a.txt", None).await.unwrap(), b"a");
    assert!(matches!(s.share(&alice, "/docs", "alice", false).await, Err(Error::InvalidInput(_))));
    assert!(matches!(s.share(&bob, "/shared/alice/docs", "alice", false).await, Err(Error::Forbidden(_))));
    // Only the owner changes a grant; the grantee may leave it.
    assert!(matches!(s.update_share(&bob, share.share.id, true).await, Err(Error::NotFound(_))));
    s.delete_share(&bob, share.share.id).await.unwrap();
    assert!(matches!(s.stat(&bob, "/shared/alice").await, Err(Error::NotFound(_))));

    let (link, token) =
        s.create_link(&alice, "/docs/a.txt", NewLink { expires_in: Some(60), ..Default::default() }).await.unwrap();
    let open_link = s.open_link(&token, crate::LinkProof::None, None).await.unwrap();
    assert_eq!(read_all(s, &open_link.principal, "/", None).await.unwrap(), b"a");
    // A link reaches its item only.
    assert!(s.stat(&open_link.principal, "/../docs").await.is_err());
    assert!(matches!(
        s.write(&open_link.principal, "/", body(b"x"), WriteOptions::default()).await,
        Err(Error::Forbidden(_))
    ));
    s.delete(&alice, "/docs", Conditions::default()).await.unwrap();
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    // A principal opened before the deletion reaches nothing either.
    assert!(s.stat(&open_link.principal, "/").await.is_err());
    let links = s.list_links(&alice).await.unwrap();
    assert_eq!((links.len(), links[0].state(), links[0].link.id), (1, "deleted", link.link.id));
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limits_hold_under_concurrency() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.write(&alice, "/f.txt", body(b"f"), WriteOptions::default()).await.unwrap();
    let new = NewLink { expires_in: Some(60), max_downloads: Some(5), ..Default::default() };
    let (link, _) = s.create_link(&alice, "/f.txt", new).await.unwrap();
    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, ok, id) = (s.clone(), ok.clone(), link.link.id);
        tasks.push(tokio::spawn(async move {
            match s.count_download(id).await {
                Ok(()) => {
                    ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Err(Error::Gone(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ok.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(s.list_links(&alice).await.unwrap()[0].state(), "used up");
}

crate::tests::also_on_postgres!(
    the_owner_pays_for_what_grantees_write_and_move_in,
    revocation_and_deletion_end_access_and_links,
    download_limits_hold_under_concurrency,
);
