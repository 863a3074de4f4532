#!/usr/bin/env bash
# Benchmark (not a test): what counting a request for /metrics costs, davit's own counters
# (src/metrics/counters.rs, compiled as they are) against the `prometheus-client` crate
# doing the same (a request counter by protocol, method and status class, a duration
# histogram by protocol, a sent-bytes counter), in one run on this machine, on 1 and 2
# threads hammering the same counters. Prints ns per request and the ratio.
# It builds a small crate of its own (release) under the target folder; crates.io needed.
# Usage: [BENCH_N=5000000] tests/bench/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
N=${BENCH_N:-5000000}
target=${CARGO_TARGET_DIR:-$root/target}
dir=$target/bench-metrics
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "bench-metrics"
version = "0.0.0"
edition = "2024"
publish = false
[workspace]
[dependencies]
prometheus-client = "0.22"
TOML
cat > "$dir/src/main.rs" <<RUST
use std::sync::Arc;
use std::time::{Duration, Instant};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};

#[path = "$root/src/metrics/counters.rs"]
#[allow(dead_code)]
mod counters;
use counters::{BUCKETS, Counters, METHODS, PROTOCOLS};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels { protocol: &'static str, method: &'static str, status: &'static str }
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Proto { protocol: &'static str }
struct Lib { requests: Family<Labels, Counter>, durations: Family<Proto, Histogram, fn() -> Histogram>, sent: Family<Proto, Counter> }

const N: u64 = $N;
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn took(i: u64) -> Duration { Duration::from_micros((i % 5000) * 7) }

fn run(threads: u64, f: Arc<dyn Fn(u64) + Send + Sync>) -> f64 {
    let t = Instant::now();
    let hs: Vec<_> = (0..threads).map(|k| { let f = f.clone(); std::thread::spawn(move || for i in 0..N { f(i * 7 + k) }) }).collect();
    for h in hs { h.join().unwrap(); }
    t.elapsed().as_nanos() as f64 / (N * threads) as f64
}

fn main() {
    for threads in [1, 2] {
        let c = Arc::new(Counters::default());
        let c2 = c.clone();
        let ours = run(threads, Arc::new(move |i| c2.observe((i % 4) as usize, (i % 15) as usize, (i % 5) as usize, took(i), 4096)));
        let lib = Arc::new(Lib {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(BUCKETS.iter().copied())),
            sent: Family::default(),
        });
        let l2 = lib.clone();
        let theirs = run(threads, Arc::new(move |i| {
            let protocol = PROTOCOLS[(i % 4) as usize];
            l2.requests.get_or_create(&Labels { protocol, method: METHODS[(i % 15) as usize], status: CLASSES[(i % 5) as usize] }).inc();
            l2.durations.get_or_create(&Proto { protocol }).observe(took(i).as_secs_f64());
            l2.sent.get_or_create(&Proto { protocol }).inc_by(4096);
        }));
        assert_eq!(c.durations(0).0[BUCKETS.len()] + c.durations(1).0[BUCKETS.len()] + c.durations(2).0[BUCKETS.len()] + c.durations(3).0[BUCKETS.len()], N * threads);
        println!("{threads} thread(s): davit counters {ours:.1} ns/request, prometheus-client {theirs:.1} ns/request, ratio {:.2}x", theirs / ours);
    }
}
RUST
CARGO_TARGET_DIR="$dir/target" cargo run -q --release --manifest-path "$dir/Cargo.toml"
