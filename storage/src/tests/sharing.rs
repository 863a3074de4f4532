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

/// Re-sharing: a grantee makes download links only when the grant allows it (a downloader's
/// grant does unless its owner says otherwise); the owner sees those links; they end with the
/// grant (revoked, narrowed, the item moved out, the maker disabled) and stay ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_made_through_a_grant_live_and_end_with_it() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::Uploader, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let dora = user(s, "dora", Role::Downloader, None).await;
    s.mkdir(&alice, "/docs").await.unwrap();
    s.mkdir(&alice, "/docs/sub").await.unwrap();
    s.write(&alice, "/docs/a.txt", body(b"a"), WriteOptions::default()).await.unwrap();
    s.write(&alice, "/docs/sub/b.txt", body(b"b"), WriteOptions::default()).await.unwrap();
    let to_bob = s.share(&alice, "/docs", "bob", false).await.unwrap();
    let to_dora = s.share(&alice, "/docs", "dora", false).await.unwrap();
    assert!(!to_bob.reshare, "off unless the owner gives it");
    assert!(to_dora.reshare, "a downloader's grant allows links by default");
    let new = || NewLink { expires_in: Some(600), ..Default::default() };

    // Bob's grant does not allow links; a downloader's does, for download links only.
    let r = s.create_link(&bob, "/shared/alice/docs/a.txt", new()).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = s.create_link(&dora, "/shared/alice/docs/sub", NewLink { upload: true, ..new() }).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    assert!(matches!(s.create_link(&dora, "/shared/alice", new()).await, Err(Error::Forbidden(_))));
    assert!(matches!(s.create_link(&dora, "/shared/alice/docs/none.txt", new()).await, Err(Error::NotFound(_))));
    let (made, token) = s.create_link(&dora, "/shared/alice/docs/a.txt", new()).await.unwrap();
    assert_eq!(made.path.as_deref(), Some("/shared/alice/docs/a.txt"), "as the maker sees it");
    assert_eq!(made.link.owner, alice.user_id, "the link is the owner's");
    let opened = s.open_link(&token, crate::LinkProof::None, None).await.unwrap();
    assert_eq!(read_all(s, &opened.principal, "/", None).await.unwrap(), b"a");
    s.count_download(made.link.id).await.unwrap();
    // The owner sees it, with its maker; the maker sees it too.
    let owners = s.list_links(&alice).await.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!((owners[0].made_by.as_deref(), owners[0].path.as_deref()), (Some("dora"), Some("/docs/a.txt")));
    assert_eq!(s.list_links(&dora).await.unwrap()[0].link.id, made.link.id);
    assert!(s.list_links(&bob).await.unwrap().is_empty());

    // The owner gives bob the right: a folder link through it reaches what is below.
    let to_bob = s.update_share_terms(&alice, to_bob.share.id, None, Some(true), None).await.unwrap();
    assert!(to_bob.reshare && !to_bob.share.write, "only what was asked changes");
    let (folder, folder_token) = s.create_link(&bob, "/shared/alice/docs/sub", new()).await.unwrap();
    let opened = s.open_link(&folder_token, crate::LinkProof::None, None).await.unwrap();
    assert_eq!(read_all(s, &opened.principal, "/b.txt", None).await.unwrap(), b"b");
    // Only the owner and the maker revoke it.
    assert!(matches!(s.revoke_link(&dora, folder.link.id).await, Err(Error::NotFound(_))));

    // Moved out of the granted folder: the link ends; moved back, the grant reaches it again.
    s.rename(&alice, "/docs/sub", "/sub", false).await.unwrap();
    assert!(matches!(s.open_link(&folder_token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    let states: Vec<_> = s.list_links(&alice).await.unwrap().iter().map(|l| l.state()).collect();
    assert_eq!(states, ["active", "grant ended"]);
    s.rename(&alice, "/sub", "/docs/sub", false).await.unwrap();
    s.open_link(&folder_token, crate::LinkProof::None, None).await.unwrap();

    // A disabled maker's links stop; enabled again, they work.
    s.update_user(bob.user_id, |u| {
        u.status = crate::meta::model::Status::Disabled;
        Ok(())
    })
    .await
    .unwrap();
    assert!(matches!(s.open_link(&folder_token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    s.update_user(bob.user_id, |u| {
        u.status = crate::meta::model::Status::Active;
        Ok(())
    })
    .await
    .unwrap();
    s.open_link(&folder_token, crate::LinkProof::None, None).await.unwrap();

    // Narrowed: dora's link ends at once, in use too, and giving the right back does not
    // revive it.
    let opened = s.open_link(&token, crate::LinkProof::None, None).await.unwrap();
    s.update_share_terms(&alice, to_dora.share.id, None, Some(false), None).await.unwrap();
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    assert!(matches!(s.count_download(made.link.id).await, Err(Error::Gone(_))));
    drop(opened);
    s.update_share_terms(&alice, to_dora.share.id, None, Some(true), None).await.unwrap();
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    assert_eq!(s.list_links(&dora).await.unwrap()[0].state(), "revoked");
    // A new one works; revoking the grant ends it.
    let (_, token) = s.create_link(&dora, "/shared/alice/docs/a.txt", new()).await.unwrap();
    s.open_link(&token, crate::LinkProof::None, None).await.unwrap();
    s.delete_share(&alice, to_dora.share.id).await.unwrap();
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    // Leaving a grant ends one's links too.
    s.delete_share(&bob, to_bob.share.id).await.unwrap();
    assert!(matches!(s.open_link(&folder_token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    // The owner's own links are not the grant's business.
    let (_, own) = s.create_link(&alice, "/docs/a.txt", new()).await.unwrap();
    s.open_link(&own, crate::LinkProof::None, None).await.unwrap();
    assert_consistent(s).await;
}

/// A grant given an end reaches nothing past it, whatever the path, and the links made
/// through it end with it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_with_an_end_ends_by_itself_and_its_links_with_it() {
    let f = open();
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let dora = user(s, "dora", Role::Downloader, None).await;
    s.write(&alice, "/r.txt", body(b"r"), WriteOptions::default()).await.unwrap();
    let now = crate::meta::model::now_nanos();
    let r = s.share_with(&alice, "/r.txt", "dora", false, None, Some(now - 1)).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    let end = now + 1_500_000_000;
    let share = s.share_with(&alice, "/r.txt", "dora", false, None, Some(end)).await.unwrap();
    assert_eq!(share.expires, Some(end));
    assert_eq!(read_all(s, &dora, "/shared/alice/r.txt", None).await.unwrap(), b"r");
    let (_, token) = s
        .create_link(&dora, "/shared/alice/r.txt", NewLink { expires_in: Some(600), ..Default::default() })
        .await
        .unwrap();
    s.open_link(&token, crate::LinkProof::None, None).await.unwrap();
    // Bounded: the end is 1.5 s away.
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert!(matches!(s.stat(&dora, "/shared/alice/r.txt").await, Err(Error::NotFound(_))));
    assert!(s.list_shares(&dora).await.unwrap().1.is_empty());
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    let r = s.create_link(&dora, "/shared/alice/r.txt", NewLink::default()).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    assert_eq!(s.list_shares(&alice).await.unwrap().0[0].expires, Some(end), "the owner still sees it");
    // Given a later end, the grant reaches the file again; the old link stays ended.
    let later = crate::meta::model::now_nanos() + 600_000_000_000;
    s.update_share_terms(&alice, share.share.id, None, None, Some(later)).await.unwrap();
    assert_eq!(read_all(s, &dora, "/shared/alice/r.txt", None).await.unwrap(), b"r");
    assert!(matches!(s.open_link(&token, crate::LinkProof::None, None).await, Err(Error::Gone(_))));
    assert_consistent(s).await;
}

crate::tests::also_on_postgres!(
    a_grant_with_an_end_ends_by_itself_and_its_links_with_it,
    links_made_through_a_grant_live_and_end_with_it,
    the_owner_pays_for_what_grantees_write_and_move_in,
    revocation_and_deletion_end_access_and_links,
    download_limits_hold_under_concurrency,
);
