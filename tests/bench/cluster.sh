#!/usr/bin/env bash
# Benchmark (not a test): the embedded default against the distributed set, in one run on
# this machine, everything on 127.0.0.1, with curl over WebDAV:
#   embedded     one davit over redb and a local folder (`davit serve`, no settings);
#   distributed  one davit node over PostgreSQL (metadata) and a 3-node Garage cluster with
#                replication 3 (chunks), started the way conformance/cluster/run.sh does;
#   garage       Garage itself, the same large file through `aws s3 cp` (PUT and GET).
# Phases: one-stream PUT and GET of a BENCH_MIB file (the distributed node's GET twice: from
# the cluster, then from its local read cache, which only reads fill: the cache's default
# bound is 1 GiB, so a file of 1 GiB, sealed, no longer fits whole); BENCH_SMALL 4 KiB
# files PUT then GET with one `curl -Z --parallel-max BENCH_C`; a folder of BENCH_FOLDER
# files made the same way, then PROPFIND Depth 1 of it (4 properties and allprop, best of 3).
# It prints the figures side by side with the ratios the issue sets goals for, each davit's
# peak RSS (VmHWM), and where the time goes: CPU seconds of davit, PostgreSQL, the Garage
# nodes, the clients (curl, aws) and everything else on the machine, per phase.
# MB = 10^6 bytes. Clients: curl, and the aws CLI in target/conformance-venv (installed when
# missing). Garage is built into the tools cache when missing (conformance/lib/garage.sh).
# Usage: [BENCH_MIB=1024] [BENCH_SMALL=5000] [BENCH_FOLDER=10000] [BENCH_C=16] \
#        [DAVIT_BIN=target/release/davit] tests/bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# 5000 small files: a thousand GETs took 0.1 s embedded, too short a phase to compare.
MIB=${BENCH_MIB:-1024} N=${BENCH_SMALL:-5000} F=${BENCH_FOLDER:-10000} C=${BENCH_C:-16}
DAVIT_BIN=${DAVIT_BIN:-${CARGO_TARGET_DIR:-target}/release/davit}
[ -x "$DAVIT_BIN" ] || { echo "no $DAVIT_BIN: cargo build --release --bin davit (or set DAVIT_BIN)"; exit 1; }
. conformance/lib/server.sh
. conformance/lib/checks.sh
. conformance/lib/clients.sh
. conformance/lib/postgres.sh
. conformance/lib/garage.sh

BIG_TIMEOUT=$((MIB + 300)) # seconds for one large transfer: 1 MiB/s at the least
SMALL_TIMEOUT=60           # seconds for one small request
BATCH_TIMEOUT=3600         # seconds for one whole batch of small requests
DIST_PID='' LOG=''
cleanup_bench() {
  if [ -n "$DIST_PID" ] && kill -0 "$DIST_PID" 2>/dev/null; then
    kill -TERM "$DIST_PID"
    wait "$DIST_PID" 2>/dev/null || true
  fi
  if [ -n "${GARAGE_DIR:-}" ]; then garage_stop_all; fi
  pg_stop
}
suite_work bench-cluster cleanup_bench
w=$WORK
garage_install

now() { date +%s.%N; }
# CPU seconds so far, as "davit postgres garage clients busy": davit is the current node
# (CUR_PID); postgres the postmaster with every backend (and those it reaped); garage every
# node; clients what this script reaped (curl, aws, python); busy the whole machine's
# non-idle time, so that what is left over is what other processes on the machine used.
CUR_PID=
cpu_now() {
  local pm="" gp=() d
  [ -n "$PG_DIR" ] && [ -r "$PG_DIR/data/postmaster.pid" ] && pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  if [ -n "${GARAGE_DIR:-}" ]; then
    for d in "$GARAGE_DIR"/node*/pid; do [ -r "$d" ] && gp+=("$(cat "$d")"); done
  fi
  python3 - "$$" "${CUR_PID:-0}" "${pm:-0}" "${gp[@]}" <<'PY'
import os, sys
tck = os.sysconf("SC_CLK_TCK")
def fields(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()  # [0] is field 3 (state)
def own(pid):
    f = fields(pid)
    return int(f[11]) + int(f[12]) if f else 0
def reaped(pid):
    f = fields(pid)
    return int(f[13]) + int(f[14]) if f else 0
me, davit, pm, garage = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), [int(p) for p in sys.argv[4:]]
pg = 0
if pm and fields(pm):
    pg = own(pm) + reaped(pm)
    for p in os.listdir("/proc"):
        if p.isdigit() and (f := fields(p)) and int(f[1]) == pm:
            pg += own(p)
cpu = open("/proc/stat").readline().split()[1:]
busy = sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])  # less idle and iowait
vals = [own(davit) if davit else 0, pg, sum(own(p) for p in garage), reaped(me), busy]
print(" ".join(f"{v / tck:.2f}" for v in vals))
PY
}
# phase SETUP NAME CMD...: runs CMD, keeps its wall time and the CPU each group used.
phase() {
  local setup=$1 name=$2 c0 c1 t0 t1
  shift 2
  # What the last phase left dirty is written back first, so that each phase's fsyncs (and
  # PostgreSQL's commits) wait for its own writes only: after 1 GiB into Garage (3 GiB with
  # replication 3) the small-file phases otherwise waited for that writeback.
  sync
  c0=$(cpu_now)
  t0=$(now)
  "$@"
  t1=$(now)
  c1=$(cpu_now)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setup" "$name" "$t0" "$t1" "$c0" "$c1" \
    "$([ -n "$CUR_PID" ] && rss_of "$CUR_PID" || echo -)" >>"$w/phases.tsv"
  printf '  %-12s %-28s %6.1f s\n' "$setup" "$name" "$(python3 -c "print($t1 - $t0)")"
}
result() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$w/results.tsv"; } # setup metric value
last_wall() { tail -1 "$w/phases.tsv" | awk -F'\t' '{print $4 - $3}'; }
# What the current node said last, when one of its requests failed.
node_log() { echo "  its log ends with:"; tail -n 15 "$LOG" | cut -c1-300 | say; }
rss_of() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

head -c $((MIB * 1048576)) /dev/urandom >"$w/big"
head -c 4096 /dev/urandom >"$w/small"
MB=$(python3 -c "print($MIB * 1048576 / 1e6)")

# --- what each setup goes through, over WebDAV (URL, auth) ----------------------------------
big_put() {
  local code
  code=$(curl -sS --max-time "$BIG_TIMEOUT" "${auth[@]}" -T "$w/big" -o /dev/null -w '%{http_code}' "$URL/dav/big.bin")
  [[ $code == 20[14] ]] || { echo "large PUT answered $code"; node_log; return 1; }
}
big_get() {
  local got
  got=$(curl -sS --max-time "$BIG_TIMEOUT" "${auth[@]}" -o /dev/null -w '%{http_code} %{size_download}' "$URL/dav/big.bin")
  [ "$got" = "200 $((MIB * 1048576))" ] || { echo "large GET: $got"; node_log; return 1; }
}
# Config files for `curl -K`: PUTs of the small file, or GETs, of DIR/NAME1..COUNT.
small_cfg() { # put|get dir name count
  local i
  for i in $(seq 1 "$4"); do
    printf 'url = "%s/dav/%s/%s%05d"\n' "$URL" "$2" "$3" "$i"
    [ "$1" = put ] && printf 'upload-file = "%s"\n' "$w/small"
    printf 'output = "/dev/null"\n'
  done
}
batch() { # config-file codes-file
  timeout -k 10 "$BATCH_TIMEOUT" curl -sS -Z --parallel-max "$C" --no-progress-meter --max-time "$SMALL_TIMEOUT" \
    "${auth[@]}" -w '%{http_code} %{size_download}\n' -K "$1" >"$2" || true # the codes tell
}
mkcol() {
  local code
  code=$(curl -sS --max-time "$SMALL_TIMEOUT" "${auth[@]}" -X MKCOL -o /dev/null -w '%{http_code}' "$URL/dav/$1/")
  [ "$code" = 201 ] || { echo "MKCOL $1 answered $code"; node_log; return 1; }
}
ok_count() { grep -cE "^$2" "$1" || true; } # codes-file pattern
PROPS='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/></D:prop></D:propfind>'
ALLPROP='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
propfind3() { # setup kind body: best of 3 into results
  local best=999 t n
  for _ in 1 2 3; do
    t=$(curl -sS --max-time 600 "${auth[@]}" -X PROPFIND -H "Depth: 1" -H "Content-Type: application/xml" \
      --data "$3" -o "$w/pf.xml" -w '%{time_total}' "$URL/dav/many/")
    best=$(python3 -c "print(min($best, $t))")
  done
  n=$(grep -o '<D:response>' "$w/pf.xml" | wc -l)
  [ "$n" -eq $((F + 1)) ] || echo "  PROPFIND ($2) listed $n responses, want $((F + 1))"
  result "$1" "propfind_$2" "$best"
}

propfind_all() { propfind3 "$1" four "$PROPS" && propfind3 "$1" allprop "$ALLPROP"; }

run_davit_phases() { # setup
  local s=$1 put get
  phase "$s" "large PUT" big_put
  result "$s" big_put "$(last_wall)"
  phase "$s" "large GET" big_get
  result "$s" big_get "$(last_wall)"
  if [ "$s" = distributed ]; then
    phase "$s" "large GET again (cache)" big_get
    result "$s" big_get_cached "$(last_wall)"
  fi
  mkcol small
  small_cfg put small f "$N" >"$w/put.cfg"
  small_cfg get small f "$N" >"$w/get.cfg"
  phase "$s" "4 KiB PUT x $N" batch "$w/put.cfg" "$w/put.codes"
  result "$s" small_put "$(last_wall)"
  put=$(ok_count "$w/put.codes" '20[14] ')
  phase "$s" "4 KiB GET x $N" batch "$w/get.cfg" "$w/get.codes"
  result "$s" small_get "$(last_wall)"
  get=$(ok_count "$w/get.codes" '200 4096$')
  result "$s" small_ok "$put/$get"
  [ "$put" -eq "$N" ] && [ "$get" -eq "$N" ] || echo "  small files: $put of $N PUTs and $get GETs succeeded"
  mkcol many
  small_cfg put many file- "$F" >"$w/many.cfg"
  phase "$s" "make a folder of $F" batch "$w/many.cfg" "$w/many.codes"
  result "$s" folder_put "$(last_wall)"
  put=$(ok_count "$w/many.codes" '20[14] ')
  [ "$put" -eq "$F" ] || echo "  folder: $put of $F PUTs succeeded"
  phase "$s" "PROPFIND Depth 1 x 6" propfind_all "$s"
  result "$s" rss "$(rss_of "$CUR_PID")"
}

echo "davit $("$DAVIT_BIN" --version 2>/dev/null | head -1), $(nproc) cores, $(date -u +%FT%TZ)"
echo "large file $MIB MiB, $N small files, a folder of $F, concurrency $C"
auth=(-u "$TEST_USER:$TEST_PASSWORD")

# --- 1. embedded: the default, alone on the machine -------------------------------------------
DAVIT_LOG=warn start_davit
URL=$DAVIT_URL CUR_PID=$DAVIT_PID LOG=$DAVIT_WORK/server.log
run_davit_phases embedded
stop_davit
CUR_PID=
rm -rf "$DAVIT_DATA" # its chunks are no longer needed: room for the cluster's

# --- 2. the engines: PostgreSQL and a 3-node Garage cluster, replication 3 ----------------------
chmod 755 "$w" # PostgreSQL runs as its own user below it
garage_start "$w/garage" 3 3
pg_start "$w"
phase engines "idle 5 s" sleep 5

# --- 3. Garage itself: the same large file through the aws CLI (its default multipart) ---------
install_aws >/dev/null
aws_setup "$w/aws-config"
garage_aws() {
  env -u AWS_PROFILE -u AWS_CA_BUNDLE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL AWS_CONFIG_FILE="$AWS_CONF" \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID="$GARAGE_KEY_ID" AWS_SECRET_ACCESS_KEY="$GARAGE_SECRET" \
    timeout -k 10 "$BIG_TIMEOUT" "$VENV/bin/aws" --region "$GARAGE_REGION" --endpoint-url "$GARAGE_ENDPOINT" "$@"
}
garage_get() {
  local got
  got=$(garage_aws s3 cp --only-show-errors s3://bench-direct/big.bin - | wc -c)
  [ "$got" -eq $((MIB * 1048576)) ] || { echo "aws GET got $got bytes"; return 1; }
}
garage_aws s3 mb s3://bench-direct >/dev/null
phase garage "large PUT (aws s3 cp)" garage_aws s3 cp --only-show-errors "$w/big" s3://bench-direct/big.bin
result garage big_put "$(last_wall)"
phase garage "large GET (aws s3 cp)" garage_get
result garage big_get "$(last_wall)"
garage_aws s3 rm --only-show-errors s3://bench-direct/big.bin

# --- 4. distributed: one davit node over both ----------------------------------------------------
openssl rand -hex 32 >"$w/master.key"
dist_exports() { # the distributed settings, for a subshell (secrets in its environment only)
  export DAVIT_META=$PG_URL DAVIT_CHUNKS=s3://$GARAGE_BUCKET/chunks DAVIT_CHUNKS_REGION=$GARAGE_REGION \
    DAVIT_CHUNKS_ENDPOINT=$GARAGE_ENDPOINT DAVIT_CHUNKS_ACCESS_KEY_ID=$GARAGE_KEY_ID \
    DAVIT_CHUNKS_SECRET_ACCESS_KEY=$GARAGE_SECRET DAVIT_MASTER_KEY_FILE=$w/master.key DAVIT_LOG=warn
}
mkdir -p "$w/node"
LOG=$w/node/server.log
# exec: the PID is davit's own, for the CPU figures and the clean-up
(dist_exports && DAVIT_ADMIN_PASSWORD=admin-password-1 exec "$DAVIT_BIN" serve --data-dir "$w/node" \
  --listen 127.0.0.1:0 >"$LOG" 2>&1) &
DIST_PID=$!
addr=
for _ in $(seq 1 200); do
  addr=$(grep -o 'davit listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's#.*://##') || true
  [ -n "$addr" ] && break
  kill -0 "$DIST_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { echo "the distributed node did not start:"; tail -n 20 "$LOG"; exit 1; }
echo "$TEST_PASSWORD" | (dist_exports && exec "$DAVIT_BIN" admin --data-dir "$w/admin" user add "$TEST_USER" --password-stdin >/dev/null)
URL=http://$addr CUR_PID=$DIST_PID
run_davit_phases distributed
for d in "$GARAGE_DIR"/node*/pid; do result garage "rss_$(basename "$(dirname "$d")")" "$(rss_of "$(cat "$d")")"; done

# --- the report ---------------------------------------------------------------------------------
echo
python3 - "$w/results.tsv" "$w/phases.tsv" "$MB" "$N" "$F" "$C" "$(nproc)" <<'PY'
import sys
res = {}
for line in open(sys.argv[1]):
    s, m, v = line.rstrip("\n").split("\t")
    res[s, m] = v
mb, n, f, c, cores = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
def num(s, m):
    v = res.get((s, m))
    return float(v) if v not in (None, "") else None
def rate(amount, s, m):
    t = num(s, m)
    return amount / t if t else None
def fmt(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"
rows = [  # label, unit, embedded, distributed, garage, ratio, goal
    ("large PUT (one stream)", "MB/s", rate(mb, "embedded", "big_put"), rate(mb, "distributed", "big_put"), rate(mb, "garage", "big_put"), "dist/garage", 0.5),
    ("large GET (one stream)", "MB/s", rate(mb, "embedded", "big_get"), rate(mb, "distributed", "big_get"), rate(mb, "garage", "big_get"), "dist/garage", 0.5),
    ("large GET again (node cache)", "MB/s", None, rate(mb, "distributed", "big_get_cached"), rate(mb, "garage", "big_get"), "dist/garage", None),
    (f"4 KiB PUT x {n}, {c} at once", "files/s", rate(n, "embedded", "small_put"), rate(n, "distributed", "small_put"), None, "dist/emb", 0.3),
    (f"4 KiB GET x {n}, {c} at once", "files/s", rate(n, "embedded", "small_get"), rate(n, "distributed", "small_get"), None, "dist/emb", 0.3),
    (f"4 KiB PUT x {f} (one folder)", "files/s", rate(f, "embedded", "folder_put"), rate(f, "distributed", "folder_put"), None, "dist/emb", None),
    (f"PROPFIND Depth 1, {f}, 4 props", "s", num("embedded", "propfind_four"), num("distributed", "propfind_four"), None, "emb/dist", None),
    (f"PROPFIND Depth 1, {f}, allprop", "s", num("embedded", "propfind_allprop"), num("distributed", "propfind_allprop"), None, "emb/dist", None),
]
print(f"{'':32} {'unit':>7} {'embedded':>9} {'distrib.':>9} {'garage':>9}   ratio             goal")
for label, unit, e, d, g, rname, goal in rows:
    if rname == "emb/dist":  # times: the ratio of speeds, as in the other rows
        r = e / d if e is not None and d else None
    else:
        base = g if rname == "dist/garage" else e
        r = d / base if d is not None and base else None
    verdict = "" if goal is None or r is None else (f">= {goal}  met" if r >= goal else f">= {goal}  MISSED")
    dp = 3 if unit == "s" else 1
    print(f"{label:32} {unit:>7} {fmt(e, dp):>9} {fmt(d, dp):>9} {fmt(g, dp):>9}   {rname} {fmt(r, 2):>5}   {verdict}")
print("(PROPFIND: best of 3, seconds; its ratio is of speeds, like the others)")
e_rss, d_rss = num("embedded", "rss"), num("distributed", "rss")
print(f"{'davit peak RSS (VmHWM)':32} {'MiB':>7} {fmt(e_rss):>9} {fmt(d_rss):>9} {'':>9}   goal < 100 MiB for a node: {'met' if d_rss and d_rss < 100 else 'MISSED'}")
g = [res[k] for k in sorted(res) if k[0] == "garage" and k[1].startswith("rss_")]
print(f"garage nodes' peak RSS: {', '.join(g)} MiB")
for s in ("embedded", "distributed"):
    ok = res.get((s, "small_ok"), "-")
    print(f"{s} small-file requests that succeeded (PUT/GET): {ok} of {n}")

print()
print(f"Where the time goes: CPU seconds per process group in each phase ({cores} cores; busy% = the")
print("whole machine's non-idle share; 'other' is CPU used by processes outside this benchmark;")
print("'clients' includes this script's own sampling, about 0.1 s a phase)")
print(f"{'setup':12} {'phase':28} {'wall s':>7} {'davit':>7} {'postgres':>8} {'garage':>7} {'clients':>7} {'other':>7} {'busy%':>6} {'davit peak MiB':>15}")
for line in open(sys.argv[2]):
    s, name, t0, t1, c0, c1, hwm = line.rstrip("\n").split("\t")
    wall = float(t1) - float(t0)
    d = [b - a for a, b in zip(map(float, c0.split()), map(float, c1.split()))]
    other = max(0.0, d[4] - sum(d[:4]))
    busy = 100 * d[4] / (wall * cores) if wall > 0 else 0
    print(f"{s:12} {name:28} {wall:7.1f} {d[0]:7.1f} {d[1]:8.1f} {d[2]:7.1f} {d[3]:7.1f} {other:7.1f} {busy:6.0f} {hwm:>15}")
PY
