//! Lifecycle rules as the core checks and applies them, a "day" lasting a fraction of a
//! second.

use std::time::Duration;

use super::{Expiration, Filter, FilterForm, Lifecycle, Rule};
use crate::meta::db::LIFECYCLE;
use crate::meta::kv::Readable;
use crate::meta::model::Role;
use crate::tests::{body, open_with, user};
use crate::tree::locks::LockRequest;
use crate::{Error, Storage, TagTarget, WriteOptions};

const DAY: Duration = Duration::from_millis(300);

fn expire_after(id: &str, days: u32, filter: Filter) -> Rule {
    Rule {
        id: id.into(),
        enabled: true,
        filter,
        expiration: Some(Expiration { days: Some(days), ..Default::default() }),
        ..Default::default()
    }
}

fn prefix(p: &str) -> Filter {
    Filter { form: FilterForm::Prefix, prefix: p.into(), ..Default::default() }
}

fn tag(k: &str, v: &str) -> Filter {
    Filter { form: FilterForm::Tag, tags: vec![(k.into(), v.into())], ..Default::default() }
}

async fn put(s: &Storage, p: &crate::Principal, path: &str, tags: &[(&str, &str)]) {
    let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let opts = WriteOptions { create_parents: true, tags: Some(tags), ..Default::default() };
    s.write(p, path, body(path.as_bytes()), opts).await.unwrap();
}

async fn exists(s: &Storage, p: &crate::Principal, path: &str) -> bool {
    match s.stat(p, path).await {
        Ok(_) => true,
        Err(Error::NotFound(_)) => false,
        Err(e) => panic!("{path}: {e:?}"),
    }
}

#[test]
fn configurations_are_checked_as_s3_checks_them() {
    let ok = |rules: Vec<Rule>| Lifecycle { rules }.check();
    let refused = |rules: Vec<Rule>| matches!(ok(rules), Err(Error::InvalidInput(_)));
    assert!(refused(vec![]), "no rule");
    assert!(refused(vec![expire_after("a", 0, prefix(""))]), "Days 0");
    assert!(refused(vec![expire_after("a", 1, prefix("")), expire_after("a", 2, prefix("x"))]), "same ID");
    assert!(refused(vec![expire_after(&"i".repeat(256), 1, prefix(""))]), "ID too long");
    ok(vec![expire_after(&"i".repeat(255), 1, prefix(""))]).unwrap();
    assert!(refused(vec![Rule { id: "a".into(), enabled: true, ..Default::default() }]), "no action");
    let date = |secs| Rule {
        id: "d".into(),
        enabled: true,
        expiration: Some(Expiration { date: Some(secs), ..Default::default() }),
        ..Default::default()
    };
    ok(vec![date(1_767_225_600)]).unwrap();
    assert!(refused(vec![date(1_767_225_601)]), "a date not at midnight");
    let both = Rule {
        id: "b".into(),
        enabled: true,
        expiration: Some(Expiration { days: Some(1), date: Some(1_767_225_600), ..Default::default() }),
        ..Default::default()
    };
    assert!(refused(vec![both]), "Days and Date");
    let abort_by_tag =
        Rule { id: "t".into(), enabled: true, abort_upload_days: Some(1), filter: tag("k", "v"), ..Default::default() };
    assert!(refused(vec![abort_by_tag]), "an upload abort with a tag filter");
    assert!(refused(vec![expire_after("t", 1, tag("aws:x", "v"))]), "a filter's tags follow the tag rules");
    let many: Vec<Rule> = (0..1001).map(|i| expire_after(&format!("r{i}"), 1, prefix(""))).collect();
    assert!(refused(many));
    // A rule without an ID gets one, unique.
    let mut c = Lifecycle { rules: vec![expire_after("", 1, prefix("a")), expire_after("", 1, prefix("b"))] };
    c.check().unwrap();
    assert!(!c.rules[0].id.is_empty() && c.rules[0].id != c.rules[1].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_stored_by_bucket_and_go_with_it() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    assert_eq!(s.lifecycle(&alice, "/b").await.unwrap(), None);
    let config = Lifecycle { rules: vec![expire_after("r1", 3, prefix("logs/"))] };
    let stored = s.set_lifecycle(&alice, "/b", config.clone()).await.unwrap();
    assert_eq!(stored, config);
    assert_eq!(s.lifecycle(&alice, "/b").await.unwrap(), Some(config.clone()));
    // A read-only grantee sees the bucket but cannot change its rules.
    s.share(&alice, "/b", "bob", false).await.unwrap();
    let r = s.delete_lifecycle(&bob, "/shared/alice/b").await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    // A renamed bucket keeps them; a deleted one takes them along.
    s.rename(&alice, "/b", "/c", false).await.unwrap();
    assert_eq!(s.lifecycle(&alice, "/c").await.unwrap(), Some(config));
    s.delete_lifecycle(&alice, "/c").await.unwrap();
    assert_eq!(s.lifecycle(&alice, "/c").await.unwrap(), None);
    s.set_lifecycle(&alice, "/c", Lifecycle { rules: vec![expire_after("r", 1, prefix(""))] }).await.unwrap();
    s.remove_empty_folder(&alice, "/c").await.unwrap();
    let left = s.core.db.read(|t| Ok(t.open_table(LIFECYCLE)?.range::<u64>(..)?.count())).await.unwrap();
    assert_eq!(left, 0);
    // Not a folder, or not there: refused.
    assert!(
        s.set_lifecycle(&alice, "/nothing", Lifecycle { rules: vec![expire_after("r", 1, prefix(""))] }).await.is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_removes_what_matches_once_due_and_nothing_else() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    for path in ["/b/logs/a.txt", "/b/logs/deep/b.txt", "/b/keep/c.txt", "/b/top.txt"] {
        put(s, &alice, path, &[]).await;
    }
    put(s, &alice, "/b/keep/tagged.txt", &[("expire", "yes")]).await;
    put(s, &alice, "/b/keep/other-tag.txt", &[("expire", "no")]).await;
    put(s, &alice, "/other/logs/x.txt", &[]).await;
    let rules = vec![expire_after("logs", 2, prefix("logs/")), expire_after("tagged", 2, tag("expire", "yes"))];
    s.set_lifecycle(&alice, "/b", Lifecycle { rules }).await.unwrap();
    let before = s.usage(alice.user_id).await.unwrap();

    // Not two days old yet: nothing goes.
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().expired, 0);
    tokio::time::sleep(DAY * 2 + Duration::from_millis(50)).await;
    // A file rewritten now is young again: it stays.
    put(s, &alice, "/b/logs/fresh.txt", &[]).await;
    let report = s.run_lifecycle(DAY).await.unwrap();
    assert_eq!(report.expired, 3, "{report:?}");
    for gone in ["/b/logs/a.txt", "/b/logs/deep/b.txt", "/b/keep/tagged.txt"] {
        assert!(!exists(s, &alice, gone).await, "{gone}");
    }
    for kept in ["/b/logs/fresh.txt", "/b/keep/c.txt", "/b/top.txt", "/b/keep/other-tag.txt", "/other/logs/x.txt"] {
        assert!(exists(s, &alice, kept).await, "{kept}");
    }
    // The folder a removal left empty goes, as after an S3 delete; the bucket stays.
    assert!(!exists(s, &alice, "/b/logs/deep").await);
    assert!(exists(s, &alice, "/b").await);
    let after = s.usage(alice.user_id).await.unwrap();
    assert_eq!(after.files, before.files + 1 - 3, "quota released as by a delete");
    // Running again finds nothing more to do.
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().expired, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_at_once_remove_each_object_once_and_locks_bind_them() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    for i in 0..40 {
        put(s, &alice, &format!("/b/f{i:02}.txt"), &[]).await;
    }
    put(s, &alice, "/b/locked.txt", &[]).await;
    let lock = LockRequest { href: "/dav/b/locked.txt".into(), deep: false, ..Default::default() };
    assert!(s.lock(&alice, "/b/locked.txt", lock).await.is_ok());
    // A disabled rule does nothing.
    let off = Rule { enabled: false, ..expire_after("off", 1, prefix("")) };
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![off] }).await.unwrap();
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().expired, 0);
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![expire_after("all", 1, prefix(""))] }).await.unwrap();
    // Two passes at once, as on two nodes: each object is removed by one of them.
    let (a, b) = tokio::join!(s.run_lifecycle(DAY), s.run_lifecycle(DAY));
    assert_eq!(a.unwrap().expired + b.unwrap().expired, 40);
    // The locked one stays: the pass has no token for it, as the owner's delete would not.
    assert!(exists(s, &alice, "/b/locked.txt").await);
    assert_eq!(s.usage(alice.user_id).await.unwrap().files, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_uploads_are_aborted_by_prefix() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    let old = s.create_upload(&alice, "/b/tmp/old.bin", WriteOptions::default()).await.unwrap();
    s.upload_part(&alice, old.id, 1, body(&[7; 1000]), Default::default()).await.unwrap();
    let elsewhere = s.create_upload(&alice, "/b/keep/old.bin", WriteOptions::default()).await.unwrap();
    let rule = Rule {
        id: "abort".into(),
        enabled: true,
        filter: prefix("tmp/"),
        abort_upload_days: Some(1),
        ..Default::default()
    };
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![rule] }).await.unwrap();
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().aborted, 0, "not a day old yet");
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let young = s.create_upload(&alice, "/b/tmp/young.bin", WriteOptions::default()).await.unwrap();
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().aborted, 1);
    assert!(matches!(s.get_upload(&alice, old.id).await, Err(Error::NotFound(_))));
    s.get_upload(&alice, elsewhere.id).await.unwrap();
    s.get_upload(&alice, young.id).await.unwrap();
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 0, "the parts' share is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_pass_runs_when_configured() {
    let f = open_with(|c| {
        c.lifecycle_interval = Some(Duration::from_millis(200));
        c.lifecycle_day = DAY;
    });
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/b/a.txt", &[]).await;
    s.set_tags(&alice, "/b/a.txt", vec![("x".into(), "y".into())], TagTarget::Object).await.unwrap();
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![expire_after("r", 1, prefix(""))] }).await.unwrap();
    let start = std::time::Instant::now();
    while exists(s, &alice, "/b/a.txt").await {
        assert!(start.elapsed() < Duration::from_secs(20), "the object was not expired in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

crate::tests::also_on_postgres!(
    rules_are_stored_by_bucket_and_go_with_it,
    expiration_removes_what_matches_once_due_and_nothing_else,
    passes_at_once_remove_each_object_once_and_locks_bind_them,
    old_uploads_are_aborted_by_prefix,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_tells_which_rule_expires_it_and_when() {
    let f = open_with(|c| c.lifecycle_day = Duration::from_secs(3600));
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    put(s, &alice, "/b/logs/a/b.txt", &[("k", "v")]).await;
    put(s, &alice, "/b/other.txt", &[]).await;
    put(s, &alice, "/top.txt", &[]).await;
    let a = s.stat(&alice, "/b/logs/a/b.txt").await.unwrap();
    let other = s.stat(&alice, "/b/other.txt").await.unwrap();
    let top = s.stat(&alice, "/top.txt").await.unwrap();
    // No rules anywhere: only the tag count.
    assert_eq!(s.object_extras(&a).await.unwrap(), super::ObjectExtras { tag_count: 1, expiry: None });
    let rules = vec![
        expire_after("late", 9, prefix("logs/")),
        expire_after("soon", 2, tag("k", "v")),
        expire_after("nobody", 1, prefix("logs/b")),
        Rule { enabled: false, ..expire_after("off", 1, prefix("")) },
    ];
    s.set_lifecycle(&alice, "/b", Lifecycle { rules }).await.unwrap();
    let e = s.object_extras(&a).await.unwrap();
    assert_eq!(
        e.expiry,
        Some((a.modified + 2 * 3_600_000_000_000, "soon".to_owned())),
        "the earliest rule that matches"
    );
    assert_eq!(s.object_extras(&other).await.unwrap().expiry, None);
    assert_eq!(s.object_extras(&top).await.unwrap().expiry, None, "not in a bucket");
}

#[test]
fn real_days_round_up_to_midnight_utc_and_test_days_do_not() {
    use super::due_after_days;
    const S: i64 = 1_000_000_000;
    let real = Duration::from_secs(86_400);
    // 2026-12-01 10:00:00 UTC plus one day: 2026-12-03 00:00:00 UTC.
    let modified = 1_796_119_200 * S;
    assert_eq!(due_after_days(modified, 1, real), (1_796_083_200 + 2 * 86_400) * S);
    // Exactly at midnight: no later.
    let midnight = 1_796_083_200 * S;
    assert_eq!(due_after_days(midnight, 2, real), midnight + 2 * 86_400 * S);
    // A day of 10 seconds (tests): the days only.
    assert_eq!(due_after_days(modified, 3, Duration::from_secs(10)), modified + 30 * S);
}

/// Two nodes over one PostgreSQL store: a node that skipped looking for tags (there were
/// none) notices the first one another node sets, within its watch period.
fn another_nodes_first_tag_is_noticed() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let a = open_with(|c| c.chunk_grace = Some(Duration::from_secs(600)));
        let dir_b = tempfile::tempdir().unwrap();
        let mut cb = crate::tests::config(dir_b.path());
        cb.chunk_grace = Some(Duration::from_secs(600));
        let b = Storage::open(cb).unwrap();
        let alice = user(&a.storage, "alice", Role::User, None).await;
        put(&a.storage, &alice, "/b/x", &[]).await;
        let item = b.stat(&alice, "/b/x").await.unwrap();
        assert_eq!(b.object_extras(&item).await.unwrap().tag_count, 0);
        a.storage.set_tags(&alice, "/b/x", vec![("k".into(), "v".into())], TagTarget::Object).await.unwrap();
        let start = std::time::Instant::now();
        while b.object_extras(&item).await.unwrap().tag_count == 0 {
            assert!(start.elapsed() < Duration::from_secs(40), "node B never noticed the tag");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Once seen, always read: B answers A's changes at once from then on.
        a.storage.set_tags(&alice, "/b/x", Vec::new(), TagTarget::Object).await.unwrap();
        assert_eq!(b.object_extras(&item).await.unwrap().tag_count, 0);
    });
}

#[test]
fn another_nodes_first_tag_is_noticed_on_postgres() {
    crate::tests::pg::on_postgres(another_nodes_first_tag_is_noticed)
}
