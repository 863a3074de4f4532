//! The shell: routing, answers for what is not built, TLS with HTTP/1.1 and HTTP/2, and
//! graceful shutdown.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::support::{self, Options, PASSWORD};

#[tokio::test]
async fn health_and_routing() {
    let s = support::start(Options::default()).await;
    let c = support::client();
    let r = c.get(s.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");

    let r = c.get(s.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "not_found");

    // Everything outside /api, /dav and /s is S3, answered in S3's own XML form.
    let r = c.get(s.url("/some-bucket/key")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("<Code>AccessDenied</Code>"), "anonymous S3 is refused in S3's form: {text}");
    s.stop().await;
}

#[tokio::test]
async fn tls_serves_http1_and_http2() {
    let s = support::start(Options { tls: true, ..Default::default() }).await;
    let c = support::tls_client();
    let r = c.get(s.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2 first");
    let pem = std::fs::read(support::cert_dir().join("cert.pem")).unwrap();
    let h1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let data = support::pseudo_random(3 * 1024 * 1024, 9);
    let r = h1
        .put(s.url("/api/v1/files/tls.bin"))
        .basic_auth("alice", Some(PASSWORD))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let got = c.get(s.url("/api/v1/files/tls.bin")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(got.version(), reqwest::Version::HTTP_2);
    assert_eq!(got.bytes().await.unwrap(), data);
    // A refused HEAD carries no body over HTTP/2, whichever front refuses it (a body there
    // makes clients reset the stream).
    for path in ["/dav/nothing.txt", "/api/v1/files/nothing.txt"] {
        let r = c.head(s.url(path)).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (404, reqwest::Version::HTTP_2), "{path}");
        assert!(r.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Plain HTTP to the TLS port is refused, not served.
    let plain = support::client().get(format!("http://{}/api/v1/health", s.addr)).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    s.stop().await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let mut s = support::start(Options::default()).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let url = s.url("/api/v1/files/slow.bin");
    let upload = tokio::spawn(async move {
        support::client().put(url).basic_auth("alice", Some(PASSWORD)).body(body).send().await.map(|r| r.status())
    });
    tx.send(Ok(Bytes::from(vec![1u8; 100_000]))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.trigger_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The listener is closed: a new connection fails.
    assert!(support::client().get(s.url("/api/v1/health")).send().await.is_err());
    // The request already in flight still completes.
    tx.send(Ok(Bytes::from(vec![2u8; 100_000]))).await.unwrap();
    drop(tx);
    let status = upload.await.unwrap().unwrap();
    assert_eq!(status, 201);
    s.stop_in_place().await;
    let p = s.principal("alice").await;
    assert_eq!(s.storage.stat(&p, "/slow.bin").await.unwrap().size, 200_000);
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
