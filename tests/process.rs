//! The real `davit` process: first start, admin commands, SIGTERM, and kill -9 in the middle
//! of uploads (the previous version stays, nothing partial shows, nothing leaks).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{self, admin, basic, spawn_server};

/// A blocking PUT over a raw socket (so a test can stop half way).
fn put_raw(addr: std::net::SocketAddr, path: &str, auth: &str, body: &[u8], announced: usize) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n").unwrap();
    s.write_all(body).ok()?;
    if body.len() < announced {
        return None;
    }
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    Some(resp)
}

/// A blocking GET (the tests here drive processes, outside an async runtime).
fn get_raw(addr: std::net::SocketAddr, path: &str, auth: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn first_start_creates_one_admin_and_admin_commands_work() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let p = spawn_server(&data, &[]);
    let log = p.stderr();
    let password = log
        .split("with password: ")
        .nth(1)
        .expect("generated password printed")
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (status, _) = get_raw(p.addr, "/api/v1/files/", &basic("admin", &password));
    assert_eq!(status, 200, "the printed password works");
    // The database is locked while the server runs: admin says so plainly.
    let (ok, _, err) = admin(&data, &["user", "list"], "");
    assert!(!ok);
    assert!(err.contains("stop the running server"), "{err}");
    assert!(p.terminate().success(), "SIGTERM stops cleanly");

    let p = spawn_server(&data, &[("DAVIT_ADMIN_PASSWORD", "another-password")]);
    assert!(!p.stderr().contains("with password:"), "no second admin");
    p.terminate();

    let (ok, out, _) = admin(
        &data,
        &["user", "add", "carol", "--password-stdin", "--email", "c@example.test", "--role", "uploader"],
        "carol-password\n",
    );
    assert!(ok, "{out}");
    let (ok, _, err) = admin(&data, &["user", "add", "carol", "--password-stdin"], "carol-password\n");
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
    assert!(err.contains("already exists"), "{err}");
    let (ok, out, _) = admin(&data, &["user", "list"], "");
    assert!(ok);
    assert!(out.contains("carol") && out.contains("uploader") && out.contains("admin"), "{out}");
    let admins = out.lines().filter(|l| l.split_whitespace().nth(2) == Some("admin")).count();
    assert_eq!(admins, 1, "{out}");
    let (ok, _, _) = admin(&data, &["user", "passwd", "carol", "--password-stdin"], "new-carol-password\n");
    assert!(ok);
    let (ok, out, _) = admin(&data, &["key", "add", "carol"], "");
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("AWS_ACCESS_KEY_ID=") && lines[1].starts_with("AWS_SECRET_ACCESS_KEY="));
    let (ok, out, _) = admin(&data, &["check"], "");
    assert!(ok, "{out}");

    let p = spawn_server(&data, &[]);
    let (status, _) = get_raw(p.addr, "/api/v1/files/", &basic("carol", "new-carol-password"));
    assert_eq!(status, 200);
    p.terminate();
}

#[test]
fn kill_9_mid_upload_keeps_the_previous_version_and_leaks_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pw = ("DAVIT_ADMIN_PASSWORD", "admin-password-1");
    let auth = basic("admin", "admin-password-1");
    let p = spawn_server(&data, &[pw]);
    let v1 = support::pseudo_random(3 * 1024 * 1024, 1);
    let resp = put_raw(p.addr, "/api/v1/files/doc.bin", &auth, &v1, v1.len()).unwrap();
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");

    // Half of a 24 MiB replacement, then the process dies.
    let v2 = support::pseudo_random(24 * 1024 * 1024, 2);
    let addr = p.addr;
    let auth2 = auth.clone();
    let half = v2[..12 * 1024 * 1024].to_vec();
    let writer = std::thread::spawn(move || put_raw(addr, "/api/v1/files/doc.bin", &auth2, &half, 24 * 1024 * 1024));
    std::thread::sleep(Duration::from_millis(800));
    p.kill9();
    let _ = writer.join();

    // Concurrent small writes, killed at an arbitrary moment.
    let p = spawn_server(&data, &[pw]);
    let addr = p.addr;
    let writers: Vec<_> = (0..6)
        .map(|t| {
            let auth = auth.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let body = support::pseudo_random(1000 + i * 37, (t * 1000 + i) as u64);
                    if put_raw(addr, &format!("/api/v1/files/small-{t}-{}", i % 10), &auth, &body, body.len()).is_none()
                    {
                        return;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    p.kill9();
    for w in writers {
        let _ = w.join();
    }

    // After restart: the old version intact, no partial file, consistent counts.
    let p = spawn_server(&data, &[pw]);
    let (status, body) = get_raw(p.addr, "/api/v1/files/doc.bin", &auth);
    assert_eq!(status, 200);
    assert!(body == v1, "the previous version is intact");
    let (_, listing) = get_raw(p.addr, "/api/v1/files/", &auth);
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    for item in listing["items"].as_array().unwrap() {
        if item["kind"] == "file" {
            let (status, body) = get_raw(p.addr, &format!("/api/v1/files/{}", item["name"].as_str().unwrap()), &auth);
            assert_eq!(status, 200);
            assert_eq!(body.len() as u64, item["size"].as_u64().unwrap(), "no partial file");
        }
    }
    assert!(p.terminate().success());
    let (ok, out, err) = admin(&data, &["check"], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains(" 0 orphaned"), "orphans were swept at start: {out}");
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0, "no temp files left");
}

#[test]
fn a_failure_at_start_says_its_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::write(&data, b"a file where the data folder should be").unwrap();
    let out = std::process::Command::new(support::davit_bin())
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not a bare "davit: internal error": the chain down to the operating system's reason,
    // naming the folder.
    assert!(stderr.contains(&format!("davit: internal error: the data folder {}: ", data.display())), "{stderr}");
    assert!(stderr.contains("os error"), "{stderr}");

    // A busy port and a bad --public-url fail before the data folder is made: a start that
    // could not listen had created the first admin and printed its one-time password,
    // which no later start shows.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fresh = tmp.path().join("fresh");
    let port = busy.local_addr().unwrap().to_string();
    for (flag, value, why) in [("--listen", port.as_str(), "listening on"), ("--public-url", "nope", "--public-url")] {
        let mut cmd = std::process::Command::new(support::davit_bin());
        cmd.args(["serve", "--data-dir"]).arg(&fresh).args([flag, value]);
        if flag != "--listen" {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("password"), "{stderr}");
        assert!(!fresh.exists(), "{flag} {value}: the data folder was made");
    }
}

/// Credentials never reach the log, even with every debug line asked for (s3s logs each
/// request it serves whole at debug, headers included).
#[test]
fn debug_logging_shows_no_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let asked = "debug,s3s=trace,s3s::service=trace";
    let p = spawn_server(&data, &[("DAVIT_ADMIN_PASSWORD", "admin-password-9"), ("DAVIT_LOG", asked)]);
    let basic_auth = basic("admin", "admin-password-9");
    // The root goes to s3s, which refuses Basic and bearer tokens: it logs each request first
    // all the same.
    get_raw(p.addr, "/", &basic_auth);
    get_raw(p.addr, "/", "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln");
    let log = p.stderr();
    p.terminate();
    for secret in [&basic_auth["Basic ".len()..], "c2VjcmV0LXRva2Vu", "admin-password-9"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}
