//! Objects: what is kept with them, reads (ranges, conditions, overrides), copies, deletes,
//! and the refusals on the way.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use base64::Engine;

use super::*;

/// "hello world": its MD5, the ETag of a single-part write.
const HELLO_MD5: &str = "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"";

async fn put(c: &Client, key: &str, data: &'static [u8]) -> String {
    let out = c.put_object().bucket("bkt").key(key).body(ByteStream::from_static(data)).send().await.unwrap();
    out.e_tag().unwrap().to_owned()
}

#[tokio::test]
async fn content_headers_and_user_metadata_are_kept_and_returned() {
    let Sdk { s, c, .. } = start().await;
    // 2030-03-17 17:46:40 UTC.
    let expires = DateTime::from_secs(1_900_000_000);
    let out = c
        .put_object()
        .bucket("bkt")
        .key("docs/report.txt")
        .body(ByteStream::from_static(b"hello world"))
        .content_type("text/x-report; charset=utf-8")
        .content_disposition("attachment; filename=\"r.txt\"")
        .content_encoding("gzip")
        .content_language("de-CH")
        .cache_control("max-age=60")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("Owner-Name", "Alice Ü")
        .send()
        .await
        .unwrap();
    assert_eq!(out.e_tag(), Some(HELLO_MD5));

    let h = c.head_object().bucket("bkt").key("docs/report.txt").send().await.unwrap();
    let g = c.get_object().bucket("bkt").key("docs/report.txt").send().await.unwrap();
    assert_eq!(g.content_length(), Some(11));
    assert_eq!(h.content_length(), Some(11));
    assert_eq!((h.e_tag(), g.e_tag()), (Some(HELLO_MD5), Some(HELLO_MD5)));
    assert_eq!(h.last_modified(), g.last_modified());
    assert!(h.last_modified().is_some());
    for (what, got, want) in [
        ("type", [h.content_type(), g.content_type()], "text/x-report; charset=utf-8"),
        ("disposition", [h.content_disposition(), g.content_disposition()], "attachment; filename=\"r.txt\""),
        ("encoding", [h.content_encoding(), g.content_encoding()], "gzip"),
        ("language", [h.content_language(), g.content_language()], "de-CH"),
        ("cache-control", [h.cache_control(), g.cache_control()], "max-age=60"),
        ("expires", [h.expires_string(), g.expires_string()], "Sun, 17 Mar 2030 17:46:40 GMT"),
    ] {
        assert_eq!(got, [Some(want); 2], "{what} (HEAD, GET)");
    }
    for meta in [h.metadata().unwrap(), g.metadata().unwrap()] {
        // S3 keeps user metadata names in lower case.
        assert_eq!(meta.len(), 2, "{meta:?}");
        assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
        // Non-ASCII values come back RFC 2047-encoded, as S3 sends them (the SDK sent raw UTF-8).
        let encoded = meta.get("owner-name").unwrap();
        let b64 = encoded.strip_prefix("=?UTF-8?B?").and_then(|v| v.strip_suffix("?=")).expect(encoded);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), "Alice Ü".as_bytes());
    }
    assert_eq!(body(g).await, b"hello world");
    s.stop().await;
}

#[tokio::test]
async fn ranges_conditions_and_response_overrides_on_get() {
    let Sdk { s, c, .. } = start().await;
    let etag = put(&c, "r.txt", b"0123456789").await;
    let get = || c.get_object().bucket("bkt").key("r.txt");

    for (range, want, content_range) in [
        ("bytes=2-5", &b"2345"[..], "bytes 2-5/10"),
        ("bytes=7-", b"789", "bytes 7-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
    ] {
        let out = get().range(range).send().await.unwrap();
        assert_eq!(out.content_range(), Some(content_range), "{range}");
        assert_eq!(out.content_length(), Some(want.len() as i64), "{range}");
        assert_eq!(body(out).await, want, "{range}");
    }
    let r = get().range("bytes=10-20").send().await;
    assert_eq!(refusal(r), (416, "InvalidRange".into()));
    let h = c.head_object().bucket("bkt").key("r.txt").range("bytes=1-2").send().await.unwrap();
    assert_eq!((h.content_length(), h.content_range()), (Some(2), Some("bytes 1-2/10")));

    // If-Match / If-None-Match.
    assert_eq!(body(get().if_match(&etag).send().await.unwrap()).await, b"0123456789");
    assert_eq!(refusal(get().if_match("\"0000\"").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(get().if_none_match(&etag).send().await).0, 304);
    assert_eq!(refusal(get().if_none_match("*").send().await).0, 304);
    get().if_none_match("\"0000\"").send().await.unwrap();
    let r = c.head_object().bucket("bkt").key("r.txt").if_match("\"0000\"").send().await;
    assert_eq!(refusal(r).0, 412);

    // Dates, at S3's one-second precision: not modified since its own Last-Modified.
    let modified = c.head_object().bucket("bkt").key("r.txt").send().await.unwrap().last_modified.unwrap();
    let hour_before = DateTime::from_secs(modified.secs() - 3600);
    let hour_after = DateTime::from_secs(modified.secs() + 3600);
    assert_eq!(refusal(get().if_modified_since(modified).send().await).0, 304);
    assert_eq!(refusal(get().if_modified_since(hour_after).send().await).0, 304);
    get().if_modified_since(hour_before).send().await.unwrap();
    assert_eq!(refusal(get().if_unmodified_since(hour_before).send().await), (412, "PreconditionFailed".into()));
    get().if_unmodified_since(modified).send().await.unwrap();
    // If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since (RFC 9110).
    get().if_match(&etag).if_unmodified_since(hour_before).send().await.unwrap();
    get().if_none_match("\"0000\"").if_modified_since(hour_after).send().await.unwrap();

    let out = get()
        .response_content_type("application/x-override")
        .response_content_disposition("inline")
        .response_content_encoding("identity")
        .response_content_language("fr")
        .response_cache_control("no-store")
        .response_expires(DateTime::from_secs(1_900_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("application/x-override"));
    assert_eq!(out.content_disposition(), Some("inline"));
    assert_eq!(out.content_encoding(), Some("identity"));
    assert_eq!(out.content_language(), Some("fr"));
    assert_eq!(out.cache_control(), Some("no-store"));
    assert_eq!(out.expires_string(), Some("Sun, 17 Mar 2030 17:46:40 GMT"));
    // Overrides change the answer, not the object.
    let h = c.head_object().bucket("bkt").key("r.txt").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/octet-stream"));
    assert_eq!(h.content_disposition(), None);

    // A single-part object is its own part 1, and has no other.
    let out = get().part_number(1).send().await.unwrap();
    assert_eq!(out.parts_count(), Some(1));
    assert_eq!(body(out).await, b"0123456789");
    assert_eq!(refusal(get().part_number(2).send().await), (400, "InvalidPart".into()));
    s.stop().await;
}

#[tokio::test]
async fn missing_keys_and_buckets_are_named_and_deletes_are_idempotent() {
    let Sdk { s, c, .. } = start().await;
    let r = c.get_object().bucket("bkt").key("nope").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("nope").send().await), (404, "NotFound".into()));
    let r = c.get_object().bucket("nobucket").key("k").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c.put_object().bucket("nobucket").key("k").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c.delete_object().bucket("nobucket").key("k").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    // A folder made by a longer key is no object.
    put(&c, "dir/file.txt", b"x").await;
    let r = c.get_object().bucket("bkt").key("dir").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));

    put(&c, "gone.txt", b"x").await;
    c.delete_object().bucket("bkt").key("gone.txt").send().await.unwrap();
    let r = c.get_object().bucket("bkt").key("gone.txt").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    c.delete_object().bucket("bkt").key("gone.txt").send().await.expect("deleting a missing key succeeds");

    for k in ["a.txt", "b/c.txt", "b/d.txt"] {
        put(&c, k, b"x").await;
    }
    let ids = ["a.txt", "b/c.txt", "never-was.txt"].map(|k| ObjectIdentifier::builder().key(k).build().unwrap());
    let del = Delete::builder().set_objects(Some(ids.to_vec())).build().unwrap();
    let out = c.delete_objects().bucket("bkt").delete(del).send().await.unwrap();
    let mut deleted: Vec<_> = out.deleted().iter().map(|d| d.key().unwrap()).collect();
    deleted.sort();
    // As on S3, a key that was not there is reported deleted: the end state is the same.
    assert_eq!(deleted, ["a.txt", "b/c.txt", "never-was.txt"], "{out:?}");
    assert!(out.errors().is_empty(), "{out:?}");
    let left = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    let keys: Vec<_> = left.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(keys, ["b/d.txt", "dir/file.txt"]);

    let quiet = Delete::builder()
        .objects(ObjectIdentifier::builder().key("b/d.txt").build().unwrap())
        .quiet(true)
        .build()
        .unwrap();
    let out = c.delete_objects().bucket("bkt").delete(quiet).send().await.unwrap();
    assert!(out.deleted().is_empty() && out.errors().is_empty(), "quiet mode lists only errors: {out:?}");
    assert_eq!(refusal(c.head_object().bucket("bkt").key("b/d.txt").send().await).0, 404);
    s.stop().await;
}

#[tokio::test]
async fn copies_keep_or_replace_metadata() {
    let Sdk { s, c, .. } = start().await;
    c.create_bucket().bucket("other").send().await.unwrap();
    c.put_object()
        .bucket("bkt")
        .key("src dir/ä+b.txt")
        .body(ByteStream::from_static(b"hello world"))
        .content_type("text/plain")
        .cache_control("no-cache")
        .metadata("k", "v")
        .send()
        .await
        .unwrap();
    // The copy source is URL-encoded, as S3 wants it.
    let source = "bkt/src%20dir/%C3%A4%2Bb.txt";
    let out = c.copy_object().bucket("other").key("copy/one.txt").copy_source(source).send().await.unwrap();
    assert_eq!(out.copy_object_result().and_then(|r| r.e_tag()), Some(HELLO_MD5));
    let h = c.head_object().bucket("other").key("copy/one.txt").send().await.unwrap();
    assert_eq!((h.content_type(), h.cache_control()), (Some("text/plain"), Some("no-cache")));
    assert_eq!(h.metadata().unwrap().get("k").map(String::as_str), Some("v"), "COPY is the default directive");

    c.copy_object()
        .bucket("bkt")
        .key("replaced.txt")
        .copy_source(source)
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .metadata("new", "1")
        .send()
        .await
        .unwrap();
    let g = c.get_object().bucket("bkt").key("replaced.txt").send().await.unwrap();
    assert_eq!(g.content_type(), Some("text/markdown"));
    assert_eq!(g.cache_control(), None, "REPLACE drops what it does not give again");
    let meta = g.metadata().unwrap();
    assert_eq!((meta.len(), meta.get("new").map(String::as_str)), (1, Some("1")), "{meta:?}");
    assert_eq!(body(g).await, b"hello world");

    // Onto itself only with REPLACE: it then changes metadata in place.
    let r = c.copy_object().bucket("bkt").key("replaced.txt").copy_source("bkt/replaced.txt").send().await;
    assert_eq!(refusal(r), (400, "InvalidRequest".into()));
    c.copy_object()
        .bucket("bkt")
        .key("replaced.txt")
        .copy_source("bkt/replaced.txt")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/html")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("bkt").key("replaced.txt").send().await.unwrap();
    assert_eq!((h.content_type(), h.e_tag()), (Some("text/html"), Some(HELLO_MD5)));

    let r = c.copy_object().bucket("bkt").key("x").copy_source("bkt/missing.txt").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    let r = c.copy_object().bucket("bkt").key("x").copy_source("nobucket/a").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c.copy_object().bucket("bkt").key("x").copy_source(source).copy_source_if_match("\"0000\"").send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()));
    let r =
        c.copy_object().bucket("bkt").key("x").copy_source(source).copy_source_if_none_match(HELLO_MD5).send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("x").send().await).0, 404, "refused copies wrote nothing");
    s.stop().await;
}

#[tokio::test]
async fn conditional_puts_and_odd_keys() {
    let Sdk { s, c, .. } = start().await;
    let etag = put(&c, "cond.txt", b"hello world").await;
    let write = |data: &'static [u8]| c.put_object().bucket("bkt").key("cond.txt").body(ByteStream::from_static(data));
    assert_eq!(refusal(write(b"second").if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(write(b"second").if_match("\"0000\"").send().await), (412, "PreconditionFailed".into()));
    let out = write(b"second").if_match(&etag).send().await.unwrap();
    assert_ne!(out.e_tag(), Some(etag.as_str()));
    let got = c.get_object().bucket("bkt").key("cond.txt").send().await.unwrap();
    assert_eq!(body(got).await, b"second");
    c.put_object()
        .bucket("bkt")
        .key("fresh.txt")
        .body(ByteStream::from_static(b"x"))
        .if_none_match("*")
        .send()
        .await
        .expect("If-None-Match: * creates a new key");

    // Keys the SDK must encode come back as they were written.
    let keys = ["with space.txt", "plus+sign.txt", "percent%41.txt", "ünïcödé/日本.txt", "a&b=c?d.txt", "~tilde'quote"];
    for k in keys {
        c.put_object().bucket("bkt").key(k).body(ByteStream::from(k.as_bytes().to_vec())).send().await.unwrap();
        let got = c.get_object().bucket("bkt").key(k).send().await.unwrap();
        assert_eq!(body(got).await, k.as_bytes(), "{k}");
    }
    let listed = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    let listed: Vec<_> = listed.contents().iter().map(|o| o.key().unwrap()).collect();
    for k in keys {
        assert!(listed.contains(&k), "{k} in {listed:?}");
    }
    // Keys the tree cannot hold are refused, not stored under another name.
    for bad in ["a//b", "./a", "a/../b"] {
        let r = c.put_object().bucket("bkt").key(bad).body(ByteStream::from_static(b"x")).send().await;
        assert_eq!(refusal(r), (400, "InvalidArgument".into()), "{bad}");
    }
    let r = c.put_object().bucket("bkt").key("k".repeat(1025)).body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(r), (400, "KeyTooLongError".into()));
    s.stop().await;
}

#[tokio::test]
async fn quota_refuses_writes_with_quota_exceeded() {
    let sdk = start_with(Options { default_quota: 100_000, ..Default::default() }).await;
    let Sdk { s, c, .. } = sdk;
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let fits = support::pseudo_random(60_000, 1);
    c.put_object().bucket("bkt").key("a.bin").body(ByteStream::from(fits)).send().await.unwrap();
    let over = support::pseudo_random(60_000, 2);
    let r = c.put_object().bucket("bkt").key("b.bin").body(ByteStream::from(over.clone())).send().await;
    assert_eq!(refusal(r), (403, "QuotaExceeded".into()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("b.bin").send().await).0, 404);
    let r = c.copy_object().bucket("bkt").key("a-copy.bin").copy_source("bkt/a.bin").send().await;
    // A copy shares the content but counts against the quota like a new file.
    assert_eq!(refusal(r), (403, "QuotaExceeded".into()));
    // Freed space can be used again.
    c.delete_object().bucket("bkt").key("a.bin").send().await.unwrap();
    c.put_object().bucket("bkt").key("b.bin").body(ByteStream::from(over)).send().await.unwrap();
    s.stop().await;
}

/// An object stored without a type reads as S3's `binary/octet-stream` (GET and HEAD), and
/// a copy's directives are COPY or REPLACE, anything else refused (found probing with boto3:
/// no Content-Type at all, and `MetadataDirective=FOO` copied).
#[tokio::test]
async fn untyped_objects_read_as_binary_and_unknown_copy_directives_are_refused() {
    let Sdk { s, c, key, secret } = start().await;
    // Signed by hand: the SDK would send a type of its own.
    let signer = crate::s3_sign::Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let r = signer.request(reqwest::Method::PUT, "/bkt/untyped", &[], &[], "UNSIGNED-PAYLOAD").body("x").send().await;
    assert_eq!(r.unwrap().status(), 200);
    let got = c.get_object().bucket("bkt").key("untyped").send().await.unwrap();
    assert_eq!(got.content_type(), Some("binary/octet-stream"));
    let head = c.head_object().bucket("bkt").key("untyped").send().await.unwrap();
    assert_eq!(head.content_type(), Some("binary/octet-stream"));
    let copy = || c.copy_object().bucket("bkt").key("copy").copy_source("bkt/untyped");
    let e = copy().metadata_directive(MetadataDirective::from("FOO")).send().await;
    assert_eq!(refusal(e), (400, "InvalidArgument".into()));
    let e = copy().tagging_directive(aws_sdk_s3::types::TaggingDirective::from("FOO")).send().await;
    assert_eq!(refusal(e), (400, "InvalidArgument".into()));
    copy().send().await.unwrap();
}
