//! Sharing and links across protocols: a grant made over REST is read over WebDAV and S3,
//! writes follow its permission, revocation and deletion end access on the next request,
//! and links expire, count and ask for their passwords.

use std::time::Duration;

use davit_storage::Role;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::s3_sign::Signer;
use crate::support::{self, Options, PASSWORD, TestServer};

fn m(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

async fn api(c: &Client, s: &TestServer, method: &str, path: &str, user: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = c.request(m(method), s.url(path)).basic_auth(user, Some(PASSWORD));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

/// Uploads over REST, making the parent folders first (REST does not imply them).
async fn put_rest(c: &Client, s: &TestServer, user: &str, path: &str, body: &str) -> u16 {
    let names: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for i in 1..names.len() {
        let folder = format!("/{}", names[..i].join("/"));
        api(c, s, "POST", "/api/v1/mkdir", user, Some(json!({ "path": folder }))).await;
    }
    let r = c.put(s.url(&format!("/api/v1/files{path}"))).basic_auth(user, Some(PASSWORD)).body(body.to_owned());
    r.send().await.unwrap().status().as_u16()
}

async fn get_rest(c: &Client, s: &TestServer, user: &str, path: &str) -> (u16, String) {
    let r = c.get(s.url(&format!("/api/v1/files{path}"))).basic_auth(user, Some(PASSWORD)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn dav(c: &Client, s: &TestServer, user: &str, method: &str, path: &str) -> reqwest::RequestBuilder {
    c.request(m(method), s.url(&format!("/dav{path}"))).basic_auth(user, Some(PASSWORD))
}

/// Bob's S3 key, signing as SDKs do (path style, UNSIGNED-PAYLOAD).
async fn s3_key(s: &TestServer, user: &str) -> Signer {
    let u = s.storage.find_user(user).await.unwrap();
    let (k, secret) = s.storage.create_access_key(u.id).await.unwrap();
    Signer { base: s.base.clone(), key: k.id, secret, client: support::client() }
}

fn s3(key: &Signer, method: &str, path: &str, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
    key.request(m(method), path, query, &[], "UNSIGNED-PAYLOAD")
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

fn users() -> Vec<(&'static str, Role)> {
    vec![
        ("admin", Role::Admin),
        ("alice", Role::User),
        ("bob", Role::User),
        ("carol", Role::Downloader),
        ("ursula", Role::Uploader),
    ]
}

#[tokio::test]
async fn a_grant_reaches_every_protocol_follows_its_permission_and_ends_at_once() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    assert_eq!(put_rest(&c, &s, "alice", "/docs/report.txt", "quarterly").await, 201);
    assert_eq!(put_rest(&c, &s, "alice", "/docs/sub/a.txt", "aaa").await, 201);
    let bob_s3 = s3_key(&s, "bob").await;

    // Refusals: oneself, a missing user, another's path.
    let (st, v) =
        api(&c, &s, "POST", "/api/v1/shares", "alice", Some(json!({ "path": "/docs", "user": "alice" }))).await;
    assert_eq!((st, v["code"].as_str()), (400, Some("invalid_input")), "{v}");
    let (st, _) =
        api(&c, &s, "POST", "/api/v1/shares", "alice", Some(json!({ "path": "/docs", "user": "nobody" }))).await;
    assert_eq!(st, 404);

    // By email here; by username elsewhere.
    let (st, share) = api(
        &c,
        &s,
        "POST",
        "/api/v1/shares",
        "alice",
        Some(json!({ "path": "/docs", "user": "bob@example.test", "permission": "read" })),
    )
    .await;
    assert_eq!(st, 201, "{share}");
    let id = share["id"].as_u64().unwrap();
    assert_eq!((share["permission"].as_str(), share["user"].as_str()), (Some("read"), Some("bob")));

    // Read over REST, WebDAV and S3.
    assert_eq!(get_rest(&c, &s, "bob", "/shared/alice/docs/report.txt").await, (200, "quarterly".into()));
    let r = dav(&c, &s, "bob", "GET", "/shared/alice/docs/sub/a.txt").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "aaa".into()));
    let r = dav(&c, &s, "bob", "PROPFIND", "/shared/").header("Depth", "1").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 207);
    assert!(r.text().await.unwrap().contains("/dav/shared/alice/"));
    let r = s3(&bob_s3, "GET", "/shared/alice/docs/report.txt", &[]).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "quarterly".into()));
    let r = s3(&bob_s3, "GET", "/shared", &[("list-type", "2")]).send().await.unwrap();
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<Key>alice/docs/report.txt</Key>") && xml.contains("<Key>alice/docs/sub/a.txt</Key>"),
        "{xml}"
    );
    let (_, list) = api(&c, &s, "GET", "/api/v1/files/shared/alice", "bob", None).await;
    assert_eq!(list["items"][0]["name"], "docs", "{list}");

    // Read-only: every protocol refuses writes.
    assert_eq!(put_rest(&c, &s, "bob", "/shared/alice/docs/x.txt", "x").await, 403);
    assert_eq!(status(dav(&c, &s, "bob", "PUT", "/shared/alice/docs/x.txt").body("x")).await, 403);
    assert_eq!(status(dav(&c, &s, "bob", "MKCOL", "/shared/alice/docs/new")).await, 403);
    assert_eq!(status(dav(&c, &s, "bob", "DELETE", "/shared/alice/docs/report.txt")).await, 403);
    // A lock would freeze the owner's file: only who may write may take one.
    let lock = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    assert_eq!(status(dav(&c, &s, "bob", "LOCK", "/shared/alice/docs/report.txt").body(lock)).await, 403);
    let r = s3(&bob_s3, "PUT", "/shared/alice/docs/x.txt", &[]).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("<Code>AccessDenied</Code>"));

    // Read-write: writes land in alice's drive and count against her quota.
    let before = s.storage.usage(s.storage.find_user("alice").await.unwrap().id).await.unwrap();
    let (st, v) =
        api(&c, &s, "PATCH", &format!("/api/v1/shares/{id}"), "alice", Some(json!({ "permission": "read-write" })))
            .await;
    assert_eq!((st, v["permission"].as_str()), (200, Some("read-write")));
    assert_eq!(status(dav(&c, &s, "bob", "PUT", "/shared/alice/docs/from-dav.txt").body("dav!")).await, 201);
    assert_eq!(status(s3(&bob_s3, "PUT", "/shared/alice/docs/s3/deep.txt", &[]).body("s3!")).await, 200);
    assert_eq!(put_rest(&c, &s, "bob", "/shared/alice/docs/rest.txt", "rest").await, 201);
    assert_eq!(status(dav(&c, &s, "bob", "MKCOL", "/shared/alice/docs/made")).await, 201);
    assert_eq!(get_rest(&c, &s, "alice", "/docs/s3/deep.txt").await, (200, "s3!".into()));
    let after = s.storage.usage(s.storage.find_user("alice").await.unwrap().id).await.unwrap();
    assert_eq!(after.bytes, before.bytes + 4 + 3 + 4);
    // The shared item itself stays its owner's.
    assert_eq!(status(dav(&c, &s, "bob", "DELETE", "/shared/alice/docs")).await, 403);

    // Moving from one's drive into the share moves no data; the quota follows the owner.
    assert_eq!(put_rest(&c, &s, "bob", "/mine.txt", "12345").await, 201);
    let bob_id = s.storage.find_user("bob").await.unwrap().id;
    assert_eq!(s.storage.usage(bob_id).await.unwrap().bytes, 5);
    let r = dav(&c, &s, "bob", "MOVE", "/mine.txt")
        .header("Destination", s.url("/dav/shared/alice/docs/mine.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(s.storage.usage(bob_id).await.unwrap().bytes, 0);
    assert_eq!(get_rest(&c, &s, "alice", "/docs/mine.txt").await, (200, "12345".into()));

    // Who has access; what bob sees.
    assert_eq!(get_rest(&c, &s, "alice", "/docs/report.txt").await, (200, "quarterly".into()));
    let (_, who) = api(&c, &s, "GET", "/api/v1/shares/by-path?path=/docs/report.txt", "alice", None).await;
    assert_eq!(who["access"][0]["user"], "bob", "{who}");
    assert_eq!(who["access"][0]["inherited_from"], "/docs");
    let (_, lists) = api(&c, &s, "GET", "/api/v1/shares", "bob", None).await;
    assert_eq!(lists["shared_with_me"][0]["path"], "/shared/alice/docs", "{lists}");

    // Revoked: the next request over each protocol is refused.
    let (st, _) = api(&c, &s, "DELETE", &format!("/api/v1/shares/{id}"), "alice", None).await;
    assert_eq!(st, 204);
    assert_eq!(get_rest(&c, &s, "bob", "/shared/alice/docs/report.txt").await.0, 404);
    assert_eq!(status(dav(&c, &s, "bob", "GET", "/shared/alice/docs/report.txt")).await, 404);
    assert_eq!(status(s3(&bob_s3, "GET", "/shared/alice/docs/report.txt", &[])).await, 404);
    assert_eq!(status(dav(&c, &s, "bob", "PUT", "/shared/alice/docs/late.txt").body("x")).await, 403);

    // A downloader reads what it was given and never writes, even with read-write.
    let (st, _) = api(
        &c,
        &s,
        "POST",
        "/api/v1/shares",
        "alice",
        Some(json!({ "path": "/docs", "user": "carol", "permission": "read-write" })),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(get_rest(&c, &s, "carol", "/shared/alice/docs/report.txt").await, (200, "quarterly".into()));
    assert_eq!(put_rest(&c, &s, "carol", "/shared/alice/docs/c.txt", "c").await, 403);
    assert_eq!(put_rest(&c, &s, "carol", "/own.txt", "c").await, 403);

    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}

#[tokio::test]
async fn grants_follow_ids_names_stay_distinct_and_the_wider_right_wins() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    for p in ["/a/report.txt", "/b/report.txt", "/x/y/in.txt", "/x/top.txt"] {
        assert_eq!(put_rest(&c, &s, "alice", p, p).await, 201);
    }
    for (path, perm) in [("/a/report.txt", "read"), ("/b/report.txt", "read"), ("/x", "read"), ("/x/y", "read-write")] {
        let (st, v) = api(
            &c,
            &s,
            "POST",
            "/api/v1/shares",
            "alice",
            Some(json!({ "path": path, "user": "bob", "permission": perm })),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let (_, list) = api(&c, &s, "GET", "/api/v1/files/shared/alice", "bob", None).await;
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["report (2).txt", "report.txt", "x"], "{list}");
    assert_eq!(get_rest(&c, &s, "bob", "/shared/alice/report (2).txt").await, (200, "/b/report.txt".into()));
    // Inside x only y is writable: the nested grant widens, and x/y appears once.
    assert_eq!(put_rest(&c, &s, "bob", "/shared/alice/x/y/new.txt", "n").await, 201);
    assert_eq!(put_rest(&c, &s, "bob", "/shared/alice/x/new.txt", "n").await, 403);
    // Renaming keeps the grant.
    let (st, _) =
        api(&c, &s, "POST", "/api/v1/move", "alice", Some(json!({ "from": "/a/report.txt", "to": "/a/renamed.txt" })))
            .await;
    assert_eq!(st, 201);
    assert_eq!(get_rest(&c, &s, "bob", "/shared/alice/renamed.txt").await, (200, "/a/report.txt".into()));

    // Transfer: the item moves to bob's drive with its grants; alice loses it.
    let (st, _) =
        api(&c, &s, "POST", "/api/v1/shares", "alice", Some(json!({ "path": "/b/report.txt", "user": "carol" }))).await;
    assert_eq!(st, 201);
    let (st, v) =
        api(&c, &s, "POST", "/api/v1/transfers", "alice", Some(json!({ "path": "/b/report.txt", "user": "bob" })))
            .await;
    assert_eq!((st, v["path"].as_str()), (200, Some("/report.txt")), "{v}");
    assert_eq!(get_rest(&c, &s, "bob", "/report.txt").await, (200, "/b/report.txt".into()));
    assert_eq!(get_rest(&c, &s, "alice", "/b/report.txt").await.0, 404);
    assert_eq!(get_rest(&c, &s, "carol", "/shared/bob/report.txt").await, (200, "/b/report.txt".into()));
    let bob = s.storage.usage(s.storage.find_user("bob").await.unwrap().id).await.unwrap();
    assert_eq!(bob.bytes, "/b/report.txt".len() as u64);

    // Deleting an item ends its grants; deleting a user ends all of theirs.
    assert_eq!(status(dav(&c, &s, "alice", "DELETE", "/x")).await, 204);
    assert_eq!(get_rest(&c, &s, "bob", "/shared/alice/x/top.txt").await.0, 404);
    let alice = s.storage.find_user("alice").await.unwrap().id;
    let (st, _) = api(&c, &s, "DELETE", &format!("/api/v1/admin/users/{alice}"), "admin", None).await;
    assert_eq!(st, 204);
    let (_, list) = api(&c, &s, "GET", "/api/v1/files/shared", "bob", None).await;
    assert_eq!(list["items"], json!([]), "{list}");
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}

async fn make_link(c: &Client, s: &TestServer, user: &str, body: Value) -> (u64, String) {
    let (st, v) = api(c, s, "POST", "/api/v1/links", user, Some(body)).await;
    assert_eq!(st, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/s/{}", v["token"].as_str().unwrap())));
    (v["id"].as_u64().unwrap(), v["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn links_expire_count_downloads_and_ask_for_passwords() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    let data = support::pseudo_random(100_000, 7);
    api(&c, &s, "POST", "/api/v1/mkdir", "ursula", Some(json!({ "path": "/pub" }))).await;
    let r = c.put(s.url("/api/v1/files/pub/file.bin")).basic_auth("ursula", Some(PASSWORD)).body(data.clone());
    assert_eq!(r.send().await.unwrap().status(), 201);
    // The uploader cannot download its own file, but can hand out a link to it.
    assert_eq!(get_rest(&c, &s, "ursula", "/pub/file.bin").await.0, 403);

    let (_, token) = make_link(&c, &s, "ursula", json!({ "path": "/pub/file.bin", "expires_in": 2 })).await;
    let r = c.get(s.url(&format!("/s/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("file.bin"));
    assert_eq!(r.bytes().await.unwrap(), data);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = c.get(s.url(&format!("/s/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(c.get(s.url("/s/not-a-token")).send().await.unwrap().status(), 404);

    // Password and a limit of 5 downloads.
    let (id, token) = make_link(
        &c,
        &s,
        "ursula",
        json!({ "path": "/pub/file.bin", "expires_in": 600, "password": "open sesame", "max_downloads": 5 }),
    )
    .await;
    let url = s.url(&format!("/s/{token}"));
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(c.get(&url).basic_auth("x", Some("wrong")).send().await.unwrap().status(), 401);
    let r = c.get(&url).basic_auth("any", Some("open sesame")).header("Range", "bytes=10-19").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().to_vec()), (206, data[10..20].to_vec()));
    assert_eq!(c.head(&url).basic_auth("any", Some("open sesame")).send().await.unwrap().status(), 200);
    // The form earns a cookie that opens the link.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect.post(&url).form(&[("password", "open sesame")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let r = c.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().len()), (200, data.len()));
    // 4 downloads left; 20 at once: exactly 4 get the file.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = c.get(&url).basic_auth("any", Some("open sesame")).send().await.unwrap();
            let st = r.status().as_u16();
            let n = r.bytes().await.map(|b| b.len()).unwrap_or(0);
            (st, n)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, n) => {
                assert_eq!(n, data.len());
                ok += 1;
            }
            (410, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(ok, 4);
    let r = c.get(&url).basic_auth("any", Some("open sesame")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let (_, links) = api(&c, &s, "GET", "/api/v1/links", "ursula", None).await;
    let l = links["links"].as_array().unwrap().iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!((l["downloads"].as_u64(), l["state"].as_str()), (Some(5), Some("used up")), "{l}");

    // Revoked links and links to deleted items answer 410.
    let (id, token) = make_link(&c, &s, "ursula", json!({ "path": "/pub/file.bin", "expires_in": 600 })).await;
    assert_eq!(api(&c, &s, "DELETE", &format!("/api/v1/links/{id}"), "ursula", None).await.0, 204);
    assert_eq!(c.get(s.url(&format!("/s/{token}"))).send().await.unwrap().status(), 410);
    let (_, token) = make_link(&c, &s, "ursula", json!({ "path": "/pub/file.bin", "expires_in": 600 })).await;
    assert_eq!(status(dav(&c, &s, "ursula", "DELETE", "/pub/file.bin")).await, 204);
    assert_eq!(c.get(s.url(&format!("/s/{token}"))).send().await.unwrap().status(), 410);
    // The server caps lifetimes: 30 days here.
    let (st, v) =
        api(&c, &s, "POST", "/api/v1/links", "ursula", Some(json!({ "path": "/pub", "expires_in": 400 * 86400 })))
            .await;
    assert_eq!(st, 201);
    let exp = v["expires_at"].as_str().unwrap();
    assert!(exp < "2100", "{exp}");
    s.stop().await;
}

#[tokio::test]
async fn folder_links_list_serve_mount_and_drop_boxes_never_overwrite() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    assert_eq!(put_rest(&c, &s, "alice", "/album/one.txt", "1").await, 201);
    assert_eq!(put_rest(&c, &s, "alice", "/album/sub/two <b>.txt", "22").await, 201);
    let (_, token) = make_link(&c, &s, "alice", json!({ "path": "/album", "expires_in": 600 })).await;
    let base = s.url(&format!("/s/{token}"));
    let v: Value = c.get(&base).header("accept", "application/json").send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one.txt", "sub"], "{v}");
    let html = c.get(format!("{base}/sub/")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("two &lt;b&gt;.txt") && html.contains("two%20%3Cb%3E.txt"), "{html}");
    let r = c.get(format!("{base}/sub/two%20%3Cb%3E.txt")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "22");
    // Mounted over WebDAV: readable, not writable, nothing outside it reachable.
    let r = c.request(m("PROPFIND"), format!("{base}/")).header("Depth", "1").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 207);
    assert!(r.text().await.unwrap().contains("one.txt"));
    let r = c.put(format!("{base}/new.txt")).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(c.get(format!("{base}/../../api/v1/me")).send().await.unwrap().status().as_u16() / 100, 4);

    // Upload link: a drop box that never overwrites and shows nothing.
    let (_, token) =
        make_link(&c, &s, "alice", json!({ "path": "/album", "expires_in": 600, "permission": "upload" })).await;
    let base = s.url(&format!("/s/{token}"));
    assert_eq!(c.put(format!("{base}/one.txt")).body("not one").send().await.unwrap().status().as_u16(), 201);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text("form").file_name("one.txt"));
    let r = c.post(&base).header("accept", "application/json").multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_rest(&c, &s, "alice", "/album/one.txt").await, (200, "1".into()));
    assert_eq!(get_rest(&c, &s, "alice", "/album/one (2).txt").await, (200, "not one".into()));
    assert_eq!(get_rest(&c, &s, "alice", "/album/one (3).txt").await, (200, "form".into()));
    assert_eq!(c.get(format!("{base}/one.txt")).send().await.unwrap().status(), 404);
    let r = c.request(m("PROPFIND"), format!("{base}/")).header("Depth", "1").send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("one.txt"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn seed_flow_register_verify_login_upload_share_download_over_rest() {
    let smtp = crate::smtp::Smtp::start();
    let s = support::start(Options { smtp_url: Some(smtp.url()), users: users(), ..Default::default() }).await;
    let c = support::client();
    let r = c
        .post(s.url("/api/v1/auth/register"))
        .json(&json!({ "username": "dora", "email": "dora@example.test", "password": "dora-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let code = smtp.code("dora@example.test", 1).await;
    let r =
        c.post(s.url("/api/v1/auth/verify")).json(&json!({ "username": "dora", "code": code })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "username": "dora", "password": "dora-password" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = v["access_token"].as_str().unwrap().to_owned();
    let r = c.put(s.url("/api/v1/files/notes.md")).bearer_auth(&t).body("# notes").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .post(s.url("/api/v1/shares"))
        .bearer_auth(&t)
        .json(&json!({ "path": "/notes.md", "user": "carol" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(get_rest(&c, &s, "carol", "/shared/dora/notes.md").await, (200, "# notes".into()));
    assert_eq!(put_rest(&c, &s, "carol", "/shared/dora/notes.md", "vandal").await, 403);
    s.stop().await;
}

#[tokio::test]
async fn an_uploader_hands_a_document_to_a_downloader_over_every_protocol() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    let doc = support::pseudo_random(300_000, 11);
    api(&c, &s, "POST", "/api/v1/mkdir", "ursula", Some(json!({ "path": "/out" }))).await;
    let r = c.put(s.url("/api/v1/files/out/contract.pdf")).basic_auth("ursula", Some(PASSWORD)).body(doc.clone());
    assert_eq!(r.send().await.unwrap().status(), 201);
    let (st, _) =
        api(&c, &s, "POST", "/api/v1/shares", "ursula", Some(json!({ "path": "/out", "user": "carol" }))).await;
    assert_eq!(st, 201);
    let (_, token) = make_link(&c, &s, "ursula", json!({ "path": "/out/contract.pdf", "expires_in": 600 })).await;
    let carol_s3 = s3_key(&s, "carol").await;

    // The downloader gets the same bytes over a link, REST, WebDAV and S3.
    let link = c.get(s.url(&format!("/s/{token}"))).send().await.unwrap().bytes().await.unwrap();
    let rest = c
        .get(s.url("/api/v1/files/shared/ursula/out/contract.pdf"))
        .basic_auth("carol", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let webdav =
        dav(&c, &s, "carol", "GET", "/shared/ursula/out/contract.pdf").send().await.unwrap().bytes().await.unwrap();
    let r = s3(&carol_s3, "GET", "/shared/ursula/out/contract.pdf", &[]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let over_s3 = r.bytes().await.unwrap();
    for (how, got) in [("link", &link), ("REST", &rest), ("WebDAV", &webdav), ("S3", &over_s3)] {
        assert_eq!(got.as_ref(), doc.as_slice(), "over {how}");
    }
    // And is refused every upload.
    assert_eq!(put_rest(&c, &s, "carol", "/shared/ursula/out/mine.pdf", "x").await, 403);
    assert_eq!(status(dav(&c, &s, "carol", "PUT", "/shared/ursula/out/mine.pdf").body("x")).await, 403);
    assert_eq!(status(s3(&carol_s3, "PUT", "/shared/ursula/out/mine.pdf", &[]).body("x")).await, 403);
    assert_eq!(c.put(s.url(&format!("/s/{token}/mine.pdf"))).body("x").send().await.unwrap().status(), 405);

    // Deleting the owner ends the grant and the link.
    let ursula = s.storage.find_user("ursula").await.unwrap().id;
    assert_eq!(api(&c, &s, "DELETE", &format!("/api/v1/admin/users/{ursula}"), "admin", None).await.0, 204);
    assert_eq!(c.get(s.url(&format!("/s/{token}"))).send().await.unwrap().status(), 410);
    assert_eq!(status(dav(&c, &s, "carol", "GET", "/shared/ursula/out/contract.pdf")).await, 404);
    let r = s3(&carol_s3, "GET", "/shared", &[("list-type", "2")]).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("<Key>"));
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}

#[tokio::test]
async fn grantees_links_and_neighbours_cannot_destroy_or_freeze_what_is_not_theirs() {
    let s = support::start(Options { users: users(), ..Default::default() }).await;
    let c = support::client();
    assert_eq!(put_rest(&c, &s, "alice", "/f/keep.txt", "keep").await, 201);
    assert_eq!(put_rest(&c, &s, "bob", "/x.txt", "bob's").await, 201);
    let (st, share) = api(
        &c,
        &s,
        "POST",
        "/api/v1/shares",
        "alice",
        Some(json!({ "path": "/f", "user": "bob", "permission": "read-write" })),
    )
    .await;
    assert_eq!(st, 201);

    // A read-write grantee cannot replace the granted folder itself by a move or a copy.
    for op in ["/api/v1/move", "/api/v1/copy"] {
        let body = json!({ "from": "/x.txt", "to": "/shared/alice/f", "overwrite": true });
        assert_eq!(api(&c, &s, "POST", op, "bob", Some(body)).await.0, 403, "{op}");
    }
    assert_eq!(get_rest(&c, &s, "alice", "/f/keep.txt").await, (200, "keep".into()));
    // Over WebDAV neither, with a folder or a file, and the refusal is the whole answer (found
    // by probing: the MOVE of an empty folder deleted the granted folder's members one by
    // one, then answered 207 with the folder itself refused).
    assert_eq!(status(dav(&c, &s, "bob", "MKCOL", "/empty/")).await, 201);
    for (op, from) in [("MOVE", "/empty/"), ("MOVE", "/x.txt"), ("COPY", "/x.txt"), ("COPY", "/empty/")] {
        let r = dav(&c, &s, "bob", op, from).header("Destination", s.url("/dav/shared/alice/f/"));
        assert_eq!(status(r).await, 403, "{op} {from}");
    }
    assert_eq!(get_rest(&c, &s, "alice", "/f/keep.txt").await, (200, "keep".into()));
    // Nor can anyone replace a folder by something inside it.
    let body = json!({ "from": "/f/keep.txt", "to": "/f", "overwrite": true });
    assert_eq!(api(&c, &s, "POST", "/api/v1/copy", "alice", Some(body.clone())).await.0, 409);
    assert_eq!(api(&c, &s, "POST", "/api/v1/move", "alice", Some(body)).await.0, 409);
    assert_eq!(get_rest(&c, &s, "alice", "/f/keep.txt").await, (200, "keep".into()));

    // Locks: the same path in another drive is another item; only writers lock or unlock;
    // links do neither.
    let lock = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let r = dav(&c, &s, "alice", "LOCK", "/x.txt").header("Timeout", "Second-600").body(lock).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let token = r.headers()["lock-token"].to_str().unwrap().trim_matches(['<', '>']).to_owned();
    assert_eq!(status(dav(&c, &s, "bob", "DELETE", "/x.txt")).await, 204);
    assert_eq!(put_rest(&c, &s, "alice", "/x.txt", "no token").await, 423, "alice's lock survives bob's delete");
    assert_eq!(put_rest(&c, &s, "carol", "/x.txt", "x").await, 403);
    let (st, _) =
        api(&c, &s, "POST", "/api/v1/shares", "alice", Some(json!({ "path": "/x.txt", "user": "carol" }))).await;
    assert_eq!(st, 201);
    let r = dav(&c, &s, "carol", "UNLOCK", "/shared/alice/x.txt").header("Lock-Token", format!("<{token}>"));
    assert_eq!(status(r).await, 403, "a read-only grantee cannot lift the owner's lock");
    // Nor a read-write one: 403, the core's refusal (dav-server answered 409 for it), where a
    // token of no lock on the resource is 409 with RFC 4918's precondition.
    let r =
        dav(&c, &s, "alice", "LOCK", "/f/keep.txt").header("Timeout", "Second-600").body(lock).send().await.unwrap();
    let kept = r.headers()["lock-token"].to_str().unwrap().trim_matches(['<', '>']).to_owned();
    let r = dav(&c, &s, "bob", "UNLOCK", "/shared/alice/f/keep.txt").header("Lock-Token", format!("<{kept}>"));
    assert_eq!(status(r).await, 403, "a read-write grantee cannot lift the owner's lock");
    let r = dav(&c, &s, "alice", "UNLOCK", "/f/keep.txt").header("Lock-Token", format!("<{token}>"));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("lock-token-matches-request-uri"));
    let r = dav(&c, &s, "alice", "UNLOCK", "/f/keep.txt").header("Lock-Token", format!("<{kept}>"));
    assert_eq!(status(r).await, 204);
    let (_, folder) = make_link(&c, &s, "alice", json!({ "path": "/f", "expires_in": 600 })).await;
    let r = c.request(m("LOCK"), s.url(&format!("/s/{folder}/keep.txt"))).body(lock).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // An upload link writes into its folder only, and says nothing of what is there.
    let (_, drop) =
        make_link(&c, &s, "alice", json!({ "path": "/f", "expires_in": 600, "permission": "upload" })).await;
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text("evil").file_name("/"));
    let r =
        c.post(s.url(&format!("/s/{drop}"))).header("accept", "application/json").multipart(form).send().await.unwrap();
    assert_eq!(r.status().as_u16() / 100, 4);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text("mine").file_name("keep.txt"));
    let r =
        c.post(s.url(&format!("/s/{drop}"))).header("accept", "application/json").multipart(form).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({ "uploaded": 1 }), "no stored names");
    let r = c.request(m("MKCOL"), s.url(&format!("/s/{drop}/keep.txt"))).send().await.unwrap();
    assert_eq!(r.status(), 201, "a taken name answers as a free one");
    // Under a name that is a file, or one that is not there: the same refusal.
    for path in ["keep.txt/x", "nothing/x"] {
        let r = c.put(s.url(&format!("/s/{drop}/{path}"))).body("x").send().await.unwrap();
        let (st, text) = (r.status().as_u16(), r.text().await.unwrap());
        assert!(st == 409 && text.contains("cannot store") && !text.contains("is a file"), "{path}: {st} {text}");
    }
    let (_, root) = api(&c, &s, "GET", "/api/v1/files/", "alice", None).await;
    let names: Vec<&str> = root["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["f", "shared", "x.txt"], "nothing landed beside the drop folder");
    // Nor does it delete or move what is there (found by probing: DELETE answered 204, and 404
    // for a name not there): the same refusal for a taken name and a free one.
    for path in ["keep.txt", "nothing.txt"] {
        let r = c.delete(s.url(&format!("/s/{drop}/{path}"))).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = c.request(m("MOVE"), s.url(&format!("/s/{drop}/keep.txt")));
    let r = r.header("Destination", s.url(&format!("/s/{drop}/moved.txt"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(get_rest(&c, &s, "alice", "/f/keep.txt").await, (200, "keep".into()));

    // A copy out of a read-only grant works; multipart parts stop when the grant goes.
    let (st, _) = api(
        &c,
        &s,
        "PATCH",
        &format!("/api/v1/shares/{}", share["id"]),
        "alice",
        Some(json!({ "permission": "read" })),
    )
    .await;
    assert_eq!(st, 200);
    let body = json!({ "from": "/shared/alice/f/keep.txt", "to": "/copied.txt" });
    assert_eq!(api(&c, &s, "POST", "/api/v1/copy", "bob", Some(body)).await.0, 201);
    assert_eq!(get_rest(&c, &s, "bob", "/copied.txt").await, (200, "keep".into()));
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.stop().await;
}
