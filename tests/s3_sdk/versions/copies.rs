//! Versions as copy sources and the version ids writes answer (s3-tests' copy and
//! return_version_id cases).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, CompletedMultipartUpload, CompletedPart};

use super::*;

#[tokio::test]
async fn multipart_copies_and_version_ids_of_writes() {
    // test_versioning_obj_create_overwrite_multipart, test_versioning_copy_obj_version,
    // test_versioning_bucket_multipart_upload_return_version_id, test_object_copy_versioned_bucket
    let Sdk { s, c, .. } = start().await;
    set(&c, "bkt", BucketVersioningStatus::Enabled).await;
    let mut made = Vec::new();
    for i in 0..3u64 {
        let data = support::pseudo_random(5 * 1024 * 1024 + 100, i);
        let up = c.create_multipart_upload().bucket("bkt").key("testobj").send().await.unwrap();
        let id = up.upload_id().unwrap();
        let mut parts = Vec::new();
        for (n, piece) in data.chunks(5 * 1024 * 1024).enumerate() {
            let n = n as i32 + 1;
            let out = c
                .upload_part()
                .bucket("bkt")
                .key("testobj")
                .upload_id(id)
                .part_number(n)
                .body(ByteStream::from(piece.to_vec()))
                .send()
                .await
                .unwrap();
            parts.push(CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap()).build());
        }
        let done = c
            .complete_multipart_upload()
            .bucket("bkt")
            .key("testobj")
            .upload_id(id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .unwrap();
        made.push((done.version_id().expect("a completion answers its version id").to_owned(), data));
    }
    let (listed, _) = versions(&c, "bkt").await;
    let listed: Vec<&str> = listed.iter().rev().map(|v| v.1.as_str()).collect();
    assert_eq!(listed, made.iter().map(|m| m.0.as_str()).collect::<Vec<_>>());
    for (id, data) in &made {
        assert_eq!(&get(&c, "bkt", "testobj", Some(id)).await, data);
    }
    // Copies from a version, within the bucket and into another, and of the current one.
    c.create_bucket().bucket("other").send().await.unwrap();
    for (i, (id, data)) in made.iter().enumerate() {
        for bucket in ["bkt", "other"] {
            let out = c
                .copy_object()
                .bucket(bucket)
                .key(format!("key_{i}"))
                .copy_source(format!("bkt/testobj?versionId={id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(out.copy_source_version_id(), Some(id.as_str()));
            assert_eq!(out.version_id().is_some(), bucket == "bkt", "a copy into a versioned bucket has an id");
            assert_eq!(&get(&c, bucket, &format!("key_{i}"), None).await, data);
        }
    }
    c.copy_object().bucket("other").key("new_key").copy_source("bkt/testobj").send().await.unwrap();
    assert_eq!(get(&c, "other", "new_key", None).await, made[2].1);
    // Restoring an old version onto its own key: a new current version with its content.
    let out = c
        .copy_object()
        .bucket("bkt")
        .key("testobj")
        .copy_source(format!("bkt/testobj?versionId={}", made[0].0))
        .send()
        .await
        .unwrap();
    let restored = out.version_id().unwrap().to_owned();
    assert_eq!(get(&c, "bkt", "testobj", None).await, made[0].1);
    assert_eq!(versions(&c, "bkt").await.0.iter().filter(|v| v.0 == "testobj").count(), 4);
    let h = c.head_object().bucket("bkt").key("testobj").send().await.unwrap();
    assert_eq!(h.version_id(), Some(restored.as_str()));
    let h = c.head_object().bucket("bkt").key("testobj").version_id(&made[1].0).send().await.unwrap();
    assert_eq!(h.content_length(), Some(made[1].1.len() as i64));
    s.stop().await;
}

#[tokio::test]
async fn writes_answer_a_version_id_only_in_an_enabled_bucket() {
    // test_versioning_bucket_atomic_upload_return_version_id,
    // test_versioning_bucket_multipart_upload_return_version_id
    let Sdk { s, c, .. } = start().await;
    async fn multipart(c: &Client, bucket: &str, key: &str) -> Option<String> {
        let up = c.create_multipart_upload().bucket(bucket).key(key).content_type("text/bla").send().await.unwrap();
        let id = up.upload_id().unwrap();
        let parts = one_part(c, bucket, key, id, support::pseudo_random(100_000, 3)).await;
        let done = c
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(parts)
            .send()
            .await
            .unwrap();
        done.version_id().map(str::to_owned)
    }
    set(&c, "bkt", BucketVersioningStatus::Enabled).await;
    let id = put(&c, "bkt", "bar", "").await.expect("an enabled bucket names the version");
    let (v, _) = versions(&c, "bkt").await;
    assert!(v.iter().all(|v| v.1 == id));
    let id = multipart(&c, "bkt", "mp").await.expect("a completion in an enabled bucket names the version");
    assert!(versions(&c, "bkt").await.0.iter().any(|v| v.0 == "mp" && v.1 == id));
    c.create_bucket().bucket("plain").send().await.unwrap();
    assert_eq!(put(&c, "plain", "baz", "x").await, None);
    assert_eq!(multipart(&c, "plain", "mp").await, None);
    c.create_bucket().bucket("susp").send().await.unwrap();
    set(&c, "susp", BucketVersioningStatus::Suspended).await;
    assert_eq!(put(&c, "susp", "baz", "x").await, None);
    assert_eq!(multipart(&c, "susp", "mp").await, None);
    s.stop().await;
}

#[tokio::test]
async fn copies_from_versions_keep_metadata_across_buckets() {
    // test_object_copy_versioned_bucket, test_object_copy_versioned_url_encoding,
    // test_object_copy_versioning_multipart_upload, test_multipart_copy_versioned
    let Sdk { s, c, .. } = start().await;
    set(&c, "bkt", BucketVersioningStatus::Enabled).await;
    c.create_bucket().bucket("ver2").send().await.unwrap();
    set(&c, "ver2", BucketVersioningStatus::Enabled).await;
    c.create_bucket().bucket("plain").send().await.unwrap();
    let data = support::pseudo_random(6 * 1024 * 1024, 8);
    c.put_object()
        .bucket("bkt")
        .key("foo123bar")
        .content_type("text/bla")
        .metadata("foo", "bar")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let first = c.get_object().bucket("bkt").key("foo123bar").send().await.unwrap().version_id().unwrap().to_owned();
    put(&c, "bkt", "foo123bar", "a later version").await;
    let copy = |bucket: &'static str, key: &'static str, source: String| {
        let c = c.clone();
        async move { c.copy_object().bucket(bucket).key(key).copy_source(source).send().await.unwrap() }
    };
    copy("bkt", "bar321foo", format!("bkt/foo123bar?versionId={first}")).await;
    let second = c.get_object().bucket("bkt").key("bar321foo").send().await.unwrap().version_id().unwrap().to_owned();
    copy("bkt", "bar321foo2", format!("bkt/bar321foo?versionId={second}")).await;
    copy("ver2", "bar321foo3", format!("bkt/foo123bar?versionId={first}")).await;
    copy("plain", "bar321foo4", format!("bkt/foo123bar?versionId={first}")).await;
    copy("bkt", "foo123bar2", "plain/bar321foo4".to_owned()).await;
    for (bucket, key) in [
        ("bkt", "bar321foo"),
        ("bkt", "bar321foo2"),
        ("ver2", "bar321foo3"),
        ("plain", "bar321foo4"),
        ("bkt", "foo123bar2"),
    ] {
        let out = c.get_object().bucket(bucket).key(key).send().await.unwrap();
        assert_eq!(out.content_type(), Some("text/bla"), "{bucket}/{key}");
        assert_eq!(out.metadata().unwrap().get("foo").map(String::as_str), Some("bar"), "{bucket}/{key}");
        assert_eq!(body(out).await, data, "{bucket}/{key}");
    }
    // Names that need encoding in the copy source.
    let src = put(&c, "bkt", "foo?bar", "x").await.unwrap();
    copy("bkt", "bar&foo", format!("bkt/foo%3Fbar?versionId={src}")).await;
    c.head_object().bucket("bkt").key("bar&foo").send().await.unwrap();
    // UploadPartCopy from a version.
    let up = c.create_multipart_upload().bucket("plain").key("mp").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part_copy()
        .bucket("plain")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .copy_source(format!("bkt/foo123bar?versionId={first}"))
        .copy_source_range("bytes=0-999")
        .send()
        .await
        .unwrap();
    let tag = part.copy_part_result().unwrap().e_tag().unwrap().to_owned();
    let parts =
        CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(tag).build()).build();
    c.complete_multipart_upload().bucket("plain").key("mp").upload_id(id).multipart_upload(parts).send().await.unwrap();
    assert_eq!(get(&c, "plain", "mp", None).await, &data[..1000]);
    s.stop().await;
}
