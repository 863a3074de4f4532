//! A file's history over REST: versioning of a top-level folder, the versions of a file that
//! REST and WebDAV writes made, downloading, restoring and removing one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, Options, PASSWORD, TestServer};

fn req(s: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    support::client().request(method, s.url(path)).basic_auth("alice", Some(PASSWORD))
}

async fn upload(s: &TestServer, path: &str, body: &'static str) {
    let r = req(s, Method::PUT, &format!("/api/v1/files{path}")).body(body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn versions(s: &TestServer, path: &str) -> Vec<Value> {
    let r = req(s, Method::GET, &format!("/api/v1/versions{path}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["versions"].as_array().unwrap().clone()
}

async fn text(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn rest_lists_downloads_restores_and_removes_versions() {
    let s = support::start(Options::default()).await;
    let r = req(&s, Method::POST, "/api/v1/mkdir").json(&json!({ "path": "/proj" })).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = req(&s, Method::GET, "/api/v1/versioning?path=/proj").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "unversioned");
    upload(&s, "/proj/plan.txt", "draft").await;
    // Unversioned: one version, the null one; an overwrite keeps nothing.
    upload(&s, "/proj/plan.txt", "draft 2").await;
    assert_eq!(versions(&s, "/proj/plan.txt").await.len(), 1);

    let body = json!({ "path": "/proj", "status": "enabled" });
    let r = req(&s, Method::POST, "/api/v1/versioning").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = req(&s, Method::POST, "/api/v1/versioning").json(&json!({ "path": "/proj/plan.txt", "status": "enabled" }));
    assert_eq!(r.send().await.unwrap().status(), 403, "only a top-level folder is versioned");
    upload(&s, "/proj/plan.txt", "final").await;
    // A WebDAV PUT is a version like any other write.
    let r = support::client()
        .put(s.url("/dav/proj/plan.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .body("final, edited")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v = versions(&s, "/proj/plan.txt").await;
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(v[0]["latest"], true);
    assert_eq!(v[2]["id"], "null", "the version written before versioning");
    let old = v[1]["id"].as_str().unwrap().to_owned();
    let r = req(&s, Method::GET, &format!("/api/v1/versions/proj/plan.txt?version={old}")).send().await.unwrap();
    assert_eq!(r.headers()["x-davit-version"], old.as_str());
    assert_eq!(text(r).await, "final");
    let r = req(&s, Method::GET, "/api/v1/versions/proj/plan.txt?version=null").header("Range", "bytes=0-4");
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "draft");

    // Restore: a new current version with the old content; the replaced one is kept.
    let r = req(&s, Method::POST, "/api/v1/restore").json(&json!({ "path": "/proj/plan.txt", "version": "null" }));
    assert_eq!(r.send().await.unwrap().status(), 200);
    let r = req(&s, Method::GET, "/api/v1/files/proj/plan.txt").send().await.unwrap();
    assert_eq!(text(r).await, "draft 2");
    assert_eq!(versions(&s, "/proj/plan.txt").await.len(), 4);

    // A delete leaves the history findable, under a delete marker.
    assert_eq!(req(&s, Method::DELETE, "/api/v1/files/proj/plan.txt").send().await.unwrap().status(), 204);
    assert_eq!(req(&s, Method::GET, "/api/v1/files/proj/plan.txt").send().await.unwrap().status(), 404);
    let v = versions(&s, "/proj/plan.txt").await;
    assert_eq!(v.len(), 5);
    assert_eq!(v[0]["delete_marker"], true);
    let marker = v[0]["id"].as_str().unwrap().to_owned();
    let r = req(&s, Method::GET, &format!("/api/v1/versions/proj/plan.txt?version={marker}")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Removing the marker brings the file back.
    let r = req(&s, Method::DELETE, &format!("/api/v1/versions/proj/plan.txt?version={marker}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = req(&s, Method::GET, "/api/v1/files/proj/plan.txt").send().await.unwrap();
    assert_eq!(text(r).await, "draft 2");
    let r = req(&s, Method::GET, "/api/v1/versions/proj/plan.txt?version=0000000000000000").send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Old versions count in the usage.
    let r = req(&s, Method::GET, "/api/v1/usage").send().await.unwrap();
    let u: Value = r.json().await.unwrap();
    // Current "draft 2", and "final, edited", "final" and the null "draft 2" in history.
    assert_eq!(u["bytes"], (7 + "final, edited".len() + "final".len() + 7) as u64);
    s.stop().await;
}
