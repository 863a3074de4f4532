//! Server-side encryption as S3 clients see it: every object is encrypted at rest, so
//! `AES256` is accepted and reported, a bucket's default encryption is AES256, and SSE-KMS
//! and SSE-C are refused before anything is stored. Ports from ceph/s3-tests
//! (`s3tests_boto3/functional/test_s3.py`): test_sse_s3_default_method_head,
//! test_sse_s3_default_upload_1b / _1kb / _1mb / _8mb, test_sse_s3_encrypted_upload_1b /
//! _1kb / _1mb / _8mb, test_sse_s3_default_multipart_upload, test_put_bucket_encryption_s3,
//! test_get_bucket_encryption_s3, test_delete_bucket_encryption_s3,
//! test_sse_kms_method_head (refused here), test_encryption_sse_c_method_head (refused here).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};

use super::*;

fn aes() -> Option<&'static ServerSideEncryption> {
    Some(&ServerSideEncryption::Aes256)
}

fn config(alg: ServerSideEncryption) -> ServerSideEncryptionConfiguration {
    let by_default = ServerSideEncryptionByDefault::builder().sse_algorithm(alg).build().unwrap();
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
    ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap()
}

#[tokio::test]
async fn sdk_every_object_answers_aes256() {
    let Sdk { s: _server, c, key, secret } = start().await;
    for (i, size) in [1usize, 1024, 1024 * 1024, 8 * 1024 * 1024].into_iter().enumerate() {
        let key = format!("obj{i}");
        let data = support::pseudo_random(size, i as u64);
        // Asked for (test_sse_s3_encrypted_upload_*) or not (test_sse_s3_default_upload_*).
        let sse = (i % 2 == 0).then_some(ServerSideEncryption::Aes256);
        let put = c
            .put_object()
            .bucket("bkt")
            .key(&key)
            .set_server_side_encryption(sse)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(put.server_side_encryption(), aes(), "{size}");
        let head = c.head_object().bucket("bkt").key(&key).send().await.unwrap();
        assert_eq!(head.server_side_encryption(), aes());
        let got = c.get_object().bucket("bkt").key(&key).send().await.unwrap();
        assert_eq!(got.server_side_encryption(), aes());
        assert_eq!(body(got).await, data);
    }
    // A read naming an encryption is refused (test_sse_s3_default_method_head).
    let r = support::tls_client()
        .head(
            crate::s3_sign::Signer {
                base: _server.base.clone(),
                key: key.clone(),
                secret: secret.clone(),
                client: support::tls_client(),
            }
            .presign(reqwest::Method::HEAD, "/bkt/obj0", 60),
        )
        .header("x-amz-server-side-encryption", "AES256")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let copy = c.copy_object().bucket("bkt").key("copy").copy_source("bkt/obj0").send().await.unwrap();
    assert_eq!(copy.server_side_encryption(), aes());

    // test_sse_s3_default_multipart_upload.
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(up.server_side_encryption(), aes());
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.server_side_encryption(), aes());
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build())
        .build();
    let r = c.complete_multipart_upload().bucket("bkt").key("mp").upload_id(id).multipart_upload(done).send().await;
    assert_eq!(r.unwrap().server_side_encryption(), aes());
}

#[tokio::test]
async fn sdk_bucket_encryption_is_aes256_and_accepts_only_it() {
    let Sdk { s: _server, c, .. } = start().await;
    let get = || c.get_bucket_encryption().bucket("bkt").send();
    let alg = |r: aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput| {
        let rule = &r.server_side_encryption_configuration().unwrap().rules()[0];
        rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().clone()
    };
    assert_eq!(alg(get().await.unwrap()), ServerSideEncryption::Aes256, "encrypted from the start");
    c.put_bucket_encryption()
        .bucket("bkt")
        .server_side_encryption_configuration(config(ServerSideEncryption::Aes256))
        .send()
        .await
        .unwrap();
    assert_eq!(alg(get().await.unwrap()), ServerSideEncryption::Aes256);
    let e = c
        .put_bucket_encryption()
        .bucket("bkt")
        .server_side_encryption_configuration(config(ServerSideEncryption::AwsKms))
        .send()
        .await;
    assert_eq!(refusal(e), (501, "NotImplemented".into()));
    c.delete_bucket_encryption().bucket("bkt").send().await.unwrap();
    assert_eq!(alg(get().await.unwrap()), ServerSideEncryption::Aes256, "still encrypted at rest");
    let e = c.get_bucket_encryption().bucket("nobucket").send().await;
    assert_eq!(refusal(e), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn sdk_kms_and_customer_keys_are_refused_and_store_nothing() {
    let Sdk { s: _server, c, .. } = start().await;
    let e = c
        .put_object()
        .bucket("bkt")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("testkey-1")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(refusal(e), (501, "NotImplemented".into()));
    let key = [7u8; 32];
    use base64::Engine;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let md5 = b64(&md5::Md5::digest(key));
    use md5::Digest;
    let e = c
        .put_object()
        .bucket("bkt")
        .key("ssec")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64(&key))
        .sse_customer_key_md5(md5)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(refusal(e), (501, "NotImplemented".into()));
    for key in ["kms", "ssec"] {
        assert!(c.head_object().bucket("bkt").key(key).send().await.is_err(), "{key} was not stored");
    }
    let e = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await;
    assert_eq!(refusal(e), (501, "NotImplemented".into()));
}
