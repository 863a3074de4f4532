//! Files over REST through the core: streamed upload and download, ranges, refusals in
//! problem+json, dedup across users.

use crate::support::{self, Options, PASSWORD};

#[tokio::test]
async fn upload_download_range_and_delete() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let data = support::pseudo_random(5 * 1024 * 1024 + 7, 1);
    let r = c
        .put(s.url("/api/v1/files/report.bin"))
        .basic_auth("alice", Some(PASSWORD))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    // No MD5 is computed for a large REST upload: its tag is one S3 clients read as multipart.
    let etag = v["etag"].as_str().unwrap().to_owned();
    assert_ne!(etag, hex_md5(&data));
    assert!(etag.contains('-'), "{etag}");

    let r = c.get(s.url("/api/v1/files/report.bin")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], format!("\"{etag}\""));
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("report.bin"));
    assert_eq!(r.bytes().await.unwrap(), data);

    let r = c
        .get(s.url("/api/v1/files/report.bin"))
        .basic_auth("alice", Some(PASSWORD))
        .header("Range", "bytes=1048570-2097160")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 1048570-2097160/{}", data.len()));
    assert_eq!(r.bytes().await.unwrap(), &data[1048570..=2097160]);
    let r = c
        .get(s.url("/api/v1/files/report.bin"))
        .basic_auth("alice", Some(PASSWORD))
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[data.len() - 10..]);

    // Another user cannot see it; the same content in bob's drive is stored once.
    let r = c.get(s.url("/api/v1/files/report.bin")).basic_auth("bob", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .put(s.url("/api/v1/files/copy.bin"))
        .basic_auth("bob", Some(PASSWORD))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = s.storage.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let bob_chunks = report.chunks;
    assert!(bob_chunks >= 2);

    let r = c.delete(s.url("/api/v1/files/report.bin")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(s.url("/api/v1/files/copy.bin")).basic_auth("bob", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), data, "bob's copy survives alice's delete");
    s.stop().await;
}

#[tokio::test]
async fn refusals_are_problem_json() {
    let s = support::start(Options { default_quota: 1024 * 1024, ..Default::default() }).await;
    let c = support::client();
    let r = c.get(s.url("/api/v1/files/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("Basic realm=\"davit\""));
    let r = c.get(s.url("/api/v1/files/")).basic_auth("alice", Some("wrong-password")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .put(s.url("/api/v1/files/missing/parent.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "parent_missing");

    let r = c.put(s.url("/api/v1/files/shared")).basic_auth("alice", Some(PASSWORD)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403);

    let big = support::pseudo_random(2 * 1024 * 1024, 2);
    let r = c.put(s.url("/api/v1/files/big.bin")).basic_auth("alice", Some(PASSWORD)).body(big).send().await.unwrap();
    assert_eq!(r.status(), 507);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "quota_exceeded");
    let r = c.get(s.url("/api/v1/files/big.bin")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 404, "a refused upload leaves nothing");

    let r = c.put(s.url("/api/v1/files/a.txt")).basic_auth("alice", Some(PASSWORD)).body("one").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .put(s.url("/api/v1/files/a.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .header("If-None-Match", "*")
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = c
        .get(s.url("/api/v1/files/a.txt"))
        .basic_auth("alice", Some(PASSWORD))
        .header("Range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    s.stop().await;
}

fn hex_md5(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
