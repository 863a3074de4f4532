//! A real PostgreSQL 15 for the tests: one server per test binary run, one new database per
//! test.
//!
//! The server is Debian's (`/usr/lib/postgresql/15/bin`, or `DAVIT_PG_BIN`). It runs as the
//! `postgres` user when the tests run as root (`initdb` refuses root; CI runs as root), in a
//! temporary folder that user owns, on a free port of 127.0.0.1 only, with its socket in that
//! folder and `fsync=off` (a test database need not survive a crash). The test harness runs
//! no destructor of a static, so a small shell watchdog started with the server stops it
//! (and removes its folder) as soon as this process is gone. Missing binaries fail the tests
//! that need them, with a message saying what to install: they are never skipped.
//!
//! The server has TLS on (`ssl=on`, the certificate of `tests/make-cert.sh`, for
//! `localhost` and 127.0.0.1; [`tls_root`]), as a production one would: every test then
//! connects as davit does by default (`sslmode=prefer`: TLS, certificate unchecked), and the
//! TLS tests check the certificate against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Starts the server, then watches this test process and stops the server once it is gone.
const SCRIPT: &str = r#"
set -e
dir=$1; port=$2; owner=$3; bin=$4
"$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
# One role signs in with a password (SCRAM) over TLS only: the channel-binding test's.
sed -i '1i hostssl all davit_scram 127.0.0.1/32 scram-sha-256' "$dir/data/pg_hba.conf"
# One with a client certificate only (its CN is the role): the client-certificate test's.
sed -i '1i hostssl all davit_cert 127.0.0.1/32 cert' "$dir/data/pg_hba.conf"
"$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
    -c shared_buffers=64MB -c ssl=on -c ssl_cert_file="$dir/tls/cert.pem" -c ssl_key_file="$dir/tls/key.pem" \
    -c ssl_ca_file="$dir/tls/client-ca.pem" \
    >"$dir/server.log" 2>&1 &
pg=$!
while [ -d "/proc/$owner" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.2; done
kill -INT "$pg" 2>/dev/null || true
wait "$pg" || true
rm -rf "$dir"
"#;

struct Server {
    port: u16,
    dir: PathBuf,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The URL of a new, empty database on the test server (started on first use).
pub(crate) fn database() -> String {
    let server = SERVER.get_or_init(start);
    let name = format!("t_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let sql = format!("CREATE DATABASE {name}");
    admin(server, &sql).unwrap_or_else(|e| panic!("creating a test database: {e}\n{}", log(server)));
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

/// The certificate the test server presents (self-signed: also the root that trusts it).
pub(crate) fn tls_root() -> PathBuf {
    SERVER.get_or_init(start).dir.join("tls/cert.pem")
}

/// The URL of a new, empty database on the test server for a role that must sign in with
/// SCRAM, over TLS only (`davit_scram`, a superuser so it may make davit's schema).
pub(crate) fn database_with_password() -> String {
    static ROLE: OnceLock<()> = OnceLock::new();
    let url = database();
    let server = SERVER.get().expect("started by database()");
    ROLE.get_or_init(|| {
        admin(server, "CREATE ROLE davit_scram LOGIN SUPERUSER PASSWORD 'scram-pw'")
            .unwrap_or_else(|e| panic!("creating the SCRAM role: {e}\n{}", log(server)))
    });
    url.replacen("postgres://postgres@", "postgres://davit_scram:scram-pw@", 1)
}

/// The client certificates of the test server's `davit_cert` role (see [`database_for_cert`]).
pub(crate) struct ClientCerts {
    /// Signed by the CA the server trusts for clients, for CN `davit_cert`: accepted.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Self-signed, for the same CN: refused.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

/// Makes, with openssl, a CA the server trusts for clients (`ssl_ca_file`), a client
/// certificate it signed and a stranger's; the keys private to this process's user, as libpq
/// and davit require.
const CLIENT_CERTS: &str = r#"
set -e
tls=$1; client=$2
subj() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$@" 2>/dev/null; }
subj /CN=davit-test-client-ca -x509 -days 2 -keyout "$client/ca.key" -out "$tls/client-ca.pem"
subj /CN=davit_cert -keyout "$client/client.key" -out "$client/client.csr"
# Extensions make it X.509 v3: rustls refuses a v1 certificate even as its own.
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' >"$client/ext"
openssl x509 -req -in "$client/client.csr" -CA "$tls/client-ca.pem" -CAkey "$client/ca.key" \
    -CAcreateserial -days 2 -extfile "$client/ext" -out "$client/client.pem" 2>/dev/null
subj /CN=davit_cert -x509 -days 2 -keyout "$client/stranger.key" -out "$client/stranger.pem"
chmod 600 "$client"/*.key
"#;

pub(crate) fn client_certs() -> ClientCerts {
    let dir = SERVER.get_or_init(start).dir.join("client");
    ClientCerts {
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
        stranger_cert: dir.join("stranger.pem"),
        stranger_key: dir.join("stranger.key"),
    }
}

/// The URL of a new, empty database on the test server for a role that signs in with a
/// client certificate only, over TLS only (`davit_cert`, a superuser so it may make davit's
/// schema); the certificate is not in the URL: see [`client_certs`].
pub(crate) fn database_for_cert() -> String {
    static ROLE: OnceLock<()> = OnceLock::new();
    let url = database();
    let server = SERVER.get().expect("started by database()");
    ROLE.get_or_init(|| {
        admin(server, "CREATE ROLE davit_cert LOGIN SUPERUSER")
            .unwrap_or_else(|e| panic!("creating the certificate role: {e}\n{}", log(server)))
    });
    url.replacen("postgres://postgres@", "postgres://davit_cert@", 1)
}

/// A statement run on the server's `postgres` database, for what tests measure or break.
pub(crate) fn admin_query_i64(url: &str, sql: &str) -> i64 {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    on_own_runtime(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.query_one(sql.as_str(), &[]).await.map(|r| r.get::<_, i64>(0))
    })
    .unwrap()
}

fn log(server: &Server) -> String {
    std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
}

/// Runs `fut` on a runtime of its own on a thread of its own: callers may be inside a
/// test's runtime, where another cannot block.
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
) -> Result<T, tokio_postgres::Error> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(fut)
    })
    .join()
    .unwrap()
}

fn admin(server: &Server, sql: &str) -> Result<(), tokio_postgres::Error> {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let sql = sql.to_owned();
    on_own_runtime(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&sql).await
    })
}

fn start() -> Server {
    let bin = std::env::var("DAVIT_PG_BIN").unwrap_or_else(|_| DEFAULT_BIN.into());
    assert!(
        Path::new(&bin).join("postgres").exists() && Path::new(&bin).join("initdb").exists(),
        "PostgreSQL 15 server binaries are not in {bin}: these tests need a real server \
         (Debian: apt-get install postgresql-15; or set DAVIT_PG_BIN to the folder holding postgres and initdb)"
    );
    let dir = tempfile::Builder::new().prefix("davit-pg-").tempdir().unwrap().keep();
    let root = output("id", &["-u"]) == "0";
    let tls = dir.join("tls");
    let made = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/make-cert.sh"))
        .arg(&tls)
        .status()
        .expect("running tests/make-cert.sh (it needs openssl)");
    assert!(made.success(), "tests/make-cert.sh failed ({made}): it needs openssl");
    let client = dir.join("client");
    std::fs::create_dir(&client).unwrap();
    let made = Command::new("sh")
        .args(["-c", CLIENT_CERTS, "client-certs"])
        .arg(&tls)
        .arg(&client)
        .status()
        .expect("running openssl for the client certificates");
    assert!(made.success(), "making the client certificates failed ({made}): it needs openssl");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tls.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    if root {
        let uid: u32 = output("id", &["-u", "postgres"]).parse().expect("a postgres user (Debian's package makes it)");
        let gid: u32 = output("id", &["-g", "postgres"]).parse().unwrap();
        // The server refuses a key file others may read, or one it does not own. The client
        // folder is its too only so that the watchdog (as postgres) may remove it.
        for path in [
            dir.clone(),
            tls.clone(),
            tls.join("cert.pem"),
            tls.join("key.pem"),
            tls.join("client-ca.pem"),
            client.clone(),
        ] {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args = [
        SCRIPT.to_owned(),
        "davit-pg".into(),
        dir.display().to_string(),
        port.to_string(),
        std::process::id().to_string(),
        bin,
    ];
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c");
        c
    };
    cmd.args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("starting the PostgreSQL watchdog");
    // The child is the watchdog: it lives as long as this process, so it is never waited for.
    let server = Server { port, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if admin(&server, "SELECT 1").is_ok() {
            std::thread::spawn(move || child.wait());
            return server;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let initdb = std::fs::read_to_string(server.dir.join("initdb.log")).unwrap_or_default();
            panic!("the test PostgreSQL stopped ({status}):\n{initdb}\n{}", log(&server));
        }
        assert!(Instant::now() < deadline, "the test PostgreSQL did not start in 60 s:\n{}", log(&server));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A test that runs inside [`on_postgres`]: its database, once made, and how many stores
/// were configured on it.
struct PgRun {
    url: Option<String>,
    opens: usize,
}

thread_local! {
    // Thread-local: a `#[tokio::test]` body runs on the thread that calls it, and tests run
    // in parallel, each on a thread of its own.
    static ON_POSTGRES: std::cell::RefCell<Option<PgRun>> = const { std::cell::RefCell::new(None) };
}

/// Runs a test of the core with its metadata in PostgreSQL instead of redb, and fails if
/// the test opened no store there (so a test that bypasses `tests::config` cannot pass
/// unseen).
pub(crate) fn on_postgres(test: fn()) {
    ON_POSTGRES.with(|run| *run.borrow_mut() = Some(PgRun { url: None, opens: 0 }));
    test();
    let run = ON_POSTGRES.with(|run| run.borrow_mut().take()).expect("still set");
    assert!(run.opens > 0, "the test opened no store on PostgreSQL");
}

/// The same tests once more, each with its metadata in PostgreSQL (`on_postgres`): the
/// rules are written once, above the seam, and must hold on either engine.
macro_rules! also_on_postgres {
    ($($test:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[test]
                fn $test() {
                    crate::tests::pg::on_postgres(super::$test)
                }
            )*
        }
    };
}
pub(crate) use also_on_postgres;

/// One test per engine from one body: `name(postgres: bool)` runs as `name::redb` and
/// `name::postgres` (the seam's own tests, which open stores by hand).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn redb() {
                super::$name(false)
            }
            #[test]
            fn postgres() {
                super::$name(true)
            }
        }
    )*};
}
pub(crate) use on_both;

/// The metadata store of the running test: its PostgreSQL database inside [`on_postgres`]
/// (made on first use), none otherwise.
pub(crate) fn store_of_this_test() -> Option<crate::MetaStore> {
    ON_POSTGRES.with(|run| {
        let mut run = run.borrow_mut();
        let run = run.as_mut()?;
        let url = run.url.get_or_insert_with(database).clone();
        run.opens += 1;
        Some(crate::MetaStore::Postgres { url, pool_size: 8 })
    })
}

/// The next store of the running test gets a database of its own.
pub(crate) fn next_store_is_new() {
    ON_POSTGRES.with(|run| run.borrow_mut().as_mut().map(|run| run.url = None));
}
