//! Multipart uploads: parts, copies of ranges, listings, completion and its refusals.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};

use super::*;

const MIB: usize = 1024 * 1024;

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    let parts = parts.iter().map(|(n, tag)| CompletedPart::builder().part_number(*n).e_tag(*tag).build()).collect();
    CompletedMultipartUpload::builder().set_parts(Some(parts)).build()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

#[tokio::test]
async fn multipart_upload_with_a_copied_range_completes_with_the_s3_etag() {
    let Sdk { s, c, .. } = start().await;
    let source = support::pseudo_random(5 * MIB + 3000, 11);
    c.put_object().bucket("bkt").key("src.bin").body(ByteStream::from(source.clone())).send().await.unwrap();

    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("big/file.bin")
        .content_type("application/x-big")
        .content_disposition("attachment")
        .metadata("origin", "sdk")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    assert_eq!((up.bucket(), up.key()), (Some("bkt"), Some("big/file.bin")));
    let other = c.create_multipart_upload().bucket("bkt").key("big/other.bin").send().await.unwrap();
    let other_id = other.upload_id().unwrap();

    let part1 = support::pseudo_random(5 * MIB, 12);
    let part2 = &source[1000..1000 + 5 * MIB];
    let part3 = b"the small last part".to_vec();
    let p1 = c
        .upload_part()
        .bucket("bkt")
        .key("big/file.bin")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .unwrap();
    let range = format!("bytes=1000-{}", 1000 + 5 * MIB - 1);
    let p2 = c
        .upload_part_copy()
        .bucket("bkt")
        .key("big/file.bin")
        .upload_id(&id)
        .part_number(2)
        .copy_source("bkt/src.bin")
        .copy_source_range(range)
        .send()
        .await
        .unwrap();
    let p2 = p2.copy_part_result().unwrap();
    assert!(p2.last_modified().is_some());
    let p3 = c
        .upload_part()
        .bucket("bkt")
        .key("big/file.bin")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from(part3.clone()))
        .send()
        .await
        .unwrap();
    let tags = [p1.e_tag().unwrap(), p2.e_tag().unwrap(), p3.e_tag().unwrap()];
    let want: Vec<String> = [&part1[..], part2, &part3].iter().map(|p| format!("\"{}\"", md5_hex(p))).collect();
    assert_eq!(tags.to_vec(), want, "a part's ETag is its MD5");

    let parts = c.list_parts().bucket("bkt").key("big/file.bin").upload_id(&id).send().await.unwrap();
    let listed: Vec<_> = parts.parts().iter().map(|p| (p.part_number(), p.size(), p.e_tag())).collect();
    assert_eq!(
        listed,
        [
            (Some(1), Some(5 * MIB as i64), Some(tags[0])),
            (Some(2), Some(5 * MIB as i64), Some(tags[1])),
            (Some(3), Some(part3.len() as i64), Some(tags[2]))
        ]
    );
    assert_eq!(parts.is_truncated(), Some(false));
    let page = c.list_parts().bucket("bkt").key("big/file.bin").upload_id(&id).max_parts(2).send().await.unwrap();
    assert_eq!((page.parts().len(), page.is_truncated(), page.next_part_number_marker()), (2, Some(true), Some("2")));
    let rest =
        c.list_parts().bucket("bkt").key("big/file.bin").upload_id(&id).part_number_marker("2").send().await.unwrap();
    assert_eq!(rest.parts().iter().map(|p| p.part_number()).collect::<Vec<_>>(), [Some(3)]);

    let uploads = c.list_multipart_uploads().bucket("bkt").send().await.unwrap();
    let listed: Vec<_> = uploads.uploads().iter().map(|u| (u.key().unwrap(), u.upload_id().unwrap())).collect();
    assert_eq!(listed, [("big/file.bin", id.as_str()), ("big/other.bin", other_id)]);
    let page = c.list_multipart_uploads().bucket("bkt").max_uploads(1).send().await.unwrap();
    assert_eq!((page.uploads().len(), page.is_truncated()), (1, Some(true)));
    let next = c
        .list_multipart_uploads()
        .bucket("bkt")
        .key_marker(page.next_key_marker().unwrap())
        .upload_id_marker(page.next_upload_id_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(next.uploads().iter().map(|u| u.key().unwrap()).collect::<Vec<_>>(), ["big/other.bin"]);
    let none = c.list_multipart_uploads().bucket("bkt").prefix("small/").send().await.unwrap();
    assert!(none.uploads().is_empty());

    let done = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("big/file.bin")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, tags[0]), (2, tags[1]), (3, tags[2])]))
        .send()
        .await
        .unwrap();
    // The MD5 of the parts' binary MD5s, then the number of parts.
    let mut md5s = Vec::new();
    for p in [&part1[..], part2, &part3] {
        md5s.extend_from_slice(&Md5::digest(p));
    }
    let etag = format!("\"{}-3\"", md5_hex(&md5s));
    assert_eq!(done.e_tag(), Some(etag.as_str()));
    assert_eq!((done.bucket(), done.key()), (Some("bkt"), Some("big/file.bin")));

    let h = c.head_object().bucket("bkt").key("big/file.bin").send().await.unwrap();
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    assert_eq!(h.content_length(), Some((10 * MIB + part3.len()) as i64));
    assert_eq!((h.content_type(), h.content_disposition()), (Some("application/x-big"), Some("attachment")));
    assert_eq!(h.metadata().unwrap().get("origin").map(String::as_str), Some("sdk"));
    let got = body(c.get_object().bucket("bkt").key("big/file.bin").send().await.unwrap()).await;
    let mut whole = part1.clone();
    whole.extend_from_slice(part2);
    whole.extend_from_slice(&part3);
    assert!(got == whole, "the object is its parts in order");

    let uploads = c.list_multipart_uploads().bucket("bkt").send().await.unwrap();
    assert_eq!(uploads.uploads().iter().map(|u| u.key().unwrap()).collect::<Vec<_>>(), ["big/other.bin"]);
    let r = c.list_parts().bucket("bkt").key("big/file.bin").upload_id(&id).send().await;
    assert_eq!(refusal(r), (404, "NoSuchUpload".into()), "a completed upload is gone");
    c.abort_multipart_upload().bucket("bkt").key("big/other.bin").upload_id(other_id).send().await.unwrap();
    let r = c.list_parts().bucket("bkt").key("big/other.bin").upload_id(other_id).send().await;
    assert_eq!(refusal(r), (404, "NoSuchUpload".into()), "and so is an aborted one");
    let r = c.abort_multipart_upload().bucket("bkt").key("big/other.bin").upload_id(other_id).send().await;
    assert_eq!(refusal(r), (404, "NoSuchUpload".into()));
    s.stop().await;
}

#[tokio::test]
async fn completion_refuses_wrong_missing_misordered_and_small_parts() {
    let Sdk { s, c, .. } = start().await;
    let up = c.create_multipart_upload().bucket("bkt").key("k.bin").send().await.unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let mut tags = Vec::new();
    for (n, data) in [(1, &b"first small part"[..]), (2, b"second small part")] {
        let out = c
            .upload_part()
            .bucket("bkt")
            .key("k.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from_static(data))
            .send()
            .await
            .unwrap();
        tags.push(out.e_tag().unwrap().to_owned());
    }
    let complete = |parts: &[(i32, &str)]| {
        c.complete_multipart_upload().bucket("bkt").key("k.bin").upload_id(&id).multipart_upload(completed(parts))
    };
    let wrong = "\"00000000000000000000000000000000\"";
    assert_eq!(refusal(complete(&[(1, wrong)]).send().await), (400, "InvalidPart".into()), "another ETag");
    assert_eq!(refusal(complete(&[(3, &tags[0])]).send().await), (400, "InvalidPart".into()), "never uploaded");
    let r = complete(&[(2, &tags[1]), (1, &tags[0])]).send().await;
    assert_eq!(refusal(r), (400, "InvalidPartOrder".into()));
    let r = complete(&[(1, &tags[0]), (2, &tags[1])]).send().await;
    assert_eq!(refusal(r), (400, "EntityTooSmall".into()), "only the last part may be under 5 MiB");
    assert_eq!(refusal(c.head_object().bucket("bkt").key("k.bin").send().await).0, 404, "refusals store nothing");

    // The refusals left the upload as it was: completing with part 2 alone works (a small
    // part may be the last), and the parts not listed are dropped.
    let done = complete(&[(2, &tags[1])]).send().await.unwrap();
    assert_eq!(done.e_tag().unwrap(), format!("\"{}-1\"", md5_hex(&Md5::digest(b"second small part"))));
    let got = c.get_object().bucket("bkt").key("k.bin").send().await.unwrap();
    assert_eq!(body(got).await, b"second small part");
    let r = c
        .upload_part()
        .bucket("bkt")
        .key("k.bin")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await;
    assert_eq!(refusal(r), (404, "NoSuchUpload".into()));

    for bogus in ["999999", "not-an-id"] {
        let r = c
            .upload_part()
            .bucket("bkt")
            .key("k.bin")
            .upload_id(bogus)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_eq!(refusal(r), (404, "NoSuchUpload".into()), "{bogus}");
    }
    // An upload belongs to its key.
    let up = c.create_multipart_upload().bucket("bkt").key("mine.bin").send().await.unwrap();
    let r = c.list_parts().bucket("bkt").key("theirs.bin").upload_id(up.upload_id().unwrap()).send().await;
    assert_eq!(refusal(r), (404, "NoSuchUpload".into()));
    let r = c.create_multipart_upload().bucket("nobucket").key("k").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    let r = c
        .upload_part_copy()
        .bucket("bkt")
        .key("mine.bin")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source("bkt/missing.bin")
        .send()
        .await;
    assert_eq!(refusal(r), (404, "NoSuchKey".into()));
    s.stop().await;
}

/// S3 answers `partNumber=N` of a multipart object with that part (and `x-amz-mp-parts-count`).
#[tokio::test]
async fn get_object_by_part_number_returns_that_part_of_a_multipart_object() {
    let Sdk { s, c, .. } = start().await;
    let up = c.create_multipart_upload().bucket("bkt").key("mp.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part1 = support::pseudo_random(5 * MIB, 21);
    let mut tags = Vec::new();
    for (n, data) in [(1, part1.clone()), (2, b"tail".to_vec())] {
        let out = c
            .upload_part()
            .bucket("bkt")
            .key("mp.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        tags.push(out.e_tag().unwrap().to_owned());
    }
    let parts = completed(&[(1, &tags[0]), (2, &tags[1])]);
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    let out = c.get_object().bucket("bkt").key("mp.bin").part_number(2).send().await.unwrap();
    assert_eq!(out.parts_count(), Some(2));
    assert_eq!(out.content_range(), Some(format!("bytes {}-{}/{}", 5 * MIB, 5 * MIB + 3, 5 * MIB + 4).as_str()));
    assert_eq!(body(out).await, b"tail");
    let out = c.get_object().bucket("bkt").key("mp.bin").part_number(1).send().await.unwrap();
    assert_eq!((out.parts_count(), out.content_length()), (Some(2), Some(5 * MIB as i64)));
    s.stop().await;
}

/// A part copied under copy-source conditions is refused when the source no longer meets
/// them (s3transfer's managed copy sends the source's ETag with every part, so a part of a
/// newer source is never spliced onto parts of the older one); and an upload does not
/// outlive its bucket.
#[tokio::test]
async fn part_copies_keep_their_source_conditions_and_uploads_end_with_their_bucket() {
    let Sdk { s, c, .. } = start().await;
    let old = vec![b'O'; 6 * MIB];
    let put = c.put_object().bucket("bkt").key("src").body(ByteStream::from(old)).send().await.unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    let up = c.create_multipart_upload().bucket("bkt").key("dst").send().await.unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let copy = |n: i32, range: &str| {
        c.upload_part_copy()
            .bucket("bkt")
            .key("dst")
            .upload_id(&id)
            .part_number(n)
            .copy_source("bkt/src")
            .copy_source_range(range)
    };
    let first = copy(1, "bytes=0-5242879").copy_source_if_match(&etag).send().await.unwrap();
    c.put_object().bucket("bkt").key("src").body(ByteStream::from(vec![b'N'; 6 * MIB])).send().await.unwrap();
    let rest = "bytes=5242880-6291455";
    let r = copy(2, rest).copy_source_if_match(&etag).send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()), "the source changed");
    let current = c.head_object().bucket("bkt").key("src").send().await.unwrap().e_tag().unwrap().to_owned();
    let r = copy(2, rest).copy_source_if_none_match(&current).send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()), "a matching If-None-Match");
    let long_ago = aws_sdk_s3::primitives::DateTime::from_secs(1_577_836_800);
    let r = copy(2, rest).copy_source_if_unmodified_since(long_ago).send().await;
    assert_eq!(refusal(r), (412, "PreconditionFailed".into()), "modified since");
    let r = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, first.copy_part_result().unwrap().e_tag().unwrap())]))
        .send()
        .await
        .unwrap();
    assert!(r.e_tag().is_some());
    let got = body(c.get_object().bucket("bkt").key("dst").send().await.unwrap()).await;
    assert!(got.len() == 5 * MIB && got.iter().all(|b| *b == b'O'), "only the part of the old source");

    c.create_bucket().bucket("gone").send().await.unwrap();
    let up = c.create_multipart_upload().bucket("gone").key("k").send().await.unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let part = |n: i32| {
        c.upload_part().bucket("gone").key("k").upload_id(&id).part_number(n).body(ByteStream::from_static(b"x"))
    };
    let tag = part(1).send().await.unwrap().e_tag().unwrap().to_owned();
    c.delete_bucket().bucket("gone").send().await.unwrap();
    assert_eq!(refusal(part(2).send().await), (404, "NoSuchBucket".into()));
    let r = c
        .complete_multipart_upload()
        .bucket("gone")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &tag)]))
        .send()
        .await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    assert_eq!(refusal(c.head_bucket().bucket("gone").send().await).0, 404, "the completion made no bucket");
    // A bucket made again later has none of the old one's uploads: see the core's
    // `an_upload_does_not_outlive_its_bucket` (it needs the upload to be older than the
    // clocks' slack). Its parts are freed by an abort.
    c.abort_multipart_upload().bucket("gone").key("k").upload_id(&id).send().await.unwrap();
    s.stop().await;
}
