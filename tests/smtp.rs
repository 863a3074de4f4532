//! A real SMTP server on loopback for tests: aiosmtpd (PyPI, installed by the test command)
//! printing each delivered message, which tests read back to find mailed codes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Smtp {
    child: Child,
    pub port: u16,
    out: Arc<Mutex<String>>,
}

impl Smtp {
    pub fn start() -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd; tests/run.sh installs it)");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited at once ({status}): is it installed? (pip install aiosmtpd)");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { child, port, out }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages delivered to `to` so far.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        // Undo quoted-printable soft line breaks, so tests match text, not its encoding.
        let out = self.out.lock().unwrap().replace("=\n", "");
        let mut parts: Vec<&str> = out.split("------------ END MESSAGE ------------").collect();
        // The last part is a message still being printed (or nothing): only whole ones count.
        parts.pop();
        parts
            .into_iter()
            .filter(|m| m.lines().any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to)))
            .map(str::to_owned)
            .collect()
    }

    /// Waits for the `n`-th message to `to` (1-based) and returns it.
    pub async fn wait_message(&self, to: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let msgs = self.messages_to(to);
            if msgs.len() >= n {
                return msgs[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "no mail #{n} to {to} arrived");
            // Asleep on the runtime, not the thread: the server mails from tasks of the same
            // runtime in single-threaded tests.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The 6-digit code of the `n`-th message to `to`.
    pub async fn code(&self, to: &str, n: usize) -> String {
        let msg = self.wait_message(to, n).await;
        msg.lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in mail to {to}: {msg}"))
            .to_owned()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
