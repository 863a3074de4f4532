//! A folder is S3's empty object `dir/` in every operation, and only `dir/` names it:
//! the path drops the slash, so `f/` must never reach the file `f`.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};

use super::*;

const EMPTY_MD5: &str = "\"d41d8cd98f00b204e9800998ecf8427e\"";

/// Found by probing with the aws CLI: a marker's metadata and type were dropped, its HEAD
/// answered an ETag its PUT and listing did not, and its GET answered NoSuchKey for a key the
/// listing had just shown (a client downloading every listed key fails on it).
#[tokio::test]
async fn sdk_a_folder_marker_reads_back_as_the_empty_object_it_was_put_as() {
    let Sdk { s: _server, c, .. } = start().await;
    let put = c
        .put_object()
        .bucket("bkt")
        .key("dir/")
        .content_type("application/x-directory")
        .metadata("mode", "16877")
        .metadata("uid", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(EMPTY_MD5));
    let listed = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    let o = &listed.contents()[0];
    assert_eq!((o.key(), o.e_tag(), o.size()), (Some("dir/"), Some(EMPTY_MD5), Some(0)));

    let head = c.head_object().bucket("bkt").key("dir/").send().await.unwrap();
    assert_eq!(head.e_tag(), Some(EMPTY_MD5));
    assert_eq!(head.content_type(), Some("application/x-directory"));
    let meta = head.metadata().unwrap();
    assert_eq!(
        (meta.get("mode").map(String::as_str), meta.get("uid").map(String::as_str)),
        (Some("16877"), Some("1000"))
    );

    let got = c.get_object().bucket("bkt").key("dir/").send().await.unwrap();
    assert_eq!(got.e_tag(), Some(EMPTY_MD5));
    assert_eq!(got.content_length(), Some(0));
    assert_eq!(got.metadata().and_then(|m| m.get("mode")).map(String::as_str), Some("16877"));
    assert!(body(got).await.is_empty());
    let e = c.get_object().bucket("bkt").key("dir/").if_none_match(EMPTY_MD5).send().await;
    assert_eq!(refusal(e).0, 304, "the marker's ETag is the one conditions compare");
    let e = c.get_object().bucket("bkt").key("dir").send().await;
    assert_eq!(refusal(e), (404, "NoSuchKey".to_owned()), "without its slash a key names no folder");

    // A PUT replaces the marker: what it does not send is gone.
    c.put_object().bucket("bkt").key("dir/").send().await.unwrap();
    let head = c.head_object().bucket("bkt").key("dir/").send().await.unwrap();
    assert!(head.metadata().is_none_or(|m| m.is_empty()), "{:?}", head.metadata());
    assert_ne!(head.content_type(), Some("application/x-directory"));
}

/// Found by probing with the aws CLI: GET, CopyObject, tagging and GetObjectAttributes of
/// `f/` acted on the file `f` (tags were set on it), and DeleteObject of `f/` was refused
/// where S3 answers success for a key it lacks.
#[tokio::test]
async fn sdk_a_key_ending_in_a_slash_never_reaches_the_file_without_it() {
    let Sdk { s: _server, c, .. } = start().await;
    c.put_object().bucket("bkt").key("f").body(ByteStream::from_static(b"file")).send().await.unwrap();
    let missing = (404, "NoSuchKey".to_owned());
    assert_eq!(refusal(c.get_object().bucket("bkt").key("f/").send().await), missing);
    assert_eq!(refusal(c.head_object().bucket("bkt").key("f/").send().await).0, 404);
    let copy = c.copy_object().bucket("bkt").key("g").copy_source("bkt/f/").send().await;
    assert_eq!(refusal(copy), missing);
    let tags = Tagging::builder().tag_set(Tag::builder().key("k").value("v").build().unwrap()).build().unwrap();
    let tag = c.put_object_tagging().bucket("bkt").key("f/").tagging(tags).send().await;
    assert_eq!(refusal(tag), missing);
    assert_eq!(refusal(c.get_object_tagging().bucket("bkt").key("f/").send().await), missing);
    let attrs = c
        .get_object_attributes()
        .bucket("bkt")
        .key("f/")
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
        .send()
        .await;
    assert_eq!(refusal(attrs), missing);
    let up = c.create_multipart_upload().bucket("bkt").key("m").send().await.unwrap();
    let part = c
        .upload_part_copy()
        .bucket("bkt")
        .key("m")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source("bkt/f/")
        .send()
        .await;
    assert_eq!(refusal(part), missing);
    c.delete_object().bucket("bkt").key("f/").send().await.unwrap();
    // Found in review: these acted on `f` too. Versions of `f/` are no versions of `f`, and no
    // object is written at `f/`.
    let e = c.delete_object().bucket("bkt").key("f/").version_id("null").send().await;
    assert_eq!(refusal(e), missing);
    let onto = c.copy_object().bucket("bkt").key("f/").copy_source("bkt/f").send().await;
    assert_eq!(refusal(onto).0, 400);
    let e = c.create_multipart_upload().bucket("bkt").key("f/").send().await;
    assert_eq!(refusal(e).0, 400);

    // `f` is as it was: there, untagged, its bytes unchanged; and nothing was copied.
    let left = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    let keys: Vec<_> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["f"]);
    assert!(c.get_object_tagging().bucket("bkt").key("f").send().await.unwrap().tag_set().is_empty());
    assert_eq!(body(c.get_object().bucket("bkt").key("f").send().await.unwrap()).await, b"file");
}

/// A marker's PUT keeps the conditions, digest and tags of any PUT: a refused one leaves the
/// marker's metadata (s3fs keeps a folder's mode there) as it was.
#[tokio::test]
async fn sdk_a_folder_marker_put_keeps_its_conditions_digest_and_tags() {
    let Sdk { s: _server, c, .. } = start().await;
    let marker = || c.put_object().bucket("bkt").key("md/").body(ByteStream::from_static(b""));
    marker().metadata("mode", "0700").send().await.unwrap();
    let head = || c.head_object().bucket("bkt").key("md/").send();
    assert_eq!(refusal(marker().if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(marker().if_match("\"00\"").send().await), (412, "PreconditionFailed".into()));
    let r = marker().content_md5("AAAAAAAAAAAAAAAAAAAAAA==").send().await;
    assert_eq!(refusal(r), (400, "BadDigest".into()));
    assert_eq!(head().await.unwrap().metadata().unwrap().get("mode").map(String::as_str), Some("0700"), "kept");
    marker().if_match(EMPTY_MD5).metadata("mode", "0755").send().await.unwrap();
    assert_eq!(head().await.unwrap().metadata().unwrap().get("mode").map(String::as_str), Some("0755"));

    let r = c.put_object().bucket("bkt").key("nodir/").if_match("*").body(ByteStream::from_static(b"")).send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    assert_eq!(refusal(c.head_object().bucket("bkt").key("nodir/").send().await).0, 404, "not made");

    marker().tagging("a=b").send().await.unwrap();
    let tags = || c.get_object_tagging().bucket("bkt").key("md/").send();
    let got = tags().await.unwrap();
    assert_eq!(got.tag_set().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("a", "b")]);
    // A PUT without tags replaces them with none, as an object's does.
    marker().send().await.unwrap();
    assert!(tags().await.unwrap().tag_set().is_empty());
}
