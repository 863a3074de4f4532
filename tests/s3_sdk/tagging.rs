//! Object and bucket tagging, and GetObjectAttributes, as the SDK sees them. Ported from
//! ceph/s3-tests (`s3tests/functional/test_s3.py`); each test names the cases it covers.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectAttributes, Tag, Tagging, TaggingDirective,
};

use super::*;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    Tagging::builder().set_tag_set(Some(pairs.iter().map(|(k, v)| tag(k, v)).collect())).build().unwrap()
}

fn n_tags(n: usize, key_len: usize, value_len: usize) -> Tagging {
    let tags = (0..n)
        .map(|i| {
            let k = format!("{i:03}{}", "k".repeat(key_len.saturating_sub(3)));
            tag(&k, &"v".repeat(value_len))
        })
        .collect();
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

async fn tags_of(c: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = c.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
    out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn put(c: &Client, key: &str) {
    c.put_object().bucket("bkt").key(key).body(ByteStream::from_static(b"data")).send().await.unwrap();
}

/// test_get_obj_tagging, test_put_max_tags, test_put_max_kvsize_tags, test_put_modify_tags,
/// test_put_delete_tags.
#[tokio::test]
async fn object_tags_are_set_read_replaced_and_deleted() {
    let Sdk { s: _s, c, .. } = start().await;
    put(&c, "obj").await;
    assert!(tags_of(&c, "bkt", "obj").await.is_empty());
    c.put_object_tagging()
        .bucket("bkt")
        .key("obj")
        .tagging(tagging(&[("key1", "val1"), ("key2", "val2")]))
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&c, "bkt", "obj").await, pairs(&[("key1", "val1"), ("key2", "val2")]));
    // Ten tags, each key of 128 and value of 256 characters: the most S3 allows.
    c.put_object_tagging().bucket("bkt").key("obj").tagging(n_tags(10, 128, 256)).send().await.unwrap();
    let got = tags_of(&c, "bkt", "obj").await;
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(k, v)| k.len() == 128 && v.len() == 256));
    // A new set replaces the old one.
    c.put_object_tagging().bucket("bkt").key("obj").tagging(tagging(&[("key3", "val3")])).send().await.unwrap();
    assert_eq!(tags_of(&c, "bkt", "obj").await, pairs(&[("key3", "val3")]));
    c.delete_object_tagging().bucket("bkt").key("obj").send().await.unwrap();
    assert!(tags_of(&c, "bkt", "obj").await.is_empty());
    // A missing object has no tags to read or set.
    let (status, code) = refusal(c.get_object_tagging().bucket("bkt").key("nope").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"));
    let (status, code) =
        refusal(c.put_object_tagging().bucket("bkt").key("nope").tagging(tagging(&[("a", "b")])).send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"));
}

/// test_put_excess_tags, test_put_excess_key_tags, test_put_excess_val_tags.
#[tokio::test]
async fn tags_over_the_limits_answer_invalid_tag_and_change_nothing() {
    let Sdk { s: _s, c, .. } = start().await;
    put(&c, "obj").await;
    c.put_object_tagging().bucket("bkt").key("obj").tagging(tagging(&[("keep", "me")])).send().await.unwrap();
    for (what, t) in [
        ("11 tags", n_tags(11, 5, 5)),
        ("a key of 129", n_tags(1, 129, 5)),
        ("a value of 257", n_tags(1, 5, 257)),
        ("aws: prefix", tagging(&[("aws:thing", "x")])),
        ("a key twice", tagging(&[("k", "1"), ("k", "2")])),
    ] {
        let (status, code) = refusal(c.put_object_tagging().bucket("bkt").key("obj").tagging(t).send().await);
        assert_eq!((status, code.as_str()), (400, "InvalidTag"), "{what}");
    }
    assert_eq!(tags_of(&c, "bkt", "obj").await, pairs(&[("keep", "me")]));
    // The same limits on a PUT's x-amz-tagging: nothing is stored.
    let many = (0..11).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
    let r = c.put_object().bucket("bkt").key("new").tagging(many).body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(r), (400, "InvalidTag".to_owned()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("new").send().await).0, 404);
}

/// test_put_obj_with_tags, test_get_obj_head_tagging.
#[tokio::test]
async fn a_put_takes_its_tags_from_the_header_and_get_and_head_count_them() {
    let Sdk { s: _s, c, .. } = start().await;
    let http = support::tls_client();
    c.put_object()
        .bucket("bkt")
        .key("testtagobj1")
        .tagging("foo=bar&bar&a%20b=c%2Bd")
        .body(ByteStream::from_static(b"aaaaaaaaaaaaaaaaaaaaaaaaa"))
        .send()
        .await
        .unwrap();
    // Answered sorted by key, as S3 does, whatever the order sent.
    assert_eq!(tags_of(&c, "bkt", "testtagobj1").await, pairs(&[("a b", "c+d"), ("bar", ""), ("foo", "bar")]));
    let g = c.get_object().bucket("bkt").key("testtagobj1").send().await.unwrap();
    assert_eq!(g.tag_count(), Some(3));
    // HEAD sends x-amz-tagging-count too (the SDK does not show it: read by hand).
    let presign = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let head = c.head_object().bucket("bkt").key("testtagobj1").presigned(presign.clone()).await.unwrap();
    let r = http.head(head.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("x-amz-tagging-count").and_then(|v| v.to_str().ok()), Some("3"));
    // An S3 overwrite without the header makes an object without tags; none, no count.
    put(&c, "testtagobj1").await;
    assert!(tags_of(&c, "bkt", "testtagobj1").await.is_empty());
    assert_eq!(c.get_object().bucket("bkt").key("testtagobj1").send().await.unwrap().tag_count(), None);
    let head = c.head_object().bucket("bkt").key("testtagobj1").presigned(presign).await.unwrap();
    let r = http.head(head.uri()).send().await.unwrap();
    assert!(r.headers().get("x-amz-tagging-count").is_none());
}

/// The tagging directive of CopyObject (COPY by default, REPLACE), and tags given at
/// CreateMultipartUpload reaching the completed object.
#[tokio::test]
async fn copies_keep_or_replace_tags_and_uploads_apply_theirs_at_completion() {
    let Sdk { s: _s, c, .. } = start().await;
    c.put_object()
        .bucket("bkt")
        .key("src")
        .tagging("a=1&b=2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    c.copy_object().bucket("bkt").key("copied").copy_source("bkt/src").send().await.unwrap();
    assert_eq!(tags_of(&c, "bkt", "copied").await, pairs(&[("a", "1"), ("b", "2")]));
    c.copy_object()
        .bucket("bkt")
        .key("replaced")
        .copy_source("bkt/src")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("c=3")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&c, "bkt", "replaced").await, pairs(&[("c", "3")]));
    // REPLACE onto the object itself changes only its tags.
    c.copy_object()
        .bucket("bkt")
        .key("src")
        .copy_source("bkt/src")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .unwrap();
    assert!(tags_of(&c, "bkt", "src").await.is_empty());

    let up = c.create_multipart_upload().bucket("bkt").key("mp").tagging("part=yes").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let p = c
        .upload_part()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"p"))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(p.e_tag().unwrap()).build())
        .build();
    c.complete_multipart_upload().bucket("bkt").key("mp").upload_id(id).multipart_upload(done).send().await.unwrap();
    assert_eq!(tags_of(&c, "bkt", "mp").await, pairs(&[("part", "yes")]));
}

/// test_set_bucket_tagging.
#[tokio::test]
async fn bucket_tags_are_set_read_and_deleted() {
    let Sdk { s: _s, c, .. } = start().await;
    let (status, code) = refusal(c.get_bucket_tagging().bucket("bkt").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchTagSet"));
    c.put_bucket_tagging().bucket("bkt").tagging(tagging(&[("Hello", "World")])).send().await.unwrap();
    let got = c.get_bucket_tagging().bucket("bkt").send().await.unwrap();
    assert_eq!(got.tag_set().len(), 1);
    assert_eq!((got.tag_set()[0].key(), got.tag_set()[0].value()), ("Hello", "World"));
    // Fifty tags are allowed on a bucket, 51 are not.
    c.put_bucket_tagging().bucket("bkt").tagging(n_tags(50, 10, 10)).send().await.unwrap();
    let (status, code) = refusal(c.put_bucket_tagging().bucket("bkt").tagging(n_tags(51, 10, 10)).send().await);
    assert_eq!((status, code.as_str()), (400, "InvalidTag"));
    c.delete_bucket_tagging().bucket("bkt").send().await.unwrap();
    let (status, code) = refusal(c.get_bucket_tagging().bucket("bkt").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchTagSet"));
    let (status, code) = refusal(c.get_bucket_tagging().bucket("nobucket").send().await);
    assert_eq!((status, code.as_str()), (404, "NoSuchBucket"));
}

/// Tagging is a write: a read-only grantee reads tags but cannot set them (davit's grants;
/// s3-tests' test_put_tags_acl_public needs policies).
#[tokio::test]
async fn a_read_only_grantee_reads_tags_but_cannot_tag() {
    let Sdk { s, c, .. } = start().await;
    c.put_object().bucket("bkt").key("doc").tagging("k=v").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let alice = s.principal("alice").await;
    s.storage.share(&alice, "/bkt", "bob", false).await.unwrap();
    let (key, secret) = key_of(&s, "bob").await;
    let bob = client(&s.base, &key, &secret, false);
    assert_eq!(tags_of(&bob, "shared", "alice/bkt/doc").await, pairs(&[("k", "v")]));
    let r = bob.put_object_tagging().bucket("shared").key("alice/bkt/doc").tagging(tagging(&[("b", "c")])).send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    let r = bob.delete_object_tagging().bucket("shared").key("alice/bkt/doc").send().await;
    assert_eq!(refusal(r), (403, "AccessDenied".to_owned()));
    assert_eq!(tags_of(&c, "bkt", "doc").await, pairs(&[("k", "v")]));
}

/// test_get_checksum_object_attributes, test_get_single_multipart_object_attributes,
/// test_get_paginated_multipart_object_attributes.
#[tokio::test]
async fn object_attributes_answer_what_was_asked() {
    let Sdk { s: _s, c, .. } = start().await;
    let out = c
        .put_object()
        .bucket("bkt")
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    let sha = out.checksum_sha256().unwrap().to_owned();
    let a = c
        .get_object_attributes()
        .bucket("bkt")
        .key("single")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .send()
        .await
        .unwrap();
    assert_eq!(a.e_tag().map(|e| e.trim_matches('"')), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
    assert_eq!(a.object_size(), Some(11));
    assert_eq!(a.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert_eq!(a.checksum().and_then(|c| c.checksum_sha256()), Some(sha.as_str()));
    assert!(a.object_parts().is_none(), "a single PUT has no parts to tell");
    // Only what was asked.
    let a = c
        .get_object_attributes()
        .bucket("bkt")
        .key("single")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap();
    assert_eq!(a.object_size(), Some(11));
    assert!(a.e_tag().is_none() && a.checksum().is_none() && a.storage_class().is_none());

    // A multipart object of three parts (5 MiB, 5 MiB, 1 byte), listed one part a page.
    // Parts sent with SHA-256 checksums: each part's is told with it.
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("multi")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut done = CompletedMultipartUpload::builder();
    let mut sums = Vec::new();
    for (n, len) in [(1, 5 << 20), (2, 5 << 20), (3, 1)] {
        let p = c
            .upload_part()
            .bucket("bkt")
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(vec![n as u8; len]))
            .send()
            .await
            .unwrap();
        let sum = p.checksum_sha256().unwrap().to_owned();
        done = done.parts(
            CompletedPart::builder().part_number(n).e_tag(p.e_tag().unwrap()).checksum_sha256(sum.clone()).build(),
        );
        sums.push(sum);
    }
    let out = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("multi")
        .upload_id(id)
        .multipart_upload(done.build())
        .send()
        .await
        .unwrap();
    let a = c
        .get_object_attributes()
        .bucket("bkt")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::Etag)
        .max_parts(1)
        .send()
        .await
        .unwrap();
    assert_eq!(a.e_tag().map(|e| e.trim_matches('"')), out.e_tag().map(|e| e.trim_matches('"')));
    let parts = a.object_parts().unwrap();
    assert_eq!(parts.total_parts_count(), Some(3));
    assert_eq!(parts.is_truncated(), Some(true));
    assert_eq!(parts.next_part_number_marker(), Some("1"));
    assert_eq!(parts.parts().len(), 1);
    assert_eq!((parts.parts()[0].part_number(), parts.parts()[0].size()), (Some(1), Some(5 << 20)));
    assert_eq!(parts.parts()[0].checksum_sha256(), Some(sums[0].as_str()));
    let a = c
        .get_object_attributes()
        .bucket("bkt")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .part_number_marker("1")
        .send()
        .await
        .unwrap();
    let parts = a.object_parts().unwrap();
    assert_eq!(parts.is_truncated(), Some(false));
    let got: Vec<(Option<i32>, Option<i64>)> = parts.parts().iter().map(|p| (p.part_number(), p.size())).collect();
    assert_eq!(got, [(Some(2), Some(5 << 20)), (Some(3), Some(1))]);
    let got: Vec<Option<&str>> = parts.parts().iter().map(|p| p.checksum_sha256()).collect();
    assert_eq!(got, [Some(sums[1].as_str()), Some(sums[2].as_str())]);
    let r = c.get_object_attributes().bucket("bkt").key("nope").object_attributes(ObjectAttributes::Etag).send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".to_owned()));
}

/// One core: tags set over S3 are read over REST and the other way round; a WebDAV move
/// and a WebDAV overwrite keep them (they belong to the file, not its name).
#[tokio::test]
async fn tags_are_the_same_over_s3_rest_and_webdav() {
    let Sdk { s, c, .. } = start().await;
    let http = support::tls_client();
    let auth = |b: reqwest::RequestBuilder| b.basic_auth("alice", Some(support::PASSWORD));
    c.put_object()
        .bucket("bkt")
        .key("a.txt")
        .tagging("from=s3")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .unwrap();
    let r = auth(http.get(s.url("/api/v1/tags"))).query(&[("path", "/bkt/a.txt")]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!([{ "key": "from", "value": "s3" }]));
    let body = serde_json::json!({ "path": "/bkt/a.txt", "tags": [{ "key": "from", "value": "rest" }, { "key": "x", "value": "" }] });
    let r = auth(http.put(s.url("/api/v1/tags"))).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(tags_of(&c, "bkt", "a.txt").await, pairs(&[("from", "rest"), ("x", "")]));
    // REST holds tags to the same limits.
    let many: Vec<_> = (0..11).map(|i| serde_json::json!({ "key": format!("k{i}"), "value": "" })).collect();
    let r = auth(http.put(s.url("/api/v1/tags")))
        .json(&serde_json::json!({ "path": "/bkt/a.txt", "tags": many }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // WebDAV: a move keeps them, and so does an overwrite.
    let r = auth(http.request(reqwest::Method::from_bytes(b"MOVE").unwrap(), s.url("/dav/bkt/a.txt")))
        .header("Destination", s.url("/dav/bkt/b.txt"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = auth(http.put(s.url("/dav/bkt/b.txt"))).body("new content").send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(tags_of(&c, "bkt", "b.txt").await, pairs(&[("from", "rest"), ("x", "")]));
    let r = auth(http.get(s.url("/api/v1/tags"))).query(&[("path", "/bkt/nope")]).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn version_tags(c: &Client, key: &str, v: &str) -> Vec<(String, String)> {
    let out = c.get_object_tagging().bucket("bkt").key(key).version_id(v).send().await.unwrap();
    assert_eq!(out.version_id(), Some(v), "the answer names the version");
    out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

/// Old versions keep their tags, and Get/Put/DeleteObjectTagging reach one by versionId (S3's
/// documented behaviour; the s3-tests functions on tagging do not name a version).
#[tokio::test]
async fn old_versions_keep_their_tags() {
    let Sdk { s, c, .. } = start().await;
    let on = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .build();
    c.put_bucket_versioning().bucket("bkt").versioning_configuration(on).send().await.unwrap();
    let put_tagged = |t: &'static str| {
        c.put_object().bucket("bkt").key("k").tagging(t).body(ByteStream::from_static(b"data")).send()
    };
    let v1 = put_tagged("a=1").await.unwrap().version_id().unwrap().to_owned();
    let v2 = put_tagged("b=2").await.unwrap().version_id().unwrap().to_owned();
    assert_eq!(version_tags(&c, "k", &v1).await, pairs(&[("a", "1")]));
    assert_eq!(version_tags(&c, "k", &v2).await, pairs(&[("b", "2")]));
    assert_eq!(tags_of(&c, "bkt", "k").await, pairs(&[("b", "2")]));

    // One old version's tags change alone.
    let out = c.put_object_tagging().bucket("bkt").key("k").version_id(&v1).tagging(tagging(&[("c", "3")])).send();
    assert_eq!(out.await.unwrap().version_id(), Some(v1.as_str()));
    assert_eq!(version_tags(&c, "k", &v1).await, pairs(&[("c", "3")]));
    assert_eq!(tags_of(&c, "bkt", "k").await, pairs(&[("b", "2")]));
    // GET and HEAD of the old version count its own tags.
    c.put_object_tagging()
        .bucket("bkt")
        .key("k")
        .version_id(&v1)
        .tagging(tagging(&[("c", "3"), ("d", "4")]))
        .send()
        .await
        .unwrap();
    let got = c.get_object().bucket("bkt").key("k").version_id(&v1).send().await.unwrap();
    assert_eq!(got.tag_count(), Some(2));
    let head = c.head_object().bucket("bkt").key("k").version_id(&v1).send().await.unwrap();
    assert_eq!(head.tag_count(), Some(2));
    let head = c.head_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(head.tag_count(), Some(1));
    let r = c.put_object_tagging().bucket("bkt").key("k").version_id(&v1).tagging(n_tags(11, 3, 3)).send().await;
    assert_eq!(refusal(r), (400, "InvalidTag".to_owned()));
    c.delete_object_tagging().bucket("bkt").key("k").version_id(&v1).send().await.unwrap();
    assert!(version_tags(&c, "k", &v1).await.is_empty());
    assert_eq!(tags_of(&c, "bkt", "k").await, pairs(&[("b", "2")]), "the current version keeps its own");

    // A version that does not exist, and a delete marker (405, as S3).
    let r = c.get_object_tagging().bucket("bkt").key("k").version_id("0000000000000001").send().await;
    assert_eq!(refusal(r), (404, "NoSuchVersion".to_owned()));
    let marker = c.delete_object().bucket("bkt").key("k").send().await.unwrap().version_id().unwrap().to_owned();
    let r = c.get_object_tagging().bucket("bkt").key("k").version_id(&marker).send().await;
    assert_eq!(refusal(r).0, 405);
    // The object deleted, its last version keeps its tags; removing the marker brings both back.
    assert_eq!(version_tags(&c, "k", &v2).await, pairs(&[("b", "2")]));
    c.delete_object().bucket("bkt").key("k").version_id(&marker).send().await.unwrap();
    assert_eq!(tags_of(&c, "bkt", "k").await, pairs(&[("b", "2")]));
    s.stop().await;
}

/// The aws CLI asks for several attributes in one comma-separated header (the SDK for Rust
/// repeats the header): each is answered (found probing with the CLI: only LastModified came).
#[tokio::test]
async fn object_attributes_listed_in_one_header_are_all_answered() {
    let Sdk { s, c, key, secret } = start().await;
    c.put_object().bucket("bkt").key("k").body(ByteStream::from_static(b"hi\n")).send().await.unwrap();
    let signer = crate::s3_sign::Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let asked = [("x-amz-object-attributes", "ObjectSize,ETag")];
    let r = signer.request(reqwest::Method::GET, "/bkt/k", &[("attributes", "")], &asked, "UNSIGNED-PAYLOAD");
    let xml = r.send().await.unwrap().text().await.unwrap();
    assert!(xml.contains("<ObjectSize>3</ObjectSize>") && xml.contains("<ETag>"), "{xml}");
}
