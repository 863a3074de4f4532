//! Operating davit: `/metrics` read by Prometheus' own parser (the Python
//! `prometheus_client`), its counts moving after known requests; who may read it; and the
//! audit trail over REST and in the audit log file, with no secret in either.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Options, PASSWORD, spawn_server};

const TOKEN: &str = "metrics-token-7f3a";

/// Parses an exposition with `prometheus_client.parser` and returns every sample as
/// `name{k="v",…}` (labels sorted) -> value. The parser refuses what Prometheus would.
fn parse(text: &str) -> HashMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        out["%s{%s}" % (s.name, labels)] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (tests/run.sh installs prometheus_client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client refused the exposition: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

async fn scrape(c: &reqwest::Client, url: &str, token: Option<&str>) -> HashMap<String, f64> {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    parse(&r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_known_requests_and_need_the_token() {
    let s =
        support::start(Options { configure: |c| c.ops.metrics_token = Some(TOKEN.into()), ..Default::default() }).await;
    let c = support::client();
    let url = s.url("/metrics");
    // Without the bearer, /metrics is S3's (a bucket may be called so); a wrong one is refused.
    let r = c.get(&url).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("<Code>AccessDenied</Code>"));
    let r = c.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let before = scrape(&c, &url, Some(TOKEN)).await;
    let data = support::pseudo_random(200_000, 3);
    let dav = |p: &str| s.url(&format!("/dav/{p}"));
    let r = c.put(dav("m.bin")).basic_auth("alice", Some(PASSWORD)).body(data.clone()).send().await.unwrap();
    assert!(r.status().is_success());
    // The same bytes again under another name: logical bytes grow, stored ones do not.
    let r = c.put(dav("m2.bin")).basic_auth("alice", Some(PASSWORD)).body(data.clone()).send().await.unwrap();
    assert!(r.status().is_success());
    let r = c.get(dav("m.bin")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), data.len());
    let r = c.get(dav("m.bin")).basic_auth("alice", Some("not-the-password")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for _ in 0..3 {
        let r = c.get(s.url("/api/v1/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let after = scrape(&c, &url, Some(TOKEN)).await;

    let delta = |k: &str| get(&after, k) - get(&before, k);
    assert_eq!(delta(r#"davit_http_requests_total{method="PUT",protocol="webdav",status="2xx"}"#), 2.0);
    assert_eq!(delta(r#"davit_http_requests_total{method="GET",protocol="webdav",status="2xx"}"#), 1.0);
    assert_eq!(delta(r#"davit_http_requests_total{method="GET",protocol="webdav",status="4xx"}"#), 1.0);
    assert_eq!(delta(r#"davit_http_requests_total{method="GET",protocol="api",status="2xx"}"#), 3.0);
    assert_eq!(delta(r#"davit_http_request_duration_seconds_count{protocol="webdav"}"#), 4.0);
    assert_eq!(
        get(&after, r#"davit_http_request_duration_seconds_bucket{le="+Inf",protocol="api"}"#),
        get(&after, r#"davit_http_request_duration_seconds_count{protocol="api"}"#)
    );
    assert!(delta(r#"davit_http_request_duration_seconds_sum{protocol="webdav"}"#) > 0.0);
    assert!(delta(r#"davit_http_received_bytes_total{protocol="webdav"}"#) >= 2.0 * data.len() as f64);
    assert!(delta(r#"davit_http_sent_bytes_total{protocol="webdav"}"#) >= data.len() as f64);
    assert_eq!(delta("davit_auth_failures_total{}"), 1.0);
    assert_eq!(delta("davit_logical_bytes{}"), 2.0 * data.len() as f64);
    assert_eq!(delta("davit_chunk_bytes{}"), data.len() as f64, "stored once");
    assert_eq!(delta("davit_chunks{}"), 1.0);
    assert!(get(&after, "davit_dedup_ratio{}") > 1.5);
    // This scrape's own connection is open; no upload is.
    assert!(get(&after, "davit_http_connections{}") >= 1.0);
    assert!(get(&after, "davit_http_connections_accepted_total{}") >= 1.0);
    assert_eq!(get(&after, "davit_uploads_in_flight{}"), 0.0);
    s.stop().await;
}

/// The throttle's refusals count: a burst of wrong passwords for one account from one
/// address is slowed and then refused.
#[tokio::test]
async fn throttled_attempts_are_counted() {
    let s =
        support::start(Options { configure: |c| c.ops.metrics_token = Some(TOKEN.into()), ..Default::default() }).await;
    let c = support::client();
    let url = s.url("/metrics");
    let before = scrape(&c, &url, Some(TOKEN)).await;
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..30 {
        let body = serde_json::json!({ "username": "bob", "password": "wrong-guess" });
        let r = c.post(s.url("/api/v1/auth/login")).json(&body).send().await.unwrap();
        if r.status() == 429 {
            refused += 1;
            if refused == 2 || Instant::now() > deadline {
                break;
            }
        }
    }
    assert!(refused >= 1, "the throttle refused nothing");
    let after = scrape(&c, &url, Some(TOKEN)).await;
    assert!(get(&after, "davit_throttled_total{}") - get(&before, "davit_throttled_total{}") >= f64::from(refused));
    assert!(get(&after, "davit_auth_failures_total{}") >= 1.0);
    assert!(get(&after, r#"davit_http_requests_total{method="POST",protocol="api",status="4xx"}"#) >= 2.0, "{after:?}");
    s.stop().await;
}

/// The real binary: without a token, /metrics is served only on --metrics-listen; audit
/// lines go to --audit-log, events page over REST, and neither holds a secret.
#[tokio::test]
async fn separate_metrics_listener_and_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("audit.log");
    let admin_pw = "admin-secret-pw-31";
    let p = spawn_server(
        &data,
        &[
            ("DAVIT_ADMIN_PASSWORD", admin_pw),
            ("DAVIT_METRICS_LISTEN", "127.0.0.1:0"),
            ("DAVIT_AUDIT_LOG", log.to_str().unwrap()),
        ],
    );
    let base = format!("http://{}", p.addr);
    let metrics_url = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = p.stderr();
            if let Some(rest) = text.split("davit metrics on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no metrics listener: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // Another client, at its own address, for the events to name.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let c = support::client();

    let m = scrape(&c, &metrics_url, None).await;
    assert!(m.contains_key("davit_chunks{}"));
    // Not on the main listener: there /metrics is S3's, which refuses a bearer.
    let r = c.get(format!("{base}/metrics")).bearer_auth("anything").send().await.unwrap();
    assert_ne!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("<Error>") && !text.contains("davit_chunks"), "{text}");

    let login = |pw: &str| serde_json::json!({ "username": "admin", "password": pw });
    let r = other.post(format!("{base}/api/v1/auth/login")).json(&login("wrong-secret-77")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = other.post(format!("{base}/api/v1/auth/login")).json(&login(admin_pw)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap_or("no-refresh-token-in-body").to_owned();
    let new_user = serde_json::json!({ "username": "carol", "password": "carol-secret-55" });
    let r = other.post(format!("{base}/api/v1/admin/users")).bearer_auth(&access).json(&new_user).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let carol: serde_json::Value = r.json().await.unwrap();
    let carol_id = carol["id"].as_u64().unwrap();
    let r = c.post(format!("{base}/api/v1/me/keys")).basic_auth("carol", Some("carol-secret-55")).send().await.unwrap();
    assert!(r.status().is_success());
    let key: serde_json::Value = r.json().await.unwrap();
    let key_secret = key["secret_access_key"].as_str().or(key["secret"].as_str()).unwrap_or("").to_owned();
    assert!(!key_secret.is_empty(), "{key}");

    // Admins page every event, newest first.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut q = vec![("limit", "2".to_owned())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let r = c.get(format!("{base}/api/v1/admin/audit")).query(&q).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        all.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["access_key_created", "admin_user_created", "login", "login_failed"]);
    assert_eq!(all[1]["target_user_id"], carol_id);
    assert_eq!(all[2]["address"], "127.0.0.2");
    assert_eq!(all[3]["address"], "127.0.0.2");
    assert_eq!(all[3]["user"], "admin");
    assert_eq!(all[0]["user_id"], carol_id);
    // Users see their own only; the admin page is admins'.
    let r = c.get(format!("{base}/api/v1/me/audit")).basic_auth("carol", Some("carol-secret-55")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let mine: Vec<&str> = v["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(mine, ["access_key_created", "admin_user_created"]);
    let r =
        c.get(format!("{base}/api/v1/admin/audit")).basic_auth("carol", Some("carol-secret-55")).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // The log file has the same events as JSON lines (written by a thread: waited for).
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 4 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let logged: Vec<&str> = lines.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(logged, ["login_failed", "login", "admin_user_created", "access_key_created"]);
    assert!(lines.iter().all(|e| e["time"].as_str().is_some_and(|t| t.ends_with('Z'))));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let api_text = serde_json::to_string(&all).unwrap();
    for secret in [admin_pw, "wrong-secret-77", "carol-secret-55", &access, &refresh, &key_secret, TOKEN] {
        assert!(!text.contains(secret), "a secret in the audit log");
        assert!(!api_text.contains(secret), "a secret in the audit API");
    }
    let _status = p.terminate();
}

fn client_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Events come from every front end with the address of the client that caused them: REST
/// (a share, a link), the link pages (a download), WebDAV (a wrong password).
#[tokio::test]
async fn events_name_the_client_on_every_front_end() {
    let s = support::start(Options::default()).await;
    let (two, three) = (client_at("127.0.0.2"), client_at("127.0.0.3"));
    let r =
        two.put(s.url("/api/v1/files/f.txt")).basic_auth("alice", Some(PASSWORD)).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let link = serde_json::json!({ "path": "/f.txt" });
    let r = two.post(s.url("/api/v1/links")).basic_auth("alice", Some(PASSWORD)).json(&link).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let share = serde_json::json!({ "path": "/f.txt", "user": "bob", "permission": "read" });
    let r = two.post(s.url("/api/v1/shares")).basic_auth("alice", Some(PASSWORD)).json(&share).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = three.get(s.url(&format!("/s/{token}"))).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = three.get(s.url("/dav/f.txt")).basic_auth("alice", Some("wrong-dav-secret")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = support::client().get(s.url("/api/v1/me/audit")).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&token) && !text.contains("wrong-dav-secret") && !text.contains(PASSWORD));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let got: Vec<(&str, &str)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["address"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(
        got,
        [
            ("login_failed", "127.0.0.3"),
            ("link_used", "127.0.0.3"),
            ("share_created", "127.0.0.2"),
            ("link_created", "127.0.0.2"),
        ]
    );
    let failed = &v["items"][0];
    assert_eq!((failed["user"].as_str(), failed["detail"]["method"].as_str()), (Some("alice"), Some("basic")));
    // Bob sees the share made to him, and nothing else of alice's.
    let r = support::client().get(s.url("/api/v1/me/audit")).basic_auth("bob", Some(PASSWORD)).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let bobs: Vec<&str> = v["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(bobs, ["share_created"]);
    s.stop().await;
}
