//! What ceph/s3-tests and MinIO's SDK suite found: composite multipart checksums, repeated
//! completions, opaque upload ids, non-ASCII metadata, the DeleteObjects key limit, empty
//! and absent Authorization, SigV4 dated by `Date`, and MinIO's snowball extension.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use base64::Engine;
use reqwest::Method;

use super::*;
use crate::s3_sign::{Signer, sha256_hex};

const MIB: usize = 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// CRC-32 (ISO-HDLC, zlib's), table-driven, computed here independently of the server's.
fn crc32(data: &[u8]) -> [u8; 4] {
    let table: Vec<u32> =
        (0..256u32).map(|i| (0..8).fold(i, |c, _| if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 })).collect();
    let c = data.iter().fold(!0u32, |c, b| table[((c ^ u32::from(*b)) & 0xFF) as usize] ^ (c >> 8));
    (!c).to_be_bytes()
}

/// Two parts with CRC32 checksums, completed with `kind` asked for at creation (or not):
/// the completion's checksum and type.
async fn two_crc32_parts(c: &Client, key: &str, kind: Option<ChecksumType>) -> (String, ChecksumType, Vec<u8>) {
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .set_checksum_type(kind)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let (a, b) = (support::pseudo_random(5 * MIB, 1), support::pseudo_random(1000, 2));
    let mut parts = Vec::new();
    for (n, data) in [(1, &a), (2, &b)] {
        let r = c
            .upload_part()
            .bucket("bkt")
            .key(key)
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.checksum_crc32(), Some(B64.encode(crc32(data)).as_str()));
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .checksum_crc32(r.checksum_crc32().unwrap())
                .build(),
        );
    }
    let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    let r =
        c.complete_multipart_upload().bucket("bkt").key(key).upload_id(id).multipart_upload(done).send().await.unwrap();
    let whole = [a, b].concat();
    (r.checksum_crc32().unwrap().to_owned(), r.checksum_type().unwrap().clone(), whole)
}

/// MinIO's SDK suite (test_upload_part / multipart checksums) and s3-tests'
/// test_multipart_checksum_*: CRC32 parts give a COMPOSITE checksum (the CRC32 of the parts'
/// CRC32s, then `-N`) unless FULL_OBJECT was asked for at creation.
#[tokio::test]
async fn sdk_crc32_multipart_checksums_are_composite_unless_full_object_was_asked() {
    let Sdk { s: _server, c, .. } = start().await;
    let (sum, kind, whole) = two_crc32_parts(&c, "composite.bin", None).await;
    assert_eq!(kind, ChecksumType::Composite);
    let inner = [crc32(&whole[..5 * MIB]), crc32(&whole[5 * MIB..])].concat();
    assert_eq!(sum, format!("{}-2", B64.encode(crc32(&inner))));
    let head = c.head_object().bucket("bkt").key("composite.bin").checksum_mode(ChecksumMode::Enabled).send().await;
    let head = head.unwrap();
    assert_eq!((head.checksum_crc32(), head.checksum_type()), (Some(sum.as_str()), Some(&ChecksumType::Composite)));

    let (sum, kind, whole) = two_crc32_parts(&c, "full.bin", Some(ChecksumType::FullObject)).await;
    assert_eq!((sum, kind), (B64.encode(crc32(&whole)), ChecksumType::FullObject));

    // Combinations S3 has no checksum for are refused at creation.
    let e = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("x")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await;
    assert_eq!(refusal(e), (400, "InvalidRequest".into()));
}

/// Upload ids are random tokens: not a counter, not guessable from another, and a number
/// names no upload; a repeated completion answers as the first (s3-tests'
/// test_multipart_upload_complete_twice is not in the suite; MinIO and AWS answer so).
#[tokio::test]
async fn sdk_upload_ids_are_opaque_and_a_repeated_completion_succeeds() {
    let Sdk { s: _server, c, .. } = start().await;
    let a = c.create_multipart_upload().bucket("bkt").key("a.bin").send().await.unwrap();
    let b = c.create_multipart_upload().bucket("bkt").key("a.bin").send().await.unwrap();
    let (a, b) = (a.upload_id().unwrap().to_owned(), b.upload_id().unwrap().to_owned());
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert!(id.len() >= 22 && id.parse::<u64>().is_err(), "{id}");
    }
    for guess in ["1", "2", "3"] {
        let e = c.list_parts().bucket("bkt").key("a.bin").upload_id(guess).send().await;
        assert_eq!(refusal(e), (404, "NoSuchUpload".into()), "{guess}");
    }
    // ListMultipartUploads shows the same ids and pages by them.
    let l = c.list_multipart_uploads().bucket("bkt").max_uploads(1).send().await.unwrap();
    let first = l.uploads()[0].upload_id().unwrap().to_owned();
    assert!(first == a || first == b);
    assert_eq!(l.next_upload_id_marker(), Some(first.as_str()));
    let l2 =
        c.list_multipart_uploads().bucket("bkt").key_marker("a.bin").upload_id_marker(&first).send().await.unwrap();
    let rest: Vec<_> = l2.uploads().iter().filter_map(|u| u.upload_id()).collect();
    assert_eq!(rest.len(), 1);
    assert_ne!(rest[0], first);

    let part = c
        .upload_part()
        .bucket("bkt")
        .key("a.bin")
        .upload_id(&a)
        .part_number(1)
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let done = || {
        CompletedMultipartUpload::builder()
            .parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build())
            .build()
    };
    let complete =
        || c.complete_multipart_upload().bucket("bkt").key("a.bin").upload_id(&a).multipart_upload(done()).send();
    let first = complete().await.unwrap();
    let again = complete().await.unwrap();
    assert_eq!(first.e_tag(), again.e_tag());
    assert!(first.e_tag().unwrap().ends_with("-1\""), "{:?}", first.e_tag());
    // Only the upload's own key and user see it completed; an abort of it finds nothing.
    let e = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("other.bin")
        .upload_id(&a)
        .multipart_upload(done())
        .send()
        .await;
    assert_eq!(refusal(e), (404, "NoSuchUpload".into()));
    let e = c.abort_multipart_upload().bucket("bkt").key("a.bin").upload_id(&a).send().await;
    assert_eq!(refusal(e), (404, "NoSuchUpload".into()));
    // The other upload is untouched and can be aborted, after which its id is gone.
    c.abort_multipart_upload().bucket("bkt").key("a.bin").upload_id(&b).send().await.unwrap();
    let e = c.list_parts().bucket("bkt").key("a.bin").upload_id(&b).send().await;
    assert_eq!(refusal(e), (404, "NoSuchUpload".into()));
    let body = body(c.get_object().bucket("bkt").key("a.bin").send().await.unwrap()).await;
    assert_eq!(body, b"hello");
}

/// s3-tests' test_multi_object_delete_key_limit and test_multi_objectv2_delete_key_limit.
#[tokio::test]
async fn sdk_delete_objects_refuses_more_than_1000_keys() {
    let Sdk { s: _server, c, .. } = start().await;
    c.put_object().bucket("bkt").key("keep").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let keys = |n: usize| {
        let mut v: Vec<_> = (0..n).map(|i| ObjectIdentifier::builder().key(format!("k{i}")).build().unwrap()).collect();
        v.push(ObjectIdentifier::builder().key("keep").build().unwrap());
        Delete::builder().set_objects(Some(v)).build().unwrap()
    };
    let e = c.delete_objects().bucket("bkt").delete(keys(1000)).send().await;
    assert_eq!(refusal(e), (400, "MalformedXML".into()));
    assert!(c.head_object().bucket("bkt").key("keep").send().await.is_ok(), "nothing deleted");
    let r = c.delete_objects().bucket("bkt").delete(keys(999)).send().await.unwrap();
    assert_eq!(r.deleted().len(), 1000);
}

/// s3-tests' test_object_create_bad_authorization_empty, ..._none and
/// test_bucket_create_bad_authorization_empty, ..._none (403), and
/// test_object_create_date_and_amz_date / test_object_create_amz_date_and_no_date as botocore
/// sends them: SigV4 dated by `Date` alone, `date` signed, no `x-amz-date`.
#[tokio::test]
async fn sdk_authorization_empty_or_absent_is_refused_and_date_dates_sigv4() {
    let Sdk { s, key, secret, .. } = start().await;
    let http = support::tls_client();
    for (path, what) in [("/bkt/foo", "object"), ("/newbucket", "bucket")] {
        let r = http.put(s.url(path)).header("authorization", "").body("bar").send().await.unwrap();
        assert_eq!(xml_code(r).await, (403, "AccessDenied".into()), "{what}, empty");
        let r = http.put(s.url(path)).body("bar").send().await.unwrap();
        assert_eq!(xml_code(r).await, (403, "AccessDenied".into()), "{what}, absent");
    }

    // Date in HTTP form, signed as `date`; the string to sign carries the same instant.
    let now = std::time::SystemTime::now();
    let (amz, day) = crate::s3_sign::amz_date_at(now);
    let date = httpdate(now);
    let host = s.base.split("://").nth(1).unwrap().to_owned();
    let payload = sha256_hex(b"bar");
    let canonical = format!(
        "PUT\n/bkt/dated.txt\n\ndate:{date}\nhost:{host}\nx-amz-content-sha256:{payload}\n\ndate;host;x-amz-content-sha256\n{payload}"
    );
    let scope = format!("{day}/us-east-1/s3/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let signature = sign(&secret, &day, &to_sign);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature={signature}"
    );
    let send = |auth: String| {
        http.put(s.url("/bkt/dated.txt"))
            .header("authorization", auth)
            .header("date", date.clone())
            .header("x-amz-content-sha256", payload.clone())
            .body("bar")
            .send()
    };
    let r = send(auth.clone()).await.unwrap();
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, 200, "{text}");
    // The signature still counts: a wrong one is refused.
    let r = send(auth.replace(&signature[..8], "00000000")).await.unwrap();
    assert_eq!(xml_code(r).await.0, 403);
    let signer = Signer { base: s.base.clone(), key, secret, client: http.clone() };
    let r = signer.request(Method::GET, "/bkt/dated.txt", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "bar");
}

fn sign(secret: &str, day: &str, to_sign: &str) -> String {
    use ring::hmac;
    let h = |k: &[u8], d: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k), d.as_bytes()).as_ref().to_vec();
    let mut k = h(format!("AWS4{secret}").as_bytes(), day);
    for part in ["us-east-1", "s3", "aws4_request"] {
        k = h(&k, part);
    }
    hex::encode(h(&k, to_sign))
}

/// An HTTP date (IMF-fixdate) without a date crate.
fn httpdate(t: std::time::SystemTime) -> String {
    let (amz, _) = crate::s3_sign::amz_date_at(t);
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(secs / 86_400 % 7) as usize];
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [amz[4..6].parse::<usize>().unwrap() - 1];
    format!("{weekday}, {} {month} {} {}:{}:{} GMT", &amz[6..8], &amz[0..4], &amz[9..11], &amz[11..13], &amz[13..15])
}

/// Non-ASCII user metadata round-trips: sent RFC 2047-encoded (what the SDKs can send) or as
/// raw ISO-8859-1 bytes (what Python's http.client sends, s3-tests'
/// test_object_set_get_unicode_metadata), it is kept as Unicode and answered RFC 2047-encoded,
/// as S3 documents. Plain ASCII values stay as they are.
#[tokio::test]
async fn sdk_non_ascii_metadata_round_trips() {
    let Sdk { s, c, key, secret } = start().await;
    let encoded = format!("=?UTF-8?B?{}?=", B64.encode("Grüße, 世界".as_bytes()));
    c.put_object()
        .bucket("bkt")
        .key("meta.txt")
        .metadata("greeting", &encoded)
        .metadata("plain", "ascii")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("bkt").key("meta.txt").send().await.unwrap();
    let m = h.metadata().unwrap();
    assert_eq!(rfc2047(&m["greeting"]), "Grüße, 世界");
    assert_eq!(m["plain"], "ascii");
    // The same value reached the core as Unicode: REST and WebDAV see the same object.
    let p = s.principal("alice").await;
    let item = s.storage.stat(&p, "/bkt/meta.txt").await.unwrap();
    assert!(item.user_meta.iter().any(|(k, v)| k == "greeting" && v == "Grüße, 世界"), "{:?}", item.user_meta);

    let signer = Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let r = signer
        .request(Method::PUT, "/bkt/latin1.txt", &[], &[], "UNSIGNED-PAYLOAD")
        .header("x-amz-meta-meta1", reqwest::header::HeaderValue::from_bytes(b"Hello World\xe9").unwrap())
        .body("bar")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let h = c.head_object().bucket("bkt").key("latin1.txt").send().await.unwrap();
    assert_eq!(rfc2047(&h.metadata().unwrap()["meta1"]), "Hello World\u{e9}");
}

/// Decodes `=?UTF-8?B?…?=` words (several, as long values are split).
fn rfc2047(v: &str) -> String {
    let mut out = Vec::new();
    for word in v.split_whitespace() {
        let b64 = word.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an RFC 2047 word");
        out.extend(B64.decode(b64).unwrap());
    }
    String::from_utf8(out).unwrap()
}

/// MinIO's SDK suite, test_upload_snowball_objects: the extension is not built, so the
/// archive is not stored as one object.
#[tokio::test]
async fn sdk_snowball_auto_extract_is_not_implemented() {
    let Sdk { s: _server, c, .. } = start().await;
    let e = c
        .put_object()
        .bucket("bkt")
        .key("snowball.tar")
        .metadata("snowball-auto-extract", "true")
        .body(ByteStream::from_static(b"tar"))
        .send()
        .await;
    assert_eq!(refusal(e), (501, "NotImplemented".into()));
    assert!(c.head_object().bucket("bkt").key("snowball.tar").send().await.is_err(), "nothing stored");
}
