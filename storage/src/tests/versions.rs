//! Versions in the core: an enabled bucket keeps every overwrite and delete as history that
//! shares chunks and counts in usage; suspended buckets replace the `null` version; the
//! listing merges current and noncurrent versions in S3 order, page by page; moves, folder
//! deletes, bucket and user deletes keep the counts exact (`davit admin check`).

use futures::StreamExt;

use super::{assert_consistent, body, chunk_files, open, pseudo_random, read_all, user};
use crate::meta::model::Role;
use crate::{Conditions, Error, Principal, Storage, VersionQuery, Versioning, WriteOptions};

async fn put(s: &Storage, p: &Principal, path: &str, data: &[u8]) -> crate::Item {
    let opts = WriteOptions { create_parents: true, ..Default::default() };
    s.write(p, path, body(data), opts).await.unwrap()
}

async fn read_version(s: &Storage, p: &Principal, path: &str, id: &str) -> Vec<u8> {
    let (_, read) = s.read_version(p, path, id, None).await.unwrap();
    let mut r = read.expect("content");
    let mut out = Vec::new();
    while let Some(piece) = r.body.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

async fn all(s: &Storage, p: &Principal, prefix: &str, delimiter: Option<&str>) -> crate::VersionListing {
    let q = VersionQuery { prefix, key_marker: None, version_marker: None, delimiter, max: 1000 };
    s.list_versions(p, "/b", q).await.unwrap()
}

async fn bytes_used(s: &Storage, p: &Principal) -> u64 {
    s.usage(p.user_id).await.unwrap().bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_bucket_keeps_overwrites_and_deletes_as_versions() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/b").await.unwrap();
    assert_eq!(s.versioning(&p, "/b").await.unwrap(), Versioning::Unversioned);
    s.set_versioning(&p, "/b", Versioning::Enabled).await.unwrap();
    assert_eq!(s.versioning(&p, "/b").await.unwrap(), Versioning::Enabled);
    assert!(s.set_versioning(&p, "/b", Versioning::Unversioned).await.is_err(), "no way back to unversioned");

    let big = pseudo_random(3 * 1024 * 1024, 1);
    let v1 = put(s, &p, "/b/dir/k", &big).await;
    let files_after_v1 = chunk_files(f.dir.path());
    let id1 = s.current_version_id(v1.id).await.unwrap().expect("a version id");
    let mut big2 = big.clone();
    big2[10] ^= 1; // one changed chunk
    let v2 = put(s, &p, "/b/dir/k", &big2).await;
    assert_eq!(v2.id, v1.id, "the current file keeps its id");
    let id2 = s.current_version_id(v2.id).await.unwrap().unwrap();
    assert_ne!(id1, id2);
    assert!(id2 < id1, "ids sort newest first");
    assert!(chunk_files(f.dir.path()) < 2 * files_after_v1, "an old version shares its unchanged chunks");
    put(s, &p, "/b/dir/k", b"three").await;
    assert_eq!(read_all(s, &p, "/b/dir/k", None).await.unwrap(), b"three");
    assert_eq!(bytes_used(s, &p).await, 2 * big.len() as u64 + 5, "old versions count in usage");

    let versions = s.versions_of(&p, "/b/dir/k").await.unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions[0].latest && !versions[1].latest && !versions[2].latest);
    assert_eq!(versions[1].id, id2);
    assert_eq!(versions[2].id, id1);
    assert_eq!(read_version(s, &p, "/b/dir/k", &id1).await, big);
    assert_eq!(read_version(s, &p, "/b/dir/k", &id2).await, big2);
    assert!(matches!(s.read_version(&p, "/b/dir/k", "0123456789abcdef", None).await, Err(Error::NotFound(_))));
    assert!(matches!(s.read_version(&p, "/b/dir/k", "nonsense", None).await, Err(Error::NotFound(_))));

    // A delete leaves a marker; the key's history stays findable with no file left.
    let marker = s.delete_object(&p, "/b/dir/k", 1).await.unwrap().expect("a delete marker");
    assert!(matches!(s.stat(&p, "/b/dir/k").await, Err(Error::NotFound(_))));
    let versions = s.versions_of(&p, "/b/dir/k").await.unwrap();
    assert_eq!(versions.len(), 4);
    assert!(versions[0].marker && versions[0].latest && versions[0].id == marker);
    let (info, read) = s.read_version(&p, "/b/dir/k", &marker, None).await.unwrap();
    assert!(info.marker && read.is_none());
    // Removing the marker brings the newest version back.
    s.delete_version(&p, "/b/dir/k", &marker, false).await.unwrap();
    assert_eq!(read_all(s, &p, "/b/dir/k", None).await.unwrap(), b"three");
    // Removing the current version for good makes the previous one current.
    let current = s.versions_of(&p, "/b/dir/k").await.unwrap()[0].id.clone();
    s.delete_version(&p, "/b/dir/k", &current, false).await.unwrap();
    assert_eq!(read_all(s, &p, "/b/dir/k", None).await.unwrap(), big2);
    let now = s.stat(&p, "/b/dir/k").await.unwrap();
    assert_eq!(s.current_version_id(now.id).await.unwrap().unwrap(), id2);
    assert_eq!(bytes_used(s, &p).await, 2 * big.len() as u64);
    assert_consistent(s).await;

    // Restore: a new current version with an old one's content.
    let restored = s.copy_version(&p, "/b/dir/k", &id1, "/b/dir/k", false).await.unwrap();
    assert_eq!(read_all(s, &p, "/b/dir/k", None).await.unwrap(), big);
    assert_eq!(restored.size, big.len() as u64);
    assert_eq!(s.versions_of(&p, "/b/dir/k").await.unwrap().len(), 3);
    assert_eq!(bytes_used(s, &p).await, 3 * big.len() as u64);

    // DeleteBucket refuses while versions are left; the owner's folder delete takes them.
    for v in s.versions_of(&p, "/b/dir/k").await.unwrap().into_iter().skip(1) {
        s.delete_version(&p, "/b/dir/k", &v.id, false).await.unwrap();
    }
    s.delete_object(&p, "/b/dir/k", 1).await.unwrap();
    assert!(matches!(s.remove_empty_folder(&p, "/b").await, Err(Error::NotEmpty(_))));
    s.delete(&p, "/b", Conditions::default()).await.unwrap();
    assert_eq!(bytes_used(s, &p).await, 0);
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_bucket_replaces_the_null_version_only() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/b").await.unwrap();
    put(s, &p, "/b/k", b"before").await; // written unversioned: the null version
    s.set_versioning(&p, "/b", Versioning::Enabled).await.unwrap();
    let v1 = put(s, &p, "/b/k", b"one").await;
    let id1 = s.current_version_id(v1.id).await.unwrap().unwrap();
    s.set_versioning(&p, "/b", Versioning::Suspended).await.unwrap();
    put(s, &p, "/b/k", b"two").await;
    put(s, &p, "/b/k", b"three").await;
    let versions = s.versions_of(&p, "/b/k").await.unwrap();
    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    // The first null ("before") was replaced by "two", which "three" replaced.
    assert_eq!(ids, ["null", id1.as_str()], "{versions:?}");
    assert_eq!(read_version(s, &p, "/b/k", "null").await, b"three");
    assert_eq!(read_version(s, &p, "/b/k", &id1).await, b"one");
    assert_eq!(bytes_used(s, &p).await, 5 + 3);
    // A delete in a suspended bucket: a null marker replaces the null version.
    let marker = s.delete_object(&p, "/b/k", 1).await.unwrap().unwrap();
    assert_eq!(marker, "null");
    let versions = s.versions_of(&p, "/b/k").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0].marker && versions[0].id == "null" && versions[0].latest);
    assert_eq!(bytes_used(s, &p).await, 3);
    assert_consistent(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_listing_merges_pages_and_prefixes_in_s3_order() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, None).await;
    s.mkdir(&p, "/b").await.unwrap();
    put(s, &p, "/b/pre", b"x").await; // a null version
    s.set_versioning(&p, "/b", Versioning::Enabled).await.unwrap();
    for (i, key) in ["a", "a/b", "a/c/d", "ab", "z"].iter().enumerate() {
        let key = if *key == "a" { "a0" } else { key };
        for round in 0..=i % 3 {
            put(s, &p, &format!("/b/{key}"), format!("{key}{round}").as_bytes()).await;
        }
    }
    s.delete_object(&p, "/b/ab", 1).await.unwrap();
    s.delete_object(&p, "/b/gone", 1).await.unwrap(); // a marker with nothing before it
    let full = all(s, &p, "", None).await;
    let keys: Vec<(String, bool, bool)> = full.versions.iter().map(|v| (v.key.clone(), v.latest, v.marker)).collect();
    let want: Vec<(String, bool, bool)> = [
        ("a/b", true, false),
        ("a/b", false, false),
        ("a/c/d", true, false),
        ("a/c/d", false, false),
        ("a/c/d", false, false),
        ("a0", true, false),
        ("ab", true, true),
        ("ab", false, false),
        ("gone", true, true),
        ("pre", true, false),
        ("z", true, false),
        ("z", false, false),
    ]
    .iter()
    .map(|(k, l, m)| (k.to_string(), *l, *m))
    .collect();
    assert_eq!(keys, want);
    assert!(!full.truncated);
    assert_eq!(full.versions.iter().find(|v| v.key == "pre").unwrap().id, "null");
    // Newest first within a key.
    let ids: Vec<&str> = full.versions.iter().filter(|v| v.key == "a/c/d").map(|v| v.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);

    // Page by page, every size, gives the same listing.
    for max in 1..6 {
        let (mut km, mut vm) = (None::<String>, None::<String>);
        let mut got = Vec::new();
        for _ in 0..100 {
            let page = s
                .list_versions(
                    &p,
                    "/b",
                    VersionQuery {
                        prefix: "",
                        key_marker: km.as_deref(),
                        version_marker: vm.as_deref(),
                        delimiter: None,
                        max,
                    },
                )
                .await
                .unwrap();
            assert!(page.versions.len() <= max);
            got.extend(page.versions.iter().map(|v| (v.key.clone(), v.id.clone(), v.latest)));
            if !page.truncated {
                break;
            }
            km = page.next_key_marker;
            vm = page.next_version_marker;
        }
        let want: Vec<_> = full.versions.iter().map(|v| (v.key.clone(), v.id.clone(), v.latest)).collect();
        assert_eq!(got, want, "pages of {max}");
    }

    let rolled = all(s, &p, "", Some("/")).await;
    assert_eq!(rolled.common_prefixes, ["a/"]);
    assert!(rolled.versions.iter().all(|v| !v.key.contains('/')));
    let inner = all(s, &p, "a/", Some("/")).await;
    assert_eq!(inner.common_prefixes, ["a/c/"]);
    assert_eq!(inner.versions.iter().filter(|v| v.key == "a/b").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_folder_deletes_quota_and_user_deletes_keep_counts_exact() {
    let f = open();
    let s = &f.storage;
    let p = user(s, "alice", Role::User, Some(1000)).await;
    s.mkdir(&p, "/b").await.unwrap();
    s.set_versioning(&p, "/b", Versioning::Enabled).await.unwrap();
    put(s, &p, "/b/d/one", &[1u8; 100]).await;
    put(s, &p, "/b/d/two", &[2u8; 100]).await;
    put(s, &p, "/b/d/two", &[3u8; 100]).await;
    // Old versions count against the quota: 300 used of 1000.
    assert_eq!(bytes_used(s, &p).await, 300);
    let r = s.write(&p, "/b/d/two", body(&[4u8; 800]), WriteOptions::default()).await;
    assert!(matches!(r, Err(Error::QuotaExceeded(_))), "the old version stays, so 800 more do not fit");

    // A move: a delete marker at the source, a new version at the destination.
    s.rename(&p, "/b/d/one", "/b/e/one", false).await.unwrap_err(); // no folder e
    s.mkdir(&p, "/b/e").await.unwrap();
    let (moved, _) = s.rename(&p, "/b/d/one", "/b/e/one", false).await.unwrap();
    assert!(s.current_version_id(moved.id).await.unwrap().is_some());
    let src = s.versions_of(&p, "/b/d/one").await.unwrap();
    assert!(src[0].marker && src[0].latest, "{src:?}");
    // A folder delete in a versioned bucket: every file to history, with a marker.
    s.delete(&p, "/b/d", Conditions::default()).await.unwrap();
    let two = s.versions_of(&p, "/b/d/two").await.unwrap();
    assert_eq!(two.len(), 3);
    assert!(two[0].marker);
    assert_eq!(bytes_used(s, &p).await, 300);
    assert_eq!(s.usage(p.user_id).await.unwrap().files, 1);
    // A versioned bucket stays at the top level.
    s.mkdir(&p, "/other").await.unwrap();
    assert!(matches!(s.rename(&p, "/b", "/other/b", false).await, Err(Error::Conflict(_))));
    s.rename(&p, "/b", "/renamed", false).await.unwrap();
    assert_eq!(s.versions_of(&p, "/renamed/d/two").await.unwrap().len(), 3, "history follows the bucket's id");
    assert_consistent(s).await;

    // An unversioned bucket is untouched: a delete removes, no history.
    s.mkdir(&p, "/plain").await.unwrap();
    put(s, &p, "/plain/k", b"x").await;
    put(s, &p, "/plain/k", b"y").await;
    assert_eq!(s.versions_of(&p, "/plain/k").await.unwrap().len(), 1);
    assert_eq!(s.delete_object(&p, "/plain/k", 1).await.unwrap(), None);

    // Deleting the user removes their versions (check counts every reference).
    s.delete_user(p.user_id).await.unwrap();
    assert_consistent(s).await;
    assert_eq!(chunk_files(f.dir.path()), 0);
}

super::also_on_postgres!(
    enabled_bucket_keeps_overwrites_and_deletes_as_versions,
    suspended_bucket_replaces_the_null_version_only,
    version_listing_merges_pages_and_prefixes_in_s3_order,
    moves_folder_deletes_quota_and_user_deletes_keep_counts_exact,
);
