//! Data folders of earlier formats open, migrate and read back; newer ones are refused.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::s3_sign::{Signer, sha256_hex};
use crate::support::{self, admin, spawn_server};

/// A data folder an earlier davit wrote with `tests/fixtures/format-2/make.sh`: the same
/// content each time, with the key and link token that run made.
struct Earlier {
    dir: &'static str,
    key: &'static str,
    secret: &'static str,
    link_token: &'static str,
    /// Whether opening it migrates the format.
    migrates: bool,
}

const FORMAT_2: Earlier = Earlier {
    dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-2/data"),
    key: "DV3NE66NBTEY2GHBKZ5E",
    secret: "fkpzua011Zpw7Zappmv60RigRYuPobBynn72gVOf",
    link_token: "JqZEbdsggeQHR0IXkQXQA0DtiY93aIhIx5R2toD4Erg",
    migrates: true,
};

/// Format 3 as e5d94dc wrote it: before the lock and grave tables, with `jwt.key` a file.
const FORMAT_3: Earlier = Earlier {
    dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-3/data"),
    key: "DVYPJQL6ZJSKMIUENBGF",
    secret: "Ur4aQfJoVBAYTkBYrY9f1XhgyUKFVihLDjlF9tze",
    link_token: "KD2Pdvemd-FSrsm9l78nFu7XuTtnJXMiVN2Z206scRA",
    // To format 4: its folders get their totals.
    migrates: true,
};
/// Format 3 as f3c44f9, the last landed build of format 3, wrote it: with the lock and grave
/// tables and the access-token key in META.
const FORMAT_3_LAST: Earlier = Earlier {
    dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-3-f3c44f9/data"),
    key: "DVGZS4XN77CMCMWTJR4T",
    secret: "8QNID6sZFIxHxTYYdQVSHtRTvF0oS6LBLzxRSgdl",
    link_token: "NITKcvpfinT8EGU0AY1W2HheTzESKWBEjGh6xIijbjk",
    // To format 4: its folders get their totals, the newer tables are made.
    migrates: true,
};
/// Format 4 as 3776c8b, its last build, wrote it; with a folder, a grant with re-share and an
/// end, and audit events (tests/fixtures/format-4/README.md).
const FORMAT_4: Earlier = Earlier {
    dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-4/data"),
    key: "DVP6Q55BEHEJPTDSELDO",
    secret: "thh9TBruFvHlSGDOSiFz5uwhCQixpeaw2GOxANot",
    link_token: "OUZBqXEwjMQA-TJz4xRdfH6Rs0B50gPBPhQ4DBsu6SM",
    // To format 6: the S3 tables, then the trash tables are made.
    migrates: true,
};

/// Format 5 as 6b64e76 wrote it; with versions, delete markers, object lock, tags, lifecycle,
/// CORS and a bucket policy (tests/fixtures/format-5/README.md).
const FORMAT_5: Earlier = Earlier {
    dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-5/data"),
    key: "DV6MI6A4UDZ7KMH5D4C7",
    secret: "cuGr8wLs59FfxM1z56EurDCcsjrYtqGYjw9wDYAm",
    link_token: "h205ZRXW40cH6FJwGVe8H3rxkdRmHqurnYjJqJ6gHQY",
    // To format 6: the trash and version-tag tables are made.
    migrates: true,
};

const ALICE: (&str, &str) = ("alice", "alice-fixture-pw-1");
const BOB: (&str, &str) = ("bob", "bob-fixture-pw-1");
const REST_SHA: &str = "7530860ac6fbe5454c00e312f1c3b4775c26bb0dc0f1a18c5d0c851d87944a6a";
const PROPS_SHA: &str = "8bd5b1fd24a702eedf78b2bcd314deb714224054da69cf7d83125851bc5e077e";
const MULTI_SHA: &str = "0336ba082d9b057ca64a3894203a274b581a85d1447d1707e5137fc95daa9fcc";
const ZEROS_5MIB_SHA: &str = "c036cbb7553a909f8b8877d4461924307f27ecb66cff928eeeafd569c3887e29";
const INNER_SHA: &str = "587ca518c4d07a9914fccac0cd6066ab8883a7c1c2065c7436def3d54a7ee71d";
const TAIL_SHA: &str = "0ec84c13ab5c48459208c544eaa1b8300a3e91f99ee69d3b2858b58684ac232a";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

async fn get(c: &reqwest::Client, url: &str, (user, pass): (&str, &str)) -> (u16, Vec<u8>) {
    let r = c.get(url).basic_auth(user, Some(pass)).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn login(c: &reqwest::Client, base: &str, (user, pass): (&str, &str)) -> Value {
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": pass }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{user} logs in");
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_format_2_folder_opens_migrates_and_reads_back() {
    reads_back(&FORMAT_2).await;
}

#[tokio::test]
async fn a_folder_the_previous_build_wrote_opens_and_reads_back() {
    reads_back(&FORMAT_3).await;
}

#[tokio::test]
async fn a_folder_the_last_format_3_build_wrote_opens_migrates_and_reads_back() {
    reads_back(&FORMAT_3_LAST).await;
}

#[tokio::test]
async fn a_folder_the_last_format_4_build_wrote_opens_migrates_and_reads_back() {
    reads_back(&FORMAT_4).await;
    // What format 4 added survives: the folder's file, read by bob through the re-share grant
    // with an end, and the audit events of that build.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(Path::new(FORMAT_4.dir), &data);
    let server = spawn_server(&data, &[]);
    let base = format!("http://{}", server.addr);
    let c = support::client();
    let (st, body) = get(&c, &format!("{base}/api/v1/files/shared/alice/docs/inner.txt"), BOB).await;
    assert_eq!((st, sha256_hex(&body).as_str()), (200, INNER_SHA));
    let shares: Value = c
        .get(format!("{base}/api/v1/shares"))
        .basic_auth(BOB.0, Some(BOB.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let docs = shares.to_string();
    assert!(docs.contains("\"reshare\":true") && docs.contains("2126-"), "{docs}");
    let (st, body) = get(&c, &format!("{base}/api/v1/me/audit"), ALICE).await;
    let events = String::from_utf8_lossy(&body);
    assert!(st == 200 && events.contains("share_created") && events.contains("link_created"), "{st} {events}");
}

#[tokio::test]
async fn a_folder_the_last_format_5_build_wrote_opens_migrates_and_reads_back() {
    reads_back(&FORMAT_5).await;
    // What format 5 added survives: versions and a delete marker, tags, lifecycle, CORS, the
    // bucket policy as bob's share, object lock.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(Path::new(FORMAT_5.dir), &data);
    let server = spawn_server(&data, &[]);
    let base = format!("http://{}", server.addr);
    let c = support::client();
    let s3 = Signer { base: base.clone(), key: FORMAT_5.key.into(), secret: FORMAT_5.secret.into(), client: c.clone() };
    let empty = sha256_hex(b"");
    let s3_get = |path: &'static str, query: &'static [(&'static str, &'static str)]| {
        let r = s3.request(Method::GET, path, query, &[], &empty);
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(s3_get("/vers/v.txt", &[]).await, (200, "the second version, format 5\n".into()));
    assert_eq!(
        s3_get("/vers/v.txt", &[("versionId", "fffffffffffffffe")]).await,
        (200, "the first version, format 5\n".into())
    );
    assert_eq!(s3_get("/vers/gone.txt", &[]).await.0, 404);
    assert_eq!(
        s3_get("/vers/gone.txt", &[("versionId", "fffffffffffffffc")]).await,
        (200, "deleted, kept as a version\n".into())
    );
    let (st, versions) = s3_get("/vers", &[("versions", "")]).await;
    assert!(st == 200 && versions.matches("<Version>").count() == 3, "{versions}");
    assert!(versions.contains("<DeleteMarker>") && versions.contains("fffffffffffffffb"), "{versions}");
    let (st, tags) = s3_get("/vers/v.txt", &[("tagging", "")]).await;
    assert!(st == 200 && tags.contains("<Key>colour</Key>") && tags.contains("<Value>teal</Value>"), "{tags}");
    let (st, tags) = s3_get("/vers", &[("tagging", "")]).await;
    assert!(st == 200 && tags.contains("<Value>fixture</Value>"), "{tags}");
    let (st, rules) = s3_get("/vers", &[("lifecycle", "")]).await;
    assert!(st == 200 && rules.contains("<ID>old</ID>") && rules.contains("logs/"), "{rules}");
    let (st, cors) = s3_get("/vers", &[("cors", "")]).await;
    assert!(st == 200 && cors.contains("https://app.example"), "{cors}");
    let (st, policy) = s3_get("/vers", &[("policy", "")]).await;
    assert!(st == 200 && policy.contains("user/bob"), "{policy}");
    let (st, body) = get(&c, &format!("{base}/api/v1/files/shared/alice/vers/v.txt"), BOB).await;
    assert_eq!((st, body.as_slice()), (200, b"the second version, format 5\n".as_slice()));
    let (st, retention) = s3_get("/locked/kept.txt", &[("retention", "")]).await;
    assert!(st == 200 && retention.contains("GOVERNANCE") && retention.contains("2126-01-01"), "{retention}");
    let (st, hold) = s3_get("/locked/kept.txt", &[("legal-hold", "")]).await;
    assert!(st == 200 && hold.contains("<Status>ON</Status>"), "{hold}");
    let r = s3
        .request(Method::DELETE, "/locked/kept.txt", &[("versionId", "fffffffffffffffa")], &[], &empty)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the legal hold still keeps the version");
    assert_eq!(s3_get("/locked/kept.txt", &[]).await, (200, "kept until 2126, format 5\n".into()));
    assert!(server.terminate().success());
    let (ok, out, err) = admin(&data, &["check"], "");
    assert!(ok && out.contains("consistent"), "{out}{err}");
}

async fn reads_back(fixture: &Earlier) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(Path::new(fixture.dir), &data);
    reads_back_from(fixture, &data, fixture.migrates).await;
}

/// The fixture's content read back from `data`, a copy of it; `migrates`: whether opening
/// it must still migrate the format.
async fn reads_back_from(fixture: &Earlier, data: &Path, migrates: bool) {
    let data = data.to_path_buf();
    let server = spawn_server(&data, &[]);
    let base = format!("http://{}", server.addr);
    let c = support::client();

    for who in [ALICE, BOB] {
        assert!(login(&c, &base, who).await["access_token"].is_string());
    }
    let (st, body) = get(&c, &format!("{base}/api/v1/files/rest.txt"), ALICE).await;
    assert_eq!((st, sha256_hex(&body).as_str()), (200, REST_SHA));
    let (st, body) = get(&c, &format!("{base}/dav/props.txt"), ALICE).await;
    assert_eq!((st, sha256_hex(&body).as_str()), (200, PROPS_SHA));

    let propfind = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:F="urn:davit:fixture"><D:prop><F:colour/></D:prop></D:propfind>"#;
    let r = c
        .request(Method::from_bytes(b"PROPFIND").unwrap(), format!("{base}/dav/props.txt"))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .header("Depth", "0")
        .body(propfind)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let xml = r.text().await.unwrap();
    assert!(xml.contains(">teal<"), "the dead property survives: {xml}");

    // The S3 key made at format 2 still signs: its secret was sealed under a subkey of the
    // master key, which is now the data key.
    let s3 = Signer { base: base.clone(), key: fixture.key.into(), secret: fixture.secret.into(), client: c.clone() };
    let empty = sha256_hex(b"");
    let whole = s3.request(Method::GET, "/bucket/multi.bin", &[], &[], &empty).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["etag"], "\"6e70c9a3a5f5b2da43e4302741a9cb92-3\"");
    assert_eq!(sha256_hex(&whole.bytes().await.unwrap()), MULTI_SHA);
    for (part, sha) in [("1", ZEROS_5MIB_SHA), ("2", ZEROS_5MIB_SHA), ("3", TAIL_SHA)] {
        let r =
            s3.request(Method::GET, "/bucket/multi.bin", &[("partNumber", part)], &[], &empty).send().await.unwrap();
        assert_eq!(r.status(), 206, "part {part}");
        assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha, "part {part}");
    }

    // Bob sees alice's share and reads through it; he owns nothing of hers.
    let (st, body) = get(&c, &format!("{base}/api/v1/shares"), BOB).await;
    assert_eq!(st, 200);
    let shares: Value = serde_json::from_slice(&body).unwrap();
    let with_me = shares["shared_with_me"].as_array().unwrap();
    assert!(with_me.iter().any(|s| s["path"] == "/shared/alice/rest.txt"), "{shares}");
    let (st, body) = get(&c, &format!("{base}/api/v1/files/shared/alice/rest.txt"), BOB).await;
    assert_eq!((st, sha256_hex(&body).as_str()), (200, REST_SHA));

    let r = c.get(format!("{base}/s/{}", fixture.link_token)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), PROPS_SHA);

    assert_eq!(server.stderr().contains("migrating the data folder"), migrates, "{}", server.stderr());
    assert!(server.terminate().success());
    let (ok, out, err) = admin(&data, &["check"], "");
    assert!(ok && out.contains("consistent"), "{out}{err}");
}

#[tokio::test]
async fn a_folder_of_a_newer_format_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ok, out, err) = admin(&data, &["user", "list"], "");
    assert!(ok, "{out}{err}");
    let newer = davit_storage::format::FORMAT_VERSION + 1;
    {
        let db = davit_storage::db::Db::open(&data.join("davit.redb"), 1 << 20, |_| {}).unwrap();
        db.write_sync(|ctx| {
            ctx.txn.open_table(davit_storage::db::META)?.insert("format_version", newer.to_le_bytes().as_slice())?;
            Ok(())
        })
        .unwrap();
        db.close();
    }
    // The writer thread lets go of the file just after `close` returns.
    let mut tries = 0;
    let err = loop {
        let (ok, _, err) = admin(&data, &["user", "list"], "");
        assert!(!ok);
        tries += 1;
        if !err.contains("another process") || tries == 50 {
            break err;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(err.contains(&format!("format version {newer}")) && err.contains("newer davit"), "{err}");
}

/// What META says of a folder's format: (format_version, has `key_check`, has `data_key`).
fn format_state(data: &Path) -> (u32, bool, bool) {
    // The killed process's lock on the file went with it; a start that just ended lets go
    // a moment after it exits: bounded retries.
    for _ in 0..50 {
        match davit_storage::db::Db::open(&data.join("davit.redb"), 1 << 20, |_| {}) {
            Ok(db) => {
                let state = db
                    .read_sync(|t| {
                        use davit_storage::db::Readable;
                        let meta = t.open_table(davit_storage::db::META)?;
                        let version = meta
                            .get("format_version")?
                            .map(|v| u32::from_le_bytes(v.value().try_into().expect("a 4-byte format version")));
                        Ok((version.unwrap_or(0), meta.get("key_check")?.is_some(), meta.get("data_key")?.is_some()))
                    })
                    .unwrap();
                db.close();
                drop(db);
                wait_until_free(data);
                return state;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    panic!("{} never opened", data.display());
}

/// Waits (bounded) until the database file this process just closed is let go (a closed
/// store's writer thread lets go a moment after `close`): asks a `davit` with a wrong master
/// key, which is refused before it changes anything, whether the file is still held.
fn wait_until_free(data: &Path) {
    let wrong = data.with_extension("wrong-key");
    std::fs::write(&wrong, "ab".repeat(32)).unwrap();
    for _ in 0..50 {
        let out = std::process::Command::new(support::davit_bin())
            .args(["admin", "--data-dir"])
            .arg(data)
            .arg("--master-key-file")
            .arg(&wrong)
            .arg("check")
            .env("DAVIT_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a wrong master key opened the folder");
        if !err.contains("another process") {
            assert!(err.contains("master key does not match"), "{err}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{} stays held", data.display());
}

/// kill -9 at any moment of the start that migrates a format-2 folder leaves it at format 2
/// (untouched: it migrates at the next start) or at the current format (whole: every step ran
/// in the one opening transaction), never in between; and
/// the folder then reads back whole.
#[tokio::test]
async fn a_migration_killed_at_any_moment_leaves_the_old_format_or_the_new_never_half() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(Path::new(FORMAT_2.dir), &data);
    assert_eq!(format_state(&data), (2, true, false), "the fixture is at format 2");
    let current = davit_storage::format::FORMAT_VERSION;
    let mut seen = std::collections::BTreeMap::new();
    // Kills spread over the start: before the open, during the migration, after it.
    for delay_ms in 0..200 {
        let mut child = std::process::Command::new(support::davit_bin())
            .args(["admin", "--data-dir"])
            .arg(&data)
            .arg("check")
            .env("DAVIT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let state = format_state(&data);
        assert!(
            state == (2, true, false) || state == (current, false, true),
            "after a kill at {delay_ms} ms the folder is half-migrated: {state:?}"
        );
        *seen.entry(state.0).or_insert(0) += 1;
        if state.0 == current {
            break;
        }
    }
    eprintln!("formats after each kill: {seen:?}");
    let migrated = seen.contains_key(&current);
    reads_back_from(&FORMAT_2, &data, !migrated).await;
}
