#!/usr/bin/env bash
# Benchmark (not a test): N small files PUT then GET through the REST files API with one
# `curl -Z --parallel-max C` process, against a fresh release server on 127.0.0.1.
# Usage: tests/bench/small-files.sh [N=4000] [SIZE=4096] [C=16]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-4000}; SIZE=${2:-4096}; C=${3:-16}
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
. conformance/lib/server.sh
DAVIT_LOG=warn start_davit
work=$DAVIT_WORK
head -c "$SIZE" /dev/urandom > "$work/small"
cfg_put=$work/put.cfg; cfg_get=$work/get.cfg
: > "$cfg_put"; : > "$cfg_get"
for i in $(seq 1 "$N"); do
  printf 'url = "%s/api/v1/files/f%d"\nupload-file = "%s"\noutput = "/dev/null"\n' "$DAVIT_URL" "$i" "$work/small" >> "$cfg_put"
  printf 'url = "%s/api/v1/files/f%d"\noutput = "/dev/null"\n' "$DAVIT_URL" "$i" >> "$cfg_get"
done
t0=$(date +%s.%N)
curl -sS -Z --parallel-max "$C" --no-progress-meter -u "$TEST_USER:$TEST_PASSWORD" -K "$cfg_put"
t1=$(date +%s.%N)
curl -sS -Z --parallel-max "$C" --no-progress-meter -u "$TEST_USER:$TEST_PASSWORD" -K "$cfg_get"
t2=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$DAVIT_PID/status)
stop_davit
check_davit_data >/dev/null
python3 - "$N" "$t0" "$t1" "$t2" "$rss" "$SIZE" "$C" <<'PY'
import sys
n, t0, t1, t2, rss, size, c = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
print(f"{n} x {size} B at concurrency {c}: PUT {n/(t1-t0):.0f}/s, GET {n/(t2-t1):.0f}/s, server peak RSS {rss/1024:.1f} MiB")
PY
