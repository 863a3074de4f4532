//! Running davit for years, as the real process: master-key rotation, live backups and their
//! restore, and the admin CLI through a running server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::s3_sign::sha256_hex;
use crate::support::{admin, basic, davit_bin, pseudo_random, spawn_server};

const ADMIN_PW: &str = "admin-ops-password-1";

/// `davit ARGS…` with only the environment given (no DAVIT_* of the caller's); returns
/// (success, stdout, stderr).
fn davit(args: &[&str], envs: &[(&str, &str)], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(davit_bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("DAVIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DAVIT_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One blocking HTTP call (these tests drive processes, outside an async runtime).
fn http(method: &str, url: &str, auth: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("Authorization", auth);
        if let Some(b) = body {
            r = r.body(b);
        }
        let r = r.timeout(Duration::from_secs(60)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    })
}

/// Every file under `dir` with the SHA-256 of its bytes.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn rotating_the_master_key_rewraps_it_refuses_bad_keys_first_and_then_the_old_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let p = spawn_server(&data, &[("DAVIT_ADMIN_PASSWORD", ADMIN_PW)]);
    let base = format!("http://{}", p.addr);
    let auth = basic("admin", ADMIN_PW);
    let big = pseudo_random(700 * 1024 + 3, 5);
    assert_eq!(http("PUT", &format!("{base}/api/v1/files/big.bin"), &auth, Some(big.clone())).0, 201);
    assert_eq!(http("PUT", &format!("{base}/api/v1/files/small.txt"), &auth, Some(b"small".to_vec())).0, 201);
    assert!(p.terminate().success());
    let old_key = std::fs::read_to_string(data.join("master.key")).unwrap();
    let chunks_before = files_under(&data.join("chunks"));
    assert!(!chunks_before.is_empty());

    // Refused before anything changes: unreadable, short, not hex, the current key.
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let write_key = |name: &str, text: &str| {
        let path = keys.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let missing = keys.join("missing.key");
    let cases = [
        (missing.to_str().unwrap().to_owned(), "reading the new master key"),
        (write_key("short.key", "abcdef"), "64 hex"),
        (write_key("nothex.key", &"zz".repeat(32)), "64 hex"),
        (write_key("same.key", &old_key), "the current one"),
    ];
    for (file, why) in &cases {
        let (ok, out, err) = admin(&data, &["rotate-master-key", "--new-key-file", file], "");
        assert!(!ok && err.contains(why) && err.trim().lines().count() == 1, "{file}: {out}{err}");
        assert_eq!(std::fs::read_to_string(data.join("master.key")).unwrap(), old_key);
    }
    let (ok, out, err) = admin(&data, &["check"], "");
    assert!(ok && out.contains("consistent"), "the old key still opens it: {out}{err}");
    // The check only reads: a chunk file a crash left is reported, and left for the server's
    // start to remove (it was removed first, and reported as none).
    let stray = data.join("chunks/ab/cd").join(format!("abcd{}", "0".repeat(60)));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left by a crash").unwrap();
    let (ok, out, err) = admin(&data, &["check"], "");
    assert!(ok && out.contains("1 orphaned chunk files"), "{out}{err}");
    assert!(stray.exists());
    std::fs::remove_file(&stray).unwrap();

    let new_key = "5a".repeat(32);
    let new_file = write_key("new.key", &format!("{new_key}\n"));
    let (ok, out, err) = admin(&data, &["rotate-master-key", "--new-key-file", &new_file], "");
    assert!(ok && out.contains("wrapped by the new master key"), "{out}{err}");
    assert_eq!(std::fs::read_to_string(data.join("master.key")).unwrap().trim(), new_key);
    assert!(!data.join("master.key.new").exists());
    assert_eq!(files_under(&data.join("chunks")), chunks_before, "a rotation rewrites no chunk");

    // The old key is refused, clearly; the new one reads everything.
    let old_file = write_key("old.key", &old_key);
    let (ok, _, err) = admin(&data, &["--master-key-file", &old_file, "check"], "");
    assert!(!ok && err.contains("master key does not match") && err.contains("rotate-master-key"), "{err}");
    let p = spawn_server(&data, &[]);
    let base = format!("http://{}", p.addr);
    assert!(http("GET", &format!("{base}/api/v1/files/big.bin"), &auth, None) == (200, big.clone()));
    assert_eq!(http("GET", &format!("{base}/api/v1/files/small.txt"), &auth, None), (200, b"small".to_vec()));
    assert!(p.terminate().success());

    // A key the operator gives (as every node of a cluster does) is not written anywhere:
    // the nodes start with the new file instead.
    let third = write_key("third.key", &"c3".repeat(32));
    let (ok, out, err) =
        admin(&data, &["--master-key-file", &new_file, "rotate-master-key", "--new-key-file", &third], "");
    assert!(ok && out.contains(&format!("--master-key-file {third}")), "{out}{err}");
    assert_eq!(std::fs::read_to_string(data.join("master.key")).unwrap().trim(), new_key, "not written");
    let (ok, _, err) = admin(&data, &["check"], "");
    assert!(!ok && err.contains("master key does not match"), "{err}");
    let (ok, out, err) = admin(&data, &["--master-key-file", &third, "check"], "");
    assert!(ok && out.contains("consistent"), "{out}{err}");
}

#[test]
fn the_admin_cli_works_through_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let p = spawn_server(&data, &[("DAVIT_ADMIN_PASSWORD", ADMIN_PW)]);
    let url = format!("http://{}", p.addr);
    let env = [("DAVIT_SERVER", url.as_str()), ("DAVIT_ADMIN_PASSWORD", ADMIN_PW)];
    let live = |args: &[&str], stdin: &str| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        davit(&all, &env, stdin)
    };

    let (ok, out, err) = live(
        &["user", "add", "carol", "--password-stdin", "--role", "uploader", "--quota", "10M"],
        "carol-password-1\n",
    );
    assert!(ok && out.contains("created user carol"), "{out}{err}");
    let (ok, out, err) = live(&["user", "list"], "");
    assert!(ok, "{err}");
    let carol = out.lines().find(|l| l.split_whitespace().nth(1) == Some("carol")).expect(&out);
    assert!(carol.contains("uploader") && carol.contains("10485760") && carol.contains("active"), "{out}");
    let (ok, out, err) = live(&["--json", "user", "list"], "");
    assert!(ok, "{err}");
    let users: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");

    let (ok, out, err) = live(&["user", "quota", "carol", "1G", "--json"], "");
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["quota"], 1 << 30);
    let carol_auth = basic("carol", "carol-password-1");
    assert_eq!(http("PUT", &format!("{url}/api/v1/files/a.txt"), &carol_auth, Some(b"hi".to_vec())).0, 201);
    let (ok, out, err) = live(&["user", "disable", "carol"], "");
    assert!(ok && out.contains("disabled user carol") && out.contains("disabled"), "{out}{err}");
    let (st, _) = http("PUT", &format!("{url}/api/v1/files/b.txt"), &carol_auth, Some(b"hi".to_vec()));
    assert!(st == 401 || st == 403, "a disabled account is refused at once: {st}");
    let (ok, out, err) = live(&["user", "enable", "carol"], "");
    assert!(ok && out.contains("active"), "{out}{err}");

    // S3 keys: the admin's own, never another user's.
    let (ok, out, err) = live(&["key", "add", "admin"], "");
    assert!(ok && out.starts_with("AWS_ACCESS_KEY_ID=") && out.contains("\nAWS_SECRET_ACCESS_KEY="), "{out}{err}");
    let (ok, _, err) = live(&["key", "add", "carol"], "");
    assert!(!ok && err.contains("403") && err.contains("credentials"), "{err}");

    let (ok, out, err) = live(&["stats", "--json"], "");
    assert!(ok, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((stats["users"].as_u64(), stats["files"].as_u64()), (Some(2), Some(1)), "{stats}");
    let (ok, out, err) = live(&["check"], "");
    assert!(ok && out.contains("consistent"), "{out}{err}");
    let (ok, out, err) = live(&["check", "--json"], "");
    assert!(ok && serde_json::from_str::<Value>(&out).unwrap()["consistent"] == true, "{out}{err}");
    // Deleting an account: its sign-in fails at once.
    let (ok, _, err) = live(&["user", "add", "dora", "--password-stdin"], "dora-password-1\n");
    assert!(ok, "{err}");
    let (ok, out, err) = live(&["user", "delete", "dora"], "");
    assert!(ok && out.contains("deleted user dora"), "{out}{err}");
    let (st, _) = http("GET", &format!("{url}/api/v1/me"), &basic("dora", "dora-password-1"), None);
    assert_eq!(st, 401);
    let (ok, _, err) = live(&["user", "delete", "dora"], "");
    assert!(!ok && err.contains("no user named dora"), "{err}");

    // Refusals say why in one line, and never echo the password.
    let (ok, _, err) =
        davit(&["admin", "user", "list"], &[("DAVIT_SERVER", &url), ("DAVIT_ADMIN_PASSWORD", "wrong-password-9")], "");
    assert!(
        !ok && err.contains("401") && !err.contains("wrong-password-9") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = davit(&["admin", "--server", &url, "stats"], &[], "");
    assert!(!ok && err.contains("DAVIT_ADMIN_PASSWORD"), "{err}");
    let (ok, _, err) = live(&["rotate-master-key", "--new-key-file", "/nonexistent"], "");
    assert!(!ok && err.contains("without --server"), "{err}");
    // Offline, the running server's folder is still refused.
    let (ok, _, err) = admin(&data, &["user", "list"], "");
    assert!(!ok && err.contains("stop the running server"), "{err}");
    assert!(p.terminate().success());
}

/// The content a file may have: its versions written so far.
type Versions = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

#[test]
fn a_live_backup_while_writes_continue_restores_every_file_it_began_with() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, backup, restored) = (tmp.path().join("data"), tmp.path().join("backup"), tmp.path().join("restored"));
    let p = spawn_server(&data, &[("DAVIT_ADMIN_PASSWORD", ADMIN_PW)]);
    let url = format!("http://{}", p.addr);
    let auth = basic("admin", ADMIN_PW);
    let env = [("DAVIT_SERVER", url.as_str()), ("DAVIT_ADMIN_PASSWORD", ADMIN_PW)];

    // Files that stay as they are, and files overwritten during the backup.
    let mut before = BTreeMap::new();
    for i in 0..12u64 {
        let body = pseudo_random(1024 * 1024 + i as usize * 1000, i);
        let name = format!("keep-{i}.bin");
        assert_eq!(http("PUT", &format!("{url}/api/v1/files/{name}"), &auth, Some(body.clone())).0, 201);
        before.insert(name, sha256_hex(&body));
    }
    let versions: Versions = Arc::default();
    for i in 0..6u64 {
        let body = pseudo_random(600 * 1024, 100 + i);
        let name = format!("change-{i}.bin");
        assert_eq!(http("PUT", &format!("{url}/api/v1/files/{name}"), &auth, Some(body.clone())).0, 201);
        versions.lock().unwrap().insert(name, vec![sha256_hex(&body)]);
    }

    // Writers run until the backup is done (bounded in count and time).
    let stop = Arc::new(AtomicBool::new(false));
    let done_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let new_files: Versions = Arc::default();
    let writer = {
        let (stop, done_at, versions, new_files, url, auth) =
            (stop.clone(), done_at.clone(), versions.clone(), new_files.clone(), url.clone(), auth.clone());
        std::thread::spawn(move || {
            let seed = AtomicU64::new(1000);
            let deadline = Instant::now() + Duration::from_secs(120);
            for i in 0..2000u64 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let body = pseudo_random(200 * 1024, seed.fetch_add(1, Ordering::Relaxed));
                let (name, into) = if i % 2 == 0 {
                    (format!("change-{}.bin", i / 2 % 6), &versions)
                } else {
                    (format!("new-{i}.bin"), &new_files)
                };
                // The version is possible from the moment the PUT is sent.
                into.lock().unwrap().entry(name.clone()).or_default().push(sha256_hex(&body));
                let (st, _) = http("PUT", &format!("{url}/api/v1/files/{name}"), &auth, Some(body));
                assert!(st == 201 || st == 204 || st == 200, "a write during the backup: {st}");
                done_at.lock().unwrap().push(Instant::now());
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let to = backup.to_str().unwrap();
    let (ok, out, err) = davit(&["admin", "backup", "--to", to], &env, "");
    let ended = Instant::now();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(ok && out.contains("backup finished"), "{out}{err}");
    let during = done_at.lock().unwrap().iter().filter(|t| **t > started && **t < ended).count();
    eprintln!("{during} writes completed during the {:?} backup", ended - started);
    assert!(during > 0, "no write completed while the backup ran ({:?})", ended - started);
    assert!(backup.join("BACKUP-COMPLETE").exists() && !backup.join("master.key").exists());

    // Incremental: a second run copies only what changed, and keeps the folder to the snapshot.
    let (ok, out, err) = davit(&["admin", "backup", "--to", to, "--json"], &env, "");
    assert!(ok, "{out}{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    let (referenced, present) =
        (again["chunks_referenced"].as_u64().unwrap(), again["chunks_present"].as_u64().unwrap());
    assert!(present >= 12 && again["chunks_copied"].as_u64().unwrap() < referenced, "{again}");
    assert_eq!(files_under(&backup.join("chunks")).len() as u64, referenced, "{again}");
    // A folder that is not a backup's, and the data folder itself, are refused.
    let (ok, _, err) = davit(&["admin", "backup", "--to", data.join("x").to_str().unwrap()], &env, "");
    assert!(!ok && err.contains("outside the data folder"), "{err}");
    let (ok, _, err) = davit(&["admin", "backup", "--to", "relative/dir"], &env, "");
    assert!(!ok && err.contains("absolute"), "{err}");
    assert!(p.terminate().success());

    // The restore: a new folder, verified, that opens with the same master key; the backup
    // is only read (not a byte of it changes).
    let key = data.join("master.key");
    let key = key.to_str().unwrap();
    let restored_s = restored.to_str().unwrap();
    let backup_before = files_under(&backup);
    let (ok, out, err) =
        davit(&["admin", "--data-dir", restored_s, "--master-key-file", key, "restore", "--from", to], &[], "");
    assert!(ok && out.contains("verified"), "{out}{err}");
    assert_eq!(files_under(&backup), backup_before, "the restore changed the backup");
    let (ok, out, err) = davit(&["admin", "--data-dir", restored_s, "--master-key-file", key, "check"], &[], "");
    assert!(ok && out.contains("consistent"), "{out}{err}");
    let (ok, _, err) =
        davit(&["admin", "--data-dir", restored_s, "--master-key-file", key, "restore", "--from", to], &[], "");
    assert!(!ok && err.contains("not empty"), "{err}");

    let q = spawn_server(&restored, &[("DAVIT_MASTER_KEY_FILE", key)]);
    let rurl = format!("http://{}", q.addr);
    // The restore is in the restored trail, by the operator (as every offline admin change).
    let (st, page) = http("GET", &format!("{rurl}/api/v1/admin/audit?limit=5"), &auth, None);
    let page: Value = serde_json::from_slice(&page).unwrap();
    let restored_event = page["items"].as_array().unwrap().iter().find(|e| e["action"] == "restored").cloned();
    assert!(st == 200 && restored_event.is_some(), "{page}");
    let restored_event = restored_event.unwrap();
    assert_eq!(restored_event["detail"]["via"], "offline davit admin");
    assert_eq!(restored_event["detail"]["from"], to);
    for (name, sha) in &before {
        let (st, body) = http("GET", &format!("{rurl}/api/v1/files/{name}"), &auth, None);
        assert_eq!((st, sha256_hex(&body)), (200, sha.clone()), "{name}");
    }
    for (name, shas) in versions.lock().unwrap().iter() {
        let (st, body) = http("GET", &format!("{rurl}/api/v1/files/{name}"), &auth, None);
        assert!(st == 200 && shas.contains(&sha256_hex(&body)), "{name}: {st}, not a version it had");
    }
    for (name, shas) in new_files.lock().unwrap().iter() {
        let (st, body) = http("GET", &format!("{rurl}/api/v1/files/{name}"), &auth, None);
        assert!(st == 404 || (st == 200 && shas.contains(&sha256_hex(&body))), "{name}: {st}");
    }
    assert!(q.terminate().success());

    // A backup cut short (here: its folder's tmp/ is not a folder) leaves the folder's last
    // finished backup restorable (found by probing: it was thrown away first); a folder with
    // no finished backup is refused, clearly.
    let p = spawn_server(&data, &[]);
    let url = format!("http://{}", p.addr);
    std::fs::remove_dir_all(backup.join("tmp")).unwrap();
    std::fs::write(backup.join("tmp"), b"in the way").unwrap();
    let (ok, _, err) =
        davit(&["admin", "backup", "--to", to], &[("DAVIT_SERVER", &url), ("DAVIT_ADMIN_PASSWORD", ADMIN_PW)], "");
    assert!(!ok, "{err}");
    assert!(p.terminate().success());
    let restore_into = |dir: &std::path::Path| {
        davit(
            &["admin", "--data-dir", dir.to_str().unwrap(), "--master-key-file", key, "restore", "--from", to],
            &[],
            "",
        )
    };
    let elsewhere = tmp.path().join("elsewhere");
    let (ok, out, err) = restore_into(&elsewhere);
    assert!(ok, "the previous backup restores: {out}{err}");
    std::fs::remove_file(backup.join("BACKUP-COMPLETE")).unwrap();
    let nowhere = tmp.path().join("nowhere");
    let (ok, _, err) = restore_into(&nowhere);
    assert!(!ok && err.contains("no finished backup") && err.trim().lines().count() == 1, "{err}");
    assert!(!nowhere.exists(), "a refused restore creates nothing");
}

/// The OpenAPI document (the admin routes added here included) passes a real validator:
/// `openapi-spec-validator` from PyPI (tests/run.sh installs it).
#[tokio::test]
async fn the_openapi_document_passes_openapi_spec_validator() {
    let s = crate::support::start(Default::default()).await;
    let r = crate::support::client().get(s.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    for (path, method) in [("/api/v1/admin/check", "get"), ("/api/v1/admin/backup", "post")] {
        assert!(doc["paths"][path][method].is_object(), "{path} {method} is documented");
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .expect("python3 runs (tests/run.sh installs openapi-spec-validator)");
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI (or `pip install openapi-spec-validator` is missing): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;
}

/// The offline `davit admin` records its changes in the audit trail as the live admin API
/// does: the same actions, by the operator at the machine (nobody signs in offline, so the
/// event names the operating system's account), in the store and as the audit log's line;
/// never a secret. A migration is recorded in the target, where the deployment goes on.
#[test]
fn the_offline_admin_commands_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, moved) = (tmp.path().join("data"), tmp.path().join("moved"));
    let d = data.to_str().unwrap().to_owned();
    let run = |args: &[&str], stdin: &str| {
        let mut all = vec!["admin", "--data-dir", d.as_str()];
        all.extend_from_slice(args);
        let (ok, out, err) = davit(&all, &[("USER", "olga-at-the-console")], stdin);
        assert!(ok, "{args:?}: {out}{err}");
        // The default audit log is stderr: one JSON line per change.
        let lines: Vec<Value> = err.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (out, lines)
    };
    let (_, lines) = run(&["user", "add", "root", "--role", "admin", "--password-stdin"], &format!("{ADMIN_PW}\n"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["action"], "admin_user_created");
    assert_eq!(lines[0]["detail"]["via"], "offline davit admin");
    assert_eq!(lines[0]["detail"]["os_user"], "olga-at-the-console");
    assert_eq!(lines[0]["user_id"], Value::Null, "no account acted");
    assert!(!lines[0].to_string().contains(ADMIN_PW));
    run(&["user", "add", "carol", "--password-stdin"], "carol-password-1\n");
    run(&["user", "add", "dave", "--password-stdin"], "dave-password-1\n");
    run(&["user", "quota", "carol", "1G"], "");
    run(&["user", "disable", "carol"], "");
    run(&["user", "enable", "carol"], "");
    let (_, lines) = run(&["user", "passwd", "carol", "--password-stdin"], "carol-password-2\n");
    assert!(lines.len() == 1 && !lines[0].to_string().contains("carol-password-2"), "{lines:?}");
    let (out, lines) = run(&["key", "add", "carol"], "");
    let secret = out.lines().find_map(|l| l.strip_prefix("AWS_SECRET_ACCESS_KEY=")).expect("the secret is printed");
    assert!(lines.len() == 1 && !lines[0].to_string().contains(secret), "{lines:?}");
    run(&["user", "delete", "dave"], "");
    let new_key = tmp.path().join("new.key");
    std::fs::write(&new_key, "7e".repeat(32)).unwrap();
    let (_, lines) = run(&["rotate-master-key", "--new-key-file", new_key.to_str().unwrap()], "");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!lines[0].to_string().contains(&"7e".repeat(32)), "the key is no detail");
    let to = format!("redb:{}", moved.display());
    run(&["migrate", "--to-meta", &to, "--to-chunks", "local"], "");

    // In the store: the admin's audit page on the server, newest first.
    let offline = |folder: &Path| {
        let p = spawn_server(folder, &[]);
        let (st, body) =
            http("GET", &format!("http://{}/api/v1/admin/audit?limit=100", p.addr), &basic("root", ADMIN_PW), None);
        assert!(p.terminate().success());
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        let page: Value = serde_json::from_slice(&body).unwrap();
        let events: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["detail"]["via"] == "offline davit admin")
            .cloned()
            .collect();
        for e in &events {
            assert_eq!(e["detail"]["os_user"], "olga-at-the-console", "{e}");
        }
        events
    };
    let events = offline(&data);
    let said: Vec<(String, Value, Value)> = events
        .iter()
        .map(|e| {
            (e["action"].as_str().unwrap().to_owned(), e["detail"]["username"].clone(), e["target_user_id"].clone())
        })
        .collect();
    let actions: Vec<&str> = said.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "master_key_rotated",
            "user_deleted",
            "admin_access_key_created",
            "admin_password_set",
            "admin_user_changed",
            "admin_user_changed",
            "admin_user_changed",
            "admin_user_created",
            "admin_user_created",
            "admin_user_created",
        ],
        "{events:#?}"
    );
    assert_eq!(said[1].1, "dave");
    assert_eq!(said[4].1, "carol");
    assert!(said[4].2.is_u64(), "the account concerned is named by id too: {:?}", said[4]);
    assert_eq!(events[4]["detail"]["disabled"], "false");
    assert_eq!(events[5]["detail"]["disabled"], "true");
    assert_eq!(events[6]["detail"]["quota"], (1u64 << 30).to_string());
    // The migrated copy holds the trail, and the migration on top.
    let moved_events = offline(&moved);
    assert_eq!(moved_events[0]["action"], "migrated", "{moved_events:#?}");
    assert_eq!(moved_events[0]["detail"]["to_meta"], to);
    assert_eq!(moved_events.len(), events.len() + 1);
}
