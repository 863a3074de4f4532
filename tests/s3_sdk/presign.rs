//! Presigned URLs made by the SDK and fetched with a plain HTTP client.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use reqwest::{Method, StatusCode};

use super::*;
use crate::s3_sign::Signer;

fn minutes(n: u64) -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(60 * n)).unwrap()
}

/// The presigned request sent as it is (method, URL, and any headers it was signed with).
fn fetch(http: &reqwest::Client, p: &PresignedRequest) -> reqwest::RequestBuilder {
    let mut b = http.request(Method::from_bytes(p.method().as_bytes()).unwrap(), p.uri());
    for (k, v) in p.headers() {
        b = b.header(k, v);
    }
    b
}

#[tokio::test]
async fn presigned_get_put_head_delete_work_with_a_plain_client() {
    let Sdk { s, c, .. } = start().await;
    let http = support::tls_client();
    c.put_object()
        .bucket("bkt")
        .key("dir/a file.txt")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();

    let get = c.get_object().bucket("bkt").key("dir/a file.txt").presigned(minutes(5)).await.unwrap();
    assert!(get.uri().contains("X-Amz-Signature=") && get.uri().contains("X-Amz-Expires=300"), "{}", get.uri());
    let r = fetch(&http, &get).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert_eq!(r.bytes().await.unwrap(), "hello world");
    // A range is an ordinary header next to a presigned URL.
    let r = fetch(&http, &get).header("range", "bytes=6-").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), "world");
    // Response overrides are part of what is signed.
    let over = c
        .get_object()
        .bucket("bkt")
        .key("dir/a file.txt")
        .response_content_disposition("attachment; filename=\"x.txt\"")
        .presigned(minutes(5))
        .await
        .unwrap();
    let r = fetch(&http, &over).send().await.unwrap();
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"x.txt\"");

    let put = c.put_object().bucket("bkt").key("up.txt").content_type("text/x-up").presigned(minutes(5)).await.unwrap();
    let r = fetch(&http, &put).body("uploaded with a URL").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let got = c.get_object().bucket("bkt").key("up.txt").send().await.unwrap();
    assert_eq!(got.content_type(), Some("text/x-up"));
    assert_eq!(body(got).await, b"uploaded with a URL");

    let head = c.head_object().bucket("bkt").key("up.txt").presigned(minutes(5)).await.unwrap();
    let r = fetch(&http, &head).send().await.unwrap();
    assert_eq!((r.status(), r.headers()["content-length"].to_str().unwrap()), (StatusCode::OK, "19"));

    let delete = c.delete_object().bucket("bkt").key("up.txt").presigned(minutes(5)).await.unwrap();
    let r = fetch(&http, &delete).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(refusal(c.head_object().bucket("bkt").key("up.txt").send().await).0, 404);
    let r = fetch(&http, &head).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let missing = c.get_object().bucket("bkt").key("nope").presigned(minutes(5)).await.unwrap();
    assert_eq!(xml_code(fetch(&http, &missing).send().await.unwrap()).await, (404, "NoSuchKey".into()));
    s.stop().await;
}

#[tokio::test]
async fn presigned_urls_expire_cannot_be_altered_and_last_at_most_a_week() {
    let Sdk { s, c, key, secret } = start().await;
    let http = support::tls_client();
    c.put_object().bucket("bkt").key("a.txt").body(ByteStream::from_static(b"a")).send().await.unwrap();

    let expired = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(2 * 3600))
        .expires_in(Duration::from_secs(3600))
        .build()
        .unwrap();
    let p = c.get_object().bucket("bkt").key("a.txt").presigned(expired).await.unwrap();
    assert_eq!(xml_code(fetch(&http, &p).send().await.unwrap()).await, (403, "AccessDenied".into()));
    // Not yet valid is no more valid than expired.
    let future = PresigningConfig::builder()
        .start_time(SystemTime::now() + Duration::from_secs(2 * 3600))
        .expires_in(Duration::from_secs(3600))
        .build()
        .unwrap();
    let p = c.get_object().bucket("bkt").key("a.txt").presigned(future).await.unwrap();
    assert_eq!(xml_code(fetch(&http, &p).send().await.unwrap()).await.0, 403);

    // Another key, another method or a longer life than signed: the signature no longer fits.
    let p = c.get_object().bucket("bkt").key("a.txt").presigned(minutes(5)).await.unwrap();
    let other_key = p.uri().replace("/bkt/a.txt?", "/bkt/b.txt?");
    let r = http.get(other_key).send().await.unwrap();
    assert_eq!(xml_code(r).await, (403, "SignatureDoesNotMatch".into()));
    let r = http.delete(p.uri()).send().await.unwrap();
    assert_eq!(xml_code(r).await, (403, "SignatureDoesNotMatch".into()));
    let longer = p.uri().replace("X-Amz-Expires=300", "X-Amz-Expires=3600");
    let r = http.get(longer).send().await.unwrap();
    assert_eq!(xml_code(r).await, (403, "SignatureDoesNotMatch".into()));
    c.head_object().bucket("bkt").key("a.txt").send().await.expect("the refused DELETE deleted nothing");

    // The SDK refuses to presign for more than a week; by hand, the server refuses it too.
    assert!(PresigningConfig::expires_in(Duration::from_secs(7 * 24 * 3600 + 1)).is_err());
    let signer = Signer { base: s.base.clone(), key, secret, client: http.clone() };
    let week = signer.presign(Method::GET, "/bkt/a.txt", 7 * 24 * 3600);
    assert_eq!(http.get(week).send().await.unwrap().status(), StatusCode::OK, "a week is allowed");
    let over = signer.presign(Method::GET, "/bkt/a.txt", 7 * 24 * 3600 + 1);
    let (status, code) = xml_code(http.get(over).send().await.unwrap()).await;
    assert_eq!(status, 403, "{code}");
    assert_eq!(code, "AuthorizationQueryParametersError");
    s.stop().await;
}

/// An `If-Range` that no longer names the object sends it whole (RFC 9110 §13.1.5), as
/// davit's WebDAV does: a resumed download must not splice new bytes onto an old part.
#[tokio::test]
async fn a_stale_if_range_gets_the_whole_object() {
    let Sdk { s: _server, c, .. } = start().await;
    let http = support::tls_client();
    let put =
        c.put_object().bucket("bkt").key("r.txt").body(ByteStream::from_static(b"0123456789")).send().await.unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    let get = c.get_object().bucket("bkt").key("r.txt").presigned(minutes(5)).await.unwrap();
    let ranged = |if_range: &str| fetch(&http, &get).header("range", "bytes=0-1").header("if-range", if_range).send();
    let r = ranged(&etag).await.unwrap();
    assert_eq!((r.status(), r.bytes().await.unwrap()), (StatusCode::PARTIAL_CONTENT, "01".into()));
    for stale in ["\"stale\"", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let r = ranged(stale).await.unwrap();
        assert_eq!((r.status(), r.bytes().await.unwrap()), (StatusCode::OK, "0123456789".into()), "{stale}");
    }
    // Past the end: 416 with the size (RFC 9110 §15.5.17), as a resuming client needs it.
    let r = fetch(&http, &get).header("range", "bytes=10-").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers().get("content-range").and_then(|v| v.to_str().ok()), Some("bytes */10"));
}
