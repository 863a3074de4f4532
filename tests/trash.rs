//! The trash over HTTP: WebDAV and REST deletes go to the owner's trash, listed, restored and
//! purged over REST; the quota counts it until purged; S3 deletes keep S3 semantics; expired
//! entries are collected.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, Options, PASSWORD, TestServer};

fn with_trash() -> Options {
    Options { configure: |c| c.ops.trash_days = 30, ..Default::default() }
}

fn as_user(s: &TestServer, user: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    let c = if s.base.starts_with("https") { support::tls_client() } else { support::client() };
    c.request(method, s.url(path)).basic_auth(user, Some(PASSWORD))
}

fn req(s: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    as_user(s, "alice", method, path)
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

async fn trash_of(s: &TestServer, user: &str) -> Vec<Value> {
    let r = as_user(s, user, Method::GET, "/api/v1/trash").send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
}

async fn mkdir(s: &TestServer, path: &str) {
    assert_eq!(status(req(s, Method::POST, "/api/v1/mkdir").json(&json!({ "path": path }))).await, 201);
}

async fn get_text(s: &TestServer, path: &str) -> (u16, String) {
    let r = req(s, Method::GET, &format!("/api/v1/files{path}")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn usage(s: &TestServer) -> (u64, u64) {
    let v: Value = req(s, Method::GET, "/api/v1/usage").send().await.unwrap().json().await.unwrap();
    (v["bytes"].as_u64().unwrap(), v["files"].as_u64().unwrap())
}

/// An RFC 3339 answer as Unix seconds.
fn time(v: &Value) -> i64 {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from_str(v.as_str().unwrap(), DateTimeFormat::DateTime).unwrap().secs()
}

#[tokio::test]
async fn webdav_delete_is_listed_and_restored_over_rest() {
    let s = support::start(with_trash()).await;
    assert_eq!(status(req(&s, Method::from_bytes(b"MKCOL").unwrap(), "/dav/docs")).await, 201);
    assert_eq!(status(req(&s, Method::PUT, "/dav/docs/a.txt").body("hello trash")).await, 201);
    assert_eq!(status(req(&s, Method::DELETE, "/dav/docs/a.txt")).await, 204);
    assert_eq!(get_text(&s, "/docs/a.txt").await.0, 404);
    assert_eq!(usage(&s).await, (11, 0), "the trash keeps counting the bytes");

    let items = trash_of(&s, "alice").await;
    assert_eq!(items.len(), 1, "{items:?}");
    let e = &items[0];
    assert_eq!(
        (e["path"].as_str(), e["kind"].as_str(), e["size"].as_u64()),
        (Some("/docs/a.txt"), Some("file"), Some(11))
    );
    assert_eq!(e["deleted_by"], "alice");
    let kept = time(&e["expires_at"]) - time(&e["deleted_at"]);
    assert!((30 * 86_400 - 1..=30 * 86_400 + 1).contains(&kept), "{kept}");

    let id = e["id"].as_u64().unwrap();
    let r = req(&s, Method::POST, &format!("/api/v1/trash/{id}/restore")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "a.txt");
    assert_eq!(get_text(&s, "/docs/a.txt").await, (200, "hello trash".to_owned()));
    assert!(trash_of(&s, "alice").await.is_empty());
    assert_eq!(usage(&s).await, (11, 1));
    assert_eq!(status(req(&s, Method::POST, &format!("/api/v1/trash/{id}/restore"))).await, 404);
    s.assert_answers_documented();
}

#[tokio::test]
async fn rest_folder_delete_restores_whole_conflicts_and_purges() {
    let s = support::start(Options { default_quota: 100, ..with_trash() }).await;
    mkdir(&s, "/proj").await;
    mkdir(&s, "/proj/sub").await;
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/proj/sub/b.txt").body("b".repeat(30))).await, 201);
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/proj/c.txt").body("c".repeat(30))).await, 201);
    assert_eq!(status(req(&s, Method::DELETE, "/api/v1/files/proj")).await, 204);
    let items = trash_of(&s, "alice").await;
    assert_eq!((items[0]["kind"].as_str(), items[0]["files"].as_u64()), (Some("folder"), Some(2)));
    let id = items[0]["id"].as_u64().unwrap();

    // The quota still counts the trash: 60 of 100 bytes used.
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/new.txt").body("n".repeat(50))).await, 507);
    // Something at the old place: 409; then to a path of one's choosing.
    assert_eq!(status(req(&s, Method::POST, "/api/v1/mkdir").json(&json!({ "path": "/proj" }))).await, 201);
    let restore = format!("/api/v1/trash/{id}/restore");
    assert_eq!(status(req(&s, Method::POST, &restore)).await, 409);
    let r = req(&s, Method::POST, &restore).json(&json!({ "path": "/back/proj" })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_text(&s, "/back/proj/sub/b.txt").await, (200, "b".repeat(30)));
    assert_eq!(get_text(&s, "/back/proj/c.txt").await, (200, "c".repeat(30)));
    let r = req(&s, Method::POST, &restore).json(&json!({ "nonsense": 1 })).send().await.unwrap();
    assert_eq!(r.status(), 400, "unknown fields are refused");

    // Purge one, then empty the rest: the quota is free again.
    assert_eq!(status(req(&s, Method::DELETE, "/api/v1/files/back/proj/c.txt")).await, 204);
    assert_eq!(status(req(&s, Method::DELETE, "/api/v1/files/back")).await, 204);
    let items = trash_of(&s, "alice").await;
    assert_eq!(items.len(), 2);
    let first = items[0]["id"].as_u64().unwrap();
    assert_eq!(status(req(&s, Method::DELETE, &format!("/api/v1/trash/{first}"))).await, 204);
    assert_eq!(usage(&s).await.0, 30);
    assert_eq!(status(req(&s, Method::DELETE, "/api/v1/trash")).await, 204);
    assert!(trash_of(&s, "alice").await.is_empty());
    assert_eq!(usage(&s).await, (0, 0));
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/new.txt").body("n".repeat(90))).await, 201);
    assert_eq!(status(req(&s, Method::DELETE, &format!("/api/v1/trash/{first}"))).await, 404);
    let check = s.storage.check().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    s.assert_answers_documented();
}

#[tokio::test]
async fn a_grantees_delete_lands_in_the_owners_trash() {
    let s = support::start(with_trash()).await;
    mkdir(&s, "/box").await;
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/box/f.txt").body("alice's")).await, 201);
    let share = json!({ "path": "/box", "user": "bob", "permission": "read-write" });
    assert_eq!(status(req(&s, Method::POST, "/api/v1/shares").json(&share)).await, 201);
    assert_eq!(status(as_user(&s, "bob", Method::DELETE, "/dav/shared/alice/box/f.txt")).await, 204);
    assert!(trash_of(&s, "bob").await.is_empty(), "not the deleter's");
    let items = trash_of(&s, "alice").await;
    assert_eq!((items[0]["path"].as_str(), items[0]["deleted_by"].as_str()), (Some("/box/f.txt"), Some("bob")));
    let id = items[0]["id"].as_u64().unwrap();
    let restore = format!("/api/v1/trash/{id}/restore");
    assert_eq!(status(as_user(&s, "bob", Method::POST, &restore)).await, 404, "only the owner restores");
    assert_eq!(status(req(&s, Method::POST, &restore)).await, 200);
    assert_eq!(get_text(&s, "/box/f.txt").await, (200, "alice's".to_owned()));
}

#[tokio::test]
async fn s3_deletes_are_not_trashed() {
    let sdk = crate::s3_sdk::start_with(with_trash()).await;
    sdk.c.create_bucket().bucket("bkt").send().await.unwrap();
    for k in ["k1", "k2"] {
        sdk.c.put_object().bucket("bkt").key(k).body(b"s3 data".to_vec().into()).send().await.unwrap();
    }
    sdk.c.delete_object().bucket("bkt").key("k1").send().await.unwrap();
    assert!(trash_of(&sdk.s, "alice").await.is_empty(), "S3 keeps S3 semantics");
    // The same bucket's object deleted over WebDAV is kept.
    assert_eq!(status(req(&sdk.s, Method::DELETE, "/dav/bkt/k2")).await, 204);
    let items = trash_of(&sdk.s, "alice").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["path"], "/bkt/k2");
}

#[tokio::test]
async fn expired_entries_are_collected() {
    let s = support::start(Options {
        configure: |c| {
            c.ops.trash_days = 2;
            c.ops.trash_day = Duration::from_secs(1);
        },
        ..Default::default()
    })
    .await;
    mkdir(&s, "/old").await;
    assert_eq!(status(req(&s, Method::PUT, "/api/v1/files/old/x.bin").body(vec![7u8; 200_000])).await, 201);
    assert_eq!(status(req(&s, Method::DELETE, "/api/v1/files/old")).await, 204);
    let items = trash_of(&s, "alice").await;
    let kept = time(&items[0]["expires_at"]) - time(&items[0]["deleted_at"]);
    assert!((1..=3).contains(&kept), "{kept}");
    // Collected by the server's own sweeper rounds (every second here): a bounded wait.
    let mut left = 1;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = trash_of(&s, "alice").await.len();
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "collected after two (short) days");
    assert_eq!(usage(&s).await, (0, 0));
}
