//! Writes that must not reach past their own key: a key that names a folder (a prefix of
//! other keys) is no object, so deleting it deletes nothing and copying onto it is refused;
//! conditional writes (`If-Match`, `If-None-Match`) hold on every write, not only PutObject;
//! and a copy is a new object, modified when it was made.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};

use super::*;

async fn put(c: &Client, key: &str, data: &'static [u8]) -> String {
    let out = c.put_object().bucket("bkt").key(key).body(ByteStream::from_static(data)).send().await.unwrap();
    out.e_tag().unwrap().to_owned()
}

async fn keys(c: &Client) -> Vec<String> {
    let l = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    l.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

/// Found by probing with the aws CLI: `delete-object --key photos` removed every object under
/// `photos/`, and a CopyObject onto `docs` replaced all of `docs/`.
#[tokio::test]
async fn sdk_a_key_that_names_a_folder_is_no_object_to_delete_or_replace() {
    let Sdk { s: _server, c, .. } = start().await;
    for k in ["photos/2024/a.jpg", "photos/x.txt", "docs/report.pdf", "single"] {
        put(&c, k, b"kept").await;
    }
    let all = keys(&c).await;
    c.delete_object().bucket("bkt").key("photos").send().await.unwrap();
    c.delete_object().bucket("bkt").key("photos/2024").send().await.unwrap();
    // A folder's own key (with its `/`) goes only when empty; with objects in it, S3 answers
    // success for the marker it lacks, and the objects stay.
    c.delete_object().bucket("bkt").key("photos/").send().await.unwrap();
    let many = Delete::builder()
        .objects(ObjectIdentifier::builder().key("docs").build().unwrap())
        .objects(ObjectIdentifier::builder().key("photos").build().unwrap())
        .build()
        .unwrap();
    let out = c.delete_objects().bucket("bkt").delete(many).send().await.unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    assert_eq!(keys(&c).await, all, "deleting a folder's key deleted objects");

    let e = c.copy_object().bucket("bkt").key("docs").copy_source("bkt/single").send().await;
    assert_eq!(refusal(e).0, 400);
    let e = c.put_object().bucket("bkt").key("docs").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(refusal(e).0, 400, "as PutObject refuses");
    assert_eq!(keys(&c).await, all, "a copy onto a folder's key replaced the folder");
    let got = body(c.get_object().bucket("bkt").key("docs/report.pdf").send().await.unwrap()).await;
    assert_eq!(got, b"kept");

    // An empty folder's own key still removes it.
    put(&c, "empty/only", b"x").await;
    c.delete_object().bucket("bkt").key("empty/only").send().await.unwrap();
    c.delete_object().bucket("bkt").key("empty/").send().await.unwrap();
    assert_eq!(keys(&c).await, all);
}

#[tokio::test]
async fn sdk_conditional_writes_hold_on_completions_and_copies() {
    let Sdk { s: _server, c, .. } = start().await;
    let original = put(&c, "inm", b"ORIGINAL").await;
    put(&c, "src", b"REPLACED").await;
    let upload = |key: &'static str| {
        let c = c.clone();
        async move {
            let id = c.create_multipart_upload().bucket("bkt").key(key).send().await.unwrap();
            let id = id.upload_id().unwrap().to_owned();
            let done = one_part(&c, "bkt", key, &id, b"REPLACED".to_vec()).await;
            (id, done)
        }
    };
    let content = |key: &'static str| {
        let c = c.clone();
        async move { body(c.get_object().bucket("bkt").key(key).send().await.unwrap()).await }
    };

    // CompleteMultipartUpload: If-None-Match: * and a wrong If-Match are refused, the object
    // kept and the upload left to complete; If-Match on a missing key is NoSuchKey.
    let (id, done) = upload("inm").await;
    let complete =
        || c.complete_multipart_upload().bucket("bkt").key("inm").upload_id(&id).multipart_upload(done.clone());
    assert_eq!(refusal(complete().if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(complete().if_match("\"nope\"").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(content("inm").await, b"ORIGINAL");
    complete().if_match(&original).send().await.unwrap();
    assert_eq!(content("inm").await, b"REPLACED");
    let (id2, done2) = upload("absent").await;
    let e = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("absent")
        .upload_id(&id2)
        .multipart_upload(done2.clone())
        .if_match("*")
        .send()
        .await;
    assert_eq!(refusal(e), (404, "NoSuchKey".into()));
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("absent")
        .upload_id(&id2)
        .multipart_upload(done2)
        .if_none_match("*")
        .send()
        .await
        .unwrap();

    // CopyObject: the same conditions on its destination, also onto its own key.
    let kept = put(&c, "dst", b"KEPT").await;
    let copy = || c.copy_object().bucket("bkt").key("dst").copy_source("bkt/src");
    assert_eq!(refusal(copy().if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(refusal(copy().if_match("\"nope\"").send().await), (412, "PreconditionFailed".into()));
    let self_copy =
        c.copy_object().bucket("bkt").key("dst").copy_source("bkt/dst").metadata_directive(MetadataDirective::Replace);
    assert_eq!(refusal(self_copy.if_none_match("*").send().await), (412, "PreconditionFailed".into()));
    assert_eq!(content("dst").await, b"KEPT");
    copy().if_match(&kept).send().await.unwrap();
    assert_eq!(content("dst").await, b"REPLACED");
    let e = c.copy_object().bucket("bkt").key("new").copy_source("bkt/src").if_match("*").send().await;
    assert_eq!(refusal(e), (404, "NoSuchKey".into()));
    c.copy_object().bucket("bkt").key("new").copy_source("bkt/src").if_none_match("*").send().await.unwrap();
    assert_eq!(content("new").await, b"REPLACED");
}

/// A copy is a new object: its LastModified is when it was made (the "copy onto itself to
/// touch it" idiom, lifecycle ages, sync tools comparing times), not its source's.
#[tokio::test]
async fn sdk_a_copy_is_modified_when_it_is_made() {
    let Sdk { s: _server, c, .. } = start().await;
    put(&c, "old", b"data").await;
    let head = |key: &'static str| {
        let c = c.clone();
        async move { c.head_object().bucket("bkt").key(key).send().await.unwrap().last_modified().copied().unwrap() }
    };
    let before = head("old").await;
    // LastModified has whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = c.copy_object().bucket("bkt").key("copy").copy_source("bkt/old").send().await.unwrap();
    let answered = out.copy_object_result().unwrap().last_modified().copied().unwrap();
    let copied = head("copy").await;
    assert!(copied.secs() > before.secs() && answered.secs() == copied.secs(), "{before:?} {copied:?} {answered:?}");
    assert_eq!(head("old").await, before, "the source is untouched");
}

/// S3's conditional deletes: `If-Match` on DeleteObject and an `<ETag>` per key of
/// DeleteObjects delete only the object that has that ETag as the delete commits.
#[tokio::test]
async fn sdk_conditional_deletes_take_only_the_object_they_name() {
    let Sdk { s, c, .. } = start().await;
    let tag = put(&c, "dc", b"keep me").await;
    let r = c.delete_object().bucket("bkt").key("dc").if_match("\"0123\"").send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()));
    assert_eq!(keys(&c).await, ["dc"], "kept");
    let r = c.delete_object().bucket("bkt").key("absent").if_match("*").send().await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    c.delete_object().bucket("bkt").key("dc").if_match(&tag).send().await.unwrap();
    assert!(keys(&c).await.is_empty());

    let a = put(&c, "a", b"a").await;
    put(&c, "b", b"b").await;
    let id = |k: &str, t: &str| ObjectIdentifier::builder().key(k).e_tag(t).build().unwrap();
    let delete = Delete::builder().objects(id("a", &a)).objects(id("b", "\"0123\"")).build().unwrap();
    let out = c.delete_objects().bucket("bkt").delete(delete).send().await.unwrap();
    let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    let refused: Vec<_> = out.errors().iter().map(|e| (e.key().unwrap(), e.code().unwrap())).collect();
    assert_eq!((deleted, refused), (vec!["a"], vec![("b", "PreconditionFailed")]));
    assert_eq!(keys(&c).await, ["b"]);
    s.stop().await;
}

/// User metadata is limited to S3's 2 KB (names and values): past it PutObject, multipart
/// creation and a REPLACE copy are refused (MetadataTooLarge) and nothing is stored.
#[tokio::test]
async fn sdk_user_metadata_is_limited_to_two_kilobytes() {
    let Sdk { s, c, .. } = start().await;
    let just = "v".repeat(2048 - "k".len());
    let over = "v".repeat(2048);
    let body = || ByteStream::from_static(b"x");
    c.put_object().bucket("bkt").key("ok").metadata("k", &just).body(body()).send().await.unwrap();
    let r = c.put_object().bucket("bkt").key("big").metadata("k", &over).body(body()).send().await;
    assert_eq!(refusal(r), (400, "MetadataTooLarge".into()));
    let r = c.create_multipart_upload().bucket("bkt").key("big").metadata("k", &over).send().await;
    assert_eq!(refusal(r), (400, "MetadataTooLarge".into()));
    let r = c
        .copy_object()
        .bucket("bkt")
        .key("big")
        .copy_source("bkt/ok")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("k", &over)
        .send()
        .await;
    assert_eq!(refusal(r), (400, "MetadataTooLarge".into()));
    assert_eq!(keys(&c).await, ["ok"]);
    s.stop().await;
}
