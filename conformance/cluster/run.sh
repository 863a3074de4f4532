#!/usr/bin/env bash
# Cluster suite: several davit nodes over the engines a bigger deployment uses, all on
# 127.0.0.1: a Garage cluster of 3 nodes with replication factor 3 for chunks, one
# PostgreSQL for metadata, and two davit nodes (A and B) on two ports, sharing both and one
# master key file, with a chunk grace of a few seconds.
#   1. a user and an S3 key made with `davit admin` while the nodes run;
#   2. a file written on A over WebDAV reads back identical on B over S3 and REST, and one
#      written on B over S3 on A over WebDAV and REST; listings agree on both nodes;
#   3. a WebDAV LOCK on A makes a PUT on B answer 423; UNLOCK on B releases it;
#   4. a link with a download limit of 5, fetched 20 times at once across both nodes, serves
#      exactly 5;
#   5. kill -9 of A in the middle of a 100 MiB upload: B still serves the previous version,
#      nothing partial is visible; after the grace period no orphan chunk is left in the
#      bucket and `davit admin check` is consistent;
#   6. one Garage node stopped: reads and writes on B go on; started again: nothing lost;
#   7. litmus, the aws CLI and rclone against B;
#   8. faults: PostgreSQL stopped while the nodes run (503 in each protocol's form, then
#      service resumes by itself), the whole Garage cluster stopped (the same), a node started
#      with PostgreSQL out of reach (one line naming it, no password, exit non-zero) and one
#      with another master key (refused before it writes).
#   9. going home: `davit admin migrate` is refused while the nodes run (their heartbeats),
#      then, once they stopped, copies the deployment onto redb and a local folder, which then
#      serves the same bytes on its own;
# Garage is built once with `cargo install --locked` into a cache outside the clone
# (conformance/lib/garage.sh); PostgreSQL comes from Debian's packages (tests/run.sh).
set -uo pipefail # no -e: a failing step is counted and the suite goes on to the next one
cd "$(dirname "$0")/../.." || exit
. conformance/lib/server.sh
. conformance/lib/checks.sh
. conformance/lib/clients.sh
. conformance/lib/postgres.sh
. conformance/lib/garage.sh

CLIENT_TIMEOUT=300
GRACE=10 # seconds a chunk nothing references is kept (an upload must commit within half of it)

cleanup_cluster() {
  stop_node A
  stop_node B
  garage_stop_all
  pg_stop
}
suite_work cluster cleanup_cluster
chmod 755 "$WORK" # PostgreSQL runs as its own user below it

# --- the engines ---------------------------------------------------------------------------
check "garage is installed" garage_install || { summary cluster; exit 1; }
check "a 3-node Garage cluster (replication 3) starts" garage_start "$WORK/garage" 3 3 || { summary cluster; exit 1; }
check "PostgreSQL starts" pg_start "$WORK" || { summary cluster; exit 1; }

# --- the davit nodes ----------------------------------------------------------------------
openssl rand -hex 32 >"$WORK/master.key"
export DAVIT_META=$PG_URL
export DAVIT_CHUNKS=s3://$GARAGE_BUCKET/chunks
export DAVIT_CHUNKS_REGION=$GARAGE_REGION
export DAVIT_CHUNKS_ACCESS_KEY_ID=$GARAGE_KEY_ID
export DAVIT_CHUNKS_SECRET_ACCESS_KEY=$GARAGE_SECRET
export DAVIT_MASTER_KEY_FILE=$WORK/master.key
export DAVIT_CHUNK_GRACE=${GRACE}s

declare -A NODE_PID=() NODE_URL=() NODE_DIR=()
# Each node talks to a Garage node of its own (A to the first, B to the second); the third
# is the one stopped in part 6.
declare -A NODE_GARAGE=([A]=$(cut -d' ' -f1 <<<"$GARAGE_ENDPOINTS") [B]=$(cut -d' ' -f2 <<<"$GARAGE_ENDPOINTS"))
start_node() { # name
  local n=$1 log addr=""
  NODE_DIR[$n]=$WORK/node-$n
  mkdir -p "${NODE_DIR[$n]}"
  log=${NODE_DIR[$n]}/server.log
  [ -e "$log" ] && mv "$log" "$log.$(date +%s%N)"
  DAVIT_ADMIN_PASSWORD=admin-password-1 DAVIT_LOG=${DAVIT_LOG:-warn,davit=info} \
    DAVIT_CHUNKS_ENDPOINT=${NODE_GARAGE[$n]} "$DAVIT_BIN" serve --data-dir "${NODE_DIR[$n]}" --listen 127.0.0.1:0 2>"$log" &
  NODE_PID[$n]=$!
  for _ in $(seq 1 200); do
    addr=$(grep -o 'davit listening on http://[0-9.:]*' "$log" | head -1 | sed 's#.*://##') || true
    [ -n "$addr" ] && break
    kill -0 "${NODE_PID[$n]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "     node $n did not start:"; tail -n 20 "$log" | say; return 1; }
  NODE_URL[$n]=http://$addr
}
stop_node() { # name
  local pid=${NODE_PID[$1]:-}
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  NODE_PID[$1]=
}
node_log() { tail -n 20 "${NODE_DIR[$1]}/server.log" | cut -c1-300 | say; }
admin() { DAVIT_LOG=warn DAVIT_CHUNKS_ENDPOINT=$GARAGE_ENDPOINT "$DAVIT_BIN" admin --data-dir "$WORK/admin" "$@"; }

check "node A starts over PostgreSQL and Garage" start_node A || { summary cluster; exit 1; }
check "node B starts over the same" start_node B || { summary cluster; exit 1; }

# --- 1. accounts while the nodes run ------------------------------------------------------------
U=carol P=carol-password-1
make_account() {
  echo "$P" | admin user add "$U" --password-stdin --email "$U@example.test" >/dev/null || return 1
  local out
  out=$(admin key add "$U") || return 1
  S3_KEY[$U]=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$out")
  S3_SECRET[$U]=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$out")
  [ -n "${S3_KEY[$U]}" ] && [ -n "${S3_SECRET[$U]}" ]
}
check "[admin] a user and an S3 key are made while the nodes run" make_account

# --- helpers over the nodes -----------------------------------------------------------------
on() { DAVIT_URL=${NODE_URL[$1]}; } # the node the client helpers below talk to
dav() { # node method path [curl options...]: prints the status
  local n=$1 m=$2 p=$3; shift 3
  curl -sS --max-time 120 -u "$U:$P" -o "$WORK/got" -w '%{http_code}' -X "$m" "$@" "${NODE_URL[$n]}/dav$p"
}
dav_put() { curl -sS --max-time 300 -u "$U:$P" -o /dev/null -w '%{http_code}' -T "$3" "${NODE_URL[$1]}/dav$2" "${@:4}"; }
rest_get() { curl -sS --max-time 120 -u "$U:$P" -o "$WORK/got" -w '%{http_code}' "${NODE_URL[$1]}/api/v1/files$2"; }
status_is() { [ "$1" = "$2" ] || { echo "     status $1, want $2"; head -c 300 "$WORK/got" 2>/dev/null | say; return 1; }; }
s3() { on "$1"; shift; aws_as "$U" "$@"; }

aws_setup "$WORK/aws-config"
install_aws >/dev/null 2>&1 || check "awscli installs" false

# --- 2. one namespace across nodes ------------------------------------------------------------
head -c $((12 * 1024 * 1024 + 12345)) /dev/urandom >"$WORK/one.bin"
head -c 54321 /dev/urandom >"$WORK/two.bin"
cross_node() {
  check "[A→B] WebDAV MKCOL of a bucket folder on A" status_is "$(dav A MKCOL /photos)" 201
  check "[A→B] WebDAV PUT on A" status_is "$(dav_put A /photos/one.bin "$WORK/one.bin")" 201
  check "[A→B] S3 GET on B: same bytes" aws_get_cmp_on B "s3://photos/one.bin" "$WORK/one.bin"
  check "[A→B] REST GET on B: same bytes" rest_cmp_on B /photos/one.bin "$WORK/one.bin"
  check "[B→A] S3 PUT on B" s3 B s3 cp --only-show-errors "$WORK/two.bin" s3://photos/two.bin
  check "[B→A] WebDAV GET on A: same bytes" dav_cmp_on A /photos/two.bin "$WORK/two.bin"
  check "[B→A] REST GET on A: same bytes" rest_cmp_on A /photos/two.bin "$WORK/two.bin"
  check "[A,B] PROPFIND listings agree" listings_agree
  check "[A,B] S3 listings agree" s3_listings_agree
}
aws_get_cmp_on() { on "$1"; shift; aws_get_cmp "$U" "$@"; }
rest_cmp_on() { status_is "$(rest_get "$1" "$2")" 200 && cmp "$WORK/got" "$3"; }
dav_cmp_on() { status_is "$(dav "$1" GET "$2")" 200 && cmp "$WORK/got" "$3"; }
propfind_names() { # node: the hrefs and lengths under /photos/
  dav "$1" PROPFIND /photos/ -H 'Depth: 1' >/dev/null &&
    python3 - "$WORK/got" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = {"d": "DAV:"}
rows = []
for r in ET.parse(sys.argv[1]).getroot().findall("d:response", ns):
    href = r.find("d:href", ns).text
    size = r.find(".//d:getcontentlength", ns)
    rows.append(f"{href}\t{size.text if size is not None else '-'}")
print("\n".join(sorted(rows)))
EOF
}
listings_agree() {
  local a b
  a=$(propfind_names A) && b=$(propfind_names B) || return 1
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "     A: $(tr '\n' '|' <<<"$a")"; echo "     B: $(tr '\n' '|' <<<"$b")"; return 1; }
}
s3_listings_agree() {
  local a b
  a=$(s3 A s3 ls s3://photos/ | awk '{print $3, $4}') && b=$(s3 B s3 ls s3://photos/ | awk '{print $3, $4}') || return 1
  [ "$(wc -l <<<"$a")" -eq 2 ] && [ "$a" = "$b" ] || { echo "     A: $a"; echo "     B: $b"; return 1; }
}
cross_node

# --- 3. a lock taken on A binds B -------------------------------------------------------------
LOCK_BODY='<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>cluster</D:owner></D:lockinfo>'
locks_across_nodes() {
  local code token
  code=$(curl -sS --max-time 60 -u "$U:$P" -D "$WORK/lock.h" -o "$WORK/got" -w '%{http_code}' -X LOCK \
    -H 'Timeout: Second-600' -H 'Content-Type: application/xml' --data "$LOCK_BODY" "${NODE_URL[A]}/dav/photos/two.bin")
  check "[lock] LOCK on A" status_is "$code" 200 || return
  token=$(grep -i '^lock-token:' "$WORK/lock.h" | sed 's/^[^<]*<\([^>]*\)>.*/\1/' | tr -d '\r')
  check "[lock] PUT on B without the token answers 423" status_is "$(dav_put B /photos/two.bin "$WORK/one.bin")" 423
  check "[lock] PUT on B with the token answers 204" \
    status_is "$(dav_put B /photos/two.bin "$WORK/two.bin" -H "If: (<$token>)")" 204
  check "[lock] UNLOCK on B" status_is "$(dav B UNLOCK /photos/two.bin -H "Lock-Token: <$token>")" 204
  check "[lock] then a PUT on A goes through" status_is "$(dav_put A /photos/two.bin "$WORK/two.bin")" 204
}
locks_across_nodes

# --- 4. a download limit counted across nodes --------------------------------------------------
link_limit_across_nodes() {
  local code token i ok
  code=$(curl -sS --max-time 60 -u "$U:$P" -o "$WORK/link.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{"path": "/photos/two.bin", "max_downloads": 5, "expires_in": 3600}' "${NODE_URL[A]}/api/v1/links")
  check "[link] a link of 5 downloads is made on A" status_is "$code" 201 || return
  token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$WORK/link.json")
  mkdir -p "$WORK/link"
  local pids=()
  for i in $(seq 1 20); do
    local n=A
    [ $((i % 2)) -eq 0 ] && n=B
    curl -sS --max-time 120 -o "$WORK/link/$i.body" -w '%{http_code}\n' "${NODE_URL[$n]}/s/$token" >"$WORK/link/$i.code" &
    pids+=($!)
  done
  wait "${pids[@]}" # each bounded by --max-time
  ok=$(cat "$WORK/link/"*.code | grep -c '^200$')
  check "[link] 20 concurrent downloads across A and B serve exactly 5 (served $ok)" [ "$ok" -eq 5 ]
  check "[link] each served download is whole" served_whole
}
served_whole() {
  local f
  for f in "$WORK/link/"*.code; do
    [ "$(cat "$f")" = 200 ] || continue
    cmp "${f%.code}.body" "$WORK/two.bin" || return 1
  done
}
link_limit_across_nodes

# --- 5. a node killed mid-upload ---------------------------------------------------------------
bucket_objects() { # chunk objects in the bucket, as Garage lists them
  env -u AWS_PROFILE -u AWS_CA_BUNDLE AWS_CONFIG_FILE="$AWS_CONF" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ACCESS_KEY_ID="$GARAGE_KEY_ID" AWS_SECRET_ACCESS_KEY="$GARAGE_SECRET" AWS_DEFAULT_REGION="$GARAGE_REGION" \
    timeout 120 "$VENV/bin/aws" --region "$GARAGE_REGION" --endpoint-url "$GARAGE_ENDPOINT" \
    s3 ls --recursive "s3://$GARAGE_BUCKET/chunks/" | wc -l
}
killed_mid_upload() {
  head -c $((100 * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
  check "[kill] the previous version is written" status_is "$(dav_put A /photos/big.bin "$WORK/two.bin")" 201
  local before
  before=$(bucket_objects)
  # A slow upload to A (limited rate), killed once half of it is sent.
  curl -sS --max-time 300 -u "$U:$P" --limit-rate 20M -o /dev/null -T "$WORK/big.bin" \
    "${NODE_URL[A]}/dav/photos/big.bin" 2>/dev/null &
  local curl_pid=$!
  sleep 2.5
  kill -9 "${NODE_PID[A]}"
  wait "${NODE_PID[A]}" 2>/dev/null
  NODE_PID[A]=
  wait "$curl_pid" 2>/dev/null
  check "[kill] B still serves the previous version" dav_cmp_on B /photos/big.bin "$WORK/two.bin"
  check "[kill] the killed upload left chunks in the bucket (it was mid-way)" [ "$(bucket_objects)" -gt "$before" ]
  # Orphans wait out the grace period twice (a quiet period, then marked), then go.
  local deadline=$((SECONDS + 20 * GRACE + 30))
  while [ "$(bucket_objects)" -gt "$before" ] && [ $SECONDS -lt $deadline ]; do sleep 1; done
  check "[kill] after the grace period no orphan is left in the bucket ($(bucket_objects) objects, $before before)" \
    [ "$(bucket_objects)" -le "$before" ]
  check "[kill] davit admin check is consistent" quiet admin check
  check "[kill] node A starts again" start_node A
  check "[kill] A serves the previous version too" dav_cmp_on A /photos/big.bin "$WORK/two.bin"
}
killed_mid_upload

# --- 6. one Garage node down --------------------------------------------------------------------
garage_node_down() {
  check "[garage] one node stopped" garage_stop_node 3 || return
  head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/three.bin"
  check "[garage] a write on B goes on" status_is "$(dav_put B /photos/three.bin "$WORK/three.bin")" 201
  check "[garage] a read on A goes on" dav_cmp_on A /photos/one.bin "$WORK/one.bin"
  check "[garage] the node starts again" garage_start_node 3
  check "[garage] nothing lost: the file written while it was down" dav_cmp_on A /photos/three.bin "$WORK/three.bin"
  check "[garage] nothing lost: the earlier files" dav_cmp_on B /photos/one.bin "$WORK/one.bin"
}
garage_node_down

# --- 7. real clients against B ------------------------------------------------------------------
LITMUS_SUITES="basic copymove props locks http"
clients_on_b() {
  if ! have litmus; then install_missing litmus >/dev/null 2>&1; fi
  mkdir -p "$WORK/litmus"
  (cd "$WORK/litmus" && TESTS=$LITMUS_SUITES timeout -k 10 900 litmus -k "${NODE_URL[B]}/dav/" "$U" "$P") \
    >"$WORK/litmus/out.txt" 2>&1 </dev/null
  local s
  for s in $LITMUS_SUITES; do
    check "[B litmus] $s: no failures" grep -q "^<- summary for \`$s': of [0-9]* tests run: [0-9]* passed, 0 failed" \
      "$WORK/litmus/out.txt"
  done
  on B
  check "[B aws] s3 sync up and down" aws_sync_round_trip
  check "[B rclone] copy up, check, copy down" rclone_round_trip
}
aws_sync_round_trip() {
  make_tree "$WORK/up" >/dev/null
  aws_as "$U" s3 sync --only-show-errors "$WORK/up/tree" s3://photos/tree/ &&
    aws_as "$U" s3 sync --only-show-errors s3://photos/tree/ "$WORK/down-aws" &&
    diff -r "$WORK/up/tree" "$WORK/down-aws" >/dev/null
}
rclone_round_trip() {
  rclone_config "$WORK/rclone.conf" && rclone_webdav_remote b other "$U" "$P" && rclone_s3_remote b3 "$U" &&
    rcl copy "$WORK/up/tree" b:photos/rtree && rcl check "$WORK/up/tree" b3:photos/rtree &&
    rcl copy b3:photos/rtree "$WORK/down-rclone" && diff -r "$WORK/up/tree" "$WORK/down-rclone" >/dev/null
}
clients_on_b

# --- 8. faults ----------------------------------------------------------------------------------
# The status of a request as each protocol answers it while an engine is away.
fault_statuses() { # node: "webdav rest s3" statuses of a read of a file not in the cache
  local n=$1 w r s
  w=$(curl -sS --max-time 120 -u "$U:$P" -o "$WORK/fault.dav" -w '%{http_code}' "${NODE_URL[$n]}/dav/photos/uncached.bin")
  r=$(curl -sS --max-time 120 -u "$U:$P" -o "$WORK/fault.rest" -w '%{http_code}' "${NODE_URL[$n]}/api/v1/files/photos/uncached.bin")
  s=$(curl -sS --max-time 120 -o "$WORK/fault.s3" -w '%{http_code}' "$(presign "$n" s3://photos/uncached.bin)")
  echo "$w $r $s"
}
presign() { on "$1"; aws_as "$U" s3 presign "$2" --expires-in 600; }
answers_503_everywhere() { # node
  local got
  got=$(fault_statuses "$1")
  [ "$got" = "503 503 503" ] || { echo "     webdav rest s3: $got, want 503 503 503"; head -c 300 "$WORK/fault.s3" | say; return 1; }
  grep -q '<Code>ServiceUnavailable</Code>' "$WORK/fault.s3" || { echo "     S3 body:"; head -c 300 "$WORK/fault.s3" | say; return 1; }
  grep -q '"status": *503' "$WORK/fault.rest" || { echo "     REST body:"; head -c 300 "$WORK/fault.rest" | say; return 1; }
}
serves_again() { # node: within 60 s the three answer 200 again
  local deadline=$((SECONDS + 60)) got
  while [ $SECONDS -lt $deadline ]; do
    got=$(fault_statuses "$1")
    [ "$got" = "200 200 200" ] && cmp -s "$WORK/fault.dav" "$WORK/uncached.bin" && return 0
    sleep 1
  done
  echo "     webdav rest s3: $got after 60 s"
  return 1
}
faults() {
  head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/uncached.bin"
  check "[faults] a file written on A (so B has no cached chunk of it)" \
    status_is "$(dav_put A /photos/uncached.bin "$WORK/uncached.bin")" 201 || return
  check "[faults] PostgreSQL stopped" pg_pause || return
  check "[faults] without PostgreSQL: 503 over WebDAV, REST (problem+json) and S3 (ServiceUnavailable)" answers_503_everywhere B
  check "[faults] PostgreSQL started again" pg_resume
  check "[faults] service resumes by itself" serves_again B
  local i
  # Another file B has not read (the first is in B's cache now).
  cp "$WORK/uncached.bin" "$WORK/uncached-1.bin"
  head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/uncached.bin"
  check "[faults] another file written on A" status_is "$(dav_put A /photos/uncached.bin "$WORK/uncached.bin")" 204
  for i in 1 2 3; do garage_stop_node "$i" >/dev/null; done
  check "[faults] without the Garage cluster: 503 over WebDAV, REST and S3" answers_503_everywhere B
  for i in 1 2 3; do garage_start_node "$i" >/dev/null; done
  check "[faults] service resumes by itself once Garage is back" serves_again B
  check "[faults] nothing half-written: admin check" quiet admin check
}
starts_refused() { # expected-text env...: a node started so exits non-zero, saying the text
  local want=$1 out rc
  shift
  out=$(env DAVIT_CHUNKS_ENDPOINT="$GARAGE_ENDPOINT" "$@" timeout 60 "$DAVIT_BIN" serve --data-dir "$WORK/refused" --listen 127.0.0.1:0 2>&1)
  rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "     exit $rc"; tail -n 5 <<<"$out" | say; return 1; }
  grep -q -- "$want" <<<"$out" || { echo "     said:"; tail -n 5 <<<"$out" | say; return 1; }
  not grep -q "$PG_PASSWORD" <<<"$out" || { echo "     the password was printed"; return 1; }
}
refused_starts() {
  local closed
  closed=$(free_port)
  check "[faults] PostgreSQL out of reach at start: one line naming it, without the password, exit non-zero" \
    starts_refused "PostgreSQL" DAVIT_META="postgres://davit:$PG_PASSWORD@127.0.0.1:$closed/davit"
  openssl rand -hex 32 >"$WORK/other.key"
  check "[faults] a node with another master key is refused at start" \
    starts_refused "master key" DAVIT_MASTER_KEY_FILE="$WORK/other.key"
  check "[faults] and the deployment still serves" dav_cmp_on B /photos/one.bin "$WORK/one.bin"
}
faults
refused_starts

# Both nodes write heartbeats: a migration from their PostgreSQL is refused while they run
# (and, once they stopped cleanly, allowed at once: step 9).
out=$(admin migrate --to-meta "redb:$WORK/too-early" --to-chunks local 2>&1)
check "[home] admin migrate refuses while nodes run on the source" \
  grep -q "needs every davit on this metadata store stopped" <<<"$out" || tail -n 3 <<<"$out" | say

stop_node A
stop_node B
check "[end] davit admin check with every node stopped" quiet admin check

# --- 9. going home: the distributed deployment copied onto one machine ---------------------------
going_home() {
  local out
  out=$(admin migrate --to-meta "redb:$WORK/home" --to-chunks local 2>&1)
  check "[home] admin migrate to redb and a local folder verifies every file" grep -q verified <<<"$out" ||
    { tail -n 5 <<<"$out" | say; return; }
  check "[home] a second migrate into it is refused" not admin migrate --to-meta "redb:$WORK/home" --to-chunks local
  # The copy on its own: no PostgreSQL, no cluster, the same master key.
  (
    unset DAVIT_META DAVIT_CHUNKS DAVIT_CHUNKS_ENDPOINT DAVIT_CHUNK_GRACE
    DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$WORK/home" check >/dev/null &&
      start_davit_on_home
  )
}
start_davit_on_home() {
  DAVIT_WORK=$WORK/home-run
  mkdir -p "$DAVIT_WORK"
  start_davit_on "$WORK/home" || return 1
  local code
  code=$(curl -sS --max-time 120 -u "$U:$P" -o "$WORK/got" -w '%{http_code}' "$DAVIT_URL/dav/photos/one.bin")
  stop_davit
  [ "$code" = 200 ] && cmp "$WORK/got" "$WORK/one.bin"
}
check "[home] the copy checks consistent and serves the same bytes on its own" going_home
summary cluster
