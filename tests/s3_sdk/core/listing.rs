//! s3-tests' listing area: ListObjects (v1) and ListObjectsV2 with delimiters, prefixes,
//! markers, continuation tokens and max-keys, each case as s3-tests states it.

use aws_sdk_s3::types::EncodingType;

use super::*;

type Listed = (Vec<String>, Vec<String>);

async fn v1(c: &Client, b: &str, prefix: Option<&str>, delim: Option<&str>) -> Listed {
    let r = c.list_objects().bucket(b).set_prefix(prefix.map(Into::into)).set_delimiter(delim.map(Into::into));
    let r = r.send().await.unwrap();
    (keys(r.contents()), prefixes(r.common_prefixes()))
}

async fn v2(c: &Client, b: &str, prefix: Option<&str>, delim: Option<&str>) -> Listed {
    let r = c.list_objects_v2().bucket(b).set_prefix(prefix.map(Into::into)).set_delimiter(delim.map(Into::into));
    let r = r.send().await.unwrap();
    (keys(r.contents()), prefixes(r.common_prefixes()))
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

async fn put_folder(c: &Client, b: &str, key: &str) {
    c.put_object().bucket(b).key(key).body(aws_sdk_s3::primitives::ByteStream::from_static(b"")).send().await.unwrap();
}

/// Both listing versions answer the same keys and prefixes.
async fn both(c: &Client, b: &str, prefix: Option<&str>, delim: Option<&str>, want: (&[&str], &[&str])) {
    let want = (owned(want.0), owned(want.1));
    assert_eq!(v1(c, b, prefix, delim).await, want, "v1, prefix {prefix:?}, delimiter {delim:?}");
    assert_eq!(v2(c, b, prefix, delim).await, want, "v2, prefix {prefix:?}, delimiter {delim:?}");
}

/// test_bucket_list_empty, test_bucket_list_distinct, test_bucket_list_delimiter_basic,
/// test_bucket_listv2_delimiter_basic, test_bucket_list_delimiter_alt, ..._listv2_..._alt,
/// test_bucket_list_delimiter_percentage, ..._whitespace, ..._dot, ..._unreadable, ..._empty,
/// ..._none, ..._not_exist (v1 and v2 each), test_bucket_list_prefix_basic, ..._alt,
/// ..._empty, ..._none, ..._not_exist, ..._unreadable, test_bucket_list_prefix_delimiter_basic,
/// ..._alt, ..._prefix_not_exist, ..._delimiter_not_exist, ..._prefix_delimiter_not_exist
/// (v1 and v2 each), test_basic_key_count, test_bucket_list_special_prefix.
#[tokio::test]
async fn delimiters_and_prefixes_as_s3_tests_lists_them() {
    let Sdk { s, c, .. } = start().await;
    new_bucket(&c, "other").await;
    assert_eq!(v1(&c, "other", None, None).await, (vec![], vec![]), "test_bucket_list_empty");
    put_keys(&c, "bkt", &["asdf"]).await;
    assert_eq!(v2(&c, "other", None, None).await, (vec![], vec![]), "test_bucket_list_distinct");

    let sets: &[(&str, &[&str])] = &[
        ("basic", &["foo/bar", "foo/baz/xyzzy", "quux/thud", "asdf"]),
        ("alt", &["bar", "baz", "cab", "foo"]),
        ("pct", &["b%ar", "b%az", "c%ab", "foo"]),
        ("wsp", &["b ar", "b az", "c ab", "foo"]),
        ("dot", &["b.ar", "b.az", "c.ab", "foo"]),
        ("pfx", &["foo/bar", "foo/baz", "quux"]),
        ("pdl", &["foo/bar", "foo/baz/xyzzy", "quux/thud", "asdf"]),
        ("pda", &["bar", "bazar", "cab", "foo"]),
        ("bag", &["b/a/c", "b/a/g", "b/a/r", "g"]),
    ];
    for (b, ks) in sets {
        new_bucket(&c, b).await;
        put_keys(&c, b, ks).await;
    }
    // test_bucket_list_delimiter_basic puts `foo/bar` and `foo/bar/xyzzy`, a key and a folder of
    // one name, which this namespace refuses (see core.rs); `foo/baz/xyzzy` lists the same.
    both(&c, "basic", None, Some("/"), (&["asdf"], &["foo/", "quux/"])).await;
    both(&c, "alt", None, Some("a"), (&["foo"], &["ba", "ca"])).await;
    both(&c, "pct", None, Some("%"), (&["foo"], &["b%", "c%"])).await;
    both(&c, "wsp", None, Some(" "), (&["foo"], &["b ", "c "])).await;
    both(&c, "dot", None, Some("."), (&["foo"], &["b.", "c."])).await;
    let all: &[&str] = &["bar", "baz", "cab", "foo"];
    both(&c, "alt", None, Some("\n"), (all, &[])).await;
    both(&c, "alt", None, Some(""), (all, &[])).await;
    both(&c, "alt", None, None, (all, &[])).await;
    both(&c, "alt", None, Some("/"), (all, &[])).await;
    // An empty delimiter is not echoed; a given one is.
    let r = c.list_objects().bucket("alt").delimiter("").send().await.unwrap();
    assert_eq!(r.delimiter(), None);
    let r = c.list_objects_v2().bucket("alt").delimiter("\n").send().await.unwrap();
    assert_eq!(r.delimiter(), Some("\n"));
    let r = c.list_objects_v2().bucket("basic").delimiter("/").send().await.unwrap();
    assert_eq!(r.key_count(), Some(3), "keys and prefixes count");

    both(&c, "pfx", Some("foo/"), None, (&["foo/bar", "foo/baz"], &[])).await;
    both(&c, "alt", Some("ba"), None, (&["bar", "baz"], &[])).await;
    both(&c, "pfx", Some(""), None, (&["foo/bar", "foo/baz", "quux"], &[])).await;
    both(&c, "pfx", Some("d"), None, (&[], &[])).await;
    both(&c, "pfx", Some("\n"), None, (&[], &[])).await;
    let r = c.list_objects().bucket("pfx").prefix("\n").send().await.unwrap();
    assert_eq!(r.prefix(), Some("\n"));
    let r = c.list_objects_v2().bucket("pfx").prefix("").send().await.unwrap();
    assert_eq!(r.prefix(), Some(""));

    both(&c, "pdl", Some("foo/"), Some("/"), (&["foo/bar"], &["foo/baz/"])).await;
    both(&c, "pda", Some("ba"), Some("a"), (&["bar"], &["baza"])).await;
    both(&c, "bag", Some("/"), Some("d"), (&[], &[])).await;
    both(&c, "bag", Some("b"), Some("z"), (&["b/a/c", "b/a/g", "b/a/r"], &[])).await;
    both(&c, "bag", Some("y"), Some("z"), (&[], &[])).await;

    new_bucket(&c, "kcount").await;
    put_keys(&c, "kcount", &["0", "1", "2", "3", "4"]).await;
    assert_eq!(c.list_objects_v2().bucket("kcount").send().await.unwrap().key_count(), Some(5));
    new_bucket(&c, "special").await;
    put_keys(&c, "special", &["_bla/1", "_bla/2", "_bla/3", "_bla/4", "abcd"]).await;
    assert_eq!(v1(&c, "special", None, None).await.0.len(), 5);
    assert_eq!(v1(&c, "special", Some("_bla/"), None).await.0.len(), 4);
    s.stop().await;
}

/// One page of a v1 listing, as s3-tests' validate_bucket_list checks it.
async fn page_v1(c: &Client, b: &str, prefix: &str, marker: &str, max: i32) -> (bool, Option<String>, Listed) {
    let r = c.list_objects().bucket(b).prefix(prefix).delimiter("/").marker(marker).max_keys(max).send().await.unwrap();
    (r.is_truncated().unwrap(), r.next_marker().map(Into::into), (keys(r.contents()), prefixes(r.common_prefixes())))
}

async fn page_v2(c: &Client, b: &str, prefix: &str, token: Option<String>, max: i32) -> (bool, Option<String>, Listed) {
    let r = c.list_objects_v2().bucket(b).prefix(prefix).delimiter("/").max_keys(max);
    let r = if token.is_none() { r.start_after("") } else { r.set_continuation_token(token) };
    let r = r.send().await.unwrap();
    let next = r.next_continuation_token().map(Into::into);
    (r.is_truncated().unwrap(), next, (keys(r.contents()), prefixes(r.common_prefixes())))
}

/// test_bucket_list_delimiter_prefix, test_bucket_listv2_delimiter_prefix,
/// test_bucket_list_delimiter_prefix_underscore, test_bucket_listv2_delimiter_prefix_underscore:
/// pages of one or two entries, prefixes counted like keys, NextMarker the last entry.
#[tokio::test]
async fn delimiter_prefix_pages() {
    let Sdk { s, c, .. } = start().await;
    for (b, k) in [
        ("boo", ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla"]),
        ("und", ["_obj1_", "_under1/bar", "_under1/baz/xyzzy", "_under2/thud", "_under2/bla"]),
    ] {
        new_bucket(&c, b).await;
        put_keys(&c, b, &k).await;
    }
    for (b, first, p1, p2, sub, subkey, subdir) in [
        ("boo", "asdf", "boo/", "cquux/", "boo/", "boo/bar", "boo/baz/"),
        ("und", "_obj1_", "_under1/", "_under2/", "_under1/", "_under1/bar", "_under1/baz/"),
    ] {
        let l = |k: &[&str], p: &[&str]| (owned(k), owned(p));
        let s = |v: &str| Some(v.to_owned());
        let (t, m, got) = page_v1(&c, b, "", "", 1).await;
        assert_eq!((t, m.clone(), got), (true, s(first), l(&[first], &[])));
        let (t, m, got) = page_v1(&c, b, "", &m.unwrap(), 1).await;
        assert_eq!((t, m.clone(), got), (true, s(p1), l(&[], &[p1])));
        let (t, m, got) = page_v1(&c, b, "", &m.unwrap(), 1).await;
        assert_eq!((t, m, got), (false, None, l(&[], &[p2])));
        let (t, m, got) = page_v1(&c, b, "", "", 2).await;
        assert_eq!((t, m.clone(), got), (true, s(p1), l(&[first], &[p1])));
        let (t, m, got) = page_v1(&c, b, "", &m.unwrap(), 2).await;
        assert_eq!((t, m, got), (false, None, l(&[], &[p2])));
        let (t, m, got) = page_v1(&c, b, sub, "", 1).await;
        assert_eq!((t, m.clone(), got), (true, s(subkey), l(&[subkey], &[])));
        let (t, m, got) = page_v1(&c, b, sub, &m.unwrap(), 1).await;
        assert_eq!((t, m, got), (false, None, l(&[], &[subdir])));
        let (t, m, got) = page_v1(&c, b, sub, "", 2).await;
        assert_eq!((t, m, got), (false, None, l(&[subkey], &[subdir])));

        let (t, tok, got) = page_v2(&c, b, "", None, 1).await;
        assert_eq!((t, got), (true, l(&[first], &[])));
        let (t, tok, got) = page_v2(&c, b, "", tok, 1).await;
        assert_eq!((t, got), (true, l(&[], &[p1])));
        let (t, tok, got) = page_v2(&c, b, "", tok, 1).await;
        assert_eq!((t, tok, got), (false, None, l(&[], &[p2])));
        let (t, tok, got) = page_v2(&c, b, "", None, 2).await;
        assert_eq!((t, got), (true, l(&[first], &[p1])));
        let (t, tok, got) = page_v2(&c, b, "", tok, 2).await;
        assert_eq!((t, tok, got), (false, None, l(&[], &[p2])));
        let (t, tok, got) = page_v2(&c, b, sub, None, 1).await;
        assert_eq!((t, got), (true, l(&[subkey], &[])));
        let (t, tok, got) = page_v2(&c, b, sub, tok, 1).await;
        assert_eq!((t, tok, got), (false, None, l(&[], &[subdir])));
        let (t, tok, got) = page_v2(&c, b, sub, None, 2).await;
        assert_eq!((t, tok, got), (false, None, l(&[subkey], &[subdir])));
    }
    s.stop().await;
}

/// test_bucket_list_many, test_bucket_listv2_many, test_bucket_list_maxkeys_one, ..._zero,
/// ..._none, test_bucket_listv2_maxkeys_one, ..._zero, ..._none, test_bucket_list_marker_none,
/// ..._empty, ..._unreadable, ..._not_in_list, ..._after_list,
/// test_bucket_listv2_continuationtoken_empty, ..._continuationtoken,
/// ..._both_continuationtoken_startafter, ..._startafter_unreadable, ..._not_in_list,
/// ..._after_list, test_bucket_list_maxkeys_invalid.
#[tokio::test]
async fn max_keys_markers_and_tokens() {
    let Sdk { s, c, key, secret } = start().await;
    new_bucket(&c, "many").await;
    put_keys(&c, "many", &["foo", "bar", "baz"]).await;
    let r = c.list_objects().bucket("many").max_keys(2).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&["bar", "baz"]), Some(true)));
    let r = c.list_objects().bucket("many").marker("baz").max_keys(2).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&["foo"]), Some(false)));
    let r = c.list_objects_v2().bucket("many").max_keys(2).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&["bar", "baz"]), Some(true)));
    let r = c.list_objects_v2().bucket("many").start_after("baz").max_keys(2).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&["foo"]), Some(false)));

    let names = ["bar", "baz", "foo", "quxx"];
    put_keys(&c, "bkt", &names).await;
    c.delete_object().bucket("bkt").key("asdf").send().await.ok();
    let r = c.list_objects().bucket("bkt").max_keys(1).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&names[..1]), Some(true)));
    let r = c.list_objects().bucket("bkt").marker(names[0]).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&names[1..]), Some(false)));
    let r = c.list_objects_v2().bucket("bkt").max_keys(1).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&names[..1]), Some(true)));
    let r = c.list_objects_v2().bucket("bkt").start_after(names[0]).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (owned(&names[1..]), Some(false)));
    let r = c.list_objects().bucket("bkt").max_keys(0).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (vec![], Some(false)));
    let r = c.list_objects_v2().bucket("bkt").max_keys(0).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (vec![], Some(false)));
    let r = c.list_objects().bucket("bkt").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.max_keys(), r.marker()), (owned(&names), Some(1000), Some("")));
    let r = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.max_keys()), (owned(&names), Some(1000)));
    let r = c.list_objects().bucket("bkt").marker("").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.marker(), r.is_truncated()), (owned(&names), Some(""), Some(false)));
    let r = c.list_objects().bucket("bkt").marker("\n").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.marker(), r.is_truncated()), (owned(&names), Some("\n"), Some(false)));
    let r = c.list_objects().bucket("bkt").marker("blah").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.marker()), (owned(&["foo", "quxx"]), Some("blah")));
    let r = c.list_objects().bucket("bkt").marker("zzz").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (vec![], Some(false)));

    let r = c.list_objects_v2().bucket("bkt").continuation_token("").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.continuation_token(), r.is_truncated()), (owned(&names), Some(""), Some(false)));
    let first = c.list_objects_v2().bucket("bkt").max_keys(1).send().await.unwrap();
    let token = first.next_continuation_token().unwrap();
    let r = c.list_objects_v2().bucket("bkt").continuation_token(token).send().await.unwrap();
    assert_eq!((keys(r.contents()), r.continuation_token()), (owned(&names[1..]), Some(token)));
    let first = c.list_objects_v2().bucket("bkt").start_after("bar").max_keys(1).send().await.unwrap();
    let token = first.next_continuation_token().unwrap();
    let r = c.list_objects_v2().bucket("bkt").start_after("bar").continuation_token(token).send().await.unwrap();
    assert_eq!(
        (keys(r.contents()), r.start_after(), r.is_truncated()),
        (owned(&["foo", "quxx"]), Some("bar"), Some(false))
    );
    let r = c.list_objects_v2().bucket("bkt").start_after("\n").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.start_after()), (owned(&names), Some("\n")));
    let r = c.list_objects_v2().bucket("bkt").start_after("blah").send().await.unwrap();
    assert_eq!(keys(r.contents()), owned(&["foo", "quxx"]));
    let r = c.list_objects_v2().bucket("bkt").start_after("zzz").send().await.unwrap();
    assert_eq!((keys(r.contents()), r.is_truncated()), (vec![], Some(false)));

    // max-keys=blah: a raw request, as the SDK validates its own.
    let signer = Signer { base: s.base.clone(), key, secret, client: support::tls_client() };
    let r = signer.request(Method::GET, "/bkt", &[("max-keys", "blah")], &[], &sha256_hex(b"")).send().await.unwrap();
    assert_eq!(xml_code(r).await, (400, "InvalidArgument".into()));
    s.stop().await;
}

/// test_bucket_listv2_encoding_basic, test_bucket_list_encoding_basic,
/// test_bucket_list_delimiter_not_skip_special,
/// test_bucket_list_delimiter_prefix_ends_with_delimiter and its v2 twin,
/// test_bucket_listv2_fetchowner_notempty, ..._defaultempty, ..._empty,
/// test_bucket_list_objects_anonymous_fail, test_bucket_listv2_objects_anonymous_fail,
/// test_bucket_notexist, test_bucketv2_notexist.
#[tokio::test]
async fn encoding_owners_folders_and_refusals() {
    let Sdk { s, c, .. } = start().await;
    put_keys(&c, "bkt", &["foo+1/bar", "foo/bar/xyzzy", "quux ab/thud", "asdf+b"]).await;
    for v2 in [false, true] {
        let (k, p, d) = if v2 {
            let r =
                c.list_objects_v2().bucket("bkt").delimiter("/").encoding_type(EncodingType::Url).send().await.unwrap();
            (keys(r.contents()), prefixes(r.common_prefixes()), r.delimiter().map(str::to_owned))
        } else {
            let r =
                c.list_objects().bucket("bkt").delimiter("/").encoding_type(EncodingType::Url).send().await.unwrap();
            (keys(r.contents()), prefixes(r.common_prefixes()), r.delimiter().map(str::to_owned))
        };
        assert_eq!((k, p, d.as_deref()), (owned(&["asdf%2Bb"]), owned(&["foo%2B1/", "foo/", "quux%20ab/"]), Some("/")));
    }

    // _create_objects stores each key's name as its content; a key ending in `/` names a
    // folder here and takes none (see core.rs), so `0/` and `asdf/` are made empty.
    new_bucket(&c, "skip").await;
    put_folder(&c, "skip", "0/").await;
    let mut ks: Vec<String> = vec![];
    ks.extend((1000..1999).map(|i| format!("0/{i}")));
    let tail = ["1999", "1999#", "1999+", "2000"];
    ks.extend(tail.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = ks.iter().map(String::as_str).collect();
    put_keys(&c, "skip", &refs).await;
    assert_eq!(v1(&c, "skip", None, Some("/")).await, (owned(&tail), owned(&["0/"])));

    new_bucket(&c, "ends").await;
    put_folder(&c, "ends", "asdf/").await;
    assert_eq!(v1(&c, "ends", Some("asdf/"), Some("/")).await, (owned(&["asdf/"]), vec![]));
    assert_eq!(v2(&c, "ends", Some("asdf/"), Some("/")).await, (owned(&["asdf/"]), vec![]));

    let r = c.list_objects_v2().bucket("bkt").fetch_owner(true).send().await.unwrap();
    let owner = r.contents()[0].owner().expect("fetch-owner names the owner");
    assert_eq!(owner.display_name(), Some("alice"));
    // The id ListBuckets and the ACLs give, so that one taken from a listing names the owner
    // in a grant (it was the internal user number).
    let listed = c.list_buckets().send().await.unwrap();
    assert_eq!(owner.id(), listed.owner().and_then(|o| o.id()));
    assert_eq!(owner.id().map(str::len), Some(64));
    let r = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert!(r.contents()[0].owner().is_none());
    let r = c.list_objects_v2().bucket("bkt").fetch_owner(false).send().await.unwrap();
    assert!(r.contents()[0].owner().is_none());

    let http = support::tls_client();
    for q in ["", "?list-type=2"] {
        let r = http.get(s.url(&format!("/bkt{q}"))).send().await.unwrap();
        assert_eq!(xml_code(r).await, (403, "AccessDenied".into()), "anonymous listing {q}");
    }
    assert_eq!(refusal(c.list_objects().bucket("nosuch").send().await), (404, "NoSuchBucket".into()));
    assert_eq!(refusal(c.list_objects_v2().bucket("nosuch").send().await), (404, "NoSuchBucket".into()));
    s.stop().await;
}
