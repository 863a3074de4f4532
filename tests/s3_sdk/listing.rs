//! ListObjects (v1) and ListObjectsV2: prefixes, delimiters, pages and URL encoding.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;

use super::*;

const KEYS: [&str; 8] =
    ["a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/d.txt", "dir/sub/e.txt", "e f.txt", "other/x.txt", "z.txt"];

/// alice's `bkt` holding KEYS, each with its own name as content.
async fn with_keys() -> Sdk {
    let sdk = start().await;
    for k in KEYS {
        sdk.c.put_object().bucket("bkt").key(k).body(ByteStream::from(k.as_bytes().to_vec())).send().await.unwrap();
    }
    sdk
}

fn keys(objects: &[aws_sdk_s3::types::Object]) -> Vec<&str> {
    objects.iter().map(|o| o.key().unwrap()).collect()
}

fn prefixes(p: &[aws_sdk_s3::types::CommonPrefix]) -> Vec<&str> {
    p.iter().map(|p| p.prefix().unwrap()).collect()
}

#[tokio::test]
async fn list_v2_prefix_delimiter_and_common_prefixes() {
    let Sdk { s, c, .. } = with_keys().await;
    let all = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(keys(all.contents()), KEYS, "every key, in order, without folders");
    assert_eq!((all.key_count(), all.is_truncated(), all.name()), (Some(8), Some(false), Some("bkt")));
    let first = &all.contents()[0];
    assert_eq!((first.size(), first.e_tag()), (Some(5), Some("\"a5e54d1fd7bb69a228ef0dcd2431367e\"")));
    assert!(first.last_modified().is_some() && first.storage_class().is_some());

    let root = c.list_objects_v2().bucket("bkt").delimiter("/").send().await.unwrap();
    assert_eq!(keys(root.contents()), ["a.txt", "e f.txt", "z.txt"]);
    assert_eq!(prefixes(root.common_prefixes()), ["dir/", "other/"]);
    assert_eq!((root.key_count(), root.delimiter()), (Some(5), Some("/")));

    let dir = c.list_objects_v2().bucket("bkt").prefix("dir/").delimiter("/").send().await.unwrap();
    assert_eq!(keys(dir.contents()), ["dir/b.txt", "dir/c.txt"]);
    assert_eq!(prefixes(dir.common_prefixes()), ["dir/sub/"]);
    assert_eq!(dir.prefix(), Some("dir/"));

    // A prefix is a string prefix, not a folder.
    let partial = c.list_objects_v2().bucket("bkt").prefix("dir/s").send().await.unwrap();
    assert_eq!(keys(partial.contents()), ["dir/sub/d.txt", "dir/sub/e.txt"]);
    let partial = c.list_objects_v2().bucket("bkt").prefix("dir/s").delimiter("/").send().await.unwrap();
    assert!(partial.contents().is_empty());
    assert_eq!(prefixes(partial.common_prefixes()), ["dir/sub/"]);
    let none = c.list_objects_v2().bucket("bkt").prefix("nothing/").send().await.unwrap();
    assert_eq!((none.key_count(), none.contents().len()), (Some(0), 0));

    let after = c.list_objects_v2().bucket("bkt").start_after("dir/sub/d.txt").send().await.unwrap();
    assert_eq!(keys(after.contents()), &KEYS[4..]);
    assert_eq!(after.start_after(), Some("dir/sub/d.txt"));
    s.stop().await;
}

#[tokio::test]
async fn list_v2_pages_with_max_keys_and_continuation_tokens() {
    let Sdk { s, c, .. } = with_keys().await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out =
            c.list_objects_v2().bucket("bkt").max_keys(3).set_continuation_token(token.clone()).send().await.unwrap();
        assert_eq!(out.max_keys(), Some(3));
        assert_eq!(out.continuation_token(), token.as_deref());
        assert!(out.contents().len() <= 3);
        seen.extend(keys(out.contents()).into_iter().map(str::to_owned));
        pages += 1;
        assert!(pages <= 4, "three pages hold eight keys");
        if out.is_truncated() == Some(true) {
            token = Some(out.next_continuation_token().expect("a truncated page has a next token").to_owned());
        } else {
            assert_eq!(out.next_continuation_token(), None);
            break;
        }
    }
    assert_eq!((seen, pages), (KEYS.map(str::to_owned).to_vec(), 3));

    // Pages of common prefixes count them like keys, and go on after them.
    let first = c.list_objects_v2().bucket("bkt").delimiter("/").max_keys(2).send().await.unwrap();
    assert_eq!((keys(first.contents()), prefixes(first.common_prefixes())), (vec!["a.txt"], vec!["dir/"]));
    assert_eq!(first.is_truncated(), Some(true));
    let token = first.next_continuation_token().unwrap();
    let second =
        c.list_objects_v2().bucket("bkt").delimiter("/").max_keys(2).continuation_token(token).send().await.unwrap();
    assert_eq!((keys(second.contents()), prefixes(second.common_prefixes())), (vec!["e f.txt"], vec!["other/"]));

    // The SDK's paginator walks the same pages.
    let pages: Vec<_> = c.list_objects_v2().bucket("bkt").max_keys(5).into_paginator().send().collect::<Vec<_>>().await;
    let walked: Vec<String> = pages
        .into_iter()
        .flat_map(|p| keys(p.unwrap().contents()).into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(walked, KEYS);

    let r = c.list_objects_v2().bucket("bkt").continuation_token("not a token!").send().await;
    assert_eq!(refusal(r), (400, "InvalidArgument".into()));
    s.stop().await;
}

#[tokio::test]
async fn list_v1_markers_and_url_encoding() {
    let Sdk { s, c, .. } = with_keys().await;
    let out = c.list_objects().bucket("bkt").max_keys(3).send().await.unwrap();
    assert_eq!(keys(out.contents()), &KEYS[..3]);
    assert_eq!((out.is_truncated(), out.max_keys()), (Some(true), Some(3)));
    let next = out.next_marker().expect("a truncated page names where the next starts");
    assert_eq!(next, "dir/c.txt");
    let out = c.list_objects().bucket("bkt").marker(next).send().await.unwrap();
    assert_eq!(keys(out.contents()), &KEYS[3..]);
    assert_eq!((out.is_truncated(), out.marker()), (Some(false), Some("dir/c.txt")));

    let out = c.list_objects().bucket("bkt").prefix("dir/").delimiter("/").send().await.unwrap();
    assert_eq!(keys(out.contents()), ["dir/b.txt", "dir/c.txt"]);
    assert_eq!(prefixes(out.common_prefixes()), ["dir/sub/"]);

    // encoding-type=url: the SDK hands the encoded values through.
    let out = c.list_objects().bucket("bkt").prefix("e ").encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!((keys(out.contents()), out.prefix()), (vec!["e%20f.txt"], Some("e%20")));
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    let out = c.list_objects_v2().bucket("bkt").prefix("e ").encoding_type(EncodingType::Url).send().await.unwrap();
    assert_eq!((keys(out.contents()), out.prefix()), (vec!["e%20f.txt"], Some("e%20")));
    let out = c.list_objects_v2().bucket("bkt").prefix("e ").send().await.unwrap();
    assert_eq!(keys(out.contents()), ["e f.txt"], "not encoded unless asked");

    let r = c.list_objects().bucket("nobucket").send().await;
    assert_eq!(refusal(r), (404, "NoSuchBucket".into()));
    s.stop().await;
}
