//! See tests/security.rs. WebDAV and what it shares with REST and S3: hostile headers (and a
//! property test of every header parser), range amplification, stale lock tokens, downloads
//! refused before the body, dot segments, control characters in names, and the role's size
//! limit over S3 multipart.

use std::time::{Duration, Instant};

use davit_storage::Role;
use davit_storage::policy::{Policy, Rule};
use davit_webdav::headers::{self, IfItem, RangePlan};
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::s3_sign::Signer;
use crate::support::{self, Options, PASSWORD, TestServer};

fn m(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

fn dav(c: &Client, s: &TestServer, user: &str, method: &str, path: &str) -> reqwest::RequestBuilder {
    c.request(m(method), s.url(&format!("/dav{path}"))).basic_auth(user, Some(PASSWORD))
}

fn lock_body() -> &'static str {
    r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"#
}

/// An upload link (a drop box) on a new folder of `user`'s: its token.
async fn upload_link(c: &Client, s: &TestServer, user: &str, folder: &str) -> String {
    assert_eq!(dav(c, s, user, "MKCOL", folder).send().await.unwrap().status(), 201);
    let r = c
        .post(s.url("/api/v1/links"))
        .basic_auth(user, Some(PASSWORD))
        .json(&json!({ "path": folder, "expires_in": 3600, "permission": "upload" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// The status line of a request written by hand (for paths a URL library would normalise).
async fn raw_status(s: &TestServer, head: &str) -> u16 {
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no answer: {text:?}"))
}

fn basic(user: &str) -> String {
    support::basic(user, PASSWORD)
}

// ---------------------------------------------------------------------------------------
// #5: malformed headers, and the property test of the header parsers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_if_header_is_400_not_a_panic_for_users_and_links() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    // The issue's request: an unbalanced '<' made dav-server's parser index past the end.
    let r = dav(&c, &s, "bob", "PUT", "/p.txt").header("If", "(<urn:x").body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().starts_with("If:"), "the reason names the header");
    // A lone quote as an entity tag made it slice backwards.
    for (name, value) in [("If", "([\"])"), ("If-Match", "\""), ("If-None-Match", "W/\""), ("If-Range", "\"")] {
        let r = dav(&c, &s, "bob", "PUT", "/p.txt").header(name, value).body("x").send().await.unwrap();
        assert_eq!(r.status(), 400, "{name}: {value}");
    }
    // An anonymous holder of an upload link reaches the same parser.
    let token = upload_link(&c, &s, "alice", "/drop").await;
    for value in ["(<urn:x", "(<urn:x>", "[\"", "(Not)"] {
        let r = c.put(s.url(&format!("/s/{token}/p.txt"))).header("If", value).body("x").send().await.unwrap();
        assert_eq!(r.status(), 400, "{value}");
    }
    // Still serving, and a valid header still works.
    let r = dav(&c, &s, "bob", "PUT", "/p.txt").header("If", "(Not <DAV:no-lock>)").body("x").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.put(s.url(&format!("/s/{token}/q.txt"))).body("x").send().await.unwrap();
    assert_eq!(r.status(), 201);
    s.stop().await;
}

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// conformance/security/headers.txt: (name, value) with `\xHH` and `\\` decoded.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/security/headers.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap();
        let value = value.strip_prefix(' ').unwrap_or(value).as_bytes();
        let mut bytes = Vec::with_capacity(value.len());
        let mut i = 0;
        while i < value.len() {
            if value[i] == b'\\' && value.get(i + 1) == Some(&b'\\') {
                bytes.push(b'\\');
                i += 2;
            } else if value[i] == b'\\'
                && value.get(i + 1) == Some(&b'x')
                && let Some(b) =
                    value.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                bytes.push(b);
                i += 4;
            } else {
                bytes.push(value[i]);
                i += 1;
            }
        }
        out.push((name.trim().to_owned(), bytes));
    }
    out
}

/// Bytes that matter to the grammars, and some that must never confuse them.
const INTERESTING: &[u8] = b"<>()[]\"'\\/:,;=*-. \tNnotW0123456789%#?@xX\x00\x01\x7f\x80\xc3\xff";

/// One to four random edits of `seed`: insertions, deletions, duplications, truncations,
/// byte flips, splices with another value, and repetition up to 64 KiB.
fn mutate(rng: &mut Rng, seed: &[u8], others: &[&[u8]]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 => {
                let b = INTERESTING[rng.below(INTERESTING.len())];
                v.insert(rng.below(len + 1), b);
            }
            1 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(8)).min(len);
                v.drain(a..b);
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(32)).min(len);
                let piece = v[a..b].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, piece);
            }
            3 => v.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            5 => {
                let other = others[rng.below(others.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 => {
                let times = 2 + rng.below(200);
                let mut big = Vec::new();
                while big.len() < 64 * 1024 && big.len() < v.len() * times {
                    big.extend_from_slice(&v);
                    if v.is_empty() {
                        break;
                    }
                }
                v = big;
            }
            _ => {
                let b = INTERESTING[rng.below(INTERESTING.len())];
                if len > 0 {
                    let i = rng.below(len);
                    v[i] = b;
                } else {
                    v.push(b);
                }
            }
        }
    }
    v
}

/// The headers the WebDAV front end parses itself, and their invariants, over thousands of
/// mutated values each: no parser may panic, whatever the bytes.
#[test]
fn header_parsers_survive_thousands_of_mutated_values() {
    let corpus = corpus();
    let names = [
        "If",
        "If-Match",
        "If-None-Match",
        "If-Range",
        "Depth",
        "Overwrite",
        "Timeout",
        "Lock-Token",
        "Destination",
        "Range",
    ];
    let started = Instant::now();
    let mut rng = Rng(0x5eed_da71);
    let mut accepted = 0usize;
    let mut refused = 0usize;
    for name in names {
        let seeds: Vec<&[u8]> =
            corpus.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice()).collect();
        assert!(seeds.len() >= 4, "the corpus has seeds for {name}");
        let all: Vec<&[u8]> = corpus.iter().map(|(_, v)| v.as_slice()).collect();
        for i in 0..3000 {
            let value = if i < seeds.len() {
                seeds[i].to_vec()
            } else {
                let seed = seeds[rng.below(seeds.len())];
                mutate(&mut rng, seed, &all)
            };
            match headers::check_value(name, &value, "/dav") {
                Ok(()) => accepted += 1,
                Err(r) => {
                    assert!(matches!(r.status.as_u16(), 400 | 403), "{name}: {r:?}");
                    refused += 1;
                }
            }
            invariants(name, &value);
            // The whole request check, with the value as a real header would carry it.
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                for method in [Method::GET, Method::PUT, m("COPY"), m("LOCK")] {
                    let mut h = HeaderMap::new();
                    h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.clone());
                    if headers::check_request(&method, "/dav/a.txt", &mut h, "/dav").is_ok() {
                        // What is handed on is canonical: checking it again changes nothing.
                        let mut again = h.clone();
                        headers::check_request(&method, "/dav/a.txt", &mut again, "/dav").unwrap();
                        assert_eq!(again, h, "{name}: {:?}", String::from_utf8_lossy(&value));
                    }
                }
            }
        }
    }
    assert!(
        accepted > 1000 && refused > 1000,
        "the mutations reach both sides: {accepted} accepted, {refused} refused"
    );
    assert!(started.elapsed() < Duration::from_secs(120), "bounded: {:?}", started.elapsed());
}

fn invariants(name: &str, value: &[u8]) {
    match name {
        "If" => {
            if let Ok(h) = headers::parse_if(value) {
                let looked_up = h
                    .lists
                    .iter()
                    .flat_map(|l| &l.conditions)
                    .filter(|c| !matches!(&c.item, IfItem::ETag { tag, .. } if tag.is_empty()))
                    .count();
                assert!(looked_up <= headers::MAX_IF_CONDITIONS);
                // dav-server gets the same tokens behind a list that is always true.
                if let Some(v) = h.for_dav_server() {
                    let again = headers::parse_if(v.as_bytes()).unwrap();
                    assert_eq!(again.state_tokens(), h.state_tokens());
                    assert!(matches!(&again.lists[0].conditions[0].item, IfItem::ETag { tag, .. } if tag.is_empty()));
                }
            }
        }
        "Destination" => {
            if let Ok(p) = headers::parse_destination(value, "/dav") {
                assert!(p == "/dav" || p.starts_with("/dav/"), "{p}");
                assert!(headers::drive_path_below(&p, "/dav").is_some(), "{p}");
            }
        }
        "Range" => {
            if let Some(specs) = headers::parse_range(value) {
                for size in [0, 1, 10, 5 << 20] {
                    match headers::plan_ranges(&specs, size) {
                        RangePlan::Ranges(r) => {
                            assert!(!r.is_empty() && r.len() <= headers::MAX_RANGES);
                            assert!(r.iter().all(|&(a, b)| a <= b && b < size), "inside the file: {r:?}");
                            assert!(r.windows(2).all(|w| w[0].1 + 1 < w[1].0), "sorted, disjoint: {r:?}");
                            let sent: u64 = r.iter().map(|(a, b)| b - a + 1).sum();
                            assert!(sent <= size, "never more than the file");
                        }
                        RangePlan::Whole | RangePlan::Unsatisfiable => {}
                    }
                }
            }
        }
        _ => {}
    }
}

/// A few hundred mutated headers against a real server, on every kind of WebDAV request and
/// through an upload link: always an answer below 500, never a dropped connection.
#[tokio::test]
async fn mutated_headers_over_http_are_answered_below_500() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "alice", "MKCOL", "/fz").send().await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "alice", "PUT", "/fz/p.txt").body("content").send().await.unwrap().status(), 201);
    let token = upload_link(&c, &s, "alice", "/fzdrop").await;
    let corpus = corpus();
    let all: Vec<&[u8]> = corpus.iter().map(|(_, v)| v.as_slice()).collect();
    let mut rng = Rng(0xfeed_beef);
    let started = Instant::now();
    let mut sent = 0;
    while sent < 400 {
        let (name, seed) = &corpus[rng.below(corpus.len())];
        let mut value = if rng.below(3) == 0 { seed.clone() } else { mutate(&mut rng, seed, &all) };
        value.truncate(16 * 1024);
        let Ok(value) = HeaderValue::from_bytes(&value) else { continue };
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        let (method, path, mut base, body): (&str, String, Vec<(&str, &str)>, &str) = match rng.below(9) {
            0 => ("PUT", "/dav/fz/p.txt".into(), vec![], "replaced"),
            1 => ("PROPFIND", "/dav/fz/".into(), vec![("depth", "1")], ""),
            2 => ("LOCK", "/dav/fz/l.txt".into(), vec![("timeout", "Second-60")], lock_body()),
            3 => ("COPY", "/dav/fz/p.txt".into(), vec![("destination", "/dav/fz/c.txt")], ""),
            4 => ("MOVE", "/dav/fz/c.txt".into(), vec![("destination", "/dav/fz/m.txt")], ""),
            5 => ("GET", "/dav/fz/p.txt".into(), vec![], ""),
            6 => ("DELETE", "/dav/fz/m.txt".into(), vec![], ""),
            7 => ("UNLOCK", "/dav/fz/l.txt".into(), vec![("lock-token", "<urn:uuid:x>")], ""),
            _ => ("PUT", format!("/s/{token}/f.txt"), vec![], "dropped"),
        };
        base.retain(|(n, _)| !name.as_str().eq_ignore_ascii_case(n));
        let mut h = HeaderMap::new();
        for (n, v) in base {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        h.insert(name.clone(), value.clone());
        let mut req = c.request(m(method), s.url(&path)).headers(h).body(body);
        if !path.starts_with("/s/") {
            req = req.basic_auth("alice", Some(PASSWORD));
        }
        let shown = format!("{method} {path} with {name}: {:?}", String::from_utf8_lossy(value.as_bytes()));
        let r = req.send().await.unwrap_or_else(|e| panic!("no answer to {shown}: {e}"));
        let status = r.status();
        r.bytes().await.unwrap_or_else(|e| panic!("the answer to {shown} was cut: {e}"));
        assert!(status.as_u16() < 500, "{status} for {shown}");
        sent += 1;
    }
    assert!(started.elapsed() < Duration::from_secs(120), "bounded: {:?}", started.elapsed());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// #7: range amplification
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn overlapping_ranges_cannot_amplify_a_download() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let size = 5 * 1024 * 1024 + 123;
    let data = support::pseudo_random(size, 71);
    assert_eq!(dav(&c, &s, "alice", "PUT", "/big.bin").body(data.clone()).send().await.unwrap().status(), 201);

    // 1,000 overlapping ranges used to send the file 1,000 times: now they are one.
    let ranges: Vec<String> = (0..1000).map(|i| format!("{i}-{}", size - 1)).collect();
    let r = dav(&c, &s, "alice", "GET", "/big.bin")
        .header("Range", format!("bytes={}", ranges.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-{}/{size}", size - 1).as_str());
    let limit = size + 4096;
    let mut received = 0usize;
    let mut stream = r.bytes_stream();
    while let Some(piece) = stream.next().await {
        received += piece.unwrap().len();
        assert!(received <= limit, "more than the file and its headers: {received} bytes and counting");
    }
    assert_eq!(received, size);

    // Overlapping and adjacent ranges merge; what is left is sent once, in order.
    let r = dav(&c, &s, "alice", "GET", "/big.bin").header("Range", "bytes=10-19,0-9,5-12").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-19/{size}").as_str());
    assert_eq!(r.bytes().await.unwrap(), &data[..20]);
    let r = dav(&c, &s, "alice", "GET", "/big.bin").header("Range", "bytes=100-109,0-9").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("multipart/byteranges"));
    let body = r.bytes().await.unwrap();
    assert!(body.len() < 20 + 400, "two parts of ten bytes: {} bytes", body.len());
    // More than 16 disjoint ranges: the whole file, once.
    let many: Vec<String> = (0..17).map(|i| format!("{}-{}", i * 100, i * 100 + 1)).collect();
    let r = dav(&c, &s, "alice", "GET", "/big.bin")
        .header("Range", format!("bytes={}", many.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), size);
    // Ranges that end past the file are cut to it; ones that start past it are 416.
    let r =
        dav(&c, &s, "alice", "GET", "/big.bin").header("Range", "bytes=0-18446744073709551615").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().len(), size);
    let r = dav(&c, &s, "alice", "GET", "/big.bin").header("Range", format!("bytes={size}-")).send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], format!("bytes */{size}").as_str());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// #8: stale and unknown lock tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn stale_and_unknown_lock_tokens_fail_the_if_header() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "alice", "PUT", "/f.txt").body("v1").send().await.unwrap().status(), 201);
    let lock = |path: &'static str| {
        let (c, s) = (&c, &s);
        async move {
            let r = dav(c, s, "alice", "LOCK", path)
                .header("Timeout", "Second-600")
                .body(lock_body())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.headers()["lock-token"].to_str().unwrap().trim_matches(['<', '>']).to_owned()
        }
    };
    let put_if = |value: String| {
        let (c, s) = (&c, &s);
        async move { dav(c, s, "alice", "PUT", "/f.txt").header("If", value).body("v2").send().await.unwrap().status() }
    };
    let old = lock("/f.txt").await;
    let r = dav(&c, &s, "alice", "UNLOCK", "/f.txt").header("Lock-Token", format!("<{old}>")).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // After UNLOCK its token names no lock: the condition is false (RFC 4918 §10.4).
    assert_eq!(put_if(format!("(<{old}>)")).await, StatusCode::PRECONDITION_FAILED);
    for unknown in
        ["opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4", "urn:uuid:181d4fae-7d8c-41d0-a765-00a0c91e6bf2"]
    {
        assert_eq!(put_if(format!("(<{unknown}>)")).await, StatusCode::PRECONDITION_FAILED, "{unknown}");
    }
    // A lock on the file: its token is true, an old one stays false.
    let current = lock("/f.txt").await;
    assert_eq!(put_if(format!("(<{old}>)")).await, StatusCode::PRECONDITION_FAILED);
    assert_eq!(put_if(format!("(<{current}>)")).await, StatusCode::NO_CONTENT);
    // Lists are ORed, conditions ANDed, Not inverts; tags name their resource.
    assert_eq!(put_if(format!("(<{old}>) (<{current}>)")).await, StatusCode::NO_CONTENT);
    let alice = s.principal("alice").await;
    let etag = s.storage.stat(&alice, "/f.txt").await.unwrap().etag;
    assert_eq!(put_if(format!("(<{current}> [\"{etag}\"])")).await, StatusCode::NO_CONTENT);
    assert_eq!(put_if(format!("(<{current}> [\"not-{etag}\"])")).await, StatusCode::PRECONDITION_FAILED);
    assert_eq!(put_if(format!("(<{current}> [W/\"{etag}\"])")).await, StatusCode::PRECONDITION_FAILED, "strong");
    assert_eq!(put_if(format!("(<{current}> Not <{old}>)")).await, StatusCode::NO_CONTENT);
    assert_eq!(put_if(format!("(Not <{current}>)")).await, StatusCode::PRECONDITION_FAILED);
    let tagged = format!("<{}/dav/f.txt> (<{current}>)", s.base);
    assert_eq!(put_if(tagged).await, StatusCode::NO_CONTENT);
    let elsewhere = format!("<{}/dav/other.txt> (<{current}>)", s.base);
    assert_eq!(put_if(elsewhere).await, StatusCode::PRECONDITION_FAILED, "the lock is not on that resource");
    // The lock still binds: no token, no write.
    assert_eq!(dav(&c, &s, "alice", "PUT", "/f.txt").body("x").send().await.unwrap().status(), 423);
    // A deep lock on a folder covers a new file below it; its token does not apply elsewhere.
    assert_eq!(dav(&c, &s, "alice", "MKCOL", "/d").send().await.unwrap().status(), 201);
    let folder = lock("/d").await;
    let r =
        dav(&c, &s, "alice", "PUT", "/d/new.txt").header("If", format!("(<{folder}>)")).body("n").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(put_if(format!("(<{folder}>)")).await, StatusCode::PRECONDITION_FAILED);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// #11: a refused download is refused before the body
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_uploaders_webdav_download_is_403_before_any_body() {
    let s = support::start(Options { users: vec![("ops", Role::Uploader)], ..Default::default() }).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "ops", "PUT", "/in.bin").body(vec![7u8; 300_000]).send().await.unwrap().status(), 201);
    for method in ["GET", "HEAD"] {
        let r = dav(&c, &s, "ops", method, "/in.bin").send().await.unwrap();
        assert_eq!(r.status(), 403, "{method}");
        // The answer is whole: a reason, not a cut stream.
        let body = r.text().await.unwrap();
        if method == "GET" {
            assert!(body.contains("uploader"), "{body}");
        }
    }
    let r = dav(&c, &s, "ops", "GET", "/in.bin").header("Range", "bytes=0-9").send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Listing what it uploaded still works.
    let r = dav(&c, &s, "ops", "PROPFIND", "/").header("Depth", "1").send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert!(r.text().await.unwrap().contains("in.bin"));
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Smaller: dot segments, If-Unmodified-Since over REST
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn dot_segments_in_webdav_paths_are_400() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "alice", "PUT", "/a.txt").body("a").send().await.unwrap().status(), 201);
    let auth = basic("alice");
    for path in ["/dav/../api/v1/me", "/dav/..", "/dav/x/../a.txt", "/dav/%2e%2e/x", "/dav/.%2E/x"] {
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n", s.addr);
        assert_eq!(raw_status(&s, &head).await, 400, "{path}");
    }
    // A Destination with them too; one outside the drive is refused as such.
    let r = dav(&c, &s, "alice", "COPY", "/a.txt").header("Destination", "/dav/x/../../b.txt").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = dav(&c, &s, "alice", "COPY", "/a.txt")
        .header("Destination", format!("{}/s/abc/b.txt", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = dav(&c, &s, "alice", "COPY", "/a.txt")
        .header("Destination", format!("{}/dav/b.txt", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    s.stop().await;
}

#[tokio::test]
async fn rest_put_and_delete_honour_if_unmodified_since() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let put = |since: Option<&str>| {
        let mut r = c.put(s.url("/api/v1/files/doc.txt")).basic_auth("alice", Some(PASSWORD)).body("next");
        if let Some(d) = since {
            r = r.header("If-Unmodified-Since", d);
        }
        r.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 201);
    let r = c.get(s.url("/api/v1/files/doc.txt")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_owned();
    // Changed after that date: 412, and nothing written.
    let r = put(Some("Sun, 06 Nov 1994 08:49:37 GMT")).await.unwrap();
    assert_eq!(r.status(), 412);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "precondition_failed", "{v}");
    // Not changed since: the write goes ahead (the date has whole seconds).
    assert_eq!(put(Some(&modified)).await.unwrap().status(), 200);
    assert_eq!(put(Some("Fri, 31 Dec 9999 23:59:59 GMT")).await.unwrap().status(), 200);
    // Not a date: ignored, as RFC 9110 says.
    assert_eq!(put(Some("yesterday")).await.unwrap().status(), 200);
    let r = c
        .delete(s.url("/api/v1/files/doc.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .header("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// #12: control characters in names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn names_with_control_characters_are_refused_on_every_protocol() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    // WebDAV (C0, DEL, C1 as UTF-8), files and folders.
    for path in ["/c%01.txt", "/tab%09.txt", "/del%7F.txt", "/c1%C2%85.txt"] {
        let r = dav(&c, &s, "alice", "PUT", path).body("x").send().await.unwrap();
        assert_eq!(r.status(), 400, "PUT {path}");
    }
    assert_eq!(dav(&c, &s, "alice", "MKCOL", "/d%1B").send().await.unwrap().status(), 400);
    assert_eq!(dav(&c, &s, "alice", "PUT", "/ok.txt").body("x").send().await.unwrap().status(), 201);
    let r = dav(&c, &s, "alice", "MOVE", "/ok.txt").header("Destination", "/dav/o%01k.txt").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // REST.
    let r = c.put(s.url("/api/v1/files/c%01.txt")).basic_auth("alice", Some(PASSWORD)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "invalid_name", "{v}");
    // S3.
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, secret) = s.storage.create_access_key(alice.id).await.unwrap();
    let s3 = Signer { base: s.base.clone(), key: key.id, secret, client: support::client() };
    assert_eq!(s3.request(Method::PUT, "/bkt", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap().status(), 200);
    for key in ["/bkt/c%01.txt", "/bkt/dir%7F/k.txt"] {
        let r = s3.request(Method::PUT, key, &[], &[], "UNSIGNED-PAYLOAD").body("x").send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{key}: {text}");
        assert!(text.contains("<Code>InvalidArgument</Code>"), "{key}: {text}");
    }
    // Upload links.
    let token = upload_link(&c, &s, "alice", "/drop").await;
    let r = c.put(s.url(&format!("/s/{token}/c%01.txt"))).body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was stored.
    let r = c.get(s.url("/api/v1/files")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bkt", "drop", "ok.txt", "shared"], "{v}");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// #14: one size rule for single writes, parts and completion
// ---------------------------------------------------------------------------------------

async fn signer(s: &TestServer, user: &str) -> Signer {
    let u = s.storage.find_user(user).await.unwrap();
    let (key, secret) = s.storage.create_access_key(u.id).await.unwrap();
    Signer { base: s.base.clone(), key: key.id, secret, client: support::client() }
}

async fn s3_refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let field = |tag: &str| {
        text.split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|b| b.split(&format!("</{tag}>")).next())
            .unwrap_or("")
            .to_owned()
    };
    (status, field("Code"), field("Message"))
}

async fn start_upload(s3: &Signer, key: &str) -> String {
    let r = s3.request(Method::POST, key, &[("uploads", "")], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    xml.split("<UploadId>").nth(1).unwrap().split("</UploadId>").next().unwrap().to_owned()
}

async fn part(s3: &Signer, key: &str, id: &str, n: u32, body: Vec<u8>) -> reqwest::Response {
    let n = n.to_string();
    s3.request(Method::PUT, key, &[("partNumber", n.as_str()), ("uploadId", id)], &[], "UNSIGNED-PAYLOAD")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn s3_multipart_cannot_escape_the_roles_size_limit() {
    const MIB: usize = 1024 * 1024;
    let mut policy = Policy::default();
    policy.roles.insert(Role::Uploader, Rule { max_file_size: Some(1_000_000), ..Default::default() });
    policy.roles.insert(Role::User, Rule { max_file_size: Some(6 * MIB as u64), ..Default::default() });
    let s = support::start(Options {
        users: vec![("ops", Role::Uploader), ("alice", Role::User)],
        policy,
        ..Default::default()
    })
    .await;

    // The uploader: 1 MB. A single PUT of 2 MB was refused, and still is.
    let ops = signer(&s, "ops").await;
    assert_eq!(ops.request(Method::PUT, "/drop", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap().status(), 200);
    let r = ops
        .request(Method::PUT, "/drop/single.bin", &[], &[], "UNSIGNED-PAYLOAD")
        .body(vec![1u8; 2_000_000])
        .send()
        .await
        .unwrap();
    let (status, code, message) = s3_refusal(r).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooLarge"));
    assert!(message.contains("uploader role") && !message.contains("on this server"), "{message}");
    // A multipart upload's parts are held to the same limit: 20 MB cannot get in.
    let id = start_upload(&ops, "/drop/multi.bin").await;
    let (status, code, message) = s3_refusal(part(&ops, "/drop/multi.bin", &id, 1, vec![2u8; 2_000_000]).await).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooLarge"), "{message}");
    assert!(message.contains("uploader role"), "{message}");

    // alice: 6 MiB. Parts of 5 MiB and 2 MiB are each under it, their sum is not.
    let alice = signer(&s, "alice").await;
    assert_eq!(alice.request(Method::PUT, "/bkt", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap().status(), 200);
    let id = start_upload(&alice, "/bkt/big.bin").await;
    let mut tags = Vec::new();
    for (n, size) in [(1, 5 * MIB), (2, 2 * MIB)] {
        let r = part(&alice, "/bkt/big.bin", &id, n, support::pseudo_random(size, n as u64)).await;
        assert_eq!(r.status(), 200);
        tags.push(r.headers()["etag"].to_str().unwrap().to_owned());
    }
    let complete = |parts: &[(u32, &str)]| {
        let body: String =
            parts.iter().map(|(n, t)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{t}</ETag></Part>")).collect();
        alice
            .request(Method::POST, "/bkt/big.bin", &[("uploadId", id.as_str())], &[], "UNSIGNED-PAYLOAD")
            .body(format!("<CompleteMultipartUpload>{body}</CompleteMultipartUpload>"))
            .send()
    };
    let (status, code, message) = s3_refusal(complete(&[(1, &tags[0]), (2, &tags[1])]).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooLarge"), "{message}");
    assert!(message.contains("user role") && message.contains(&(7 * MIB).to_string()), "{message}");
    let r = alice.request(Method::HEAD, "/bkt/big.bin", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing was stored");
    // Within the limit the same upload completes.
    let r = complete(&[(1, &tags[0])]).await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Pen test: deeply nested XML bodies, COPY and MOVE onto the root
// ---------------------------------------------------------------------------------------

/// A read link on `user`'s folder `/pub`, which holds `plain.html`: its token.
async fn pub_link(c: &Client, s: &TestServer, user: &str) -> String {
    assert_eq!(dav(c, s, user, "MKCOL", "/pub").send().await.unwrap().status(), 201);
    assert_eq!(dav(c, s, user, "PUT", "/pub/plain.html").body("<p>hi</p>").send().await.unwrap().status(), 201);
    let r = c
        .post(s.url("/api/v1/links"))
        .basic_auth(user, Some(PASSWORD))
        .json(&json!({ "path": "/pub", "expires_in": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn nested(open: &str, close: &str, n: usize) -> String {
    format!(
        "<?xml version=\"1.0\"?><D:{open} xmlns:D=\"DAV:\"><D:prop>{}{}</D:prop></D:{close}>",
        "<a>".repeat(n),
        "</a>".repeat(n)
    )
}

#[tokio::test]
async fn deeply_nested_xml_is_refused_before_dav_server_parses_it() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let token = pub_link(&c, &s, "bob").await;
    let link = |method: &str, path: &str| c.request(m(method), s.url(&format!("/s/{token}{path}")));
    let propfind = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:resourcetype/></D:prop></D:propfind>"#;
    // 2000 levels overflowed a worker's stack and aborted the server: now 400 with a reason,
    // for every method whose body dav-server parses, on the drive and on a link. 20,000
    // unclosed levels fit under the body limit; 100,000 closed ones do not (413).
    for (n, closed, status) in [(2000, true, 400), (20_000, false, 400), (100_000, true, 413)] {
        for (method, open) in [("PROPFIND", "propfind"), ("PROPPATCH", "propertyupdate"), ("LOCK", "lockinfo")] {
            let body =
                if closed { nested(open, open, n) } else { format!("<D:{open} xmlns:D=\"DAV:\">{}", "<a>".repeat(n)) };
            let r = dav(&c, &s, "bob", method, "/pub/").header("Depth", "0").body(body.clone()).send().await.unwrap();
            assert_eq!(r.status(), status, "/dav {method} {n}");
            let text = r.text().await.unwrap();
            assert!(text.contains(if status == 400 { "nests elements deeper" } else { "at most" }), "{text}");
            let r = link(method, "/").header("Depth", "0").body(body).send().await.unwrap();
            assert_eq!(r.status(), status, "link {method} {n}");
        }
    }
    // Still serving, and ordinary bodies (litmus's, a client's lock) still work.
    let r = dav(&c, &s, "bob", "PROPFIND", "/pub/").header("Depth", "1").body(propfind).send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert!(r.text().await.unwrap().contains("plain.html"));
    let r = link("PROPFIND", "/").header("Depth", "1").body(propfind).send().await.unwrap();
    assert_eq!(r.status(), 207);
    let patch = r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/standards/z39.50/"><D:set><D:prop><Z:Authors><Z:Author>Jim Whitehead</Z:Author><Z:Author>Roy Fielding</Z:Author></Z:Authors></D:prop></D:set></D:propertyupdate>"#;
    let r = dav(&c, &s, "bob", "PROPPATCH", "/pub/plain.html").body(patch).send().await.unwrap();
    assert_eq!(r.status(), 207);
    let r = dav(&c, &s, "bob", "LOCK", "/pub/plain.html")
        .header("Timeout", "Second-60")
        .body(lock_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Up to the limit is dav-server's to parse: 64 levels (propfind, prop and 62 more).
    let r = dav(&c, &s, "bob", "PROPFIND", "/pub/")
        .header("Depth", "0")
        .body(nested("propfind", "propfind", 62))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 400);
    let r = dav(&c, &s, "bob", "PROPFIND", "/pub/")
        .header("Depth", "0")
        .body(nested("propfind", "propfind", 63))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A PUT still streams, whatever its size or content.
    let big = nested("x", "x", 30_000);
    let r = dav(&c, &s, "bob", "PUT", "/pub/deep.xml").body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = dav(&c, &s, "bob", "GET", "/pub/deep.xml").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), big.len());
    s.stop().await;
}

#[tokio::test]
async fn copy_and_move_onto_the_root_are_403_not_a_panic() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let token = pub_link(&c, &s, "bob").await;
    assert_eq!(dav(&c, &s, "bob", "PUT", "/pub/t").body("x").send().await.unwrap().status(), 201);
    let base = s.url("");
    let base = base.trim_end_matches('/');
    for dest in
        ["/dav/".to_owned(), "/dav".to_owned(), "/dav//".to_owned(), format!("{base}/dav/"), format!("{base}/dav")]
    {
        for method in ["MOVE", "COPY"] {
            let r = dav(&c, &s, "bob", method, "/pub/t").header("Destination", &dest).send().await.unwrap();
            assert_eq!(r.status(), 403, "{method} onto {dest}");
            assert!(r.text().await.unwrap().contains("onto the root"));
        }
    }
    for dest in [format!("/s/{token}/"), format!("/s/{token}"), format!("{base}/s/{token}/")] {
        for method in ["COPY", "MOVE"] {
            let r = c
                .request(m(method), s.url(&format!("/s/{token}/plain.html")))
                .header("Destination", &dest)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "link {method} onto {dest}");
            assert!(r.text().await.unwrap().contains("onto the root"));
        }
    }
    // The file is where it was, and a COPY below the root still works.
    let r = dav(&c, &s, "bob", "COPY", "/pub/t").header("Destination", "/dav/t2").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(dav(&c, &s, "bob", "GET", "/pub/t").send().await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_propfind_body_is_408_like_a_stalled_upload() {
    let short = |c: &mut davit::Config| c.body_idle_timeout = Duration::from_secs(1);
    let s = support::start(Options { configure: short, ..Default::default() }).await;
    let started = Instant::now();
    let head = format!(
        "PROPFIND /dav/ HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nDepth: 0\r\nContent-Length: 1000\r\n\r\n<?xml",
        basic("bob")
    );
    assert_eq!(raw_status(&s, &head).await, 408);
    assert!(started.elapsed() < Duration::from_secs(15));
    s.stop().await;
}
