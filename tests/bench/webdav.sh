#!/usr/bin/env bash
# Benchmark (not a test) of WebDAV with curl against a fresh release server on 127.0.0.1:
# one stream PUT and GET of a large file, N small files PUT then GET with one
# `curl -Z --parallel-max C` process, PROPFIND Depth 1 of a folder of F files (4 properties
# and allprop), and the server's peak RSS. MB = 10^6 bytes.
# Usage: tests/bench/webdav.sh [BIG_MIB=1024] [N=4000] [F=10000] [C=16]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIG=${1:-1024}; N=${2:-4000}; F=${3:-10000}; C=${4:-16}
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
. conformance/lib/server.sh
DAVIT_LOG=warn start_davit
w=$DAVIT_WORK
auth=(-u "$TEST_USER:$TEST_PASSWORD")
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.1f}')" "$@"; }

head -c $((BIG * 1048576)) /dev/urandom > "$w/big"
t0=$(now); curl -sS "${auth[@]}" -T "$w/big" "$DAVIT_URL/dav/big.bin" -o /dev/null; t1=$(now)
curl -sS "${auth[@]}" "$DAVIT_URL/dav/big.bin" -o /dev/null; t2=$(now)
echo "large file ($BIG MiB): PUT $(rate $((BIG * 1048576 / 1000000)) "$t0" "$t1") MB/s, GET $(rate $((BIG * 1048576 / 1000000)) "$t1" "$t2") MB/s"
rm -f "$w/big"

curl -sS "${auth[@]}" -X MKCOL "$DAVIT_URL/dav/small/" -o /dev/null
head -c 4096 /dev/urandom > "$w/small"
: > "$w/put.cfg"; : > "$w/get.cfg"
for i in $(seq 1 "$N"); do
  printf 'url = "%s/dav/small/f%d"\nupload-file = "%s"\noutput = "/dev/null"\n' "$DAVIT_URL" "$i" "$w/small" >> "$w/put.cfg"
  printf 'url = "%s/dav/small/f%d"\noutput = "/dev/null"\n' "$DAVIT_URL" "$i" >> "$w/get.cfg"
done
t0=$(now); curl -sS -Z --parallel-max "$C" --no-progress-meter "${auth[@]}" -K "$w/put.cfg"; t1=$(now)
curl -sS -Z --parallel-max "$C" --no-progress-meter "${auth[@]}" -K "$w/get.cfg"; t2=$(now)
echo "4 KiB files x $N at concurrency $C: PUT $(rate "$N" "$t0" "$t1")/s, GET $(rate "$N" "$t1" "$t2")/s"

# A folder of F files, made quickly over REST multipart is not needed: WebDAV PUTs in parallel.
curl -sS "${auth[@]}" -X MKCOL "$DAVIT_URL/dav/many/" -o /dev/null
: > "$w/many.cfg"
for i in $(seq 1 "$F"); do printf 'url = "%s/dav/many/file-%05d.txt"\nupload-file = "%s"\noutput = "/dev/null"\n' "$DAVIT_URL" "$i" "$w/small" >> "$w/many.cfg"; done
curl -sS -Z --parallel-max "$C" --no-progress-meter "${auth[@]}" -K "$w/many.cfg"
props='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/></D:prop></D:propfind>'
for kind in four allprop; do
  body=$props; [ "$kind" = allprop ] && body='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
  best=999
  for _ in 1 2 3; do
    t=$(curl -sS "${auth[@]}" -X PROPFIND -H "Depth: 1" -H "Content-Type: application/xml" --data "$body" -o "$w/pf.xml" -w '%{time_total}' "$DAVIT_URL/dav/many/")
    best=$(python3 -c "print(min($best, $t))")
  done
  n=$(grep -o '<D:response>' "$w/pf.xml" | wc -l)
  echo "PROPFIND Depth 1 of $F files ($kind): ${best}s best of 3, $n responses"
done
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$DAVIT_PID/status)"
stop_davit
