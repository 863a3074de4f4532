//! s3-tests' SigV4/presigned, header (test_headers.py) and checksum areas.

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// test_object_raw_get_x_amz_expires_not_expired, ..._out_range_zero, ..._out_max_range,
/// ..._out_positive_range, test_object_raw_put_authenticated_expired,
/// test_object_presigned_put_object_with_acl (the ACL named is `private`, the default).
#[tokio::test]
async fn presigned_urls() {
    let Sdk { s, c, key, secret } = start().await;
    put_keys(&c, "bkt", &["foo"]).await;
    let http = support::tls_client();
    let signer = Signer { base: s.base.clone(), key, secret, client: http.clone() };
    let url = signer.presign(Method::GET, "/bkt/foo", 100_000);
    assert_eq!(http.request(Method::OPTIONS, &url).send().await.unwrap().status(), 400);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let url = signer.presign(Method::GET, "/bkt/foo", 0);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 403, "X-Amz-Expires=0");
    let url = signer.presign(Method::GET, "/bkt/foo", 609_901);
    assert_eq!(xml_code(http.get(&url).send().await.unwrap()).await, (403, "AuthorizationQueryParametersError".into()));
    // A negative X-Amz-Expires (botocore signs -7 as given).
    let url = signer.presign(Method::GET, "/bkt/foo", 1).replace("X-Amz-Expires=1&", "X-Amz-Expires=-7&");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 403);

    let cfg =
        PresigningConfig::builder().start_time(std::time::SystemTime::now() - std::time::Duration::from_secs(2000));
    let p = c
        .put_object()
        .bucket("bkt")
        .key("foo")
        .presigned(cfg.expires_in(std::time::Duration::from_secs(1000)).build().unwrap())
        .await
        .unwrap();
    assert_eq!(http.put(p.uri()).body("foo").send().await.unwrap().status(), 403, "expired");

    let p = c
        .put_object()
        .bucket("bkt")
        .key("acl")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(900)).unwrap())
        .await
        .unwrap();
    let mut req = http.put(p.uri()).body("hello world");
    for (k, v) in p.headers() {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let p = c
        .get_object()
        .bucket("bkt")
        .key("acl")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(900)).unwrap())
        .await
        .unwrap();
    assert_eq!(http.get(p.uri()).send().await.unwrap().text().await.unwrap(), "hello world");
    s.stop().await;
}

/// A raw request over plain HTTP: `head` is the request head (signed with the payload
/// unsigned) with `edit` applied to its header lines; answers the status and body.
async fn raw(
    s: &TestServer,
    signer: &Signer,
    method: Method,
    path: &str,
    body: &[u8],
    edit: impl Fn(&mut Vec<String>),
) -> (u16, String) {
    let req = signer.request(method.clone(), path, &[], &[], "UNSIGNED-PAYLOAD").build().unwrap();
    let mut lines: Vec<String> = req.headers().iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap())).collect();
    lines.push(format!("host: {}", s.addr));
    lines.push(format!("content-length: {}", body.len()));
    lines.push("connection: close".into());
    edit(&mut lines);
    let head = format!("{method} {path} HTTP/1.1\r\n{}\r\n\r\n", lines.join("\r\n"));
    let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), sock.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server answers and closes");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn set(lines: &mut Vec<String>, name: &str, value: Option<&str>) {
    lines.retain(|l| !l.to_lowercase().starts_with(&format!("{name}:")));
    if let Some(v) = value {
        lines.push(format!("{name}: {v}"));
    }
}

fn code(text: &str) -> &str {
    text.split("<Code>").nth(1).and_then(|t| t.split("</Code>").next()).unwrap_or("")
}

/// test_headers.py: test_object_create_bad_md5_invalid_short, ..._md5_bad, ..._md5_empty,
/// ..._md5_none, ..._expect_mismatch, ..._expect_empty, ..._expect_none,
/// ..._contentlength_empty, ..._contentlength_negative, ..._contentlength_none,
/// ..._contenttype_invalid, ..._contenttype_empty, ..._contenttype_none,
/// test_bucket_create_contentlength_none, test_bucket_create_bad_expect_mismatch,
/// ..._expect_empty, ..._contentlength_empty, ..._contentlength_negative,
/// ..._contentlength_none.
#[tokio::test]
async fn request_headers() {
    // Plain HTTP, for requests written byte by byte.
    let server = support::start(Options::default()).await;
    let s = &server;
    let (key, secret) = key_of(s, "alice").await;
    let signer = Signer { base: s.base.clone(), key, secret, client: support::client() };
    let (st, t) = raw(s, &signer, Method::PUT, "/bkt", b"", |_| {}).await;
    assert_eq!(st, 200, "{t}");
    let put = |edit: fn(&mut Vec<String>)| raw(s, &signer, Method::PUT, "/bkt/foo", b"bar", edit);
    let (st, t) = put(|l| set(l, "content-md5", Some("YWJyYWNhZGFicmE="))).await;
    assert_eq!((st, code(&t)), (400, "InvalidDigest"), "{t}");
    let (st, t) = put(|l| set(l, "content-md5", Some("rL0Y20xC+Fzt72VPzMSk2A=="))).await;
    assert_eq!((st, code(&t)), (400, "BadDigest"), "{t}");
    let (st, t) = put(|l| set(l, "content-md5", Some(""))).await;
    assert_eq!((st, code(&t)), (400, "InvalidDigest"), "{t}");
    assert_eq!(put(|l| set(l, "content-md5", None)).await.0, 200);
    assert_eq!(put(|l| set(l, "expect", Some("200"))).await.0, 200);
    assert_eq!(put(|l| set(l, "expect", Some(""))).await.0, 200);
    assert_eq!(put(|l| set(l, "expect", None)).await.0, 200);
    assert_eq!(put(|l| set(l, "content-length", Some(""))).await.0, 400);
    assert_eq!(put(|l| set(l, "content-length", Some("-1"))).await.0, 400);
    let (st, t) = raw(s, &signer, Method::PUT, "/bkt/foo", b"", |l| set(l, "content-length", None)).await;
    assert_eq!((st, code(&t)), (411, "MissingContentLength"), "{t}");
    assert_eq!(put(|l| set(l, "content-type", Some("text/plain"))).await.0, 200);
    assert_eq!(put(|l| set(l, "content-type", Some(""))).await.0, 200);
    assert_eq!(put(|l| set(l, "content-type", None)).await.0, 200);

    let (st, t) = raw(s, &signer, Method::PUT, "/bkt1", b"", |l| set(l, "content-length", None)).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(raw(s, &signer, Method::PUT, "/bkt2", b"", |l| set(l, "expect", Some("200"))).await.0, 200);
    assert_eq!(raw(s, &signer, Method::PUT, "/bkt3", b"", |l| set(l, "expect", Some(""))).await.0, 200);
    assert_eq!(raw(s, &signer, Method::PUT, "/bkt4", b"", |l| set(l, "content-length", Some(""))).await.0, 400);
    assert_eq!(raw(s, &signer, Method::PUT, "/bkt5", b"", |l| set(l, "content-length", Some("-1"))).await.0, 400);
    server.stop().await;
}

const A1024_SHA256: &str = "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=";

/// test_object_checksum_sha256, test_object_checksum_crc64nvme, test_multipart_checksum_sha256.
#[tokio::test]
async fn checksums_of_objects_and_single_part_uploads() {
    let Sdk { s, c, .. } = start().await;
    let a = vec![b'A'; 1024];
    for (algo, sum) in [(ChecksumAlgorithm::Sha256, A1024_SHA256), (ChecksumAlgorithm::Crc64Nvme, "Qeh8oXvGiSo=")] {
        let put = c
            .put_object()
            .bucket("bkt")
            .key("myobj")
            .body(ByteStream::from(a.clone()))
            .checksum_algorithm(algo.clone());
        let put =
            if algo == ChecksumAlgorithm::Sha256 { put.checksum_sha256(sum) } else { put.checksum_crc64_nvme(sum) };
        let r = put.send().await.unwrap();
        let got = if algo == ChecksumAlgorithm::Sha256 { r.checksum_sha256() } else { r.checksum_crc64_nvme() };
        assert_eq!(got, Some(sum));
        let h = c.head_object().bucket("bkt").key("myobj").send().await.unwrap();
        assert!(h.checksum_sha256().is_none() && h.checksum_crc64_nvme().is_none(), "only when asked");
        let h = c.head_object().bucket("bkt").key("myobj").checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        let got = if algo == ChecksumAlgorithm::Sha256 { h.checksum_sha256() } else { h.checksum_crc64_nvme() };
        assert_eq!(got, Some(sum));
    }
    // A value that is no checksum, and one that does not match: BadDigest both.
    let bad = c.put_object().bucket("bkt").key("myobj").body(ByteStream::from(a.clone())).checksum_sha256("bad");
    assert_eq!(refusal(bad.send().await), (400, "BadDigest".into()));
    let bad = c.put_object().bucket("bkt").key("myobj").body(ByteStream::from(a.clone())).checksum_crc64_nvme("bad");
    assert_eq!(refusal(bad.send().await), (400, "BadDigest".into()));
    let wrong = c.put_object().bucket("bkt").key("myobj").body(ByteStream::from(a.clone()));
    let wrong = wrong.checksum_sha256("Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=");
    assert_eq!(refusal(wrong.send().await), (400, "BadDigest".into()));

    let one_part = |key: &'static str| {
        let (c, a) = (c.clone(), a.clone());
        async move {
            let up = c
                .create_multipart_upload()
                .bucket("bkt")
                .key(key)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .send()
                .await
                .unwrap();
            assert_eq!(up.checksum_algorithm(), Some(&ChecksumAlgorithm::Sha256));
            let id = up.upload_id().unwrap().to_owned();
            let r = c
                .upload_part()
                .bucket("bkt")
                .key(key)
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from(a))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(A1024_SHA256)
                .send()
                .await
                .unwrap();
            (id, r.e_tag().unwrap().to_owned(), r.checksum_sha256().unwrap().to_owned())
        }
    };
    let finish = |key: &'static str, id: String, part: CompletedPart, sum: &'static str| {
        let done = CompletedMultipartUpload::builder().parts(part).build();
        c.complete_multipart_upload()
            .bucket("bkt")
            .key(key)
            .upload_id(id)
            .checksum_sha256(sum)
            .multipart_upload(done)
            .send()
    };
    let (id, etag, sum) = one_part("mymultipart").await;
    let part = CompletedPart::builder().e_tag(etag).checksum_sha256(sum).part_number(1).build();
    assert_eq!(refusal(finish("mymultipart", id, part, "bad").await), (400, "BadDigest".into()));
    let (id, etag, _) = one_part("mymultipart2").await;
    let part = CompletedPart::builder().e_tag(etag).part_number(1).build();
    assert_eq!(refusal(finish("mymultipart2", id, part, "bad").await), (400, "BadDigest".into()));
    assert!(c.head_object().bucket("bkt").key("mymultipart2").send().await.is_err(), "nothing completed");
    let composite = "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1";
    let (id, etag, sum) = one_part("mymultipart3").await;
    let part = CompletedPart::builder().e_tag(etag).checksum_sha256(sum).part_number(1).build();
    let r = finish("mymultipart3", id, part, composite).await.unwrap();
    assert_eq!(r.checksum_sha256(), Some(composite));
    let h = c.head_object().bucket("bkt").key("mymultipart3").send().await.unwrap();
    assert!(h.checksum_sha256().is_none());
    let h =
        c.head_object().bucket("bkt").key("mymultipart3").checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(h.checksum_sha256(), Some(composite));
    s.stop().await;
}

/// test_multipart_use_cksum_helper_sha256, ..._crc64nvme, ..._crc32, ..._crc32c, ..._sha1:
/// three 5 MiB parts of A, B and C, each with its checksum, the whole one COMPOSITE or
/// FULL_OBJECT as s3-tests asks.
#[tokio::test]
async fn three_part_checksums_of_every_algorithm() {
    let Sdk { s, c, .. } = start().await;
    let cases: [(ChecksumAlgorithm, ChecksumType, [&str; 3], &str); 5] = [
        (
            ChecksumAlgorithm::Sha256,
            ChecksumType::Composite,
            [
                "275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI=",
                "mrHwOfjTL5Zwfj74F05HOQGLdUb7E5szdCbxgUSq6NM=",
                "Vw7oB/nKQ5xWb3hNgbyfkvDiivl+U+/Dft48nfJfDow=",
            ],
            "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3",
        ),
        (
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumType::FullObject,
            ["L/E4WYn8v98=", "xW1l19VobYM=", "cK5MnNaWrW4="],
            "i+6LR0y3eFo=",
        ),
        (ChecksumAlgorithm::Crc32, ChecksumType::FullObject, ["JRTCyQ==", "QoZTGg==", "YAgjqw=="], "WgDhBQ=="),
        (ChecksumAlgorithm::Crc32C, ChecksumType::FullObject, ["MDaLrw==", "TH4EZg==", "Z7mBIQ=="], "xU+Krw=="),
        (
            ChecksumAlgorithm::Sha1,
            ChecksumType::Composite,
            ["iIaTCGbm+vdVjNqIMF2S0T7ibMk=", "LS/TJ32bAVKEwRu+sE3X7awh/lk=", "6DDwovUaHwrKNXDMzOGbuvj9kxI="],
            "sizjvY4eud3MrcHdZM3cQ/ol39o=-3",
        ),
    ];
    for (algo, kind, sums, whole) in cases {
        let key = format!("mp-{}", algo.as_str());
        let up = c
            .create_multipart_upload()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(algo.clone())
            .checksum_type(kind.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(up.checksum_algorithm(), Some(&algo));
        let id = up.upload_id().unwrap().to_owned();
        let mut parts = Vec::new();
        for (i, (fill, sum)) in [b'A', b'B', b'C'].into_iter().zip(sums).enumerate() {
            let n = i as i32 + 1;
            let p = c
                .upload_part()
                .bucket("bkt")
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(vec![fill; 5 * MIB]));
            let p = p.checksum_algorithm(algo.clone());
            let p = match algo {
                ChecksumAlgorithm::Sha256 => p.checksum_sha256(sum),
                ChecksumAlgorithm::Sha1 => p.checksum_sha1(sum),
                ChecksumAlgorithm::Crc32 => p.checksum_crc32(sum),
                ChecksumAlgorithm::Crc32C => p.checksum_crc32_c(sum),
                _ => p.checksum_crc64_nvme(sum),
            };
            let r = p.send().await.unwrap();
            let b = CompletedPart::builder().e_tag(r.e_tag().unwrap()).part_number(n);
            parts.push(
                match algo {
                    ChecksumAlgorithm::Sha256 => b.checksum_sha256(r.checksum_sha256().unwrap()),
                    ChecksumAlgorithm::Sha1 => b.checksum_sha1(r.checksum_sha1().unwrap()),
                    ChecksumAlgorithm::Crc32 => b.checksum_crc32(r.checksum_crc32().unwrap()),
                    ChecksumAlgorithm::Crc32C => b.checksum_crc32_c(r.checksum_crc32_c().unwrap()),
                    _ => b.checksum_crc64_nvme(r.checksum_crc64_nvme().unwrap()),
                }
                .build(),
            );
        }
        let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
        let fin = c.complete_multipart_upload().bucket("bkt").key(&key).upload_id(&id).multipart_upload(done);
        let fin = match algo {
            ChecksumAlgorithm::Sha256 => fin.checksum_sha256(whole),
            ChecksumAlgorithm::Sha1 => fin.checksum_sha1(whole),
            ChecksumAlgorithm::Crc32 => fin.checksum_crc32(whole),
            ChecksumAlgorithm::Crc32C => fin.checksum_crc32_c(whole),
            _ => fin.checksum_crc64_nvme(whole),
        };
        let r = fin.send().await.unwrap();
        let got =
            [r.checksum_sha256(), r.checksum_sha1(), r.checksum_crc32(), r.checksum_crc32_c(), r.checksum_crc64_nvme()];
        assert_eq!((r.checksum_type(), got.into_iter().flatten().next()), (Some(&kind), Some(whole)), "{algo:?}");
        let h = c.head_object().bucket("bkt").key(&key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        let got =
            [h.checksum_sha256(), h.checksum_sha1(), h.checksum_crc32(), h.checksum_crc32_c(), h.checksum_crc64_nvme()];
        assert_eq!(
            (h.checksum_type(), got.into_iter().flatten().next()),
            (Some(&kind), Some(whole)),
            "{algo:?} on HEAD"
        );
    }
    s.stop().await;
}
