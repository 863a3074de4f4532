//! The request counters themselves: fixed arrays of relaxed atomics indexed by a closed set
//! of labels. Plain `std` only, so `tests/bench/metrics.sh` measures this very file against
//! `prometheus-client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The protocols requests are counted by (`protocol` label).
pub const PROTOCOLS: [&str; 4] = ["webdav", "s3", "api", "link"];

/// Methods get a label of their own; any other is `other`, so a client cannot make series.
pub const METHODS: [&str; 15] = [
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "other",
];

pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the duration buckets, in seconds: a small API answer takes a millisecond,
/// a large upload or download minutes.
pub const BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

pub fn method_index(m: &str) -> usize {
    METHODS.iter().position(|n| *n == m).unwrap_or(METHODS.len() - 1)
}

pub fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

pub struct Counters {
    /// [protocol][method][class]
    requests: Box<[AtomicU64]>,
    /// [protocol][bucket], not cumulative (summed when read); the last is +Inf.
    buckets: Box<[AtomicU64]>,
    duration_nanos: Box<[AtomicU64]>,
    received: Box<[AtomicU64]>,
    sent: Box<[AtomicU64]>,
}

impl Default for Counters {
    fn default() -> Self {
        let p = PROTOCOLS.len();
        Counters {
            requests: zeros(p * METHODS.len() * CLASSES.len()),
            buckets: zeros(p * (BUCKETS.len() + 1)),
            duration_nanos: zeros(p),
            received: zeros(p),
            sent: zeros(p),
        }
    }
}

impl Counters {
    /// One request answered: its count, its duration in the histogram, the bytes it sent.
    #[inline]
    pub fn observe(&self, protocol: usize, method: usize, class: usize, took: Duration, sent: u64) {
        self.requests[(protocol * METHODS.len() + method) * CLASSES.len() + class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let b = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[protocol * (BUCKETS.len() + 1) + b].fetch_add(1, Ordering::Relaxed);
        self.duration_nanos[protocol].fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.sent[protocol].fetch_add(sent, Ordering::Relaxed);
    }

    #[inline]
    pub fn receive(&self, protocol: usize, n: u64) {
        self.received[protocol].fetch_add(n, Ordering::Relaxed);
    }

    pub fn requests(&self, protocol: usize, method: usize, class: usize) -> u64 {
        self.requests[(protocol * METHODS.len() + method) * CLASSES.len() + class].load(Ordering::Relaxed)
    }

    /// The histogram of `protocol`: cumulative bucket counts (the last is +Inf, the count)
    /// and the sum in seconds.
    pub fn durations(&self, protocol: usize) -> ([u64; BUCKETS.len() + 1], f64) {
        let mut out = [0; BUCKETS.len() + 1];
        let mut cumulative = 0;
        for (b, o) in out.iter_mut().enumerate() {
            cumulative += self.buckets[protocol * (BUCKETS.len() + 1) + b].load(Ordering::Relaxed);
            *o = cumulative;
        }
        (out, self.duration_nanos[protocol].load(Ordering::Relaxed) as f64 / 1e9)
    }

    pub fn received(&self, protocol: usize) -> u64 {
        self.received[protocol].load(Ordering::Relaxed)
    }

    pub fn sent(&self, protocol: usize) -> u64 {
        self.sent[protocol].load(Ordering::Relaxed)
    }
}
