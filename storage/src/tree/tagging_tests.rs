//! Tags as the core keeps them: S3's limits, who may change them, and how they follow the
//! item through rename, copy, overwrite, multipart completion and delete.

use crate::meta::db::{TAGS, UPLOAD_TAGS};
use crate::meta::kv::Readable;
use crate::meta::model::Role;
use crate::tests::{body, open_with, user};
use crate::{Error, Storage, TagTarget, WriteOptions};

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Rows of a table keyed by u64: what is left behind, whoever's it was.
async fn rows(s: &Storage, table: crate::meta::kv::Table<u64, &'static [u8]>) -> usize {
    s.core.db.read(move |t| Ok(t.open_table(table)?.range::<u64>(..)?.count())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_follow_the_item_and_go_with_it() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let t2 = tags(&[("project", "x"), ("team", "blue")]);
    let opts = WriteOptions { tags: Some(t2.clone()), create_parents: true, ..Default::default() };
    let item = s.write(&alice, "/b/dir/a.txt", body(b"a"), opts).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/dir/a.txt").await.unwrap(), t2);
    assert_eq!(s.object_extras(&item).await.unwrap().tag_count, 2);

    // A rename or move keeps them: they belong to the item, not the name.
    s.rename(&alice, "/b/dir/a.txt", "/b/moved.txt", false).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/moved.txt").await.unwrap(), t2);
    // A copy takes them along; the copy's are its own.
    s.copy(&alice, "/b/moved.txt", "/b/copy.txt", false).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/copy.txt").await.unwrap(), t2);
    // Kept sorted by key, as S3 answers them.
    s.set_tags(&alice, "/b/copy.txt", tags(&[("z", "1"), ("k", "v")]), TagTarget::Object).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/copy.txt").await.unwrap(), tags(&[("k", "v"), ("z", "1")]));
    assert_eq!(s.tags(&alice, "/b/moved.txt").await.unwrap(), t2, "the source keeps its own");
    // A WebDAV or REST overwrite keeps them; an S3 write (Some) replaces them.
    s.write(&alice, "/b/moved.txt", body(b"new"), WriteOptions::default()).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/moved.txt").await.unwrap(), t2);
    let s3_write = WriteOptions { tags: Some(Vec::new()), ..Default::default() };
    s.write(&alice, "/b/moved.txt", body(b"newer"), s3_write).await.unwrap();
    assert!(s.tags(&alice, "/b/moved.txt").await.unwrap().is_empty());
    assert_eq!(rows(s, TAGS).await, 1, "only the copy's set is left");

    // Deleting a file removes its row; deleting a folder removes those below it once swept.
    s.set_tags(&alice, "/b/moved.txt", tags(&[("a", "1")]), TagTarget::Object).await.unwrap();
    s.delete(&alice, "/b/moved.txt", Default::default()).await.unwrap();
    assert_eq!(rows(s, TAGS).await, 1);
    s.write(
        &alice,
        "/b/deep/x/y.txt",
        body(b"y"),
        WriteOptions { tags: Some(tags(&[("y", "")])), create_parents: true, ..Default::default() },
    )
    .await
    .unwrap();
    s.write(&alice, "/b/deep/z.txt", body(b"z"), WriteOptions { tags: Some(tags(&[("z", "")])), ..Default::default() })
        .await
        .unwrap();
    s.set_tags(&alice, "/b", tags(&[("bucket", "tag")]), TagTarget::Bucket).await.unwrap();
    assert_eq!(rows(s, TAGS).await, 4);
    s.delete(&alice, "/b/deep", Default::default()).await.unwrap();
    s.sweep().await.unwrap();
    assert_eq!(rows(s, TAGS).await, 2, "the copy's and the bucket's");
    assert!(matches!(s.tags(&alice, "/b/deep/z.txt").await, Err(Error::NotFound(_))));
    // A bucket's tags are its folder's, and go with it.
    assert_eq!(s.tags(&alice, "/b").await.unwrap(), tags(&[("bucket", "tag")]));
    s.delete(&alice, "/b", Default::default()).await.unwrap();
    s.sweep().await.unwrap();
    assert_eq!(rows(s, TAGS).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_limits_on_tags() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.write(&alice, "/b/a.txt", body(b"a"), WriteOptions { create_parents: true, ..Default::default() }).await.unwrap();
    let set = |t: Vec<(String, String)>, target| {
        let s = s.clone();
        let alice = alice.clone();
        async move { s.set_tags(&alice, if target == TagTarget::Bucket { "/b" } else { "/b/a.txt" }, t, target).await }
    };
    let n = |count: usize| (0..count).map(|i| (format!("k{i}"), format!("v{i}"))).collect::<Vec<_>>();
    set(n(10), TagTarget::Object).await.unwrap();
    assert!(matches!(set(n(11), TagTarget::Object).await, Err(Error::InvalidInput(_))));
    assert_eq!(s.tags(&alice, "/b/a.txt").await.unwrap().len(), 10, "a refused set changes nothing");
    set(n(50), TagTarget::Bucket).await.unwrap();
    assert!(matches!(set(n(51), TagTarget::Bucket).await, Err(Error::InvalidInput(_))));
    // Lengths in UTF-16 units: 128 for a key, 256 for a value; an emoji is two.
    set(vec![("k".repeat(128), "v".repeat(256))], TagTarget::Object).await.unwrap();
    set(vec![("😀".repeat(64), String::new())], TagTarget::Object).await.unwrap();
    for bad in [
        vec![("k".repeat(129), String::new())],
        vec![("😀".repeat(65), String::new())],
        vec![("k".into(), "v".repeat(257))],
        vec![(String::new(), "v".into())],
        vec![("aws:createdBy".into(), "me".into())],
        vec![("AWS:x".into(), "me".into())],
        vec![("same".into(), "1".into()), ("same".into(), "2".into())],
    ] {
        let r = set(bad.clone(), TagTarget::Object).await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{bad:?}: {r:?}");
    }
    // A write with tags over the limit stores nothing.
    let opts = WriteOptions { tags: Some(n(11)), ..Default::default() };
    assert!(matches!(s.write(&alice, "/b/new.txt", body(b"n"), opts).await, Err(Error::InvalidInput(_))));
    assert!(matches!(s.stat(&alice, "/b/new.txt").await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_is_a_write_and_reading_tags_a_read() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    let bob = user(s, "bob", Role::User, None).await;
    let carol = user(s, "carol", Role::User, None).await;
    s.write(
        &alice,
        "/ro/a.txt",
        body(b"a"),
        WriteOptions { create_parents: true, tags: Some(tags(&[("k", "v")])), ..Default::default() },
    )
    .await
    .unwrap();
    s.write(&alice, "/rw/b.txt", body(b"b"), WriteOptions { create_parents: true, ..Default::default() })
        .await
        .unwrap();
    s.share(&alice, "/ro", "bob", false).await.unwrap();
    s.share(&alice, "/rw", "bob", true).await.unwrap();
    assert_eq!(s.tags(&bob, "/shared/alice/ro/a.txt").await.unwrap(), tags(&[("k", "v")]));
    let r = s.set_tags(&bob, "/shared/alice/ro/a.txt", Vec::new(), TagTarget::Object).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "a read-only grantee cannot tag: {r:?}");
    assert_eq!(s.tags(&alice, "/ro/a.txt").await.unwrap(), tags(&[("k", "v")]));
    s.set_tags(&bob, "/shared/alice/rw/b.txt", tags(&[("by", "bob")]), TagTarget::Object).await.unwrap();
    assert_eq!(s.tags(&alice, "/rw/b.txt").await.unwrap(), tags(&[("by", "bob")]));
    // Someone without a grant sees nothing there, tags included.
    assert!(s.tags(&carol, "/shared/alice/ro/a.txt").await.is_err());
    assert!(s.set_tags(&carol, "/shared/alice/rw/b.txt", Vec::new(), TagTarget::Object).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_gives_its_tags_at_completion_and_an_abort_drops_them() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    // An old object with tags: a completion replaces the object, tags included.
    s.write(&alice, "/b/obj", body(b"old"), WriteOptions { tags: Some(tags(&[("old", "1")])), ..Default::default() })
        .await
        .unwrap();
    let opts = WriteOptions { tags: Some(tags(&[("new", "2")])), ..Default::default() };
    let up = s.create_upload(&alice, "/b/obj", opts).await.unwrap();
    assert_eq!(rows(s, UPLOAD_TAGS).await, 1);
    let part = s.upload_part(&alice, up.id, 1, body(b"content"), Default::default()).await.unwrap();
    s.complete_upload(&alice, up.id, vec![(1, part.etag)]).await.unwrap();
    assert_eq!(s.tags(&alice, "/b/obj").await.unwrap(), tags(&[("new", "2")]));
    assert_eq!(rows(s, UPLOAD_TAGS).await, 0);
    // Without tags the completed object has none.
    let up = s.create_upload(&alice, "/b/obj", WriteOptions::default()).await.unwrap();
    let part = s.upload_part(&alice, up.id, 1, body(b"again"), Default::default()).await.unwrap();
    s.complete_upload(&alice, up.id, vec![(1, part.etag)]).await.unwrap();
    assert!(s.tags(&alice, "/b/obj").await.unwrap().is_empty());
    // An aborted upload leaves no row; tags over the limit start no upload.
    let up = s
        .create_upload(&alice, "/b/x", WriteOptions { tags: Some(tags(&[("a", "b")])), ..Default::default() })
        .await
        .unwrap();
    s.abort_upload(&alice, up.id).await.unwrap();
    assert_eq!(rows(s, UPLOAD_TAGS).await, 0);
    let many = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
    let r = s.create_upload(&alice, "/b/y", WriteOptions { tags: Some(many), ..Default::default() }).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
}

/// A store opened again knows it holds tags (reads of objects skip looking for them only in
/// a store that has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_again_still_reports_tags() {
    let crate::tests::Fixture { dir, storage: s } = open_with(|_| {});
    let alice = user(&s, "alice", Role::User, None).await;
    let plain = s
        .write(&alice, "/b/plain", body(b"p"), WriteOptions { create_parents: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(s.object_extras(&plain).await.unwrap().tag_count, 0);
    s.write(&alice, "/b/t", body(b"t"), WriteOptions { tags: Some(tags(&[("a", "1")])), ..Default::default() })
        .await
        .unwrap();
    s.close();
    drop(s);
    // The first store's threads may hold the redb file a moment longer.
    let mut again = None;
    for _ in 0..100 {
        match Storage::open(crate::tests::config(dir.path())) {
            Ok(s) => {
                again = Some(s);
                break;
            }
            Err(Error::Incompatible(m)) if m.contains("another process") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let s = again.expect("the store opens again");
    let alice = crate::meta::model::Principal::of(&s.find_user("alice").await.unwrap());
    let item = s.stat(&alice, "/b/t").await.unwrap();
    assert_eq!(s.object_extras(&item).await.unwrap().tag_count, 1);
}

/// The checksums the parts were sent with are kept for the completed object, copied with it,
/// not told for content that replaced it, and gone with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_object_keeps_its_parts_checksums() {
    let f = open_with(|_| {});
    let s = &f.storage;
    let alice = user(s, "alice", Role::User, None).await;
    s.mkdir(&alice, "/b").await.unwrap();
    let up = s.create_upload(&alice, "/b/mp", WriteOptions::default()).await.unwrap();
    let sum = |v: &'static str| {
        let late =
            crate::LateHeaders(std::sync::Arc::new(move || vec![("x-amz-checksum-crc32".to_owned(), v.to_owned())]));
        crate::PartOptions { checksum: Some(late), ..Default::default() }
    };
    let big = crate::tests::pseudo_random(5 << 20, 3);
    let p1 = s.upload_part(&alice, up.id, 1, body(&big), sum("AAAAAA==")).await.unwrap();
    let p2 = s.upload_part(&alice, up.id, 2, body(b"tail"), Default::default()).await.unwrap();
    let item = s.complete_upload(&alice, up.id, vec![(1, p1.etag), (2, p2.etag)]).await.unwrap();
    let want = vec![Some(("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())), None];
    assert_eq!(s.part_checksums(&item).await.unwrap(), want);
    let (copy, _) = s.copy(&alice, "/b/mp", "/b/copy", false).await.unwrap();
    assert_eq!(s.part_checksums(&copy).await.unwrap(), want);
    // New content under the same item: the old parts' checksums are not told.
    let single = s.write(&alice, "/b/mp", body(b"single"), WriteOptions::default()).await.unwrap();
    assert_eq!(single.id, item.id);
    assert!(s.part_checksums(&single).await.unwrap().is_empty());
    s.delete(&alice, "/b/mp", Default::default()).await.unwrap();
    s.delete(&alice, "/b/copy", Default::default()).await.unwrap();
    assert_eq!(rows(s, crate::meta::db::PART_SUMS).await, 0);
}

crate::tests::also_on_postgres!(
    tags_follow_the_item_and_go_with_it,
    s3_limits_on_tags,
    tagging_is_a_write_and_reading_tags_a_read,
    an_upload_gives_its_tags_at_completion_and_an_abort_drops_them,
    a_store_opened_again_still_reports_tags,
    a_multipart_object_keeps_its_parts_checksums,
);
