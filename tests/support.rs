//! Starting and stopping servers for tests.

pub mod openapi;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use davit::Config;
use davit_storage::{NewUser, Role, Status, Storage};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "test-password-1";

/// A server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub storage: Storage,
    /// Kept for the server's lifetime; removed on drop.
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Every REST answer is checked against the OpenAPI document (see `openapi`).
    pub openapi: Arc<openapi::OpenApiCheck>,
}

pub struct Options {
    pub tls: bool,
    pub users: Vec<(&'static str, Role)>,
    pub default_quota: u64,
    /// SMTP URL; None: mail goes to the outbox folder.
    pub smtp_url: Option<String>,
    pub policy: davit_storage::policy::Policy,
    /// Virtual-host S3 addressing under this domain (`<bucket>.<domain>`).
    pub base_domain: Option<&'static str>,
    /// Last changes to the server's configuration (timeouts, limits, proxies).
    pub configure: fn(&mut Config),
    /// The OpenAPI document answers are checked against; None: the server's own (only the
    /// tests of the check itself give another).
    pub openapi: Option<serde_json::Value>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: false,
            users: vec![("admin", Role::Admin), ("alice", Role::User), ("bob", Role::User)],
            default_quota: 0,
            smtp_url: None,
            policy: Default::default(),
            base_domain: None,
            configure: |_| {},
            openapi: None,
        }
    }
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        master_key_file: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        base_domain: None,
        tls: None,
        smtp_url: None,
        mail_from: "davit@localhost".into(),
        default_quota: 0,
        max_file_size: 0,
        cache_size: 16 << 20,
        shutdown_timeout: Duration::from_secs(10),
        multipart_expiry: Duration::from_secs(7 * 24 * 3600),
        link_max_lifetime: Duration::from_secs(30 * 24 * 3600),
        login_by_code: true,
        s3_public_read: false,
        policy: Default::default(),
        trusted_proxies: Vec::new(),
        header_timeout: Duration::from_secs(20),
        body_idle_timeout: Duration::from_secs(60),
        max_connections_per_address: 256,
        send_idle_timeout: Duration::from_secs(60),
        max_connections: 10_000,
        stores: davit::config::Stores { meta: Default::default(), chunks: Default::default(), chunk_grace: None },
        ops: Default::default(),
    }
}

/// The certificate made by tests/make-cert.sh (the helper every TLS suite shares).
pub fn cert_dir() -> PathBuf {
    let dir = std::env::var_os("DAVIT_TEST_CERT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tls"));
    let status = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make-cert.sh"))
        .arg(&dir)
        .status()
        .expect("run tests/make-cert.sh");
    assert!(status.success(), "tests/make-cert.sh failed");
    dir
}

pub async fn start(opts: Options) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    // One configuration for both halves: the storage's is derived from the server's, as
    // the binary derives it.
    let mut config = test_config(dir.path());
    config.default_quota = opts.default_quota;
    config.policy = opts.policy.clone();
    config.smtp_url = opts.smtp_url.clone();
    config.base_domain = opts.base_domain.map(str::to_owned);
    (opts.configure)(&mut config);
    let mut sc = config.storage().unwrap();
    sc.master_key = Some("ab".repeat(32));
    let storage = Storage::open(sc).unwrap();
    for (name, role) in &opts.users {
        storage
            .create_user(NewUser {
                username: (*name).into(),
                email: Some(format!("{name}@example.test")),
                password: PASSWORD.into(),
                role: *role,
                status: Status::Active,
                quota: None,
            })
            .await
            .unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = opts.tls.then(|| {
        let d = cert_dir();
        davit::tls::acceptor(&d.join("cert.pem"), &d.join("key.pem")).unwrap()
    });
    let mut app = davit::build_app(&config, storage.clone()).unwrap();
    let openapi = Arc::new(openapi::OpenApiCheck::new(opts.openapi.clone().unwrap_or_else(davit_api::openapi)));
    app.api = app.api.layer(axum::middleware::from_fn_with_state(openapi.clone(), openapi::layer));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(davit::serve(listener, app, tls, async {
        let _ = rx.await;
    }));
    let scheme = if opts.tls { "https" } else { "http" };
    TestServer {
        addr,
        base: format!("{scheme}://{addr}"),
        storage,
        _dir: dir,
        stop: Some(tx),
        task: Some(task),
        openapi,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `login` as the core sees them, signed in the only way a front end can be: with
    /// credentials (every seeded user has [`PASSWORD`]).
    pub async fn principal(&self, login: &str) -> davit_storage::Principal {
        self.storage.authenticate_basic(login, PASSWORD, None).await.unwrap().principal
    }

    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    pub async fn stop_in_place(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t).await.expect("server stops in time").unwrap().unwrap();
        }
        self.assert_answers_documented();
    }

    /// Fails the test if an answer so far did not match the OpenAPI document.
    pub fn assert_answers_documented(&self) {
        let failures = self.openapi.take_failures();
        assert!(failures.is_empty(), "answers that do not match the OpenAPI document:\n{}", failures.join("\n"));
    }

    pub fn trigger_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A test that ends without `stop` is checked too; the count goes to the test's output
/// (`--nocapture`), for the run's total.
impl Drop for TestServer {
    fn drop(&mut self) {
        let n = self.openapi.checked.load(std::sync::atomic::Ordering::Relaxed);
        let r = self.openapi.requests_checked.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("openapi: {n} REST answers and {r} accepted JSON requests of this server matched their schemas");
        if !std::thread::panicking() {
            self.assert_answers_documented();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

pub fn tls_client() -> reqwest::Client {
    let pem = std::fs::read(cert_dir().join("cert.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Deterministic bytes that do not repeat.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The real `davit` binary as a child process.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_log: PathBuf,
}

pub fn davit_bin() -> &'static str {
    env!("CARGO_BIN_EXE_davit")
}

/// Starts `davit serve` on 127.0.0.1:0 over `data_dir` and waits until it listens.
// The child is owned by the returned Process, whose Drop kills and reaps it.
#[allow(clippy::zombie_processes)]
pub fn spawn_server(data_dir: &Path, envs: &[(&str, &str)]) -> Process {
    let log = data_dir.with_extension(format!("log{}", rand_suffix()));
    let mut cmd = Command::new(davit_bin());
    cmd.args(["serve", "--data-dir"]).arg(data_dir).args(["--listen", "127.0.0.1:0"]);
    cmd.env_remove("DAVIT_ADMIN_PASSWORD").env("DAVIT_LOG", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("davit listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().trim_end_matches(|c: char| !c.is_ascii_digit());
            return Process { child, addr: addr.parse().unwrap(), stderr_log: log };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rand_suffix() -> String {
    davit_storage::crypto::random_string(b"abcdefghijklmnopqrstuvwxyz", 6)
}

impl Process {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `davit admin --data-dir DIR ARGS…` with `stdin`; returns (success, stdout, stderr).
pub fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(davit_bin())
        .args(["admin", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An `Authorization: Basic` value.
pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}
