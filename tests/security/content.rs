//! The HTTP shell's part of the hardening: user content never runs as script on our origin,
//! other sites cannot write with a browser's credentials, forwarded addresses count only from
//! trusted proxies, slow clients are cut off, and bodyless answers are logged complete.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::s3_sdk::{self, Sdk};
use crate::s3_sign::Signer;
use crate::support::{self, Options, PASSWORD, TestServer};

const EVIL_HTML: &str = "<html><body><script>fetch('/api/v1/me/keys', {method: 'POST'})</script></body></html>";
const EVIL_SVG: &str =
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>fetch('/api/v1/me/keys', {method: 'POST'})</script></svg>";

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

fn sandboxed(r: &Response) -> bool {
    header(r, "content-security-policy").split(';').any(|d| d.trim() == "sandbox")
}

/// What keeps a file inert in a browser: no sniffing, a sandbox without scripts (an opaque
/// origin), and a download instead of a rendering.
fn assert_inert(r: &Response, what: &str) {
    assert!(r.status().is_success(), "{what}: {}", r.status());
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    assert!(sandboxed(r), "{what}: {}", header(r, "content-security-policy"));
    assert!(!header(r, "content-security-policy").contains("allow-scripts"), "{what}");
    assert!(header(r, "content-disposition").starts_with("attachment"), "{what}: {}", header(r, "content-disposition"));
}

fn presign() -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(300)).unwrap()
}

async fn link(c: &Client, s: &TestServer, body: Value) -> String {
    let r = c.post(s.url("/api/v1/links")).basic_auth("alice", Some(PASSWORD)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn user_content_never_renders_as_active_content_on_our_origin() {
    let Sdk { s, c, key, secret } = s3_sdk::start().await;
    let http = support::tls_client();
    let dav = |m: Method, p: &str| http.request(m, s.url(&format!("/dav{p}"))).basic_auth("alice", Some(PASSWORD));

    // WebDAV: an HTML file PUT as text/html comes back as a sandboxed download.
    let r =
        dav(Method::PUT, "/bkt/evil.html").header("content-type", "text/html").body(EVIL_HTML).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = dav(Method::GET, "/bkt/evil.html").send().await.unwrap();
    assert_inert(&r, "WebDAV GET");
    assert_eq!(header(&r, "content-type"), "text/html", "the stored type is still told");
    assert_eq!(r.text().await.unwrap(), EVIL_HTML, "the bytes are unchanged");
    let r = dav(Method::HEAD, "/bkt/evil.html").send().await.unwrap();
    assert_inert(&r, "WebDAV HEAD");

    // S3: an SVG with a stored inline disposition keeps its file name but downloads.
    c.put_object()
        .bucket("bkt")
        .key("evil.svg")
        .content_type("image/svg+xml")
        .content_disposition("inline; filename=\"evil.svg\"")
        .body(ByteStream::from_static(EVIL_SVG.as_bytes()))
        .send()
        .await
        .unwrap();
    let p = c.get_object().bucket("bkt").key("evil.svg").presigned(presign()).await.unwrap();
    let r = http.get(p.uri()).send().await.unwrap();
    assert_inert(&r, "S3 presigned GET of an SVG");
    assert_eq!(header(&r, "content-disposition"), "attachment; filename=\"evil.svg\"");

    // A harmless text object is shown, sandboxed; asked for as text/html (and inline), it
    // downloads.
    c.put_object()
        .bucket("bkt")
        .key("note.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(EVIL_HTML.as_bytes()))
        .send()
        .await
        .unwrap();
    let p = c.get_object().bucket("bkt").key("note.txt").presigned(presign()).await.unwrap();
    let r = http.get(p.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(sandboxed(&r) && header(&r, "content-disposition").is_empty(), "text is not forced to download");
    let p = c
        .get_object()
        .bucket("bkt")
        .key("note.txt")
        .response_content_type("text/html")
        .response_content_disposition("inline")
        .presigned(presign())
        .await
        .unwrap();
    let r = http.get(p.uri()).send().await.unwrap();
    assert_inert(&r, "S3 presigned GET with response-content-type=text/html");
    assert_eq!(header(&r, "content-type"), "text/html");
    assert_eq!(header(&r, "content-disposition"), "attachment");
    let r = http.get(p.uri()).header("range", "bytes=0-5").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_inert(&r, "S3 presigned range");

    // The SDK still reads what it stored, and a listing (our XML) is not a download.
    let out = c.get_object().bucket("bkt").key("evil.html").send().await.unwrap();
    assert_eq!(s3_sdk::body(out).await, EVIL_HTML.as_bytes());
    let signer = Signer { base: s.base.clone(), key, secret, client: http.clone() };
    let r = signer.request(Method::GET, "/bkt", &[("list-type", "2")], &[], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(sandboxed(&r) && header(&r, "content-disposition").is_empty(), "a listing is ours");
    assert!(r.text().await.unwrap().contains("<Key>evil.svg</Key>"));

    // REST.
    let r = http.get(s.url("/api/v1/files/bkt/evil.svg")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_inert(&r, "REST GET");

    // Links: a file link, and a file inside a folder link; the folder's own page is ours.
    let file = link(&http, &s, json!({ "path": "/bkt/evil.html", "expires_in": 3600 })).await;
    let r = http.get(s.url(&format!("/s/{file}"))).send().await.unwrap();
    assert_inert(&r, "file link");
    let folder = link(&http, &s, json!({ "path": "/bkt", "expires_in": 3600 })).await;
    let r = http.get(s.url(&format!("/s/{folder}/evil.svg"))).send().await.unwrap();
    assert_inert(&r, "a file in a folder link");
    let r = http.get(s.url(&format!("/s/{folder}"))).header("accept", "text/html").send().await.unwrap();
    assert_eq!((r.status(), header(&r, "content-type")), (StatusCode::OK, "text/html; charset=utf-8"));
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert!(!sandboxed(&r), "our page keeps its forms working");
    assert!(header(&r, "content-security-policy").contains("default-src 'none'"));
    assert!(header(&r, "content-disposition").is_empty(), "our page is shown");
    assert!(r.text().await.unwrap().contains("evil.svg</a>"));
    s.stop().await;
}

#[tokio::test]
async fn cross_site_writes_with_browser_credentials_are_refused() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let evil = "https://evil.example";
    let user = |name: &str| json!({ "username": name, "password": "long-password-1", "role": "admin" });
    let create = || c.post(s.url("/api/v1/admin/users")).basic_auth("admin", Some(PASSWORD));
    let problem = |r: Response| async move {
        let status = r.status().as_u16();
        assert_eq!(header(&r, "content-type"), "application/problem+json");
        (status, r.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned())
    };

    // A form or no-preflight fetch cannot send JSON: text/plain is refused.
    let r = create().header("content-type", "text/plain").body(user("mallory").to_string()).send().await.unwrap();
    assert_eq!(problem(r).await, (415, "unsupported_media_type".into()));
    let r = create().body(user("mallory").to_string()).send().await.unwrap();
    assert_eq!(problem(r).await, (415, "unsupported_media_type".into()), "no type is no JSON");
    // Another site with the admin's cached Basic credentials.
    let r = create().header("origin", evil).json(&user("mallory")).send().await.unwrap();
    assert_eq!(problem(r).await, (403, "cross_site".into()));
    let r = create().header("origin", "null").json(&user("mallory")).send().await.unwrap();
    assert_eq!(r.status(), 403, "a sandboxed or privacy-redirected page is not us");
    assert!(s.storage.find_user("mallory").await.is_err(), "nothing was created");
    // Our own pages, and clients that send no Origin, work.
    let r = create().header("origin", &s.base).json(&user("carol")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = create().header("content-type", "application/json; charset=utf-8").body(user("dave").to_string());
    assert_eq!(r.send().await.unwrap().status(), 201);

    // Tokens: a Bearer token is never attached by a browser on its own; the cookie is.
    let r = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("davit_access="));
    let cookie = cookie.expect("the login sets the session cookie");
    assert!(cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"), "{cookie}");
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let admin_post = || c.post(s.url("/api/v1/admin/users"));
    let r = admin_post().bearer_auth(&token).header("origin", evil).json(&user("erin")).send().await.unwrap();
    assert_eq!(r.status(), 201, "Bearer from another origin");
    let session = format!("davit_access={token}");
    let r = admin_post().header("cookie", &session).header("origin", evil).json(&user("frank")).send().await.unwrap();
    assert_eq!(problem(r).await, (403, "cross_site".into()));
    let r =
        admin_post().header("cookie", &session).header("origin", &s.base).json(&user("frank")).send().await.unwrap();
    assert_eq!(r.status(), 201);

    // WebDAV: writes from another site are refused, reads are not.
    let dav = |m: &str, p: &str| {
        c.request(Method::from_bytes(m.as_bytes()).unwrap(), s.url(&format!("/dav{p}")))
            .basic_auth("alice", Some(PASSWORD))
    };
    let r = dav("PUT", "/x.txt").header("origin", evil).body("planted").send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "content-type")), (403, "text/plain; charset=utf-8"));
    assert_eq!(dav("GET", "/x.txt").send().await.unwrap().status(), 404, "nothing was stored");
    for m in ["MKCOL", "DELETE", "LOCK"] {
        assert_eq!(dav(m, "/y").header("origin", evil).send().await.unwrap().status(), 403, "{m}");
    }
    assert_eq!(dav("PUT", "/x.txt").header("origin", &s.base).body("mine").send().await.unwrap().status(), 201);
    let r = dav("PROPFIND", "/").header("origin", evil).header("depth", "1").send().await.unwrap();
    assert_eq!(r.status(), 207, "reading is not a write");

    // A password-protected upload link: its password is a credential like any other.
    let r = c.post(s.url("/api/v1/mkdir")).basic_auth("alice", Some(PASSWORD)).json(&json!({ "path": "/drop" }));
    assert_eq!(r.send().await.unwrap().status(), 201);
    let body = json!({ "path": "/drop", "expires_in": 3600, "permission": "upload", "password": "link-password-1" });
    let token = link(&c, &s, body).await;
    let put = |name: &str| c.put(s.url(&format!("/s/{token}/{name}"))).basic_auth("x", Some("link-password-1"));
    let r = put("a.txt").header("origin", evil).body("planted").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(put("a.txt").body("dropped").send().await.unwrap().status(), 201);

    // S3 is signed: a browser app on another origin is how S3 is used.
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, secret) = s.storage.create_access_key(alice.id).await.unwrap();
    let s3 = Signer { base: s.base.clone(), key: key.id, secret, client: c.clone() };
    let r = s3.request(Method::PUT, "/bkt", &[], &[("origin", evil)], "UNSIGNED-PAYLOAD").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s3.request(Method::PUT, "/bkt/k.txt", &[], &[("origin", evil)], "UNSIGNED-PAYLOAD").body("s3").send().await;
    assert_eq!(r.unwrap().status(), 200);
    s.stop().await;
}

/// A client bound to one of the loopback addresses.
fn client_from(ip: &str) -> Client {
    Client::builder().local_address(ip.parse::<IpAddr>().unwrap()).timeout(Duration::from_secs(30)).build().unwrap()
}

/// The server's access log line for `needle`, waiting for it to be written.
fn log_line(p: &support::Process, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = p.stderr().lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no log line with {needle}:\n{}", p.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let tmp = tempfile::tempdir().unwrap();
    let p = support::spawn_server(&tmp.path().join("data"), &[("DAVIT_TRUSTED_PROXIES", "127.0.0.2, 10.0.0.0/8")]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let get = |from: &str, path: &str, headers: &[(&str, &str)]| {
        let mut b = client_from(from).get(format!("http://{}{path}", p.addr));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        assert_eq!(rt.block_on(b.send()).unwrap().status(), 404);
    };
    // The trusted proxy names the client; a client's own forgery sits left of it.
    get("127.0.0.2", "/api/v1/probe-1", &[("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.1.2.3")]);
    // Anyone else's header is ignored.
    get("127.0.0.3", "/api/v1/probe-2", &[("x-forwarded-for", "203.0.113.8")]);
    get("127.0.0.2", "/api/v1/probe-3", &[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]);
    get("127.0.0.3", "/api/v1/probe-4", &[("forwarded", "for=203.0.113.8")]);

    let line = log_line(&p, "path=/api/v1/probe-1 ");
    assert!(line.contains(" peer=203.0.113.7 ") && line.contains(" proxy=127.0.0.2:"), "{line}");
    let line = log_line(&p, "path=/api/v1/probe-2 ");
    assert!(line.contains(" peer=127.0.0.3:") && !line.contains("203.0.113.8") && !line.contains("proxy="), "{line}");
    let line = log_line(&p, "path=/api/v1/probe-3 ");
    assert!(line.contains(" peer=2001:db8::1 ") && line.contains(" proxy=127.0.0.2:"), "{line}");
    let line = log_line(&p, "path=/api/v1/probe-4 ");
    assert!(line.contains(" peer=127.0.0.3:") && !line.contains("203.0.113.8"), "{line}");
    p.terminate();
}

#[test]
fn bodyless_answers_are_logged_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let p = support::spawn_server(&tmp.path().join("data"), &[("DAVIT_ADMIN_PASSWORD", PASSWORD)]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let c = support::client();
    let put = || {
        let r = c.put(format!("http://{}/dav/logged.txt", p.addr)).basic_auth("admin", Some(PASSWORD)).body("x");
        rt.block_on(r.send()).unwrap().status().as_u16()
    };
    assert_eq!((put(), put()), (201, 204));
    let line = log_line(&p, "method=PUT path=/dav/logged.txt status=204 ");
    assert!(line.contains("complete=true"), "{line}");
    let line = log_line(&p, "method=PUT path=/dav/logged.txt status=201 ");
    assert!(line.contains("complete=true"), "{line}");
    p.terminate();
}

/// A TCP connection from `from` (a loopback address) to the server.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    sock.connect(to).await.unwrap()
}

/// Reads until the server closes (EOF or reset), at most `limit`: how long it took, or None
/// if it was still open, and what it sent.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (None, got),
            Ok(Ok(0) | Err(_)) => return (Some(start.elapsed()), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// One HTTP/1.1 answer with a Content-Length off a kept-alive connection: its status.
async fn read_answer(s: &mut TcpStream) -> Option<u16> {
    read_answer_head(s).await.map(|(status, _)| status)
}

/// [`read_answer`] with the answer's head, lowercased.
async fn read_answer_head(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    while got.len() < end + len {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Some((status, head))
}

/// Alice's `Authorization` value, for requests written by hand.
fn basic() -> String {
    support::basic("alice", PASSWORD)
}

/// Found in a cluster probe: a PUT with `Expect: 100-continue` refused before its body was
/// read (the client then sends none) left the connection open, and hyper took the first bytes
/// of the next request for the announced body: boto3's next call after a refused PutObject
/// failed its signature. Such an answer now closes the connection; one whose body was read
/// keeps it.
#[tokio::test]
async fn an_answer_before_an_expected_body_closes_the_connection() {
    let s = support::start(Options::default()).await;
    let auth = basic();
    for (path, len) in [("/api/v1/files/nofolder/x", 1), ("/api/v1/files/nofolder/x", 5), ("/dav/nofolder/x", 5)] {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        let put = format!(
            "PUT {path} HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
        );
        c.write_all(put.as_bytes()).await.unwrap();
        let (status, head) = read_answer_head(&mut c).await.unwrap();
        if status == 100 {
            // WebDAV reads the body first: it gets its bytes and its answer, on an open connection.
            c.write_all(&b"12345"[..len]).await.unwrap();
            assert_eq!(read_answer(&mut c).await, Some(409), "{path}");
        } else {
            // Whether hyper had drained the next request into the body depended on timing (seen
            // only with a slower store): the answer says the connection ends.
            assert_eq!(status, 409, "{path}");
            assert!(head.contains("connection: close"), "{path}: {head}");
        }
        // The next request on the connection: answered as itself, or the connection is closed
        // (a write to it may fail then); never misread (405 for "ET /api/v1/me", or 400).
        let next = format!("GET /api/v1/me HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\n\r\n");
        let answer = match c.write_all(next.as_bytes()).await {
            Ok(()) => read_answer(&mut c).await,
            Err(_) => None,
        };
        let want = if status == 100 { Some(200) } else { None };
        assert_eq!(answer, want, "{path}: the next request on the connection");
    }
    // A body that was read leaves the connection open for the next request.
    let mut c = connect_from("127.0.0.1", s.addr).await;
    let put = format!(
        "PUT /api/v1/files/ok.txt HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    );
    c.write_all(put.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut c).await, Some(100));
    c.write_all(b"ok").await.unwrap();
    assert_eq!(read_answer(&mut c).await, Some(201));
    let next = format!("GET /api/v1/me HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\n\r\n");
    c.write_all(next.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut c).await, Some(200));
}

#[tokio::test]
async fn slow_headers_stalled_bodies_and_idle_connections_are_cut_off() {
    let short = |c: &mut davit::Config| {
        c.header_timeout = Duration::from_secs(1);
        c.body_idle_timeout = Duration::from_secs(2);
    };
    let s = support::start(Options { configure: short, ..Default::default() }).await;
    let tls = support::start(Options { configure: short, tls: true, ..Default::default() }).await;
    let limit = Duration::from_secs(8);
    // Closed within the timeout and a generous margin for a loaded machine.
    let cut_off = |r: (Option<Duration>, Vec<u8>), what: &str, timeout: u64| {
        let took = r.0.unwrap_or_else(|| panic!("{what}: still open after {limit:?}"));
        assert!(took < Duration::from_secs(timeout + 3), "{what}: closed only after {took:?}");
        took
    };

    let silent = async {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        until_closed(&mut c, limit).await
    };
    let silent_tls = async {
        let mut c = connect_from("127.0.0.1", tls.addr).await;
        until_closed(&mut c, limit).await
    };
    // Headers dribbled a byte at a time: the deadline is for all of them, not between bytes.
    let dribble = async {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        let start = Instant::now();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if c.write_all(b"a").await.is_err() {
                break;
            }
        }
        let (_, got) = until_closed(&mut c, limit).await;
        (Some(start.elapsed()), got)
    };
    // Kept alive after an answer, then idle.
    let idle = async {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert_eq!(read_answer(&mut c).await, Some(200));
        until_closed(&mut c, limit).await
    };
    // An upload that stops: the request ends with 408, nothing is stored.
    let stalled = |path: &'static str| async move {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 1000\r\n\r\n0123456789",
            basic()
        );
        c.write_all(head.as_bytes()).await.unwrap();
        until_closed(&mut c, limit).await
    };
    // An upload that is slow but never stops for a whole idle period (2 s) goes through.
    let slow = async {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        let head =
            format!("PUT /dav/slow.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 8\r\n\r\n", basic());
        c.write_all(head.as_bytes()).await.unwrap();
        for b in b"12345678" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.write_all(&[*b]).await.unwrap();
        }
        read_answer(&mut c).await
    };
    let (silent, silent_tls, dribble, idle, stalled, stalled_rest, slow) = tokio::join!(
        silent,
        silent_tls,
        dribble,
        idle,
        stalled("/dav/stalled.txt"),
        stalled("/api/v1/files/stalled.txt"),
        slow
    );
    let took = cut_off(silent, "a connection that sends nothing", 1);
    assert!(took >= Duration::from_millis(500), "closed by the timeout, not at once: {took:?}");
    cut_off(silent_tls, "a TLS connection that sends no handshake", 1);
    let (_, got) = &dribble;
    assert!(!String::from_utf8_lossy(got).contains(" 200 "), "no answer to half a request");
    cut_off(dribble, "headers dribbled a byte every 200 ms", 1);
    cut_off(idle, "an idle kept-alive connection", 1);
    for (r, what) in [(stalled, "a stalled WebDAV upload"), (stalled_rest, "a stalled REST upload")] {
        assert!(
            String::from_utf8_lossy(&r.1).starts_with("HTTP/1.1 408 "),
            "{what}: {}",
            String::from_utf8_lossy(&r.1)
        );
        cut_off(r, what, 2);
    }
    assert_eq!(slow, Some(201), "a slow upload that keeps sending is not idle");

    // S3 too, answered in S3's form.
    let alice = s.storage.find_user("alice").await.unwrap();
    let (key, secret) = s.storage.create_access_key(alice.id).await.unwrap();
    let s3 = Signer { base: s.base.clone(), key: key.id, secret, client: support::client() };
    assert_eq!(s3.request(Method::PUT, "/bkt", &[], &[], "UNSIGNED-PAYLOAD").send().await.unwrap().status(), 200);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tx.send(Ok(bytes::Bytes::from_static(b"0123456789"))).await.unwrap();
    // The sender is kept (not dropped) until the answer is in: the body stalls, not ends.
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let started = Instant::now();
    let r = s3
        .request(Method::PUT, "/bkt/stalled.bin", &[], &[("content-length", "1000")], "UNSIGNED-PAYLOAD")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s3_sdk::xml_code(r).await, (400, "RequestTimeout".into()));
    drop(tx);

    let c = support::client();
    for path in ["/dav/stalled.txt", "/api/v1/files/stalled.txt", "/api/v1/files/bkt/stalled.bin"] {
        let r = c.get(s.url(path)).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        assert_eq!(r.status(), 404, "the stalled upload stored nothing: {path}");
    }
    let r = c.get(s.url("/dav/slow.txt")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "12345678");
    s.stop().await;
    tls.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let s = support::start(Options { configure: |c| c.max_connections_per_address = 3, ..Default::default() }).await;
    let health = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from("127.0.0.2", s.addr).await;
        c.write_all(health).await.unwrap();
        assert_eq!(read_answer(&mut c).await, Some(200));
        held.push(c);
    }
    // A fourth from the same address is closed without an answer.
    let mut extra = connect_from("127.0.0.2", s.addr).await;
    let _ = extra.write_all(health).await;
    let (closed, got) = until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(
        closed.is_some() && got.is_empty(),
        "the fourth connection is refused: {:?}",
        String::from_utf8_lossy(&got)
    );
    // Another address is not affected.
    let r = client_from("127.0.0.3").get(s.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A closed connection frees its place.
    drop(held.pop());
    assert!(served_from("127.0.0.2", s.addr, health).await, "a place came free");
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn a_list_of_types_downloads_instead_of_rendering() {
    let Sdk { s, c, .. } = s3_sdk::start().await;
    let http = support::tls_client();
    // Browsers take the last of a list of types: each of these would render as HTML.
    for (i, t) in
        ["text/plain, text/html", "image/png;,text/html", "text/plain; a=\"x,text/html\""].into_iter().enumerate()
    {
        let path = format!("/bkt/list{i}.txt");
        let r = http
            .put(s.url(&format!("/dav{path}")))
            .basic_auth("alice", Some(PASSWORD))
            .header("content-type", t)
            .body(EVIL_HTML)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{t}: {}", r.status());
        let r = http.get(s.url(&format!("/dav{path}"))).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        assert_eq!(header(&r, "content-type"), t, "the stored type is told as it is");
        assert_inert(&r, &format!("WebDAV GET of {t}"));
        let r =
            http.get(s.url(&format!("/api/v1/files{path}"))).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        assert_inert(&r, &format!("REST GET of {t}"));
    }
    c.put_object()
        .bucket("bkt")
        .key("note.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(EVIL_HTML.as_bytes()))
        .send()
        .await
        .unwrap();
    let p = c
        .get_object()
        .bucket("bkt")
        .key("note.txt")
        .response_content_type("image/png, text/html")
        .presigned(presign())
        .await
        .unwrap();
    let r = http.get(p.uri()).send().await.unwrap();
    assert_inert(&r, "S3 presigned GET with response-content-type=image/png, text/html");
    s.stop().await;
}

#[tokio::test]
async fn connections_in_all_are_capped() {
    let s = support::start(Options { configure: |c| c.max_connections = 3, ..Default::default() }).await;
    let health = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut c = connect_from(from, s.addr).await;
        c.write_all(health).await.unwrap();
        assert_eq!(read_answer(&mut c).await, Some(200));
        held.push(c);
    }
    // A fourth, from yet another address, is closed without an answer.
    let mut extra = connect_from("127.0.0.5", s.addr).await;
    let _ = extra.write_all(health).await;
    let (closed, got) = until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(closed.is_some() && got.is_empty(), "over the cap: {:?}", String::from_utf8_lossy(&got));
    // A closed connection frees its place.
    drop(held.pop());
    assert!(served_from("127.0.0.5", s.addr, health).await, "a place came free");
    drop(held);
    s.stop().await;
}

const BIG: usize = 16 << 20;

trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Conn for T {}

/// A GET of /dav/big.bin over a socket with a small receive buffer, so that the server's
/// writes soon wait on the client; over TLS when `tls`.
async fn get_big(to: SocketAddr, tls: bool) -> Box<dyn Conn> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 << 10).unwrap();
    let tcp = sock.connect(to).await.unwrap();
    let mut c: Box<dyn Conn> = if tls {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(support::cert_dir().join("cert.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        Box::new(connector.connect(name, tcp).await.unwrap())
    } else {
        Box::new(tcp)
    };
    let head =
        format!("GET /dav/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n", basic());
    c.write_all(head.as_bytes()).await.unwrap();
    c
}

/// Reads until the end (EOF or an error), at most `limit`: how much arrived, and whether
/// it ended.
async fn read_all(c: &mut Box<dyn Conn>, limit: Duration) -> (usize, bool) {
    let start = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, c.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0) | Err(_)) => return (got, true),
            Ok(Ok(n)) => got += n,
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let short = |c: &mut davit::Config| c.send_idle_timeout = Duration::from_secs(3);
    let s = support::start(Options { configure: short, ..Default::default() }).await;
    let tls = support::start(Options { configure: short, tls: true, ..Default::default() }).await;
    let data = bytes::Bytes::from(vec![7u8; BIG]);
    for (srv, c) in [(&s, support::client()), (&tls, support::tls_client())] {
        let r = c.put(srv.url("/dav/big.bin")).basic_auth("alice", Some(PASSWORD)).body(data.clone()).send().await;
        assert_eq!(r.unwrap().status(), 201);
    }

    // Reads nothing for well past the timeout: the server gives up on it, so reading then
    // gets what sat in the buffers, far from the whole file, and the end.
    let stalled = |to: SocketAddr, tls: bool| async move {
        let mut c = get_big(to, tls).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        read_all(&mut c, Duration::from_secs(15)).await
    };
    // Slow but reading: pauses of 1 s, well under the timeout, between bursts of 2 MiB.
    let slow = async {
        let mut c = get_big(s.addr, false).await;
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 << 10];
        let started = Instant::now();
        'read: for _ in 0..64 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut burst = 0;
            while burst < 2 << 20 {
                match tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                        got += burst;
                        break 'read;
                    }
                    Ok(Ok(n)) => burst += n,
                }
            }
            got += burst;
        }
        (got, started.elapsed())
    };
    let (plain, over_tls, (slow_got, slow_took)) = tokio::join!(stalled(s.addr, false), stalled(tls.addr, true), slow);
    for ((got, ended), what) in [(plain, "plain"), (over_tls, "TLS")] {
        assert!(ended, "{what}: a client that reads nothing is still connected");
        assert!(got < BIG, "{what}: the server kept sending to a client that read nothing: {got} bytes");
    }
    assert!(slow_got > BIG, "a slow reader gets everything: {slow_got} bytes in {slow_took:?}");
    s.stop().await;
    tls.stop().await;
}

/// Whether a connection from `ip` is served within about five seconds (a place freed by a
/// closed connection is seen by the server a little later).
async fn served_from(ip: &str, addr: SocketAddr, request: &[u8]) -> bool {
    for _ in 0..50 {
        let mut c = connect_from(ip, addr).await;
        let _ = c.write_all(request).await;
        if read_answer(&mut c).await == Some(200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
