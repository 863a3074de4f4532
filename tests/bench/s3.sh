#!/usr/bin/env bash
# Benchmark (not a test) of the S3 front against a fresh release server on 127.0.0.1, with
# what it is compared with measured in the same run:
#   - the disk: `dd if=/dev/zero bs=1M count=1024 conv=fdatasync` into the data dir's disk,
#     just before the one-stream PUT (see lib/peers.sh);
#   - the MD5 rate of the implementation the server uses (the md-5 crate, one core:
#     storage/examples/md5_rate.rs, built here in release), since a single PUT must compute it;
#   - Garage, when GARAGE_BIN names an installed one (one node, same figures).
# Figures:
#   - one stream: PUT and GET of a BIG MiB object with curl on presigned URLs (botocore signs
#     them), so no client-side hashing limits the rate, and the server's CPU seconds for the PUT;
#   - multipart: aws CLI cp of the same file with 8 MiB and with 16 MiB parts, 16 at once,
#     and the server's peak RSS during each (VmHWM, reset before each phase);
#   - small objects: N 4 KiB objects PUT then GET by the aws CLI with C requests at once;
#   - the server's peak RSS over the whole run.
# Clients: the aws CLI and botocore (those on PATH, else PyPI in a venv under target/).
# MB = 10^6 bytes. Usage: tests/bench/s3.sh [BIG_MIB=1024] [N=4000] [C=16]
# BENCH_ONLY=big measures only the one-stream PUT and GET (with the disk and MD5 figures).
# DAVIT_BIN picks the server binary (default target/release/davit).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIG=${1:-1024}; N=${2:-4000}; C=${3:-16}
VENV=${DAVIT_BENCH_VENV:-$PWD/target/bench-venv}
if command -v aws >/dev/null && python3 -c "import botocore" 2>/dev/null; then
  AWS=(aws); PY=python3
else
  [ -x "$VENV/bin/aws" ] || { python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install -q awscli botocore >/dev/null; }
  AWS=("$VENV/bin/aws"); PY=$VENV/bin/python
fi
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
. conformance/lib/server.sh
. tests/bench/lib/peers.sh
GARAGE_RUNNING=
bench_cleanup() {
  [ -n "$GARAGE_RUNNING" ] && garage_stop_all "$GARAGE_RUNNING" >/dev/null 2>&1
  peers_cleanup
  cleanup_davit
}
DAVIT_WORK=$(mktemp -d); DAVIT_WORKS+=("$DAVIT_WORK"); trap bench_cleanup EXIT
DAVIT_DATA=$DAVIT_WORK/data
w=$DAVIT_WORK
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.1f}')" "$@"; }
rss_of() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
reset_peak() { echo 5 > "/proc/$1/clear_refs"; } # VmHWM starts again from the current RSS
# CPU seconds (user + system) the server process has used so far: unlike the rates, they
# barely move with the load other processes put on the machine.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
MB=$(python3 -c "print($BIG * 1048576 / 1e6)")

# The MD5 implementation the server links, built the way the server is.
cargo build -q --release -p davit-storage --example md5_rate
MD5_RATE=$("${CARGO_TARGET_DIR:-target}/release/examples/md5_rate" 512 2>/dev/null)
# The CPU each stage of a write costs per byte here, for the ceiling printed after the PUT.
read -r S_CUT S_COPY S_HASH S_SEAL S_MD5 <<<"$(stage_costs)"

echo "$TEST_PASSWORD" | DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" user add "$TEST_USER" --password-stdin >/dev/null
keys=$(DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" key add "$TEST_USER")
DAVIT_KEY=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$keys")
DAVIT_SECRET=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$keys")
unset AWS_CA_BUNDLE AWS_PROFILE
DAVIT_LOG=warn start_davit_on "$DAVIT_DATA"

# A throwaway aws config: C requests at once, parts of $1 MiB, no retries.
aws_conf() { # PART_MIB
  cat >"$w/aws.conf" <<EOF
[default]
s3 =
  max_concurrent_requests = $C
  multipart_threshold = 8MB
  multipart_chunksize = ${1}MB
  addressing_style = path
max_attempts = 1
EOF
}
s3c() { # ENDPOINT KEY SECRET REGION args...
  local url=$1 key=$2 secret=$3 region=$4
  shift 4
  AWS_CONFIG_FILE=$w/aws.conf AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=$region \
    "${AWS[@]}" --endpoint-url "$url" "$@"
}
presign() { # ENDPOINT KEY SECRET REGION BUCKET METHOD OBJECT
  AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3 "$PY" - "$@" <<'PY'
import sys, botocore.session
from botocore.config import Config
url, _, _, region, bucket, method, key = sys.argv[1:]
c = botocore.session.get_session().create_client("s3", endpoint_url=url, region_name=region, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
op = {"PUT": "put_object", "GET": "get_object"}[method]
print(c.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))
PY
}
head -c $((BIG * 1048576)) /dev/urandom > "$w/big"
mkdir -p "$w/small"
[ "${BENCH_ONLY:-}" = big ] || for i in $(seq 1 "$N"); do head -c 4096 /dev/urandom > "$w/small/f$i"; done
declare -A R

# Every figure against one S3 endpoint; PID is its server process (for the peak RSS).
measure() { # NAME ENDPOINT KEY SECRET REGION BUCKET PID
  local name=$1 url=$2 key=$3 secret=$4 region=$5 b=$6 pid=$7 t0 t1 t2 put_url get_url got
  aws_conf 8
  s3c "$url" "$key" "$secret" "$region" s3 mb "s3://$b" >/dev/null 2>&1 || true
  read -r "R[disk,$name]" "R[diskcold,$name]" _ _ <<<"$(disk_rate "$w")"
  put_url=$(presign "$url" "$key" "$secret" "$region" "$b" PUT big.bin)
  get_url=$(presign "$url" "$key" "$secret" "$region" "$b" GET big.bin)
  reset_peak "$pid"
  local c0 c1
  c0=$(cpu_of "$pid")
  t0=$(now); timed_cpu "$w/client-cpu" curl -sS -f -T "$w/big" "$put_url" -o /dev/null; t1=$(now)
  c1=$(cpu_of "$pid")
  R[clientcpu,$name]=$(cat "$w/client-cpu")
  curl -sS -f "$get_url" -o /dev/null; t2=$(now)
  R[put,$name]=$(rate "$MB" "$t0" "$t1"); R[get,$name]=$(rate "$MB" "$t1" "$t2"); R[one-rss,$name]=$(rss_of "$pid")
  R[putcpu,$name]=$(python3 -c "print(f'{$c1 - $c0:.2f}')")
  [ "${BENCH_ONLY:-}" = big ] && return
  for part in 8 16; do
    aws_conf "$part"
    reset_peak "$pid"
    t0=$(now); s3c "$url" "$key" "$secret" "$region" s3 cp --no-progress "$w/big" "s3://$b/multi-$part.bin" >/dev/null; t1=$(now)
    R[mp$part,$name]=$(rate "$MB" "$t0" "$t1"); R[mp$part-rss,$name]=$(rss_of "$pid")
  done
  aws_conf 8
  reset_peak "$pid"
  rm -rf "$w/back"; mkdir -p "$w/back"
  t0=$(now); s3c "$url" "$key" "$secret" "$region" s3 cp --recursive --no-progress "$w/small" "s3://$b/small/" >/dev/null; t1=$(now)
  s3c "$url" "$key" "$secret" "$region" s3 cp --recursive --no-progress "s3://$b/small/" "$w/back/" >/dev/null; t2=$(now)
  got=$(find "$w/back" -type f | wc -l)
  R[small-rss,$name]=$(rss_of "$pid")
  R[sput,$name]=$(rate "$N" "$t0" "$t1"); R[sget,$name]=$(rate "$got" "$t1" "$t2"); R[sgot,$name]=$got
}

measure davit "$DAVIT_URL" "$DAVIT_KEY" "$DAVIT_SECRET" us-east-1 bench "$DAVIT_PID"
stop_davit
check_davit_data >/dev/null

echo "MD5 (md-5 crate, one core, this run): $MD5_RATE MB/s"
show() { # NAME
  local n=$1
  echo "[$n] disk (dd conv=fdatasync just before, the second of two, see tests/bench/lib/peers.sh): ${R[disk,$n]} MB/s (the first: ${R[diskcold,$n]})"
  echo "[$n] one stream ($BIG MiB, presigned, curl): PUT ${R[put,$n]} MB/s ($(ratio "${R[put,$n]}" "${R[disk,$n]}")x disk, $(ratio "${R[put,$n]}" "$MD5_RATE")x MD5), GET ${R[get,$n]} MB/s; peak RSS ${R[one-rss,$n]} MiB; server CPU of the PUT ${R[putcpu,$n]} s"
  [ "${BENCH_ONLY:-}" = big ] && return
  echo "[$n] multipart ($BIG MiB, aws cp, $C at once): 8 MiB parts ${R[mp8,$n]} MB/s, peak RSS ${R[mp8-rss,$n]} MiB; 16 MiB parts ${R[mp16,$n]} MB/s, peak RSS ${R[mp16-rss,$n]} MiB"
  echo "[$n] 4 KiB objects x $N, aws cp --recursive, $C at once: PUT ${R[sput,$n]}/s, GET ${R[sget,$n]}/s (${R[sgot,$n]} back); peak RSS ${R[small-rss,$n]} MiB"
}
show davit
# What the machine allows at all: its cores busy with nothing but the stages a single PUT
# cannot skip (stage_costs, on one core: cutting, copying, keyed hash, sealing, MD5) and
# curl's own CPU on this PUT. Its chunks skip the page cache (chunks::LocalDir::put_uncached),
# so no copy is counted for the write; nothing else the server does is, so this is an upper
# bound.
STAGES=$(python3 -c "print(round($S_CUT + $S_COPY + $S_HASH + $S_SEAL + $S_MD5, 3))")
TOP=$(ceiling $((BIG * 1048576)) "$STAGES" "${R[clientcpu,davit]}")
GOAL=$(python3 -c "print(round(min(${R[disk,davit]} / 2, 0.8 * $MD5_RATE), 1))" 2>/dev/null || echo -)
echo "stages of a single PUT, CPU ns per byte on one core (stage_costs): cut $S_CUT, copy $S_COPY, keyed hash $S_HASH, seal $S_SEAL, MD5 $S_MD5: $STAGES"
echo "ceiling of a single PUT on $(nproc) cores: $TOP MB/s (curl ${R[clientcpu,davit]} CPU-s); davit reached $(ratio "${R[put,davit]}" "$TOP")x the ceiling, the goal (min of 0.5x the disk and 0.8x MD5, $GOAL MB/s) is $(ratio "$GOAL" "$TOP")x it"

if [ -x "${GARAGE_BIN:-}" ]; then
  . conformance/lib/garage.sh
  if garage_start "$w/garage" 1 1 >"$w/garage.log" 2>&1; then
    GARAGE_RUNNING=$w/garage
    gpid=$(cat "$w/garage/node1/pid")
    measure garage "$GARAGE_ENDPOINT" "$GARAGE_KEY_ID" "$GARAGE_SECRET" "$GARAGE_REGION" "$GARAGE_BUCKET" "$gpid"
    show garage
    [ "${BENCH_ONLY:-}" = big ] && echo "davit / garage: PUT $(ratio "${R[put,davit]}" "${R[put,garage]}")x, GET $(ratio "${R[get,davit]}" "${R[get,garage]}")x" && exit 0
    echo "davit / garage: PUT $(ratio "${R[put,davit]}" "${R[put,garage]}")x, GET $(ratio "${R[get,davit]}" "${R[get,garage]}")x, multipart 8 MiB $(ratio "${R[mp8,davit]}" "${R[mp8,garage]}")x, 16 MiB $(ratio "${R[mp16,davit]}" "${R[mp16,garage]}")x, small PUT $(ratio "${R[sput,davit]}" "${R[sput,garage]}")x, GET $(ratio "${R[sget,davit]}" "${R[sget,garage]}")x"
  else
    echo "garage did not start:"; tail -n 5 "$w/garage.log"
  fi
else
  echo "garage: GARAGE_BIN not set or not installed; not measured"
fi
