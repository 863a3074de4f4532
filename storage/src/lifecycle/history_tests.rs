//! Lifecycle rules in versioned buckets, a "day" lasting a fraction of a second: expiration
//! leaves a delete marker, noncurrent versions go after their days keeping the newest ones,
//! lone delete markers go, and usage and chunk counts stay exact (`check`).

use std::time::Duration;

use super::{Expiration, Filter, FilterForm, Lifecycle, NoncurrentExpiration, Rule};
use crate::meta::model::Role;
use crate::tests::{assert_consistent, body, open_with, user};
use crate::{Error, Principal, Storage, Versioning, WriteOptions};

const DAY: Duration = Duration::from_millis(300);

fn prefix(p: &str) -> Filter {
    Filter { form: FilterForm::Prefix, prefix: p.into(), ..Default::default() }
}

fn expire_after(days: u32, p: &str) -> Rule {
    Rule {
        id: format!("expire-{p}"),
        enabled: true,
        filter: prefix(p),
        expiration: Some(Expiration { days: Some(days), ..Default::default() }),
        ..Default::default()
    }
}

fn noncurrent(days: u32, newer: Option<u32>, p: &str) -> Rule {
    Rule {
        id: format!("noncurrent-{p}"),
        enabled: true,
        filter: prefix(p),
        noncurrent: Some(NoncurrentExpiration { days: Some(days), newer_versions: newer }),
        ..Default::default()
    }
}

async fn put(s: &Storage, p: &Principal, path: &str, data: &[u8]) {
    let opts = WriteOptions { create_parents: true, ..Default::default() };
    s.write(p, path, body(data), opts).await.unwrap();
}

/// (id, is a delete marker, is latest) of every version of `path`, newest first; empty
/// when the key has none left.
async fn versions(s: &Storage, p: &Principal, path: &str) -> Vec<(String, bool, bool)> {
    match s.versions_of(p, path).await {
        Ok(v) => v.into_iter().map(|v| (v.id, v.marker, v.latest)).collect(),
        Err(Error::NotFound(_)) => Vec::new(),
        Err(e) => panic!("{path}: {e:?}"),
    }
}

/// Also test_lifecycle_expiration_versioning_enabled's rule: a marker over an old version
/// is no expired object delete marker and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_in_a_versioned_bucket_leaves_a_delete_marker() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    for b in ["/on", "/off"] {
        s.mkdir(&alice, b).await.unwrap();
        s.set_lifecycle(&alice, b, Lifecycle { rules: vec![expire_after(1, "logs/")] }).await.unwrap();
    }
    s.set_versioning(&alice, "/on", Versioning::Enabled).await.unwrap();
    put(s, &alice, "/on/logs/a", b"enabled").await;
    // A suspended bucket's object is its `null` version: expiring it leaves a `null` marker.
    put(s, &alice, "/off/logs/a", b"suspended").await;
    s.set_versioning(&alice, "/off", Versioning::Suspended).await.unwrap();
    let before = s.usage(alice.user_id).await.unwrap();
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let r = s.run_lifecycle(DAY).await.unwrap();
    assert_eq!((r.expired, r.versions), (2, 0), "{r:?}");
    assert!(s.stat(&alice, "/on/logs/a").await.is_err());
    let on = versions(s, &alice, "/on/logs/a").await;
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(on[0].1 && on[0].2, "a delete marker is the latest version: {on:?}");
    assert!(!on[1].1 && !on[1].2, "the content stays as a noncurrent version: {on:?}");
    let off = versions(s, &alice, "/off/logs/a").await;
    assert_eq!(off, vec![("null".to_owned(), true, true)], "the null version is replaced");
    let after = s.usage(alice.user_id).await.unwrap();
    assert_eq!(after.bytes, before.bytes - b"suspended".len() as u64, "only the suspended bucket's bytes go");
    assert_eq!(after.files, before.files - 2);

    // A day after it was made, the suspended bucket's marker is alone: it goes too. The
    // other one covers a version and stays.
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let r = s.run_lifecycle(DAY).await.unwrap();
    assert_eq!((r.expired, r.versions), (0, 1), "{r:?}");
    assert!(versions(s, &alice, "/off/logs/a").await.is_empty());
    assert_eq!(versions(s, &alice, "/on/logs/a").await, on);
    assert_eq!(s.run_lifecycle(DAY).await.unwrap(), super::RunReport::default());
    assert_consistent(s).await;
}

/// test_lifecycle_noncur_expiration, with NewerNoncurrentVersions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noncurrent_versions_go_after_their_days_keeping_the_newest() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    s.set_versioning(&alice, "/b", Versioning::Enabled).await.unwrap();
    for i in 1..=4u8 {
        put(s, &alice, "/b/old/k", &[i; 100]).await;
        put(s, &alice, "/b/keep/k", &[i; 100]).await;
    }
    for i in 0..5u8 {
        put(s, &alice, &format!("/b/old/many/{i}"), &[i; 10]).await;
        put(s, &alice, &format!("/b/old/many/{i}"), &[i; 20]).await;
    }
    let rules = vec![noncurrent(1, Some(1), "old/")];
    s.set_lifecycle(&alice, "/b", Lifecycle { rules }).await.unwrap();
    let old = versions(s, &alice, "/b/old/k").await;
    assert_eq!(old.len(), 4);
    let before = s.usage(alice.user_id).await.unwrap();

    assert_eq!(s.run_lifecycle(DAY).await.unwrap().versions, 0, "not noncurrent for a day yet");
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let r = s.run_lifecycle(DAY).await.unwrap();
    // old/k: v1 and v2 (v3 is the one newest noncurrent version kept); old/many/*: none
    // (each has one noncurrent version, kept).
    assert_eq!(r.versions, 2, "{r:?}");
    assert_eq!(versions(s, &alice, "/b/old/k").await, old[..2].to_vec());
    assert_eq!(versions(s, &alice, "/b/keep/k").await.len(), 4, "another prefix keeps all");
    assert_eq!(versions(s, &alice, "/b/old/many/3").await.len(), 2);
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, before.bytes - 200, "their bytes are released");

    // A new version: v4 is noncurrent from now, young, and kept; v3 has one newer
    // noncurrent version now, and has been noncurrent for over a day: it goes.
    put(s, &alice, "/b/old/k", &[5; 100]).await;
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().versions, 1);
    let now = versions(s, &alice, "/b/old/k").await;
    assert_eq!(now.len(), 2);
    assert_eq!(now[1].0, old[0].0, "the version made noncurrent just now stays");
    assert_consistent(s).await;
}

/// test_lifecycle_deletemarker_expiration; and two passes at once (two nodes) remove each
/// version once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_delete_markers_go_and_passes_at_once_remove_each_version_once() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    s.set_versioning(&alice, "/b", Versioning::Enabled).await.unwrap();
    for key in ["/b/test1/a", "/b/test2/abc"] {
        put(s, &alice, key, b"x").await;
        s.delete_object(&alice, key, 1).await.unwrap().expect("a delete marker");
    }
    for i in 0..6 {
        put(s, &alice, &format!("/b/test1/n{i}"), b"1").await;
        put(s, &alice, &format!("/b/test1/n{i}"), b"2").await;
    }
    // A marker alone from the start, with no rule removing it by days.
    s.delete_object(&alice, "/b/test1/never-written", 1).await.unwrap().expect("a delete marker");
    let rule = Rule {
        expiration: Some(Expiration { expired_object_delete_marker: Some(true), ..Default::default() }),
        ..noncurrent(1, None, "test1/")
    };
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![rule] }).await.unwrap();
    // The marker that was alone from the start goes at once; the others cover a version.
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().versions, 1);
    assert!(versions(s, &alice, "/b/test1/never-written").await.is_empty());
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let (a, b) = tokio::join!(s.run_lifecycle(DAY), s.run_lifecycle(DAY));
    // test1/a: its version, then its marker left alone; test1/n*: one old version each.
    assert_eq!(a.unwrap().versions + b.unwrap().versions, 2 + 6);
    assert!(versions(s, &alice, "/b/test1/a").await.is_empty());
    assert_eq!(versions(s, &alice, "/b/test2/abc").await.len(), 2, "outside the rule's prefix");
    for i in 0..6 {
        let v = versions(s, &alice, &format!("/b/test1/n{i}")).await;
        assert_eq!(v.len(), 1, "the current version stays: {v:?}");
    }
    assert_eq!(s.usage(alice.user_id).await.unwrap().bytes, 1 + 6, "test2/abc's version and the current ones");
    assert_consistent(s).await;
}

crate::tests::also_on_postgres!(
    expiration_in_a_versioned_bucket_leaves_a_delete_marker,
    noncurrent_versions_go_after_their_days_keeping_the_newest,
    lone_delete_markers_go_and_passes_at_once_remove_each_version_once,
    noncurrent_versions_keep_their_tags_for_tag_filtered_rules,
);

/// Lifecycle never destroys what object lock keeps: a noncurrent version under a legal hold
/// outlives its NoncurrentDays, and the pass removes the rest of the page around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noncurrent_expiration_skips_a_version_under_legal_hold() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    s.enable_object_lock(&alice, "/b").await.unwrap();
    for i in 1..=3u8 {
        put(s, &alice, "/b/old/k", &[i; 100]).await;
    }
    let all = versions(s, &alice, "/b/old/k").await;
    assert_eq!(all.len(), 3);
    // The oldest version is held; the middle one is not.
    s.set_legal_hold(&alice, "/b/old/k", Some(all[2].0.as_str()), true).await.unwrap();
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![noncurrent(1, None, "old/")] }).await.unwrap();
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let r = s.run_lifecycle(DAY).await.unwrap();
    assert_eq!(r.versions, 1, "only the unheld noncurrent version goes: {r:?}");
    let left: Vec<String> = versions(s, &alice, "/b/old/k").await.into_iter().map(|v| v.0).collect();
    assert_eq!(left, vec![all[0].0.clone(), all[2].0.clone()], "the current one and the held one");
    s.set_legal_hold(&alice, "/b/old/k", Some(all[2].0.as_str()), false).await.unwrap();
    assert_eq!(s.run_lifecycle(DAY).await.unwrap().versions, 1, "released, it goes");
    assert_consistent(s).await;
}

fn pairs(t: &[(&str, &str)]) -> Vec<(String, String)> {
    t.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn version_tag_rows(s: &Storage) -> usize {
    use crate::meta::kv::Readable;
    let t = crate::meta::db::VERSION_TAGS;
    s.core.db.read(move |r| Ok(r.open_table(t)?.range::<(u64, u64)>(..)?.count())).await.unwrap()
}

/// Old versions keep their tags: an overwrite moves the current set to the version it makes
/// noncurrent (in the same transaction), GetObjectTagging/PutObjectTagging reach one version
/// by id, a version made current again takes its set back, and a NoncurrentVersionExpiration
/// rule filtering by tag reaches exactly the versions that carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noncurrent_versions_keep_their_tags_for_tag_filtered_rules() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    s.set_versioning(&alice, "/b", Versioning::Enabled).await.unwrap();
    let tagged = |t: &[(&str, &str)]| WriteOptions { tags: Some(pairs(t)), create_parents: true, ..Default::default() };
    s.write(&alice, "/b/k", body(b"one"), tagged(&[("class", "temp")])).await.unwrap();
    s.write(&alice, "/b/k", body(b"two"), tagged(&[("class", "keep")])).await.unwrap();
    put(s, &alice, "/b/k", b"three").await; // a WebDAV-style overwrite keeps the file's tags
    let all = versions(s, &alice, "/b/k").await;
    let (v3, v2, v1) = (&all[0].0, &all[1].0, &all[2].0);
    assert_eq!(s.version_tags(&alice, "/b/k", v1).await.unwrap(), pairs(&[("class", "temp")]));
    assert_eq!(s.version_tags(&alice, "/b/k", v2).await.unwrap(), pairs(&[("class", "keep")]));
    assert_eq!(s.version_tags(&alice, "/b/k", v3).await.unwrap(), pairs(&[("class", "keep")]));
    assert!(matches!(s.version_tags(&alice, "/b/k", "0000000000000001").await, Err(Error::NotFound(_))));
    // Tagging one old version changes only it.
    s.set_version_tags(&alice, "/b/k", v2, pairs(&[("class", "temp"), ("x", "y")])).await.unwrap();
    assert_eq!(s.version_tags(&alice, "/b/k", v2).await.unwrap(), pairs(&[("class", "temp"), ("x", "y")]));
    assert_eq!(s.tags(&alice, "/b/k").await.unwrap(), pairs(&[("class", "keep")]));
    // Removing the current version makes v2 current, with its own tags.
    s.delete_version(&alice, "/b/k", v3, false).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/k").await.unwrap(), pairs(&[("class", "temp"), ("x", "y")]));
    s.write(&alice, "/b/k", body(b"four"), tagged(&[])).await.unwrap();
    // A restore (copy of a version onto its key) takes the version's tags.
    let restored = s.copy_version(&alice, "/b/k", v1, "/b/r", false).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/r").await.unwrap(), pairs(&[("class", "temp")]));
    assert!(restored.size > 0);

    // The rule reaches noncurrent versions tagged class=temp: v1 and v2 of k, not r's.
    let filter = Filter { form: FilterForm::Tag, tags: pairs(&[("class", "temp")]), ..Default::default() };
    let rule = Rule {
        id: "temp".into(),
        enabled: true,
        filter,
        noncurrent: Some(NoncurrentExpiration { days: Some(1), newer_versions: None }),
        ..Default::default()
    };
    s.write(&alice, "/b/r", body(b"r2"), tagged(&[("class", "keep")])).await.unwrap();
    s.write(&alice, "/b/plain", body(b"p1"), tagged(&[])).await.unwrap();
    put(s, &alice, "/b/plain", b"p2").await;
    s.set_lifecycle(&alice, "/b", Lifecycle { rules: vec![rule] }).await.unwrap();
    tokio::time::sleep(DAY + Duration::from_millis(50)).await;
    let r = s.run_lifecycle(DAY).await.unwrap();
    assert_eq!(r.versions, 3, "k's two old versions and r's tagged one: {r:?}");
    assert_eq!(versions(s, &alice, "/b/k").await.len(), 1);
    assert_eq!(versions(s, &alice, "/b/r").await.len(), 1);
    assert_eq!(versions(s, &alice, "/b/plain").await.len(), 2, "untagged versions stay");
    assert_eq!(version_tag_rows(s).await, 0, "the removed versions' tags went with them");
    assert_consistent(s).await;
}
