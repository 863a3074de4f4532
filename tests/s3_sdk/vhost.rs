//! Virtual-host addressing: the SDK's own style, `https://<bucket>.s3.test:PORT/<key>`, with
//! every name resolved to 127.0.0.1 by the test client.

use aws_sdk_s3::primitives::ByteStream;

use super::*;

#[tokio::test]
async fn virtual_host_addressing_reaches_the_same_buckets_as_path_style() {
    let Sdk { s, c: path_style, key, secret } =
        start_with(Options { base_domain: Some("s3.test"), ..Default::default() }).await;
    let c = client(&format!("https://s3.test:{}", s.addr.port()), &key, &secret, true);

    c.create_bucket().bucket("vbkt").send().await.unwrap();
    c.put_object().bucket("vbkt").key("dir/k.txt").body(ByteStream::from_static(b"virtual")).send().await.unwrap();
    let names: Vec<_> =
        c.list_buckets().send().await.unwrap().buckets().iter().map(|b| b.name().unwrap().to_owned()).collect();
    assert_eq!(names, ["shared", "vbkt"]);
    let out = c.get_object().bucket("vbkt").key("dir/k.txt").send().await.unwrap();
    assert_eq!(body(out).await, b"virtual");
    let listed = c.list_objects_v2().bucket("vbkt").delimiter("/").send().await.unwrap();
    assert_eq!(listed.common_prefixes().iter().map(|p| p.prefix().unwrap()).collect::<Vec<_>>(), ["dir/"]);

    // The same object, path style, on the same server.
    let out = path_style.get_object().bucket("vbkt").key("dir/k.txt").send().await.unwrap();
    assert_eq!(body(out).await, b"virtual");

    // Under the bucket's host name, `/api` and `/dav` are keys like any other.
    c.put_object().bucket("vbkt").key("api/v1/health").body(ByteStream::from_static(b"a key")).send().await.unwrap();
    let out = path_style.get_object().bucket("vbkt").key("api/v1/health").send().await.unwrap();
    assert_eq!(body(out).await, b"a key");

    // Reserved names reach S3 this way, and S3 refuses them.
    for reserved in ["api", "dav"] {
        let r = c.create_bucket().bucket(reserved).send().await;
        assert_eq!(refusal(r), (400, "InvalidBucketName".into()), "{reserved}");
    }
    let r = c.get_object().bucket("nobucket").key("k").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));

    c.delete_object().bucket("vbkt").key("dir/k.txt").send().await.unwrap();
    c.delete_object().bucket("vbkt").key("api/v1/health").send().await.unwrap();
    c.delete_bucket().bucket("vbkt").send().await.unwrap();
    assert_eq!(refusal(path_style.head_bucket().bucket("vbkt").send().await).0, 404);
    s.stop().await;
}
