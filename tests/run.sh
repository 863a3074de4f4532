#!/usr/bin/env bash
# The one test command: installs what the suites need when missing, then runs formatting,
# lints, every Rust test, and every suite under conformance/. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n=== %s ===\n' "$*"; }

# --- what the suites need ----------------------------------------------------------------
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
# PostgreSQL's server programs, for the metadata tests on PostgreSQL and the cluster suite
# (each starts its own server on a free port of 127.0.0.1 and stops it).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# A real SMTP server for the mail tests; Prometheus' own parser for the metrics tests.
if ! python3 -c 'import aiosmtpd, prometheus_client' 2>/dev/null; then
  step "installing aiosmtpd and prometheus_client (PyPI)"
  python3 -m pip install -q aiosmtpd prometheus_client
fi

# The OpenAPI document is checked by a real validator (tests/ops.rs).
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  step "installing openapi-spec-validator (PyPI)"
  python3 -m pip install -q openapi-spec-validator
fi

# Garage (S3-compatible cluster) for the chunk-store tests and the cluster suite, built once
# into a cache outside the clone (`DAVIT_TOOLS`); the tests find it through GARAGE_BIN.
# shellcheck source=../conformance/lib/garage.sh
source conformance/lib/garage.sh
[ -x "$GARAGE_BIN" ] || step "building Garage $GARAGE_VERSION (cargo install, about 10 minutes on 2 cores)"
garage_install
export GARAGE_BIN

# One self-signed certificate for every TLS test (Rust and conformance alike).
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$root/target/test-tls}
bash tests/make-cert.sh "$DAVIT_TEST_CERT_DIR"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "building the release binary for the conformance suites"
cargo build --release --bin davit
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export DAVIT_BIN="$target_dir/release/davit"

failed=0
for suite in conformance/*/run.sh; do
  step "conformance: $suite"
  if ! bash "$suite"; then
    echo "FAILED: $suite"
    failed=$((failed + 1))
  fi
done
total=$(ls conformance/*/run.sh | wc -l)
echo
echo "conformance: $((total - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
