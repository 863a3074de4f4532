//! TLS to PostgreSQL, on the test server (TLS on, its certificate from `tests/make-cert.sh`),
//! and how a URL's `sslmode` / `sslrootcert` are read.

use super::tls::{Mode, parse};
use crate::meta::db::Db;
use crate::tests::pg;

/// Connections to the test's database other than these questions' own (which may still be
/// closing) and the store's credential-change listener's: (encrypted, plain), the encrypted
/// ones on TLS 1.3 only.
fn connections(url: &str) -> (i64, i64) {
    let sql = "SELECT count(*) FILTER (WHERE s.ssl AND s.version = 'TLSv1.3') * 1000000 \
                      + count(*) FILTER (WHERE NOT s.ssl) \
               FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
               WHERE a.datname = current_database() AND a.application_name NOT IN ('tls-test', 'davit-watch')";
    let n = pg::admin_query_i64(&with(url, "application_name=tls-test"), sql);
    (n / 1_000_000, n % 1_000_000)
}

fn with(url: &str, params: &str) -> String {
    format!("{url}?{params}")
}

fn open_err(url: &str) -> String {
    match Db::open_postgres(url, 1, |_| {}) {
        Ok(db) => {
            db.close();
            panic!("opened over {}", super::shown_url(url))
        }
        Err(e) => e.to_string(),
    }
}

/// A whole store opens over `verify-full` with the server's root, works, and PostgreSQL sees
/// every one of its connections encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opens_over_verify_full_with_the_right_root_and_is_encrypted() {
    let url = pg::database();
    let root = pg::tls_root();
    let secure = with(&url, &format!("sslmode=verify-full&sslrootcert={}", root.display()));
    let f = crate::tests::open_with(|c| c.meta = crate::MetaStore::Postgres { url: secure, pool_size: 2 });
    let alice = crate::tests::user(&f.storage, "alice", crate::meta::model::Role::User, None).await;
    let data = b"over TLS".to_vec();
    f.storage.write(&alice, "/a.txt", crate::tests::body(&data), crate::WriteOptions::default()).await.unwrap();
    assert_eq!(crate::tests::read_all(&f.storage, &alice, "/a.txt", None).await.unwrap(), data);

    let (tls, plain) = connections(&url);
    assert!(tls >= 1, "no encrypted connection of the store ({tls} TLS, {plain} plain)");
    assert_eq!(plain, 0, "a plain connection of the store ({tls} TLS)");
}

/// A server whose certificate does not chain to the given root, or does not name the host
/// under `verify-full`, is refused at open with one line saying why (and no password); the
/// weaker modes connect as libpq's do.
#[test]
fn the_modes_accept_and_refuse_as_libpq_does() {
    let url = pg::database();
    let port = url.rsplit(':').next().and_then(|s| s.split('/').next()).unwrap().to_owned();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let root = pg::tls_root();
    let other = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/make-cert.sh"))
        .arg(other.path())
        .status()
        .unwrap();
    assert!(made.success());
    let wrong = other.path().join("cert.pem");
    let with_pw = format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/{db}");

    // The wrong root: refused under verify-full, verify-ca, and require with a root (libpq's
    // verify-ca).
    for mode in ["verify-full", "verify-ca", "require"] {
        let msg = open_err(&with(&with_pw, &format!("sslmode={mode}&sslrootcert={}", wrong.display())));
        // BadSignature: the other certificate has the same subject, with another key.
        assert!(msg.contains("invalid peer certificate: BadSignature"), "{mode}: {msg}");
        assert!(msg.contains(&format!("sslrootcert={}", wrong.display())), "{mode}: names the root: {msg}");
        assert!(!msg.contains("s3cret") && !msg.contains('\n'), "{mode}: one line, no password: {msg}");
        assert!(msg.contains(&format!("postgres://postgres@127.0.0.1:{port}/{db}")), "{mode}: names the server: {msg}");
    }

    // The right root, but a host name the certificate does not hold (reached by address):
    // verify-full refuses, verify-ca accepts.
    let misnamed = format!("postgres://postgres@db.invalid:{port}/{db}?hostaddr=127.0.0.1");
    let full = format!("{misnamed}&sslmode=verify-full&sslrootcert={}", root.display());
    let msg = open_err(&full);
    assert!(msg.contains("not valid for name \"db.invalid\"") && msg.contains("and name the host)"), "{msg}");
    let ca = format!("{misnamed}&sslmode=verify-ca&sslrootcert={}", root.display());
    Db::open_postgres(&ca, 1, |_| {}).unwrap().close();

    // require and prefer check no certificate, and encrypt; disable does not.
    for (params, encrypted) in [("sslmode=require", true), ("sslmode=prefer", true), ("sslmode=disable", false)] {
        let d = Db::open_postgres(&with(&url, params), 1, |_| {}).unwrap();
        let (tls, plain) = connections(&url);
        assert_eq!((tls > 0, plain > 0), (encrypted, !encrypted), "{params}: {tls} TLS, {plain} plain");
        d.close();
        drop(d);
        // Bounded wait for the server to see the connection gone before the next mode.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while connections(&url) != (0, 0) {
            assert!(std::time::Instant::now() < deadline, "{params}: the connection stayed open");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn a_url_is_read_as_libpq_reads_it() {
    let mode = |url: &str| parse(url).map(|t| t.mode);
    let base = "postgres://u:pw@h:5432/d";
    assert_eq!(mode(base), Ok(Mode::Prefer), "libpq's default");
    assert_eq!(mode(&format!("{base}?sslmode=disable")), Ok(Mode::Disable));
    assert_eq!(mode(&format!("{base}?sslmode=require")), Ok(Mode::Require));
    assert_eq!(mode(&format!("{base}?sslmode=require&sslrootcert=/r.pem")), Ok(Mode::VerifyCa), "libpq's rule");
    assert_eq!(mode(&format!("{base}?sslmode=verify-ca")), Ok(Mode::VerifyCa));
    assert_eq!(mode(&format!("{base}?sslrootcert=/r.pem&sslmode=verify-full")), Ok(Mode::VerifyFull));
    assert_eq!(mode(&format!("{base}?sslrootcert=system")), Ok(Mode::VerifyFull), "system implies verify-full");
    assert_eq!(mode("host=h user=u sslmode=require"), Ok(Mode::Require), "the key=value form");

    let err = |url: &str| parse(url).err().unwrap_or_default();
    assert!(err(&format!("{base}?sslmode=require&sslrootcert=system")).contains("verify-full"));
    assert!(err(&format!("{base}?sslmode=allow")).contains("sslmode=allow is not supported"));
    assert!(!err(&format!("{base}?sslmode=bogus")).contains("pw"));

    // The other parameters reach tokio-postgres; an escaped root path is decoded.
    let t = parse(&format!("{base}?application_name=davit%20node&sslmode=verify-ca&connect_timeout=3")).unwrap();
    assert_eq!(t.cfg.get_application_name(), Some("davit node"));
    assert_eq!(t.cfg.get_connect_timeout(), Some(&std::time::Duration::from_secs(3)));
    assert_eq!(t.cfg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    let t = parse(&format!("{base}?sslmode=verify-ca&sslrootcert=/no%20such/root.pem")).unwrap();
    let e = t.connector().err().unwrap_or_default();
    assert!(e.contains("sslrootcert=/no such/root.pem"), "{e}");
}

/// A server that declines TLS (here: a proxy in front of the test server answering `N` to
/// the TLS request, then passing bytes): the default (`prefer`) connects without it, as
/// libpq does; `require` refuses, saying so.
#[test]
fn prefer_falls_back_to_plain_and_require_refuses_a_server_without_tls() {
    let url = pg::database();
    let port: u16 = url.rsplit(':').next().and_then(|s| s.split('/').next()).unwrap().parse().unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    // The store's connection, its credential-change listener's (`watch`), and `require`.
    let proxy = no_tls_proxy(port, 3);
    let via = format!("postgres://postgres@127.0.0.1:{proxy}/{db}");

    let d = Db::open_postgres(&via, 1, |_| {}).unwrap();
    let (tls, plain) = connections(&url);
    assert_eq!((tls, plain), (0, 1), "the default mode over a server without TLS");
    d.close();

    let msg = open_err(&with(&via, "sslmode=require"));
    assert!(msg.contains("server does not support TLS"), "{msg}");
}

/// A proxy on 127.0.0.1 to `upstream` for at most `count` connections (within 30 s) that
/// answers a TLS request with `N` (no TLS) and then passes bytes both ways. Its port.
fn no_tls_proxy(upstream: u16, count: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            let Ok((mut client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            served += 1;
            client.set_nonblocking(false).unwrap();
            // SSLRequest: length 8, code 80877103.
            let mut request = [0u8; 8];
            if client.read_exact(&mut request).is_err() || request != [0, 0, 0, 8, 4, 210, 22, 47] {
                continue;
            }
            client.write_all(b"N").unwrap();
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                // Ends when either side closes.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    port
}

/// A password sign-in over TLS binds the exchange to the server's certificate
/// (`SCRAM-SHA-256-PLUS`, `tls-server-end-point`): with `channel_binding=require` the client
/// takes nothing less, and the server checks the certificate hash davit sends.
#[test]
fn a_password_sign_in_over_tls_is_bound_to_the_certificate() {
    let url = pg::database_with_password();
    for mode in ["require", "prefer"] {
        let d = Db::open_postgres(&with(&url, &format!("sslmode={mode}&channel_binding=require")), 1, |_| {})
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        d.close();
    }
    // Without TLS there is nothing to bind to (and this role is let in without a password
    // there): refused by the client.
    let msg = open_err(&with(&url, "sslmode=disable&channel_binding=require"));
    assert!(msg.contains("server did not use channel binding") && !msg.contains("scram-pw"), "{msg}");
}

/// A role the server admits by client certificate only (`pg_hba.conf`: `cert`): a store opens
/// with `sslcert`/`sslkey` of a certificate the server's client CA signed, under `require` and
/// `verify-full`; without one, or with a stranger's for the same name, the server refuses,
/// and a key file others may read is refused before any connection, as libpq does. No error
/// quotes a key.
#[test]
fn a_client_certificate_signs_in_where_the_server_requires_one() {
    let url = pg::database_for_cert();
    let c = pg::client_certs();
    let root = pg::tls_root();
    let certs =
        |cert: &std::path::Path, key: &std::path::Path| format!("sslcert={}&sslkey={}", cert.display(), key.display());
    let good = certs(&c.cert, &c.key);
    let full = with(&url, &format!("sslmode=verify-full&sslrootcert={}&{good}", root.display()));
    // The store's part on a runtime of its own; the refusals below open stores outside any.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let f = crate::tests::open_with(|cfg| cfg.meta = crate::MetaStore::Postgres { url: full, pool_size: 2 });
        let alice = crate::tests::user(&f.storage, "alice", crate::meta::model::Role::User, None).await;
        let data = b"signed in by certificate".to_vec();
        f.storage.write(&alice, "/c.txt", crate::tests::body(&data), crate::WriteOptions::default()).await.unwrap();
        assert_eq!(crate::tests::read_all(&f.storage, &alice, "/c.txt", None).await.unwrap(), data);
        let (tls, plain) = connections(&url.replacen("davit_cert@", "postgres@", 1));
        assert!(tls >= 1 && plain == 0, "{tls} TLS, {plain} plain");
    });
    drop(runtime);

    Db::open_postgres(&with(&url, &format!("sslmode=require&{good}")), 1, |_| {}).unwrap().close();

    for (what, params) in [
        ("no certificate", "sslmode=require".to_owned()),
        ("a stranger's certificate", format!("sslmode=require&{}", certs(&c.stranger_cert, &c.stranger_key))),
    ] {
        let msg = open_err(&with(&url, &params));
        assert!(!msg.contains('\n') && !msg.contains("PRIVATE KEY"), "{what}: one line, no key: {msg}");
        assert!(
            msg.contains("davit_cert") || msg.contains("certificate") || msg.contains("pg_hba"),
            "{what}: says why: {msg}"
        );
    }

    // The key of another certificate: refused (by rustls, or by the server's check of the
    // handshake's signature).
    let msg = open_err(&with(&url, &format!("sslmode=require&{}", certs(&c.cert, &c.stranger_key))));
    assert!(!msg.contains('\n') && !msg.contains("PRIVATE KEY"), "a mismatched pair: {msg}");

    // A key others may read.
    let dir = tempfile::tempdir().unwrap();
    let open_key = dir.path().join("open.key");
    std::fs::copy(&c.key, &open_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = open_err(&with(&url, &format!("sslmode=require&{}", certs(&c.cert, &open_key))));
    assert!(msg.contains("may be read by its group or others"), "{msg}");
    assert!(!msg.contains("BEGIN"), "{msg}");

    let t = parse(&format!("{url}?sslcert=/c.pem")).err().unwrap_or_default();
    assert!(t.contains("sslcert and sslkey go together"), "{t}");
}
