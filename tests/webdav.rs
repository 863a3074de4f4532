//! WebDAV over real HTTP: the same files as REST, refusals in WebDAV's statuses with a
//! reason, locks that bind every protocol, client habits (Windows, rclone, Finder).

use std::io::{Read, Write};

use reqwest::{Client, Method, StatusCode};

use crate::support::{self, Options, PASSWORD, TestServer};

fn m(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

fn dav(c: &Client, s: &TestServer, method: &str, path: &str) -> reqwest::RequestBuilder {
    c.request(m(method), s.url(&format!("/dav{path}"))).basic_auth("alice", Some(PASSWORD))
}

#[tokio::test]
async fn same_files_as_rest_with_types_times_and_properties() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let r = c.request(m("OPTIONS"), s.url("/dav/")).send().await.unwrap();
    assert_eq!(r.headers()["dav"], "1, 2");
    assert_eq!(r.headers()["ms-author-via"], "DAV");
    let r = c.request(m("PROPFIND"), s.url("/dav/")).header("Depth", "1").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm=\"davit\""));

    assert_eq!(dav(&c, &s, "MKCOL", "/docs").send().await.unwrap().status(), 201);
    let data = support::pseudo_random(2_500_000, 3);
    let r = dav(&c, &s, "PUT", "/docs/r%C3%A9sum%C3%A9.pdf")
        .header("Content-Type", "application/pdf")
        .header("X-OC-Mtime", "1600000000")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The same file over REST, with the stored type and the client's modification time.
    let r = c
        .get(s.url("/api/v1/files/docs/r%C3%A9sum%C3%A9.pdf"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["last-modified"], "Sun, 13 Sep 2020 12:26:40 GMT");
    assert_eq!(r.bytes().await.unwrap(), data);
    // And the other way round, with ranges.
    c.put(s.url("/api/v1/files/docs/notes.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .header("Content-Type", "text/markdown")
        .body("# notes\n")
        .send()
        .await
        .unwrap();
    let r = dav(&c, &s, "GET", "/docs/notes.txt").send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/markdown", "the stored type, not one guessed from the name");
    assert_eq!(r.text().await.unwrap(), "# notes\n");
    let r =
        dav(&c, &s, "GET", "/docs/r%C3%A9sum%C3%A9.pdf").header("Range", "bytes=1000000-1000099").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), &data[1_000_000..1_000_100]);

    let r = dav(&c, &s, "PROPFIND", "/docs/").header("Depth", "1").send().await.unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert!(body.contains("notes.txt") && body.contains("r%C3%A9sum%C3%A9.pdf"), "{body}");
    let r = dav(&c, &s, "PROPFIND", "/").header("Depth", "1").send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("/dav/shared/"), "the root shows the shared folder: {body}");

    let quota = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>"#;
    let r = dav(&c, &s, "PROPFIND", "/").header("Depth", "0").body(quota).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("quota-used-bytes>2500008<"), "{body}");

    for depth in [Some("infinity"), None] {
        let mut req = dav(&c, &s, "PROPFIND", "/");
        if let Some(d) = depth {
            req = req.header("Depth", d);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("propfind-finite-depth"));
    }

    // COPY copies no data; MOVE keeps the item.
    assert_eq!(
        dav(&c, &s, "COPY", "/docs/").header("Destination", s.url("/dav/copy/")).send().await.unwrap().status(),
        201
    );
    let before = s.storage.check().await.unwrap().chunks;
    assert_eq!(
        dav(&c, &s, "MOVE", "/copy/notes.txt")
            .header("Destination", s.url("/dav/moved.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(s.storage.check().await.unwrap().chunks, before);
    s.stop().await;
}

#[tokio::test]
async fn refusals_have_webdav_statuses_and_reasons() {
    use davit_storage::Role;
    use davit_storage::policy::{Policy, Rule};
    let mut policy = Policy::default();
    policy.roles.insert(
        Role::User,
        Rule { max_file_size: None, allowed_extensions: None, allowed_types: Some(vec!["text/plain".into()]) },
    );
    let s = support::start(Options { default_quota: 1_000_000, policy, ..Default::default() }).await;
    let c = support::client();
    let r = dav(&c, &s, "PUT", "/missing/a.txt").header("Content-Type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(r.status(), 409);
    let r = dav(&c, &s, "PUT", "/big.txt")
        .header("Content-Type", "text/plain")
        .body(vec![7u8; 1_500_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    assert!(r.text().await.unwrap().contains("quota"));
    let r =
        dav(&c, &s, "PUT", "/a.exe").header("Content-Type", "application/x-msdownload").body("x").send().await.unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("text/plain"), "the reason names the rule");
    let r = dav(&c, &s, "PUT", "/shared/x.txt").header("Content-Type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(dav(&c, &s, "MKCOL", "/shared").send().await.unwrap().status(), 405);
    assert_eq!(dav(&c, &s, "MKCOL", "/d").send().await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "MKCOL", "/d").send().await.unwrap().status(), 405);
    assert_eq!(dav(&c, &s, "MKCOL", "/x/y").send().await.unwrap().status(), 409);
    let r = dav(&c, &s, "PUT", "/d/a.txt").header("Content-Type", "text/plain").body("one").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = dav(&c, &s, "PUT", "/d/a.txt")
        .header("Content-Type", "text/plain")
        .header("If-None-Match", "*")
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = dav(&c, &s, "COPY", "/d/a.txt").header("Destination", s.url("/dav/d/a.txt")).send().await.unwrap();
    assert_eq!(r.status(), 403, "same source and destination");

    // A body shorter than announced is refused: nothing is stored.
    let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(3))).unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    write!(sock, "PUT /dav/d/short.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789").unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = sock.read_to_end(&mut rest);
    let r = dav(&c, &s, "GET", "/d/short.txt").send().await.unwrap();
    assert_eq!(r.status(), 404, "a short body leaves nothing");
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}

fn lock_body() -> &'static str {
    r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>Windows</D:owner></D:lockinfo>"#
}

#[tokio::test]
async fn windows_upload_sequence_and_locks_bind_every_protocol() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    // Explorer: PUT 0 bytes, LOCK, PROPPATCH Win32 times, PUT the content, UNLOCK.
    assert_eq!(dav(&c, &s, "PUT", "/report.docx").body("").send().await.unwrap().status(), 201);
    let r =
        dav(&c, &s, "LOCK", "/report.docx").header("Timeout", "Second-3600").body(lock_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().trim_matches(|c| c == '<' || c == '>').to_owned();
    let if_header = format!("(<{token}>)");
    let patch = r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32CreationTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes><E:tag xmlns:E="urn:example:">draft</E:tag></D:prop></D:set></D:propertyupdate>"#;
    let r = dav(&c, &s, "PROPPATCH", "/report.docx").header("If", &if_header).body(patch).send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert!(r.text().await.unwrap().contains("200 OK"));
    // Without the token the lock holds, over WebDAV and over REST alike.
    let r = dav(&c, &s, "PUT", "/report.docx").body("intruder").send().await.unwrap();
    assert_eq!(r.status(), 423);
    let r = c
        .put(s.url("/api/v1/files/report.docx"))
        .basic_auth("alice", Some(PASSWORD))
        .body("intruder")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 423);
    let r = c.delete(s.url("/api/v1/files/report.docx")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 423);
    let r = dav(&c, &s, "PUT", "/report.docx").header("If", &if_header).body("the real content").send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = dav(&c, &s, "PROPFIND", "/report.docx").header("Depth", "0").send().await.unwrap();
    let body = r.text().await.unwrap();
    // Win32 times are acknowledged (dav-server answers them for Explorer); dead properties
    // are kept in the core and survive the overwrite.
    assert!(body.contains(">draft<") && body.contains(&token), "{body}");
    // Then Explorer sets the file's times: the modification time is kept (it was dropped,
    // so the file showed the time of its upload).
    let times = r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>Sun, 06 Nov 1994 08:49:37 GMT</Z:Win32LastModifiedTime><Z:Win32LastAccessTime>Tue, 01 Dec 2026 10:00:00 GMT</Z:Win32LastAccessTime></D:prop></D:set></D:propertyupdate>"#;
    let r = dav(&c, &s, "PROPPATCH", "/report.docx").header("If", &if_header).body(times).send().await.unwrap();
    assert_eq!(r.status(), 207);
    let r = dav(&c, &s, "HEAD", "/report.docx").send().await.unwrap();
    assert_eq!(r.headers()["last-modified"], "Sun, 06 Nov 1994 08:49:37 GMT");
    // Refused with the rest when another property is (all or nothing): the time stays.
    let both = times
        .replace("Sun, 06 Nov 1994", "Mon, 07 Nov 1994")
        .replace("<Z:Win32LastAccessTime>", "<D:getcontentlength>1</D:getcontentlength><Z:Win32LastAccessTime>");
    let r = dav(&c, &s, "PROPPATCH", "/report.docx").header("If", &if_header).body(both).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("403"));
    let r = dav(&c, &s, "HEAD", "/report.docx").send().await.unwrap();
    assert_eq!(r.headers()["last-modified"], "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        dav(&c, &s, "UNLOCK", "/report.docx").header("Lock-Token", format!("<{token}>")).send().await.unwrap().status(),
        204
    );
    let r = c
        .put(s.url("/api/v1/files/report.docx"))
        .basic_auth("alice", Some(PASSWORD))
        .body("after unlock")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // davfs2 creates files by LOCK on an unmapped URL: an empty, locked file.
    let r = dav(&c, &s, "LOCK", "/new.txt").body(lock_body()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(s.url("/api/v1/files/new.txt")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!((r.status(), r.bytes().await.unwrap().len()), (StatusCode::OK, 0));
    let r = c.put(s.url("/api/v1/files/new.txt")).basic_auth("alice", Some(PASSWORD)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 423);
    s.stop().await;
}

/// A folder is copied and deleted as one core operation each (not member by member), with
/// RFC 4918's statuses, and a lock below the folder binds its deletion.
#[tokio::test]
async fn folders_are_copied_and_deleted_whole() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "MKCOL", "/f").send().await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "MKCOL", "/f/sub").send().await.unwrap().status(), 201);
    for (path, body) in [("/f/a.txt", "a"), ("/f/sub/b.txt", "bee")] {
        assert_eq!(dav(&c, &s, "PUT", path).body(body).send().await.unwrap().status(), 201);
    }
    let usage = || async {
        let r = c.get(s.url("/api/v1/usage")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        r.json::<serde_json::Value>().await.unwrap()["bytes"].as_u64().unwrap()
    };
    assert_eq!(usage().await, 4);
    let copy = |to: &str, overwrite: Option<&str>| {
        let mut r = dav(&c, &s, "COPY", "/f/").header("Destination", s.url(&format!("/dav{to}")));
        if let Some(o) = overwrite {
            r = r.header("Overwrite", o);
        }
        r.send()
    };
    assert_eq!(copy("/g/", None).await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "GET", "/g/sub/b.txt").send().await.unwrap().text().await.unwrap(), "bee");
    assert_eq!(usage().await, 8, "a copy counts once, checked against the quota once");
    assert_eq!(copy("/g/", Some("F")).await.unwrap().status(), 412);
    assert_eq!(copy("/g/", Some("T")).await.unwrap().status(), 204);
    assert_eq!(copy("/missing/g/", None).await.unwrap().status(), 409);
    assert_eq!(copy("/f/sub/inner/", None).await.unwrap().status(), 409, "not into itself");
    // Depth 0 copies the folder alone.
    let r = dav(&c, &s, "COPY", "/f/").header("Destination", s.url("/dav/h/")).header("Depth", "0").send().await;
    assert_eq!(r.unwrap().status(), 201);
    let r = dav(&c, &s, "PROPFIND", "/h/").header("Depth", "1").send().await.unwrap();
    assert_eq!(r.text().await.unwrap().matches("<D:response>").count(), 1);
    // Onto a folder with members: they go first (RFC 4918 §9.8.4), nothing is merged.
    let depth0 = |overwrite: &str| {
        let r = dav(&c, &s, "COPY", "/f/").header("Destination", s.url("/dav/g/")).header("Depth", "0");
        r.header("Overwrite", overwrite).send()
    };
    assert_eq!(depth0("F").await.unwrap().status(), 412);
    assert_eq!(dav(&c, &s, "GET", "/g/sub/b.txt").send().await.unwrap().status(), 200);
    assert_eq!(depth0("T").await.unwrap().status(), 204);
    let r = dav(&c, &s, "PROPFIND", "/g/").header("Depth", "1").send().await.unwrap();
    assert_eq!(r.text().await.unwrap().matches("<D:response>").count(), 1, "the copy is an empty folder");
    assert_eq!(dav(&c, &s, "GET", "/f/sub/b.txt").send().await.unwrap().status(), 200, "the source keeps all");
    // Never onto the source, however the Destination spells it (`//f/` deleted it in review).
    for to in ["/dav//f/", "/dav/f", "/dav//f/sub/../"] {
        let r = dav(&c, &s, "COPY", "/f/sub/").header("Destination", s.url(to)).header("Depth", "0").send().await;
        assert!(r.unwrap().status().is_client_error(), "{to}");
        let r = dav(&c, &s, "COPY", "/f/").header("Destination", s.url(to)).header("Depth", "0").send().await;
        assert!(r.unwrap().status().is_client_error(), "{to}");
    }
    assert_eq!(dav(&c, &s, "GET", "/f/sub/b.txt").send().await.unwrap().status(), 200, "the source keeps all");
    assert_eq!(usage().await, 4, "what /g held is no longer counted");

    // A lock deep inside binds the folder's deletion; its token lets it go.
    let r = dav(&c, &s, "LOCK", "/f/sub/b.txt").body(lock_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().trim_matches(|c| c == '<' || c == '>').to_owned();
    assert_eq!(dav(&c, &s, "DELETE", "/f/").send().await.unwrap().status(), 423);
    assert_eq!(dav(&c, &s, "GET", "/f/a.txt").send().await.unwrap().status(), 200, "nothing went");
    assert_eq!(dav(&c, &s, "DELETE", "/g/").header("Depth", "0").send().await.unwrap().status(), 400);
    // RFC 4918 §10.4: the token is submitted for the locked member, as a tagged list.
    let tagged = format!("<{}> (<{token}>)", s.url("/dav/f/sub/b.txt"));
    let r = dav(&c, &s, "DELETE", "/f/").header("If", tagged).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(dav(&c, &s, "GET", "/f/sub/b.txt").send().await.unwrap().status(), 404);
    assert_eq!(usage().await, 0, "the usage drops with the delete");
    assert_eq!(dav(&c, &s, "DELETE", "/f/").send().await.unwrap().status(), 404);
    assert_eq!(dav(&c, &s, "DELETE", "/").send().await.unwrap().status(), 403);
    s.stop().await;
}

/// Found by probing: an If-Range naming another version answered the range's bytes padded
/// with zeros as the whole file; DELETE ignored If-Unmodified-Since; two PUTs holding the same
/// ETag could both win; a LOCK without Timeout never expired; OPTIONS offered partial updates
/// answered with 405.
#[tokio::test]
async fn validators_and_conditions_hold_on_every_method() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "PUT", "/rg.txt").body("0123456789").send().await.unwrap().status(), 201);
    let head = dav(&c, &s, "HEAD", "/rg.txt").send().await.unwrap();
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    let modified = head.headers()["last-modified"].to_str().unwrap().to_owned();
    for (if_range, want) in [
        (etag.as_str(), (206, "234")),
        (modified.as_str(), (206, "234")),
        ("\"other\"", (200, "0123456789")),
        (&format!("W/{etag}"), (200, "0123456789")),
        ("Mon, 01 Jan 2001 00:00:00 GMT", (200, "0123456789")),
    ] {
        for url in [s.url("/dav/rg.txt"), s.url("/api/v1/files/rg.txt")] {
            let r = c
                .get(&url)
                .basic_auth("alice", Some(PASSWORD))
                .header("Range", "bytes=2-4")
                .header("If-Range", if_range);
            let r = r.send().await.unwrap();
            let got = (r.status().as_u16(), r.text().await.unwrap());
            assert_eq!((got.0, got.1.as_str()), want, "{url} If-Range: {if_range}");
        }
    }

    // If-None-Match compares weakly: W/"tag" is the file's tag, a 304 for a cached copy.
    for (inm, want) in [(format!("W/{etag}"), 304), (format!("\"zz\", W/{etag}"), 304), ("W/\"zz\"".into(), 200)] {
        let r = dav(&c, &s, "GET", "/rg.txt").header("If-None-Match", &inm).send().await.unwrap();
        assert_eq!(r.status(), want, "If-None-Match: {inm}");
    }
    // A path ending in / names a folder: no file is reached there, none is made there, and a
    // LOCK that would make one needs its folder.
    for m in ["GET", "DELETE", "PROPPATCH", "LOCK"] {
        assert_eq!(dav(&c, &s, m, "/rg.txt/").send().await.unwrap().status(), 404, "{m} /rg.txt/");
    }
    let r = dav(&c, &s, "PROPFIND", "/rg.txt/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(dav(&c, &s, "PUT", "/made/").body("x").send().await.unwrap().status(), 409);
    let lock = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    for path in ["/made/", "/missing/x.txt", "/rg.txt/x.txt"] {
        assert_eq!(dav(&c, &s, "LOCK", path).body(lock).send().await.unwrap().status(), 409, "LOCK {path}");
    }
    let r = dav(&c, &s, "PROPFIND", "/made").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing was made");

    // A date the file changed after refuses a delete or a move, and leaves it.
    let long_ago = "Mon, 01 Jan 2001 00:00:00 GMT";
    let r = dav(&c, &s, "DELETE", "/rg.txt").header("If-Unmodified-Since", long_ago).send().await.unwrap();
    assert_eq!(r.status(), 412);
    let r = dav(&c, &s, "MOVE", "/rg.txt").header("Destination", s.url("/dav/moved.txt"));
    assert_eq!(r.header("If-Unmodified-Since", long_ago).send().await.unwrap().status(), 412);
    let r = dav(&c, &s, "MOVE", "/rg.txt").header("Destination", s.url("/dav/moved.txt"));
    assert_eq!(r.header("If-Match", "\"other\"").send().await.unwrap().status(), 412);
    assert_eq!(dav(&c, &s, "GET", "/rg.txt").send().await.unwrap().text().await.unwrap(), "0123456789");

    // Of writers holding the same ETag, exactly one wins (bounded: 3 rounds of 4).
    for round in 0..3 {
        let r = dav(&c, &s, "PUT", "/race.txt").body(format!("round {round}")).send().await.unwrap();
        assert!(r.status().is_success());
        let etag = dav(&c, &s, "HEAD", "/race.txt").send().await.unwrap().headers()["etag"].clone();
        let puts = (0..4).map(|i| {
            let r = dav(&c, &s, "PUT", "/race.txt").header("If-Match", etag.clone()).body(format!("writer {i}"));
            async move { r.send().await.unwrap().status().as_u16() }
        });
        let mut got = futures::future::join_all(puts).await;
        got.sort_unstable();
        assert_eq!(got, [204, 412, 412, 412], "round {round}");
    }

    // A lock asked without a Timeout gets the bound, as one asked for ever does.
    let lock = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let r = dav(&c, &s, "LOCK", "/race.txt").body(lock).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<D:timeout>Second-600</D:timeout>"));

    let r = dav(&c, &s, "OPTIONS", "/race.txt").send().await.unwrap();
    let (dav_classes, allow) = (r.headers()["dav"].to_str().unwrap(), r.headers()["allow"].to_str().unwrap());
    assert!(!dav_classes.contains("partialupdate") && !allow.contains("PATCH"), "{dav_classes} / {allow}");
    s.stop().await;
}

/// Found by probing: a PROPFIND naming properties got the named dead ones twice, propname
/// their values; dead properties had no bound (a 1,000-byte quota held
/// 25 MB of them); a Depth 0 lock on a folder let anyone add and remove its members.
#[tokio::test]
async fn properties_answer_what_was_asked_and_folder_locks_guard_members() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "PUT", "/p.txt").body("x").send().await.unwrap().status(), 201);
    let patch = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:one>first</Z:one><Z:two>second</Z:two></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(dav(&c, &s, "PROPPATCH", "/p.txt").body(patch).send().await.unwrap().status(), 207);
    let find = |body: &'static str| {
        let r = dav(&c, &s, "PROPFIND", "/p.txt").header("Depth", "0").body(body);
        async move {
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 207);
            r.text().await.unwrap()
        }
    };
    let named =
        find(r#"<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><D:getetag/><Z:one/></D:prop></D:propfind>"#).await;
    assert_eq!(named.matches("first").count(), 1, "{named}");
    assert!(named.contains("getetag"), "{named}");
    let names = find(r#"<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#).await;
    assert!(names.contains("one") && names.contains("two"), "{names}");
    assert!(!names.contains("first") && !names.contains("second"), "propname sends no values: {names}");
    let all = find(r#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#).await;
    assert!(all.contains("first") && all.contains("second"), "{all}");

    // Properties are bounded per item; what was there stays.
    let big = "v".repeat(40_000);
    let mut refused = false;
    for i in 0..3 {
        let patch = format!(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:big{i}>{big}</Z:big{i}></D:prop></D:set></D:propertyupdate>"#
        );
        let status = dav(&c, &s, "PROPPATCH", "/p.txt").body(patch).send().await.unwrap().status();
        if i == 0 {
            assert_eq!(status, 207);
        } else {
            refused |= status == 507;
        }
    }
    assert!(refused, "a second 40 KB property goes past the bound");
    let all = find(r#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#).await;
    assert!(all.contains("first") && all.len() < 100_000, "{}", all.len());

    // A Depth 0 lock on a folder: its members cannot come or go without the token; a member's
    // content can change.
    assert_eq!(dav(&c, &s, "MKCOL", "/d0").send().await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "PUT", "/d0/m.txt").body("m").send().await.unwrap().status(), 201);
    let lock = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let r = dav(&c, &s, "LOCK", "/d0/").header("Depth", "0").body(lock).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_owned();
    assert_eq!(dav(&c, &s, "PUT", "/d0/new.txt").body("n").send().await.unwrap().status(), 423);
    assert_eq!(dav(&c, &s, "MKCOL", "/d0/sub").send().await.unwrap().status(), 423);
    assert_eq!(dav(&c, &s, "DELETE", "/d0/m.txt").send().await.unwrap().status(), 423);
    let out = dav(&c, &s, "MOVE", "/d0/m.txt").header("Destination", s.url("/dav/out.txt"));
    assert_eq!(out.send().await.unwrap().status(), 423);
    assert_eq!(dav(&c, &s, "PUT", "/d0/m.txt").body("changed").send().await.unwrap().status(), 204);
    let tagged = format!("<{}> (<{}>)", s.url("/dav/d0/"), token.trim_matches(['<', '>']));
    let with = dav(&c, &s, "PUT", "/d0/new.txt").header("If", tagged);
    assert_eq!(with.body("n").send().await.unwrap().status(), 201, "the token lets the holder add");
    s.stop().await;
}

/// The answer to a PROPFIND of the folder, and whether davit wrote it itself: its answer is
/// one buffer of known length, dav-server's is streamed in chunks.
async fn listing(c: &Client, s: &TestServer, asked: (&str, &'static str)) -> (String, bool) {
    let (answer, own, location) = listing_at(c, s, "/d%20x/", asked).await;
    assert_eq!(location, None);
    (answer, own)
}

/// [`listing`] of `path`, with the Content-Location of the answer.
async fn listing_at(
    c: &Client,
    s: &TestServer,
    path: &str,
    (agent, body): (&str, &'static str),
) -> (String, bool, Option<String>) {
    let r = dav(c, s, "PROPFIND", path).header("Depth", "1").header("User-Agent", agent).body(body);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert_eq!(r.headers()["content-type"], "application/xml; charset=utf-8");
    let own = r.headers().contains_key("content-length");
    assert_eq!(own, !r.headers().contains_key("transfer-encoding"));
    let location = r.headers().get("content-location").map(|v| v.to_str().unwrap().to_owned());
    (r.text().await.unwrap(), own, location)
}

const WINDOWS: &str = "Microsoft-WebDAV-MiniRedir/10.0.19045";

/// Named properties as clients ask them (rclone's, davfs2's, in neon's form as litmus, with
/// the `D:` prefix, other namespaces, Microsoft's), and Windows' `allprop`: answered by davit
/// itself (the unit test in `propfind.rs` holds which bodies are), with the User-Agent sent.
const ASKED: [(&str, &str); 12] = [
    (WINDOWS, ""),
    (WINDOWS, r#"<?xml version="1.0" encoding="utf-8" ?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#),
    (
        "any",
        r#"<D:propfind xmlns:D="DAV:"><D:prop><Z:Win32LastModifiedTime xmlns:Z="urn:schemas-microsoft-com:"/><Z:Win32FileAttributes xmlns:Z="urn:schemas-microsoft-com:"/><Z:Win32LastAccessTime xmlns:Z="urn:schemas-microsoft-com:"/><Z:Win32CreationTime xmlns:Z="urn:schemas-microsoft-com:"/><D:resourcetype/></D:prop></D:propfind>"#,
    ),
    // rclone 1.60's with its owncloud and nextcloud vendors (with the others: no body).
    (
        "rclone/v1.60.1",
        "<?xml version=\"1.0\"?>\n<d:propfind  xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\n <d:prop>\n  <d:displayname />\n  <d:getlastmodified />\n  <d:getcontentlength />\n  <d:resourcetype />\n  <d:getcontenttype />\n  <oc:checksums />\n </d:prop>\n</d:propfind>\n",
    ),
    (
        "any",
        r#"<D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop><x:color/><D:getetag/><D:resourcetype/><D:unknown/><none xmlns=""/></D:prop></D:propfind>"#,
    ),
    // davfs2 1.6.1's (neon 0.32).
    (
        "davfs2/1.6.1 neon/0.32.5",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<propfind xmlns=\"DAV:\"><prop>\n<resourcetype xmlns=\"DAV:\"/>\n<getcontentlength xmlns=\"DAV:\"/>\n<getetag xmlns=\"DAV:\"/>\n<getlastmodified xmlns=\"DAV:\"/>\n<executable xmlns=\"http://apache.org/dav/props/\"/>\n</prop></propfind>\n",
    ),
    (
        "any",
        r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><getcontentlength xmlns="DAV:"/><getlastmodified xmlns="DAV:"/><resourcetype xmlns="DAV:"/><getetag xmlns="DAV:"/></prop></propfind>"#,
    ),
    (
        "any",
        r#"<D:propfind xmlns:D="DAV:" xmlns="DAV:"><D:prop><D:resourcetype/><resourcetype/><creationdate/></D:prop></D:propfind>"#,
    ),
    (
        "any",
        r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/></D:prop></D:propfind>"#,
    ),
    (
        "any",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:propfind xmlns:D=\"DAV:\">\n <D:prop>\n  <D:displayname/>\n  <D:creationdate/>\n  <D:getcontenttype/>\n  <D:supportedlock/>\n  <D:lockdiscovery/>\n  <D:getcontentlanguage/>\n  <D:getetag/>\n  <D:getetag/>\n </D:prop>\n</D:propfind>\n",
    ),
    ("any", r#"<D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>"#),
    ("any", r#"<D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>"#),
];

/// A plain PROPFIND of a folder (`allprop`, or named live properties) is written by davit
/// itself (for speed): it is byte for byte what dav-server answers, which it still does when
/// a lock exists.
#[tokio::test]
async fn plain_listings_are_the_same_as_dav_servers() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    assert_eq!(dav(&c, &s, "MKCOL", "/d%20x").send().await.unwrap().status(), 201);
    assert_eq!(dav(&c, &s, "MKCOL", "/d%20x/sub").send().await.unwrap().status(), 201);
    for name in ["a.txt", "b.bin", "x%20y%26z%C3%A9.pdf", "noext", ".hidden"] {
        let r = dav(&c, &s, "PUT", &format!("/d%20x/{name}")).body("content").send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let allprop = ("any", r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#);
    let ours = listing(&c, &s, allprop).await;
    assert!(ours.1, "written by davit");
    assert_eq!(ours, listing(&c, &s, ("any", "")).await, "an empty body is allprop");
    let ours = ours.0;
    assert_eq!(ours.matches("<D:response>").count(), 7);
    assert!(!ours.contains("Win32"), "Microsoft's properties only for Microsoft");
    let mut named = Vec::new();
    for asked in ASKED {
        let (answer, own) = listing(&c, &s, asked).await;
        assert!(own, "written by davit: {asked:?}");
        named.push(answer);
    }
    assert_eq!(named[8].matches("<D:getcontentlength>").count(), 5, "files have lengths, folders none: {}", named[8]);
    assert_eq!(named[8].matches("<D:getetag>").count(), 7, "{}", named[8]);
    let blank = dav(&c, &s, "PROPFIND", "/d%20x/").header("Depth", "1").body(" \n").send().await.unwrap();
    assert_eq!(blank.status(), 400, "whitespace is not XML");
    // Asked without its slash, the folder's answer names its URL (Content-Location).
    let no_slash = listing_at(&c, &s, "/d%20x", allprop).await;
    assert_eq!((no_slash.1, no_slash.2.as_deref()), (true, Some("/dav/d%20x/")));
    // Windows' `allprop`: hidden for a leading dot, then folder or archive.
    assert_eq!(named[0].matches("<Z:Win32FileAttributes>00000010<").count(), 2, "{}", named[0]);
    assert_eq!(named[0].matches("<Z:Win32FileAttributes>00000020<").count(), 4);
    assert_eq!(named[0].matches("<Z:Win32FileAttributes>00000022<").count(), 1);
    // A lock elsewhere sends the same requests to dav-server.
    assert_eq!(dav(&c, &s, "PUT", "/locked.txt").body("x").send().await.unwrap().status(), 201);
    let r = dav(&c, &s, "LOCK", "/locked.txt").body(lock_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(listing(&c, &s, allprop).await, (ours, false));
    for (asked, ours) in ASKED.into_iter().zip(named) {
        assert_eq!(listing(&c, &s, asked).await, (ours, false), "{asked:?}");
    }
    assert_eq!(listing_at(&c, &s, "/d%20x", allprop).await, (no_slash.0, false, no_slash.2));
    // A body of whitespace is not XML: refused, as dav-server does, lock or not.
    let blank = dav(&c, &s, "PROPFIND", "/d%20x/").header("Depth", "1").body(" \n").send().await.unwrap();
    assert_eq!(blank.status(), 400);
    // A property whose value is not the entry's alone goes to dav-server.
    let quota = ("any", r#"<D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/></D:prop></D:propfind>"#);
    assert!(!listing(&c, &s, quota).await.1);
    s.stop().await;
}
