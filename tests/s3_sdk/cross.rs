//! One storage core: what S3 writes, WebDAV and REST read, and the other way round.

use aws_sdk_s3::primitives::ByteStream;
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};

use super::*;
use crate::support::PASSWORD;

fn dav(s: &TestServer, method: &str, path: &str) -> reqwest::RequestBuilder {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    support::tls_client().request(m, s.url(&format!("/dav{path}"))).basic_auth("alice", Some(PASSWORD))
}

fn rest(s: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    support::tls_client().request(method, s.url(&format!("/api/v1/files{path}"))).basic_auth("alice", Some(PASSWORD))
}

#[tokio::test]
async fn s3_writes_are_files_over_webdav_and_rest() {
    let Sdk { s, c, .. } = start().await;
    c.put_object()
        .bucket("bkt")
        .key("docs/notes é.md")
        .content_type("text/markdown")
        .body(ByteStream::from_static(b"# notes\n"))
        .send()
        .await
        .unwrap();
    let r = dav(&s, "GET", "/bkt/docs/notes%20%C3%A9.md").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/markdown");
    assert_eq!(r.text().await.unwrap(), "# notes\n");
    let r = rest(&s, Method::GET, "/bkt/docs/notes%20%C3%A9.md").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/markdown");
    assert_eq!(r.text().await.unwrap(), "# notes\n");
    let r = dav(&s, "PROPFIND", "/bkt/docs/").header("Depth", "1").send().await.unwrap();
    let listing = r.text().await.unwrap();
    assert!(listing.contains("/dav/bkt/docs/notes%20%C3%A9.md"), "{listing}");

    // A multipart object is one file like any other.
    let data = support::pseudo_random(300_000, 9);
    let up = c.create_multipart_upload().bucket("bkt").key("mp.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part =
        c.upload_part().bucket("bkt").key("mp.bin").upload_id(id).part_number(1).body(ByteStream::from(data.clone()));
    let tag = part.send().await.unwrap().e_tag().unwrap().to_owned();
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(tag).build())
        .build();
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    let r = dav(&s, "GET", "/bkt/mp.bin").header("range", "bytes=1000-1999").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &data[1000..2000]);

    // An S3 delete is gone everywhere, and so is the folder the key implied.
    c.delete_object().bucket("bkt").key("docs/notes é.md").send().await.unwrap();
    assert_eq!(dav(&s, "GET", "/bkt/docs/notes%20%C3%A9.md").send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(rest(&s, Method::GET, "/bkt/docs/notes%20%C3%A9.md").send().await.unwrap().status(), 404);
    assert_eq!(dav(&s, "PROPFIND", "/bkt/docs/").header("Depth", "0").send().await.unwrap().status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn webdav_and_rest_writes_are_objects_over_s3() {
    let Sdk { s, c, .. } = start_with(Options::default()).await;
    assert_eq!(dav(&s, "MKCOL", "/fromdav").send().await.unwrap().status(), StatusCode::CREATED);
    let names: Vec<_> =
        c.list_buckets().send().await.unwrap().buckets().iter().map(|b| b.name().unwrap().to_owned()).collect();
    assert!(names.contains(&"fromdav".to_owned()), "a top-level folder is a bucket: {names:?}");
    // A top-level folder whose name S3 cannot have is no bucket.
    assert_eq!(dav(&s, "MKCOL", "/Not%20A%20Bucket").send().await.unwrap().status(), StatusCode::CREATED);
    let names: Vec<_> =
        c.list_buckets().send().await.unwrap().buckets().iter().map(|b| b.name().unwrap().to_owned()).collect();
    assert!(!names.iter().any(|n| n.contains("Bucket")), "{names:?}");

    assert_eq!(dav(&s, "MKCOL", "/fromdav/a").send().await.unwrap().status(), StatusCode::CREATED);
    let r = dav(&s, "PUT", "/fromdav/a/b.txt").header("content-type", "text/x-dav").body("over webdav").send();
    assert_eq!(r.await.unwrap().status(), StatusCode::CREATED);
    let r = rest(&s, Method::PUT, "/fromdav/c.json").header("content-type", "application/json").body("{\"rest\":1}");
    assert!(r.send().await.unwrap().status().is_success());

    let out = c.get_object().bucket("fromdav").key("a/b.txt").send().await.unwrap();
    assert_eq!(out.content_type(), Some("text/x-dav"));
    // The ETag is the content's MD5 whichever protocol wrote it, so S3 clients can compare.
    let md5 = format!("\"{}\"", hex::encode(Md5::digest(b"over webdav")));
    assert_eq!(out.e_tag(), Some(md5.as_str()));
    assert_eq!(body(out).await, b"over webdav");
    let out = c.get_object().bucket("fromdav").key("c.json").send().await.unwrap();
    assert_eq!((out.content_type(), out.content_length()), (Some("application/json"), Some(10)));
    assert_eq!(body(out).await, b"{\"rest\":1}");
    let listed = c.list_objects_v2().bucket("fromdav").delimiter("/").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().map(|o| o.key().unwrap()).collect();
    let prefixes: Vec<_> = listed.common_prefixes().iter().map(|p| p.prefix().unwrap()).collect();
    assert_eq!((keys, prefixes), (vec!["c.json"], vec!["a/"]));

    // A WebDAV move renames the object; a WebDAV delete removes it.
    let r = dav(&s, "MOVE", "/fromdav/a/b.txt").header("destination", s.url("/dav/fromdav/moved.txt")).send();
    assert_eq!(r.await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(refusal(c.get_object().bucket("fromdav").key("a/b.txt").send().await), (404, "NoSuchKey".into()));
    let out = c.get_object().bucket("fromdav").key("moved.txt").send().await.unwrap();
    assert_eq!(body(out).await, b"over webdav");
    assert_eq!(dav(&s, "DELETE", "/fromdav/moved.txt").send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(refusal(c.head_object().bucket("fromdav").key("moved.txt").send().await).0, 404);
    s.stop().await;
}
