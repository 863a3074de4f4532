//! s3-tests' conditional, range and copy areas: If-* on GET, PUT and copies, byte ranges.

use aws_sdk_s3::primitives::{ByteStream, DateTime};

use super::*;

/// test_get_object_ifmatch_good, ..._ifmatch_failed, ..._ifnonematch_good,
/// ..._ifnonematch_failed, ..._ifmodifiedsince_good, ..._ifmodifiedsince_failed,
/// ..._ifunmodifiedsince_good, ..._ifunmodifiedsince_failed.
#[tokio::test]
async fn conditional_gets() {
    let Sdk { s, c, .. } = start().await;
    let etag = c.put_object().bucket("bkt").key("foo").body(ByteStream::from_static(b"bar")).send().await.unwrap();
    let etag = etag.e_tag().unwrap().to_owned();
    let ok = c.get_object().bucket("bkt").key("foo").if_match(&etag).send().await.unwrap();
    assert_eq!(body(ok).await, b"bar");
    let e = c.get_object().bucket("bkt").key("foo").if_match("\"ABCORZ\"").send().await;
    assert_eq!(refusal(e), (412, "PreconditionFailed".into()));
    let e = c.get_object().bucket("bkt").key("foo").if_none_match(&etag).send().await.unwrap_err();
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 304);
    assert_eq!(raw.headers().get("etag"), Some(etag.as_str()));
    let ok = c.get_object().bucket("bkt").key("foo").if_none_match("ABCORZ").send().await.unwrap();
    assert_eq!(body(ok).await, b"bar");

    let old = DateTime::from_secs(783_459_811); // Sat, 29 Oct 1994 19:43:31 GMT
    let ok = c.get_object().bucket("bkt").key("foo").if_modified_since(old).send().await.unwrap();
    let modified = ok.last_modified().unwrap().secs();
    assert_eq!(body(ok).await, b"bar");
    let e = c.get_object().bucket("bkt").key("foo").if_modified_since(DateTime::from_secs(modified + 1)).send().await;
    let raw = e.unwrap_err();
    let raw = raw.raw_response().unwrap();
    assert_eq!((raw.status().as_u16(), raw.headers().get("etag")), (304, Some(etag.as_str())));
    let e = c.get_object().bucket("bkt").key("foo").if_unmodified_since(old).send().await;
    assert_eq!(refusal(e), (412, "PreconditionFailed".into()));
    let future = DateTime::from_secs(4_128_528_211); // Sat, 29 Oct 2100 19:43:31 GMT
    let ok = c.get_object().bucket("bkt").key("foo").if_unmodified_since(future).send().await.unwrap();
    assert_eq!(body(ok).await, b"bar");
    s.stop().await;
}

/// test_put_object_ifmatch_good, ..._ifmatch_failed, ..._ifmatch_overwrite_existed_good,
/// ..._ifmatch_nonexisted_failed, ..._ifnonmatch_good, ..._ifnonmatch_failed,
/// ..._ifnonmatch_nonexisted_good, ..._ifnonmatch_overwrite_existed_failed,
/// test_put_object_if_match (the `conditional_write` case).
#[tokio::test]
async fn conditional_puts() {
    let Sdk { s, c, .. } = start().await;
    let put = |key: &'static str, body: &'static [u8]| {
        c.put_object().bucket("bkt").key(key).body(ByteStream::from_static(body))
    };
    let etag = put("foo", b"bar").send().await.unwrap().e_tag().unwrap().trim_matches('"').to_owned();
    put("foo", b"zar").if_match(&etag).send().await.unwrap();
    assert_eq!(get_text(&c, "bkt", "foo").await, "zar");
    assert_eq!(refusal(put("foo", b"zzz").if_match("\"ABCORZ\"").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(get_text(&c, "bkt", "foo").await, "zar");
    put("foo", b"star").if_match("*").send().await.unwrap();
    assert_eq!(get_text(&c, "bkt", "foo").await, "star");
    assert_eq!(refusal(put("new", b"bar").if_match("*").send().await), (404, "NoSuchKey".into()));
    assert_eq!(refusal(c.get_object().bucket("bkt").key("new").send().await), (404, "NoSuchKey".into()));
    put("foo", b"non").if_none_match("ABCORZ").send().await.unwrap();
    let etag =
        c.head_object().bucket("bkt").key("foo").send().await.unwrap().e_tag().unwrap().trim_matches('"').to_owned();
    assert_eq!(refusal(put("foo", b"x").if_none_match(&etag).send().await), (412, "PreconditionFailed".into()));
    put("fresh", b"bar").if_none_match("*").send().await.unwrap();
    assert_eq!(get_text(&c, "bkt", "fresh").await, "bar");
    assert_eq!(refusal(put("fresh", b"zar").if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(get_text(&c, "bkt", "fresh").await, "bar");

    // test_put_object_if_match
    let etag = put("obj", b"").if_none_match("*").send().await.unwrap().e_tag().unwrap().to_owned();
    assert_eq!(refusal(put("obj", b"").if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(put("obj", b"").if_none_match(&etag).send().await), (412, "PreconditionFailed".into()));
    put("obj", b"").if_none_match("badetag").send().await.unwrap();
    put("obj", b"").if_match(&etag).send().await.unwrap();
    c.delete_object().bucket("bkt").key("obj").send().await.unwrap();
    assert_eq!(refusal(put("obj", b"").if_match("*").send().await), (404, "NoSuchKey".into()));
    assert_eq!(refusal(put("obj", b"").if_match("badetag").send().await), (404, "NoSuchKey".into()));
    put("obj", b"").if_none_match(&etag).send().await.unwrap();
    put("obj", b"").if_match("*").send().await.unwrap();
    assert_eq!(refusal(put("obj", b"").if_match("badetag").send().await), (412, "PreconditionFailed".into()));
    put("obj", b"").if_match(&etag).send().await.unwrap();
    s.stop().await;
}

/// test_ranged_request_response_code, test_ranged_big_request_response_code,
/// test_ranged_request_skip_leading_bytes_response_code,
/// test_ranged_request_return_trailing_bytes_response_code, test_ranged_request_invalid_range,
/// test_ranged_request_empty_object.
#[tokio::test]
async fn ranged_gets() {
    let Sdk { s, c, .. } = start().await;
    c.put_object().bucket("bkt").key("testobj").body(ByteStream::from_static(b"testcontent")).send().await.unwrap();
    for (range, want, content_range) in [
        ("bytes=4-7", &b"cont"[..], "bytes 4-7/11"),
        ("bytes=4-", b"content", "bytes 4-10/11"),
        ("bytes=-7", b"content", "bytes 4-10/11"),
    ] {
        let r = c.get_object().bucket("bkt").key("testobj").range(range).send().await.unwrap();
        assert_eq!(r.content_range(), Some(content_range));
        assert_eq!(body(r).await, want);
    }
    let e = c.get_object().bucket("bkt").key("testobj").range("bytes=40-50").send().await;
    assert_eq!(refusal(e), (416, "InvalidRange".into()));
    c.put_object().bucket("bkt").key("empty").body(ByteStream::from_static(b"")).send().await.unwrap();
    let e = c.get_object().bucket("bkt").key("empty").range("bytes=40-50").send().await;
    assert_eq!(refusal(e), (416, "InvalidRange".into()));

    let big = support::pseudo_random(8 * MIB, 7);
    c.put_object().bucket("bkt").key("big").body(ByteStream::from(big.clone())).send().await.unwrap();
    let r = c.get_object().bucket("bkt").key("big").range("bytes=3145728-5242880").send().await.unwrap();
    assert_eq!(r.content_range(), Some("bytes 3145728-5242880/8388608"));
    assert!(body(r).await == big[3_145_728..=5_242_880]);
    s.stop().await;
}

/// test_object_copy_zero_size, test_object_copy_16m, test_object_copy_same_bucket,
/// test_object_copy_verify_contenttype, test_object_copy_to_itself,
/// test_object_copy_to_itself_with_metadata, test_object_copy_diff_bucket,
/// test_object_copy_retaining_metadata, test_object_copy_replacing_metadata,
/// test_object_copy_bucket_not_found, test_object_copy_key_not_found.
#[tokio::test]
async fn copies() {
    let Sdk { s, c, .. } = start().await;
    let copy = |src: &str, bucket: &str, key: &str| c.copy_object().copy_source(src).bucket(bucket).key(key);
    c.put_object().bucket("bkt").key("foo123bar").body(ByteStream::from_static(b"")).send().await.unwrap();
    copy("bkt/foo123bar", "bkt", "bar321foo").send().await.unwrap();
    assert_eq!(c.get_object().bucket("bkt").key("bar321foo").send().await.unwrap().content_length(), Some(0));
    c.put_object().bucket("bkt").key("obj1").body(ByteStream::from(vec![0u8; 16 * MIB])).send().await.unwrap();
    copy("bkt/obj1", "bkt", "obj2").send().await.unwrap();
    assert_eq!(c.head_object().bucket("bkt").key("obj2").send().await.unwrap().content_length(), Some(16 * MIB as i64));

    c.put_object()
        .bucket("bkt")
        .key("foo123bar")
        .content_type("text/bla")
        .body(ByteStream::from_static(b"foo"))
        .send()
        .await
        .unwrap();
    copy("bkt/foo123bar", "bkt", "bar321foo").send().await.unwrap();
    let r = c.get_object().bucket("bkt").key("bar321foo").send().await.unwrap();
    assert_eq!(r.content_type(), Some("text/bla"));
    assert_eq!(body(r).await, b"foo");
    assert_eq!(refusal(copy("bkt/foo123bar", "bkt", "foo123bar").send().await), (400, "InvalidRequest".into()));
    copy("bkt/foo123bar", "bkt", "foo123bar")
        .metadata("foo", "bar")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .send()
        .await
        .unwrap();
    let r = c.get_object().bucket("bkt").key("foo123bar").send().await.unwrap();
    assert_eq!(r.metadata().unwrap().get("foo").map(String::as_str), Some("bar"));
    new_bucket(&c, "other").await;
    copy("bkt/foo123bar", "other", "bar321foo").send().await.unwrap();
    assert_eq!(get_text(&c, "other", "bar321foo").await, "foo");

    for size in [3, MIB] {
        c.put_object()
            .bucket("bkt")
            .key("meta")
            .metadata("key1", "value1")
            .metadata("key2", "value2")
            .content_type("audio/ogg")
            .body(ByteStream::from(vec![0u8; size]))
            .send()
            .await
            .unwrap();
        copy("bkt/meta", "bkt", "kept").send().await.unwrap();
        let r = c.get_object().bucket("bkt").key("kept").send().await.unwrap();
        assert_eq!((r.content_type(), r.content_length()), (Some("audio/ogg"), Some(size as i64)));
        let m = r.metadata().unwrap();
        assert_eq!((m.len(), m["key1"].as_str(), m["key2"].as_str()), (2, "value1", "value2"));
        copy("bkt/meta", "bkt", "replaced")
            .metadata("key3", "value3")
            .metadata("key2", "value2")
            .content_type("audio/mpeg")
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await
            .unwrap();
        let r = c.get_object().bucket("bkt").key("replaced").send().await.unwrap();
        assert_eq!((r.content_type(), r.content_length()), (Some("audio/mpeg"), Some(size as i64)));
        let m = r.metadata().unwrap();
        assert_eq!((m.len(), m["key3"].as_str(), m["key2"].as_str()), (2, "value3", "value2"));
    }
    assert_eq!(refusal(copy("bkt-fake/foo123bar", "bkt", "x").send().await).0, 404);
    assert_eq!(refusal(copy("bkt/nothere", "bkt", "x").send().await).0, 404);
    s.stop().await;
}

/// test_copy_object_ifmatch_good, ..._ifmatch_failed, ..._ifnonematch_good,
/// ..._ifnonematch_failed.
#[tokio::test]
async fn conditional_copies() {
    let Sdk { s, c, .. } = start().await;
    let r = c.put_object().bucket("bkt").key("foo").body(ByteStream::from_static(b"bar")).send().await.unwrap();
    let etag = r.e_tag().unwrap().to_owned();
    c.copy_object().copy_source("bkt/foo").bucket("bkt").key("bar").copy_source_if_match(&etag).send().await.unwrap();
    assert_eq!(get_text(&c, "bkt", "bar").await, "bar");
    let e =
        c.copy_object().copy_source("bkt/foo").bucket("bkt").key("bar2").copy_source_if_match("ABCORZ").send().await;
    assert_eq!(refusal(e), (412, "PreconditionFailed".into()));
    let e =
        c.copy_object().copy_source("bkt/foo").bucket("bkt").key("bar2").copy_source_if_none_match(&etag).send().await;
    assert_eq!(refusal(e), (412, "PreconditionFailed".into()));
    c.copy_object()
        .copy_source("bkt/foo")
        .bucket("bkt")
        .key("bar3")
        .copy_source_if_none_match("ABCORZ")
        .send()
        .await
        .unwrap();
    assert_eq!(get_text(&c, "bkt", "bar3").await, "bar");
    s.stop().await;
}
