use super::*;

fn ok_if(v: &str) -> IfHeader {
    parse_if(v.as_bytes()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn if_grammar() {
    let h = ok_if(r#"(<urn:uuid:1-2>) (Not <DAV:no-lock>)"#);
    assert_eq!(h.lists.len(), 2);
    assert_eq!(h.state_tokens(), ["urn:uuid:1-2", "DAV:no-lock"]);
    assert!(h.lists[1].conditions[0].not);
    let h = ok_if(r#"<http://h/dav/a> (["abc"] <opaquelocktoken:x>)  </dav/b?q> (Not["x"])"#);
    assert_eq!(h.lists[0].resource.as_deref(), Some("http://h/dav/a"));
    assert_eq!(h.lists[1].resource.as_deref(), Some("/dav/b?q"));
    assert_eq!(h.lists[0].conditions[0].item, IfItem::ETag { weak: false, tag: "abc".into() });
    let h = ok_if("\t(not [W/\"w\"])");
    assert_eq!(h.lists[0].conditions[0], Condition { not: true, item: IfItem::ETag { weak: true, tag: "w".into() } });
    ok_if(r#"([""])"#);
    for bad in [
        "",
        "   ",
        "(<urn:x",
        "(<urn:x>",
        "([\"]",
        "([\"])",
        "([abc])",
        "()",
        "(Not)",
        "(Not Not <a:b>)",
        "(<no-scheme>)",
        "(<urn:a b>)",
        "(word:token)",
        "<http://h/a>",
        "<http://h/a> <http://h/b> (<a:b>)",
        "(<a:b>) <http://h/a> (<a:b>)",
        "<http://h/a> (<a:b>) (<c:d>) x",
        "(<a:b>) )",
        "<//h/a> (<a:b>)",
        "(<a:\u{e9}>)",
    ] {
        assert!(parse_if(bad.as_bytes()).is_err(), "{bad:?} parsed");
    }
    assert!(parse_if(b"(<a:\xff>)").is_err());
    assert!(parse_if(format!("({})", "<a:b> ".repeat(MAX_IF_CONDITIONS + 1)).as_bytes()).is_err());
    let most = ok_if(&format!("({})", "<a:b> ".repeat(MAX_IF_CONDITIONS)));
    assert!(parse_if(most.for_dav_server().unwrap().as_bytes()).is_ok(), "what dav-server gets parses too");
}

#[test]
fn dav_server_gets_an_always_true_header_with_the_same_tokens() {
    let h = ok_if(r#"<http://h/dav/a> (Not <urn:a> ["x"]) (<DAV:no-lock>)"#);
    let v = h.for_dav_server().unwrap();
    assert_eq!(v, r#"(Not [""]) (<urn:a>) (<DAV:no-lock>)"#);
    assert_eq!(ok_if(&v).state_tokens(), h.state_tokens());
    assert_eq!(ok_if(r#"(["x"])"#).for_dav_server(), None);
}

#[test]
fn paths_and_destinations() {
    assert!(check_path("/dav/a/b").is_ok());
    assert!(check_path("/dav/a..b/.hidden/...").is_ok());
    for bad in ["/dav/..", "/dav/a/../b", "/dav/%2e%2E/x", "/dav/.%2e", "/dav/./a", "/dav/%2E"] {
        assert_eq!(check_path(bad).unwrap_err().status, 400, "{bad}");
    }
    assert_eq!(parse_destination(b"http://host:1/dav/a%20b?x", "/dav").unwrap(), "/dav/a%20b");
    assert_eq!(parse_destination(b"/dav/x/", "/dav").unwrap(), "/dav/x/");
    assert_eq!(parse_destination(b"/s/tok/x", "/s/tok").unwrap(), "/s/tok/x");
    assert_eq!(parse_destination(b"http://h/api/x", "/dav").unwrap_err().status, 403);
    assert_eq!(parse_destination(b"/davx/y", "/dav").unwrap_err().status, 403);
    // The root itself, however written: dav-server panics on it.
    for root in [&b"/dav"[..], b"/dav/", b"/dav//", b"/dav/%2F", b"http://h:1/dav", b"https://h/dav/?q"] {
        let r = parse_destination(root, "/dav").unwrap_err();
        assert_eq!((r.status.as_u16(), r.reason.contains("root")), (403, true), "{:?}", String::from_utf8_lossy(root));
    }
    assert_eq!(parse_destination(b"/s/tok/", "/s/tok").unwrap_err().status, 403);
    assert_eq!(parse_destination(b"/s/tok", "/s/tok").unwrap_err().status, 403);
    for bad in [
        &b"http://h/dav/../x"[..],
        b"/dav/%2e%2e/x",
        b"",
        b"dav/x",
        b"/dav/a b",
        b"/dav/\xff",
        b"/dav/%ff",
        b"/dav/x#f",
    ] {
        assert_eq!(parse_destination(bad, "/dav").unwrap_err().status, 400, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(ref_path("https://h"), Some("/"));
    assert_eq!(ref_path("urn:x"), None);
    assert_eq!(drive_path_below("/dav/a%20b", "/dav").as_deref(), Some("/a b"));
    assert_eq!(drive_path_below("/dav", "/dav").as_deref(), Some("/"));
    assert_eq!(drive_path_below("/davx", "/dav"), None);
    assert_eq!(drive_path_below("/dav/../x", "/dav"), None);
}

#[test]
fn small_headers() {
    assert_eq!(parse_depth(b" Infinity ").unwrap(), Depth::Infinity);
    assert!(parse_depth(b"2").is_err() && parse_depth(b"").is_err());
    assert!(!parse_overwrite(b"f").unwrap() && parse_overwrite(b"T").unwrap());
    assert!(parse_overwrite(b"false").is_err());
    assert_eq!(parse_timeout(b"Infinite, Second-4100000000").unwrap(), "Infinite,Second-4100000000");
    assert_eq!(parse_timeout(b"second-99999999999999999999").unwrap(), "Second-4294967295");
    for bad in [&b"Second-"[..], b"Second--1", b"Minute-3", b"", b" , ", b"Second-1x"] {
        assert!(parse_timeout(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse_lock_token(b"<urn:uuid:abc>").unwrap(), "urn:uuid:abc");
    for bad in [&b"urn:uuid:abc"[..], b"<urn:uuid:abc", b"<>", b"<a b:c>", b"<<a:b>>"] {
        assert!(parse_lock_token(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(parse_etag_list(br#""a", W/"b""#, "If-Match").is_ok());
    assert!(parse_etag_list(b"*", "If-Match").is_ok());
    for bad in [&b"\""[..], b"W/\"", b"abc", b"*, \"a\"", b"", b"\"a\"b\""] {
        assert!(parse_etag_list(bad, "If-Match").is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(parse_if_range(b"\"x\"").is_ok() && parse_if_range(b"Sun, 06 Nov 1994 08:49:37 GMT").is_ok());
    assert!(parse_if_range(b"\"").is_err() && parse_if_range(b"yesterday").is_err());
}

#[test]
fn ranges_are_merged_and_bounded() {
    use RangeSpec::*;
    assert_eq!(parse_range(b"bytes=0-9, 5-,-3"), Some(vec![From(0, Some(9)), From(5, None), Suffix(3)]));
    assert_eq!(parse_range(b"bytes=5-3"), None, "invalid: ignored");
    assert_eq!(parse_range(b"items=0-1"), None);
    assert_eq!(parse_range(b"bytes=x-1"), None);
    assert_eq!(parse_range(b"bytes=0-99999999999999999999999"), Some(vec![From(0, Some(u64::MAX))]));
    assert_eq!(plan_ranges(&[From(0, Some(u64::MAX))], 10), RangePlan::Ranges(vec![(0, 9)]));
    assert_eq!(plan_ranges(&[Suffix(100)], 10), RangePlan::Ranges(vec![(0, 9)]));
    assert_eq!(plan_ranges(&[From(10, None), Suffix(0)], 10), RangePlan::Unsatisfiable);
    assert_eq!(plan_ranges(&[Suffix(5)], 0), RangePlan::Unsatisfiable);
    assert_eq!(
        plan_ranges(&[From(20, Some(29)), From(0, Some(9)), From(10, Some(12)), From(25, Some(40))], 100),
        RangePlan::Ranges(vec![(0, 12), (20, 40)]),
        "sorted; adjacent and overlapping merged"
    );
    let overlapping: Vec<RangeSpec> = (0..1000).map(|i| From(i, Some(5_000_000))).collect();
    assert_eq!(plan_ranges(&overlapping, 5_000_000), RangePlan::Ranges(vec![(0, 4_999_999)]));
    let many: Vec<RangeSpec> = (0..17).map(|i| From(i * 10, Some(i * 10 + 1))).collect();
    assert_eq!(plan_ranges(&many, 1000), RangePlan::Whole);
    assert_eq!(plan_ranges(&many[..16], 1000).clone(), plan_ranges(&many[..16], 1000));
    assert_eq!(range_for_dav_server(&RangePlan::Ranges(vec![(0, 1), (5, 9)]), 10).unwrap(), "bytes=0-1,5-9");
}

#[test]
fn requests_are_refused_or_made_canonical() {
    let mut h = HeaderMap::new();
    h.insert("if", HeaderValue::from_static("(<urn:x"));
    assert_eq!(check_request(&Method::PUT, "/dav/p.txt", &mut h, "/dav").unwrap_err().status, 400);

    let mut h = HeaderMap::new();
    h.insert("if", HeaderValue::from_static("(<urn:uuid:a>)"));
    h.insert("depth", HeaderValue::from_static("Infinity"));
    h.insert("overwrite", HeaderValue::from_static("f"));
    h.insert("destination", HeaderValue::from_static("http://x/dav/b"));
    h.insert("range", HeaderValue::from_static("bytes=0-1"));
    let c = check_request(&Method::from_bytes(b"COPY").unwrap(), "/dav/a", &mut h, "/dav").unwrap();
    assert_eq!(c.if_header.unwrap().state_tokens(), ["urn:uuid:a"]);
    assert_eq!(h["if"], r#"(Not [""]) (<urn:uuid:a>)"#);
    assert_eq!(h["depth"], "infinity");
    assert_eq!(h["overwrite"], "F");
    assert_eq!(h["destination"], "/dav/b");
    assert!(!h.contains_key("range"), "a Range means nothing to COPY");

    let mut h = HeaderMap::new();
    h.append("depth", HeaderValue::from_static("0"));
    h.append("depth", HeaderValue::from_static("1"));
    assert!(check_request(&Method::GET, "/dav/a", &mut h, "/dav").is_err(), "two Depth headers");
    let mut h = HeaderMap::new();
    h.insert("content-range", HeaderValue::from_static("bytes 0-1/*"));
    assert_eq!(check_request(&Method::PUT, "/dav/a", &mut h, "/dav").unwrap_err().status, 400);
    assert_eq!(check_request(&Method::PATCH, "/dav/a", &mut HeaderMap::new(), "/dav").unwrap_err().status, 405);
    assert_eq!(check_request(&Method::GET, "/dav/../s/x", &mut HeaderMap::new(), "/dav").unwrap_err().status, 400);
}
