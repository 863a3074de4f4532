//! S3 over real HTTP. (The real-client suite is conformance/s3/run.sh: aws CLI, rclone, s3cmd.)

use reqwest::{Method, Response, StatusCode};

use crate::s3_sign::{Signer, amz_date, sha256_hex};
use crate::support::{self, Options, TestServer};

#[tokio::test]
async fn failed_signatures_are_throttled_per_address_to_protect_the_server() {
    let s = support::start(Options::default()).await;
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, secret) = s.storage.create_access_key(alice.id).await.unwrap();
    let bound =
        |ip: &str| reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let c = bound("127.0.0.4");
    let (date, day) = amz_date();
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
        key.id,
        "0".repeat(64)
    );
    // Hundreds of failures a minute from one address are free (secrets are 40 random
    // characters: there is nothing to guess); past that, the address is told to slow down.
    let mut codes = Vec::new();
    for _ in 0..320 {
        let r = c
            .get(s.url("/"))
            .header("Authorization", &auth)
            .header("x-amz-date", &date)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        let body = r.text().await.unwrap();
        let code = body.split("<Code>").nth(1).and_then(|b| b.split("</Code>").next()).unwrap_or("").to_owned();
        codes.push((status, code, retry));
        if status == 503 {
            break;
        }
    }
    assert_eq!(codes.len(), 301, "{:?}", codes.last());
    assert!(codes[..300].iter().all(|(s, c, _)| *s == 403 && c == "SignatureDoesNotMatch"), "{codes:?}");
    let (status, code, retry) = codes.last().unwrap();
    assert_eq!((*status, code.as_str(), *retry), (503, "SlowDown", true));
    // Per address, never per key: the key's owner elsewhere is served.
    let signer = Signer { base: s.base.clone(), key: key.id, secret, client: bound("127.0.0.5") };
    let r = signer.request(Method::GET, "/", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// A server, alice's access key, and her bucket `bkt`.
async fn with_bucket() -> (TestServer, Signer) {
    let s = support::start(Options::default()).await;
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, secret) = s.storage.create_access_key(alice.id).await.unwrap();
    let signer = Signer { base: s.base.clone(), key: key.id, secret, client: support::client() };
    let r = signer.request(Method::PUT, "/bkt", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    (s, signer)
}

async fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, body.split("<Code>").nth(1).and_then(|b| b.split("</Code>").next()).unwrap_or(&body).to_owned())
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

const UNSIGNED: &str = "UNSIGNED-PAYLOAD";
const MODE: (&str, &str) = ("x-amz-checksum-mode", "ENABLED");

/// Base64 checksums of "hello world" and of "hello" (computed with zlib, hashlib and bitwise
/// CRC-32C and CRC-64/NVME), per `x-amz-checksum-` suffix.
const SUMS: [(&str, &str, &str); 5] = [
    ("crc32", "DUoRhQ==", "NhCmhg=="),
    ("crc32c", "yZRlqg==", "mnG7TA=="),
    ("crc64nvme", "jSnVw/bqjr4=", "M3eFcAZSQlc="),
    ("sha1", "Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "qvTGHdzF6KLavt4PO0gs2a6pQ00="),
    ("sha256", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),
];

async fn put(s3: &Signer, path: &str, headers: &[(&str, &str)], body: &'static [u8]) -> Response {
    s3.request(Method::PUT, path, &[], headers, UNSIGNED).body(body).send().await.unwrap()
}

async fn get(s3: &Signer, path: &str, headers: &[(&str, &str)]) -> Response {
    s3.request(Method::GET, path, &[], headers, UNSIGNED).send().await.unwrap()
}

#[tokio::test]
async fn checksum_headers_are_verified_kept_and_returned_when_asked() {
    let (s, s3) = with_bucket().await;
    for (alg, hello_world, hello) in SUMS {
        let name = format!("x-amz-checksum-{alg}");
        let path = format!("/bkt/{alg}.txt");
        let r = put(&s3, &path, &[(&name, hello_world)], b"hello world").await;
        assert_eq!(r.status(), StatusCode::OK, "{alg}");
        assert_eq!(header(&r, &name).as_deref(), Some(hello_world), "PutObject echoes the {alg} checksum");
        assert_eq!(header(&r, "etag").as_deref(), Some("\"5eb63bbbe01eeed093cb22bb8f5acdc3\""), "ETag is the MD5");

        let r = get(&s3, &path, &[MODE]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, &name).as_deref(), Some(hello_world), "GET with checksum mode, {alg}");
        assert_eq!(header(&r, "x-amz-checksum-type").as_deref(), Some("FULL_OBJECT"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello world");
        let r = s3.request(Method::HEAD, &path, &[], &[MODE], UNSIGNED).send().await.unwrap();
        assert_eq!(header(&r, &name).as_deref(), Some(hello_world), "HEAD with checksum mode, {alg}");
        let r = get(&s3, &path, &[]).await;
        assert_eq!(header(&r, &name), None, "not returned unless asked");
        let r = get(&s3, &path, &[MODE, ("range", "bytes=0-4")]).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(header(&r, &name), None, "a range is not the object the checksum describes");
        let r = s3.request(Method::GET, &path, &[("partNumber", "1")], &[MODE], UNSIGNED).send().await.unwrap();
        assert_eq!(header(&r, &name), None, "nor is a part");

        // A wrong checksum stores nothing: no new key, and an existing one keeps its content.
        let r = put(&s3, &format!("/bkt/{alg}-bad.txt"), &[(&name, hello)], b"hello world").await;
        let msg = format!("The {} you specified did not match", alg.to_uppercase());
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("<Code>BadDigest</Code>") && body.contains(&msg), "{body}");
        let r = s3.request(Method::HEAD, &format!("/bkt/{alg}-bad.txt"), &[], &[], UNSIGNED).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = put(&s3, &path, &[(&name, hello)], b"goodbye").await;
        assert_eq!(error_code(r).await, (400, "BadDigest".into()));
        let r = get(&s3, &path, &[MODE]).await;
        assert_eq!(header(&r, &name).as_deref(), Some(hello_world));
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello world");
    }

    // Malformed values and two checksums at once are refused before the body is read.
    let r = put(&s3, "/bkt/x", &[("x-amz-checksum-crc32", "not base64!")], b"hello").await;
    assert_eq!(error_code(r).await, (400, "BadDigest".into()));
    let r = put(&s3, "/bkt/x", &[("x-amz-checksum-crc32", "yZRlqgAA")], b"hello").await;
    assert_eq!(error_code(r).await, (400, "BadDigest".into()), "six bytes are no CRC32");
    let two = [("x-amz-checksum-crc32", "NhCmhg=="), ("x-amz-checksum-crc32c", "mnG7TA==")];
    let r = put(&s3, "/bkt/x", &two, b"hello").await;
    assert_eq!(error_code(r).await, (400, "InvalidRequest".into()));
    // Content-MD5 is verified the same way.
    let r = put(&s3, "/bkt/x", &[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")], b"hello").await;
    assert_eq!(error_code(r).await, (400, "BadDigest".into()));
    let r = s3.request(Method::HEAD, "/bkt/x", &[], &[], UNSIGNED).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

/// An `aws-chunked` body with unsigned chunks and the checksum in a trailer, as SDKs send over
/// HTTPS: `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
fn trailer_put(
    s3: &Signer,
    path: &str,
    chunks: &[&[u8]],
    trailer: &str,
    value: Option<&str>,
) -> reqwest::RequestBuilder {
    let len: usize = chunks.iter().map(|c| c.len()).sum();
    let mut body = Vec::new();
    for c in chunks {
        body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    if let Some(v) = value {
        body.extend_from_slice(format!("{trailer}:{v}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    let len = len.to_string();
    let headers =
        [("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", &len), ("x-amz-trailer", trailer)];
    s3.request(Method::PUT, path, &[], &headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER").body(body)
}

#[tokio::test]
async fn trailer_checksums_are_verified_before_anything_is_stored() {
    let (s, s3) = with_bucket().await;
    let crc32c = "x-amz-checksum-crc32c";
    let r = trailer_put(&s3, "/bkt/t.txt", &[b"hel", b"lo"], crc32c, Some("mnG7TA==")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, crc32c).as_deref(), Some("mnG7TA=="), "PutObject echoes the trailer's checksum");
    let r = get(&s3, "/bkt/t.txt", &[MODE]).await;
    assert_eq!(header(&r, crc32c).as_deref(), Some("mnG7TA=="), "the trailer's checksum is kept");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");

    let r = trailer_put(&s3, "/bkt/t-bad.txt", &[b"hello"], crc32c, Some("yZRlqg==")).send().await.unwrap();
    let (status, body) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>BadDigest</Code>") && body.contains("The CRC32C you specified"), "{body}");
    let r = s3.request(Method::HEAD, "/bkt/t-bad.txt", &[], &[], UNSIGNED).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a refused trailer stores nothing");
    let r = trailer_put(&s3, "/bkt/t.txt", &[b"bye"], crc32c, Some("mnG7TA==")).send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "BadDigest".into()));
    let r = get(&s3, "/bkt/t.txt", &[]).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello", "the older version is intact");

    let r = trailer_put(&s3, "/bkt/t-none.txt", &[b"hello"], crc32c, None).send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "InvalidRequest".into()), "an announced trailer that never came");
    let r = trailer_put(&s3, "/bkt/t-none.txt", &[b"hello"], crc32c, Some("%%%")).send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "InvalidRequest".into()), "a trailer that is not base64");
    let r = s3.request(Method::HEAD, "/bkt/t-none.txt", &[], &[], UNSIGNED).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Larger than what the core keeps inline, in many chunks: the chunked write path.
    let data = support::pseudo_random(300_000, 7);
    let sha = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ring::digest::digest(&ring::digest::SHA256, &data),
    );
    let chunks: Vec<&[u8]> = data.chunks(65_536).collect();
    let sha_name = "x-amz-checksum-sha256";
    let r = trailer_put(&s3, "/bkt/big.bin", &chunks, sha_name, Some(&sha)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&s3, "/bkt/big.bin", &[MODE]).await;
    assert_eq!(header(&r, sha_name).as_deref(), Some(sha.as_str()));
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha256_hex(&data));
    let mut wrong = data.clone();
    wrong[250_000] ^= 1;
    let chunks: Vec<&[u8]> = wrong.chunks(65_536).collect();
    let r = trailer_put(&s3, "/bkt/big.bin", &chunks, sha_name, Some(&sha)).send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "BadDigest".into()));
    let r = get(&s3, "/bkt/big.bin", &[]).await;
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha256_hex(&data), "the older version is intact");
    s.stop().await;
}

#[tokio::test]
async fn part_checksums_are_verified_and_completion_accepts_them() {
    let (s, s3) = with_bucket().await;
    let r = s3
        // FULL_OBJECT asked for: CRC32 parts combine into the object's own CRC32 (COMPOSITE
        // is S3's default, see tests/s3_sdk/fixes.rs).
        .request(
            Method::POST,
            "/bkt/mp.bin",
            &[("uploads", "")],
            &[("x-amz-checksum-algorithm", "CRC32"), ("x-amz-checksum-type", "FULL_OBJECT")],
            UNSIGNED,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-amz-checksum-algorithm").as_deref(), Some("CRC32"), "the algorithm is echoed");
    let xml = r.text().await.unwrap();
    let id = xml.split("<UploadId>").nth(1).unwrap().split("</UploadId>").next().unwrap().to_owned();
    let q = [("partNumber", "1"), ("uploadId", id.as_str())];
    let part = |sum: &'static str| {
        s3.request(Method::PUT, "/bkt/mp.bin", &q, &[("x-amz-checksum-crc32", sum)], UNSIGNED).body("hello world")
    };
    let r = part("NhCmhg==").send().await.unwrap();
    assert_eq!(error_code(r).await, (400, "BadDigest".into()));
    let r = part("DUoRhQ==").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-amz-checksum-crc32").as_deref(), Some("DUoRhQ=="), "UploadPart echoes it");
    let etag = header(&r, "etag").unwrap();
    // The part keeps it: ListParts shows it.
    let r = s3.request(Method::GET, "/bkt/mp.bin", &[("uploadId", &id)], &[], UNSIGNED).send().await.unwrap();
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<ChecksumCRC32>DUoRhQ==</ChecksumCRC32>"), "{xml}");
    // The aws CLI lists each part's checksum in the completion when it sent them; another
    // one than the part was uploaded with is refused.
    let complete = |sum: &str| {
        let body = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>\
             <ChecksumCRC32>{sum}</ChecksumCRC32></Part></CompleteMultipartUpload>"
        );
        s3.request(Method::POST, "/bkt/mp.bin", &[("uploadId", &id)], &[], UNSIGNED).body(body).send()
    };
    assert_eq!(error_code(complete("NhCmhg==").await.unwrap()).await, (400, "InvalidPart".into()));
    let r = complete("DUoRhQ==").await.unwrap();
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("<ChecksumCRC32>DUoRhQ==</ChecksumCRC32>"), "the completion answers it: {text}");
    assert!(text.contains("<ChecksumType>FULL_OBJECT</ChecksumType>"), "{text}");
    let r = get(&s3, "/bkt/mp.bin", &[MODE]).await;
    // The object's CRC32, combined from its parts' (here one).
    assert_eq!(header(&r, "x-amz-checksum-crc32").as_deref(), Some("DUoRhQ=="));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello world");
    s.stop().await;
}

#[tokio::test]
async fn a_copy_keeps_the_checksum_of_the_content() {
    let (s, s3) = with_bucket().await;
    let name = "x-amz-checksum-sha1";
    let r = put(&s3, "/bkt/src.txt", &[(name, SUMS[3].1)], b"hello world").await;
    assert_eq!(r.status(), StatusCode::OK);
    let copies = [("/bkt/copy.txt", "COPY"), ("/bkt/replaced.txt", "REPLACE"), ("/bkt/src.txt", "REPLACE")];
    for (to, directive) in copies {
        let headers = [
            ("x-amz-copy-source", "/bkt/src.txt"),
            ("x-amz-metadata-directive", directive),
            ("content-type", "text/plain"),
        ];
        let r = s3.request(Method::PUT, to, &[], &headers, UNSIGNED).send().await.unwrap();
        let (status, text) = (r.status(), r.text().await.unwrap());
        assert_eq!(status, StatusCode::OK, "{to} {directive}: {text}");
        let r = get(&s3, to, &[MODE]).await;
        assert_eq!(header(&r, name).as_deref(), Some(SUMS[3].1), "{to} {directive}");
    }
    s.stop().await;
}

#[tokio::test]
async fn answers_carry_the_request_id_in_the_header_and_the_error() {
    let s = support::start(Options::default()).await;
    let r = support::client().get(s.url("/bucket/key")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let id = r.headers()["x-amz-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["x-request-id"].to_str().unwrap(), id, "one id for the log and the client");
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("<RequestId>{id}</RequestId></Error>")), "{body}");
    s.stop().await;
}
