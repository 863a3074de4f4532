//! The audit trail and the chunk store's figures in the core: events made by the actions
//! themselves, paged for admins and per user, never holding a secret, expiring; figures
//! that follow every commit.

use std::net::IpAddr;
use std::time::Duration;

use super::{body, open, open_with, pseudo_random, user};
use crate::audit::{Cursor, scope};
use crate::meta::model::Role;
use crate::{Conditions, Error, NewLink, Storage, WriteOptions};

fn actions(events: &[crate::audit::Event]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

/// Every page of `page`, following cursors, bounded.
async fn all_pages<F, Fut>(page: F) -> Vec<crate::audit::Event>
where
    F: Fn(Option<Cursor>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<crate::audit::AuditPage>>,
{
    let (mut out, mut cursor) = (Vec::new(), None);
    for _ in 0..100 {
        let p = page(cursor).await.unwrap();
        out.extend(p.events);
        match p.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_audited_paged_and_hold_no_secret() {
    let f = open();
    let s: &Storage = &f.storage;
    let admin = user(s, "root", Role::Admin, None).await;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let addr: IpAddr = "127.0.0.2".parse().unwrap();
    s.write(&alice, "/f.txt", body(b"hello"), WriteOptions::default()).await.unwrap();
    let token = scope(addr, async {
        s.share(&alice, "/f.txt", "bob", false).await.unwrap();
        let link = NewLink { password: Some("link-pass-9".into()), ..Default::default() };
        let (info, token) = s.create_link(&alice, "/f.txt", link).await.unwrap();
        s.revoke_link(&alice, info.link.id).await.unwrap();
        let r = s.change_password(alice.user_id, "wrong-password-1", "new-password-2", None).await;
        assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
        s.change_password(alice.user_id, "password123", "new-password-2", None).await.unwrap();
        let r = s.login("alice", "typed-secret-3", None).await;
        assert!(r.is_err());
        s.login("alice", "new-password-2", None).await.unwrap();
        let r = s.login("nobody-secret-4", "x", None).await;
        assert!(r.is_err());
        s.admin(&admin).unwrap().update_user(bob.user_id, None, Some(1000), None).await.unwrap();
        s.admin(&admin).unwrap().delete_user(bob.user_id).await.unwrap();
        token
    })
    .await;

    // Admins page everything, newest first, in pages that neither skip nor repeat.
    let all = all_pages(|c| s.audit_page(&admin, c, 3)).await;
    let want = [
        "user_deleted",
        "admin_user_changed",
        "login_failed",
        "login",
        "login_failed",
        "password_changed",
        "password_change_failed",
        "link_revoked",
        "link_created",
        "share_created",
    ];
    assert_eq!(actions(&all), want);
    assert!(all.windows(2).all(|w| w[0].at > w[1].at));
    assert!(all.iter().all(|e| e.address == Some(addr)), "{all:?}");
    let share = all.iter().find(|e| e.action == "share_created").unwrap();
    assert_eq!((share.user, share.target), (Some(alice.user_id), Some(bob.user_id)));
    let changed = &all[1];
    assert_eq!((changed.user, changed.target), (Some(admin.user_id), Some(bob.user_id)));
    assert_eq!(changed.detail, [("username".to_owned(), "bob".to_owned()), ("quota".to_owned(), "1000".to_owned())]);
    // The unknown account's failure names no one: its login may have been a password.
    assert_eq!(all[2].user, None);
    assert_eq!(all[4].user, Some(alice.user_id));

    // Nothing secret, in the stored events or their JSON.
    let text: String = all.iter().map(|e| format!("{:?}\n{}\n", e, e.json())).collect();
    for secret in
        ["password123", "new-password-2", "wrong-password-1", "typed-secret-3", "nobody-secret-4", "link-pass-9"]
    {
        assert!(!text.contains(secret), "{secret} is in the audit trail");
    }
    assert!(!text.contains(&token));

    // A user sees what they did and what was done to them; not others' doings.
    let mine = all_pages(|c| s.my_audit_page(&alice, c, 2)).await;
    let alices = [
        "login",
        "login_failed",
        "password_changed",
        "password_change_failed",
        "link_revoked",
        "link_created",
        "share_created",
    ];
    assert_eq!(actions(&mine), alices);
    let roots = all_pages(|c| s.my_audit_page(&admin, c, 2)).await;
    assert_eq!(actions(&roots), ["user_deleted", "admin_user_changed"]);
    assert!(matches!(s.audit_page(&alice, None, 10).await, Err(Error::Forbidden(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_retention_expire_with_their_index() {
    let f = open_with(|c| c.audit_retention = Duration::from_millis(200));
    let s = &f.storage;
    let admin = user(s, "root", Role::Admin, None).await;
    let alice = user(s, "alice", Role::User, None).await;
    s.write(&alice, "/f.txt", body(b"x"), WriteOptions::default()).await.unwrap();
    s.create_link(&alice, "/f.txt", NewLink::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.share(&alice, "/f.txt", "root", false).await.unwrap();
    s.expire_audit().await.unwrap();
    assert_eq!(actions(&s.audit_page(&admin, None, 100).await.unwrap().events), ["share_created"]);
    assert_eq!(actions(&s.my_audit_page(&alice, None, 100).await.unwrap().events), ["share_created"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.expire_audit().await.unwrap();
    assert!(s.audit_page(&admin, None, 100).await.unwrap().events.is_empty());
    assert!(s.my_audit_page(&admin, None, 100).await.unwrap().events.is_empty());
}

/// The figures the core keeps agree with a walk of the tables after every kind of change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_figures_follow_every_commit() {
    let f = open();
    let s = &f.storage;
    let admin = user(s, "root", Role::Admin, None).await;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let big = pseudo_random(3 << 20, 7);
    let walked = |s: &Storage| {
        let s = s.clone();
        async move {
            let kept = s.chunk_figures();
            s.refresh_figures().await.unwrap();
            (kept, s.chunk_figures())
        }
    };
    assert_eq!(s.chunk_figures().chunks, 0);
    s.write(&alice, "/a.bin", body(&big), WriteOptions::default()).await.unwrap();
    let (kept, walk) = walked(s).await;
    assert_eq!(kept, walk);
    assert!(kept.chunks >= 1 && kept.chunk_bytes == big.len() as u64, "{kept:?}");
    assert_eq!(kept.logical_bytes, big.len() as u64);
    // The same content again: logical doubles, stored does not.
    s.write(&bob, "/b.bin", body(&big), WriteOptions::default()).await.unwrap();
    s.write(&bob, "/small.txt", body(b"small"), WriteOptions::default()).await.unwrap();
    let (kept2, walk) = walked(s).await;
    assert_eq!(kept2, walk);
    assert_eq!(kept2.chunks, kept.chunks + 1);
    assert_eq!(kept2.chunk_bytes, big.len() as u64 + 5);
    assert_eq!(kept2.logical_bytes, 2 * big.len() as u64 + 5);
    // A refused write counts nothing.
    let r = s.write(&bob, "/b.bin", body(&big), WriteOptions { expected_len: Some(1), ..Default::default() }).await;
    assert!(r.is_err());
    assert_eq!(s.chunk_figures(), kept2);
    s.delete(&alice, "/a.bin", Conditions::default()).await.unwrap();
    s.admin(&admin).unwrap().delete_user(bob.user_id).await.unwrap();
    let (kept3, walk) = walked(s).await;
    assert_eq!(kept3, walk);
    assert_eq!((kept3.chunks, kept3.chunk_bytes, kept3.logical_bytes), (0, 0, 0));
}

crate::tests::also_on_postgres!(
    actions_are_audited_paged_and_hold_no_secret,
    events_past_the_retention_expire_with_their_index,
    chunk_figures_follow_every_commit,
);

/// The offline `davit admin` records as the operator at the machine: no account, the
/// operating system's one named instead, and the audit log's line written before the call
/// returns (the tool exits right after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_action_names_the_operator_and_its_line_is_written_at_once() {
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("audit.log");
    let log_path = path.clone();
    let f = open_with(move |c| c.audit_log = crate::audit::AuditLog::File(log_path));
    let s: &Storage = &f.storage;
    let admin = user(s, "root", Role::Admin, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let event = crate::audit::Event::new("admin_user_changed").target(bob.user_id).with("quota", 5);
    s.audit_offline(event, "olga").await;
    let line = std::fs::read_to_string(&path).unwrap();
    let line: serde_json::Value = serde_json::from_str(line.lines().last().expect("the line is written")).unwrap();
    assert_eq!(line["action"], "admin_user_changed");
    assert_eq!(line["detail"]["via"], "offline davit admin");
    assert_eq!(line["detail"]["os_user"], "olga");
    assert_eq!(line["user_id"], serde_json::Value::Null, "no account acted");
    assert_eq!(line["target_user_id"], bob.user_id);
    let page = s.audit_page(&admin, None, 10).await.unwrap();
    assert_eq!(actions(&page.events), ["admin_user_changed"]);
    // The user it concerns sees it among their own.
    let mine = s.my_audit_page(&bob, None, 10).await.unwrap();
    assert_eq!(actions(&mine.events), ["admin_user_changed"]);
}
