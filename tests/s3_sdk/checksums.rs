//! Additional checksums as the SDK sends them: in a header for a body it holds in memory, in
//! an aws-chunked trailer for a streamed one (CRC32 unless told otherwise); the chunks are
//! unsigned over HTTPS and signed over plain HTTP.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, ResponseChecksumValidation, RuntimeComponents};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine;

use super::*;

/// The headers of the last request the SDK sent, to tell a header from a trailer.
#[derive(Debug, Clone, Default)]
struct Sent(Arc<Mutex<Vec<(String, String)>>>);

impl Intercept for Sent {
    fn name(&self) -> &'static str {
        "Sent"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let headers = context.request().headers().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        *self.0.lock().unwrap() = headers;
        Ok(())
    }
}

impl Sent {
    fn header(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

/// Base64 checksums of "hello world" (as in tests/s3.rs).
const CRC32: &str = "DUoRhQ==";
const CRC32C: &str = "yZRlqg==";
const CRC64NVME: &str = "jSnVw/bqjr4=";
const SHA1: &str = "Kq5sNclPz7QV2+lfQIuc6R7oRu0=";
const SHA256: &str = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";

/// A streamed body: the SDK does not know its bytes up front, so the checksum goes last.
async fn streamed(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> ByteStream {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    ByteStream::from_path(&path).await.unwrap()
}

#[tokio::test]
async fn sdk_checksums_in_headers_and_trailers_are_verified_kept_and_returned() {
    let sdk = start().await;
    let sent = Sent::default();
    let c = Client::from_conf(config(&sdk.s.base, &sdk.key, &sdk.secret, false).interceptor(sent.clone()).build());
    let dir = tempfile::tempdir().unwrap();
    let get = |key: &str| c.get_object().bucket("bkt").key(key).checksum_mode(ChecksumMode::Enabled);

    // The default: CRC32, in a header for a body in memory.
    let out = c.put_object().bucket("bkt").key("mem.txt").body(ByteStream::from_static(b"hello world")).send().await;
    assert_eq!(out.unwrap().checksum_crc32(), Some(CRC32), "PutObject answers the checksum");
    assert_eq!(sent.header("x-amz-checksum-crc32").as_deref(), Some(CRC32));
    assert_eq!(sent.header("x-amz-trailer"), None);
    let out = get("mem.txt").send().await.unwrap();
    assert_eq!(out.checksum_crc32(), Some(CRC32));
    // The SDK checks the body against the checksum it is given, so this read proves both.
    assert_eq!(body(out).await, b"hello world");

    // Streamed: the same checksum in an aws-chunked trailer, unsigned over HTTPS.
    let out = c.put_object().bucket("bkt").key("streamed.txt").body(streamed(&dir, "s", b"hello world").await);
    assert_eq!(out.send().await.unwrap().checksum_crc32(), Some(CRC32));
    assert_eq!(sent.header("x-amz-trailer").as_deref(), Some("x-amz-checksum-crc32"));
    assert_eq!(sent.header("x-amz-content-sha256").as_deref(), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    assert_eq!(sent.header("x-amz-checksum-crc32"), None, "not also a header");
    let out = get("streamed.txt").send().await.unwrap();
    assert_eq!(out.checksum_crc32(), Some(CRC32));
    // aws-chunked describes the transfer, not the object.
    assert_eq!(out.content_encoding(), None);
    assert_eq!(body(out).await, b"hello world");
    let h = c.head_object().bucket("bkt").key("streamed.txt").checksum_mode(ChecksumMode::Enabled).send().await;
    assert_eq!(h.unwrap().checksum_crc32(), Some(CRC32));
    // The SDK asks for checksums on every GET unless told to validate only when required.
    assert_eq!(sent.header("x-amz-checksum-mode").as_deref(), Some("ENABLED"));
    let lax = config(&sdk.s.base, &sdk.key, &sdk.secret, false)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    let out = Client::from_conf(lax).get_object().bucket("bkt").key("streamed.txt").send().await.unwrap();
    assert_eq!(out.checksum_crc32(), None, "only when asked");

    // Every other algorithm S3 has, streamed.
    for (alg, want) in [
        (ChecksumAlgorithm::Crc32C, CRC32C),
        (ChecksumAlgorithm::Crc64Nvme, CRC64NVME),
        (ChecksumAlgorithm::Sha1, SHA1),
        (ChecksumAlgorithm::Sha256, SHA256),
    ] {
        let key = format!("{}.txt", alg.as_str());
        let data = streamed(&dir, alg.as_str(), b"hello world").await;
        let put = c.put_object().bucket("bkt").key(&key).checksum_algorithm(alg.clone()).body(data).send().await;
        let put = put.unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        let trailer = format!("x-amz-checksum-{}", alg.as_str().to_lowercase());
        assert_eq!(sent.header("x-amz-trailer"), Some(trailer), "{alg:?}");
        let out = get(&key).send().await.unwrap();
        let (put_sum, got_sum) = match alg {
            ChecksumAlgorithm::Crc32C => (put.checksum_crc32_c(), out.checksum_crc32_c()),
            ChecksumAlgorithm::Crc64Nvme => (put.checksum_crc64_nvme(), out.checksum_crc64_nvme()),
            ChecksumAlgorithm::Sha1 => (put.checksum_sha1(), out.checksum_sha1()),
            _ => (put.checksum_sha256(), out.checksum_sha256()),
        };
        assert_eq!((put_sum, got_sum), (Some(want), Some(want)), "{alg:?}");
        assert_eq!(body(out).await, b"hello world");
    }

    // Larger than one chunk of the SDK's and than what the core keeps inline.
    let data = support::pseudo_random(1_500_000, 5);
    let sha = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, &data));
    let put = c
        .put_object()
        .bucket("bkt")
        .key("big.bin")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(streamed(&dir, "big", &data).await)
        .send()
        .await
        .unwrap();
    assert_eq!(put.checksum_sha256(), Some(sha.as_str()));
    let out = get("big.bin").send().await.unwrap();
    assert_eq!(out.checksum_sha256(), Some(sha.as_str()));
    assert!(body(out).await == data);
    // A range is not the object the checksum describes: none is returned, and the SDK checks none.
    let out = get("big.bin").range("bytes=0-99").send().await.unwrap();
    assert_eq!(out.checksum_sha256(), None);
    assert_eq!(body(out).await, &data[..100]);
    sdk.s.stop().await;
}

#[tokio::test]
async fn a_wrong_checksum_from_the_sdk_is_bad_digest_and_stores_nothing() {
    let Sdk { s, c, .. } = start().await;
    // A checksum the caller gives is sent as it is; this one is of "hello", not "hello world".
    let r = c
        .put_object()
        .bucket("bkt")
        .key("bad.txt")
        .checksum_crc32("NhCmhg==")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await;
    assert_eq!(refusal(r), (400, "BadDigest".into()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("bad.txt").send().await).0, 404);
    let r = c
        .put_object()
        .bucket("bkt")
        .key("bad.txt")
        .content_md5("XrY7u+Ae7tCTyyK7j1rNww==")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await;
    assert_eq!(refusal(r), (400, "BadDigest".into()), "Content-MD5 of \"hello world\" for \"hello\"");
    s.stop().await;
}

#[tokio::test]
async fn part_checksums_are_answered_and_completion_takes_them() {
    let Sdk { s, c, .. } = start().await;
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp.txt")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("bkt")
        .key("mp.txt")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.checksum_crc32(), Some(CRC32));
    let done = CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).checksum_crc32(CRC32).build();
    let done = CompletedMultipartUpload::builder().parts(done).build();
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("mp.txt")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    let out = c.get_object().bucket("bkt").key("mp.txt").send().await.unwrap();
    assert_eq!(body(out).await, b"hello world");
    s.stop().await;
}

#[tokio::test]
async fn over_plain_http_a_streamed_body_is_signed_chunk_by_chunk_with_its_trailer() {
    let s = support::start(Options::default()).await;
    let (key, secret) = key_of(&s, "alice").await;
    let sent = Sent::default();
    let c = Client::from_conf(config(&s.base, &key, &secret, false).interceptor(sent.clone()).build());
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let put = c.put_object().bucket("bkt").key("s.txt").body(streamed(&dir, "s", b"hello world").await).send().await;
    assert_eq!(put.unwrap().checksum_crc32(), Some(CRC32));
    // Without TLS the SDK signs each chunk and the trailer, not just the headers.
    let mode = sent.header("x-amz-content-sha256");
    assert_eq!(mode.as_deref(), Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"));
    assert_eq!(sent.header("x-amz-trailer").as_deref(), Some("x-amz-checksum-crc32"));
    let out = c.get_object().bucket("bkt").key("s.txt").checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(out.checksum_crc32(), Some(CRC32));
    assert_eq!(body(out).await, b"hello world");
    s.stop().await;
}
