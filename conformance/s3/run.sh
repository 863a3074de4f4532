#!/usr/bin/env bash
# S3 suite: real clients against a fresh release server per part, on 127.0.0.1 only, path-style
# (http://127.0.0.1:PORT/<bucket>/<key>), SigV4 with an access key, region us-east-1:
#   1. aws CLI over HTTP: buckets, a small and a 200 MiB (multipart) object, listings (v1 and
#      v2, paged, with and without a delimiter), sync of 200 small files up and down (a second
#      sync transfers nothing), an empty object, a range, a server-side copy, presigned GETs,
#      DeleteObject(s), a refused removal of a bucket that is not empty, a SHA-256 checksum
#      (sent as a header) returned by get-object --checksum-mode ENABLED;
#   2. aws CLI over HTTPS (where it sends aws-chunked bodies with trailing checksums): the
#      same small and 200 MiB objects, a sync up and down, a presigned GET, the SHA-256
#      checksum round trip (sent as a trailer);
#   3. rclone (s3, provider Other): copy 200 small files and a 200 MiB file, lsf -R (listing v1
#      and v2, paged), check both ways by MD5, a second copy transfers nothing, delete, purge;
#   4. s3cmd (SigV4): mb, put (small and multipart), ls, get, del, rb;
#   5. across protocols: an object put over S3 reads back identical over REST and WebDAV, and
#      what REST and WebDAV write is seen over S3;
#   and after every server stops, the offline consistency check of its data folder.
# aws CLI is installed from PyPI into a venv (kept in target/ between runs); rclone and s3cmd
# with apt-get when missing.
set -uo pipefail # no -e: a failing step is counted and the suite goes on to the next one
cd "$(dirname "$0")/../.."
root=$PWD
. conformance/lib/server.sh

export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$root/target/test-tls}
[ -s "$DAVIT_TEST_CERT_DIR/cert.pem" ] || bash tests/make-cert.sh "$DAVIT_TEST_CERT_DIR"
CERT=$DAVIT_TEST_CERT_DIR/cert.pem
VENV=${DAVIT_CONFORMANCE_VENV:-$root/target/conformance-venv}
REGION=us-east-1
BIG_MIB=200 # clients upload this multipart (aws CLI from 8 MiB, rclone from 200 MiB)

. conformance/lib/checks.sh

# --- clean-up: whatever a part leaves behind is undone on any exit --------------------------
WORK=$(mktemp -d /tmp/davit-s3.XXXXXX)
cleanup() {
  cleanup_davit
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that the EXIT trap runs

# --- a server with an access key ------------------------------------------------------------

# An access key can only be made offline (the admin command refuses while the server holds
# the database): start a fresh server (it makes the data folder and the test user), stop it,
# add a key, and serve the same folder again. Sets S3_KEY, S3_SECRET, DAVIT_URL, CURL.
start_server() { # [--tls]
  local out
  start_davit || { stop_davit; trap cleanup EXIT; return 1; }
  trap cleanup EXIT # start_davit sets its own EXIT trap: ours also calls cleanup_davit
  stop_davit
  out=$(DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" key add "$TEST_USER") ||
    { echo "     key add failed: $out"; return 1; }
  S3_KEY=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$out")
  S3_SECRET=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$out")
  [ -n "$S3_KEY" ] && [ -n "$S3_SECRET" ] || { echo "     key add printed: $out"; return 1; }
  start_davit_on "$DAVIT_DATA" "$@" || { stop_davit; return 1; }
  CURL=(curl -sS --max-time 600 -u "$TEST_USER:$TEST_PASSWORD")
  if [[ $DAVIT_URL == https://* ]]; then CURL+=(--cacert "$CERT"); fi
}

# Stop the server of a part, run the offline check, and show the server log if the part failed.
finish_server() {
  local tag=$1 fails_before=$2
  stop_davit
  check "$tag offline consistency check after stop" check_davit_data
  if [ "$fail" -gt "$fails_before" ]; then
    echo "     server log: warnings and errors, then the last lines"
    sed 's/\x1b\[[0-9;]*m//g' "$DAVIT_WORK/server.log" >"$DAVIT_WORK/server.plain.log"
    grep -E ' (WARN|ERROR) ' "$DAVIT_WORK/server.plain.log" | tail -n 20 | cut -c1-400 | say
    echo "     requests that failed (5xx), were cut off, or took over 10 s:"
    grep -E 'davit::access: .*(status=5[0-9][0-9]|complete=false)' "$DAVIT_WORK/server.plain.log" |
      grep -vE 'method=(GET|HEAD) ' | tail -n 10 | cut -c1-400 | say
    awk 'match($0, / ms=[0-9.]+/) && substr($0, RSTART + 4, RLENGTH - 4) + 0 > 10000' \
      "$DAVIT_WORK/server.plain.log" | tail -n 10 | cut -c1-400 | say
    echo "     ..."
    tail -n 15 "$DAVIT_WORK/server.plain.log" | cut -c1-400 | say
  fi
}

# --- the clients -------------------------------------------------------------------------
have() { command -v "$1" >/dev/null; }

# aws CLI v1 from PyPI, in a venv of ours, so that the version is a current one and nothing
# of the machine's Python is touched. An existing venv is reused (an install takes a while).
install_aws() {
  if [ -x "$VENV/bin/aws" ] && "$VENV/bin/aws" --version >/dev/null 2>&1; then return 0; fi
  echo "     installing awscli (PyPI) into $VENV"
  rm -rf "$VENV"
  timeout 300 python3 -m venv "$VENV" &&
    timeout 900 "$VENV/bin/python" -m pip install -q awscli >/dev/null &&
    "$VENV/bin/aws" --version >/dev/null 2>&1
}

install_apt() {
  local need=()
  have rclone || need+=(rclone)
  have s3cmd || need+=(s3cmd)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then echo "     cannot install ${need[*]}: not root"; return 1; fi
  echo "     installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq &&
    timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# aws CLI: only our key, our region, path style, one try per request (so that a request that
# only works on a retry shows up as a failure). Over HTTPS it trusts the test certificate.
aws_setup() {
  AWS_CONF=$DAVIT_WORK/aws-config
  printf '[default]\nregion = %s\nmax_attempts = 1\nretry_mode = standard\ns3 =\n  addressing_style = path\n%s\n' \
    "$REGION" "${AWS_CONF_EXTRA:-}" >"$AWS_CONF"
}
awsc() {
  local ca=()
  [[ $DAVIT_URL == https://* ]] && ca=(AWS_CA_BUNDLE="$CERT")
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_PROFILE -u AWS_ENDPOINT_URL \
    AWS_CONFIG_FILE="$AWS_CONF" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" "${ca[@]}" \
    timeout -k 10 900 "$VENV/bin/aws" --endpoint-url "$DAVIT_URL" "$@"
}

# rclone is a Go program: it must not see AWS_CA_BUNDLE. A private config with remote "s3:".
RCLONE_ARGS=()
rcl() { env -u AWS_CA_BUNDLE timeout -k 10 900 rclone "${RCLONE_ARGS[@]}" "$@"; }
rclone_setup() {
  local conf=$DAVIT_WORK/rclone.conf
  (umask 077 && printf '[s3]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = %s\nforce_path_style = true\n' \
    "$S3_KEY" "$S3_SECRET" "$DAVIT_URL" "$REGION" >"$conf")
  RCLONE_ARGS=(--config "$conf" --retries 1 --low-level-retries 1)
  if [[ $DAVIT_URL == https://* ]]; then RCLONE_ARGS+=(--ca-cert "$CERT"); fi
}

# s3cmd: a private config; host_bucket without %(bucket)s means path style.
s3c() { timeout -k 10 600 s3cmd -c "$DAVIT_WORK/s3cmd.conf" "$@"; }
s3cmd_setup() {
  local hostport=${DAVIT_URL#*://}
  (umask 077 && printf '[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = %s\n' \
    "$S3_KEY" "$S3_SECRET" "$hostport" "$hostport" "$REGION" >"$DAVIT_WORK/s3cmd.conf")
}

# --- test data ----------------------------------------------------------------------------
# 200 small files in 10 folders (a few awkward names, which test the signing of encoded paths
# and encoding-type=url) with distinct modification times in the past, one small file and one
# 200 MiB file. Made once, used by every part.
DATA=$WORK/data
make_data() {
  make_tree "$DATA"
  printf 'a small object, %s\n' "$(date)" >"$DATA/small.txt"
  head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$DATA/big.bin"
}
# "key<TAB>size" of every file under a local folder, sorted: what a listing must show.
local_listing() { (cd "$1" && find . -type f -printf "${2:-}%P\t%s\n" | LC_ALL=C sort); }
same_lines() { # file-or-fd a, b: equal, else show the first differences
  diff "$1" "$2" | head -n 20 | say
  [ "${PIPESTATUS[0]}" -eq 0 ]
}
urlpath() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

# --- 1 and 2. aws CLI -------------------------------------------------------------------------
aws_get_cmp() { awsc s3 cp --no-progress "s3://$1" "$WORK/got" >/dev/null && cmp "$WORK/got" "$2"; }
aws_lists_bucket() { local l; l=$(awsc s3 ls) && grep -qE " $1\$" <<<"$l"; }
# every key and size under a prefix, through s3api (paged, so continuation tokens/markers are used)
aws_keys() { # list-objects|list-objects-v2 bucket prefix page-size
  awsc s3api "$1" --bucket "$2" --prefix "$3" --page-size "$4" --query 'Contents[].[Key,Size]' --output text |
    LC_ALL=C sort
}
aws_listing_is() { # op bucket prefix page-size local-dir
  same_lines <(aws_keys "$1" "$2" "$3" "$4") <(local_listing "$5" "$3")
}
aws_ls_count() { # s3 ls args... ; count
  local want=${*: -1} n out
  out=$(awsc s3 ls "${@:1:$#-1}") || return 1
  n=$(grep -c . <<<"$out")
  [ "$n" -eq "$want" ] || { echo "     $n lines, want $want"; head -n 5 <<<"$out" | say; return 1; }
}
aws_prefixes_are() { # s3://bucket/prefix/ and the sub-prefixes it must show (PRE lines)
  local out got
  out=$(awsc s3 ls "$1") || return 1
  got=$(sed -n 's/^ *PRE //p' <<<"$out" | tr '\n' ' ')
  [ "$got" = "$2" ] || { echo "     prefixes: $got; want: $2"; return 1; }
}
sync_is_noop() { # a second sync transfers nothing
  local out
  out=$(awsc s3 sync --no-progress "$@" 2>&1) || { tail -n 8 <<<"$out" | say; return 1; }
  [ -z "$out" ] || { echo "     it did:"; head -n 5 <<<"$out" | say; return 1; }
}
presigned_get_cmp() { # bucket/key local-file: aws s3 presign, then a plain curl of that URL
  local url ca=()
  url=$(awsc s3 presign "s3://$1" --expires-in 300) || return 1
  [[ $url == https://* ]] && ca=(--cacert "$CERT")
  curl -sS -f --max-time 600 "${ca[@]}" "$url" | cmp - "$2"
}
range_cmp() {
  awsc s3api get-object --bucket "$1" --key "$2" --range bytes=1000-1999 "$WORK/range" >/dev/null &&
    cmp "$WORK/range" <(dd if="$3" bs=1000 skip=1 count=1 2>/dev/null)
}
aws_rb_refused() {
  local out
  out=$(awsc s3 rb "s3://$1" 2>&1) && { echo "     it was removed"; return 1; }
  grep -q BucketNotEmpty <<<"$out" || { tail -n 3 <<<"$out" | say; return 1; }
}
# An empty object, then two more, over one connection (so the next PUT always reuses it).
empty_then_put() {
  local dir=$WORK/empty-then-put
  mkdir -p "$dir" && : >"$dir/a0-empty.txt" && echo one >"$dir/a1.txt" && echo two >"$dir/a2.txt"
  AWS_CONF_EXTRA='  max_concurrent_requests = 1' aws_setup
  quiet awsc --cli-read-timeout 10 s3 cp --no-progress --recursive "$dir" "s3://$1/empty-then-put/"
  local rc=$?
  aws_setup
  [ "$rc" -eq 0 ] && aws_get_cmp "$1/empty-then-put/a1.txt" "$dir/a1.txt" &&
    aws_get_cmp "$1/empty-then-put/a0-empty.txt" "$dir/a0-empty.txt" &&
    quiet awsc s3 rm --recursive "s3://$1/empty-then-put/"
}
aws_missing() { not awsc s3api head-object --bucket "$1" --key "$2" >/dev/null 2>&1; }
# put-object --checksum-algorithm SHA256, then get-object --checksum-mode ENABLED: both answer
# the file's SHA-256 (and the CLI checks the body against it on the way down).
aws_checksum_round_trip() { # bucket key local-file
  local want put got
  want=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1], "rb").read()).digest()).decode())' "$3")
  put=$(awsc s3api put-object --bucket "$1" --key "$2" --body "$3" --checksum-algorithm SHA256 \
    --query ChecksumSHA256 --output text) || return 1
  got=$(awsc s3api get-object --bucket "$1" --key "$2" --checksum-mode ENABLED "$WORK/got" \
    --query ChecksumSHA256 --output text) || return 1
  [ "$put" = "$want" ] && [ "$got" = "$want" ] && cmp "$WORK/got" "$3" ||
    { echo "     want $want; put-object answered $put, get-object $got"; return 1; }
}

part_aws() {
  local tls=$1 fails_before=$fail tag b=conf-aws
  if [ ! -x "$VENV/bin/aws" ]; then check "[aws] aws CLI is installed" false; return; fi
  start_server ${tls:+--tls} || { check "[aws${tls:+ tls}] server starts" false; return; }
  tag="[aws $DAVIT_URL]"
  aws_setup
  if check "$tag make bucket" quiet awsc s3 mb "s3://$b"; then
    check "$tag ListBuckets shows it" aws_lists_bucket "$b"
    check "$tag put a small file" quiet awsc s3 cp --no-progress "$DATA/small.txt" "s3://$b/small.txt"
    check "$tag get it back, same bytes" aws_get_cmp "$b/small.txt" "$DATA/small.txt"
    check "$tag the access log names the key's user" bash -c \
      "sed 's/\x1b\[[0-9;]*m//g' '$DAVIT_WORK/server.log' | grep -q 'method=PUT path=/$b/small.txt status=200 .*user=$TEST_USER '"
    check "$tag put a $BIG_MIB MiB file (multipart)" quiet awsc s3 cp --no-progress "$DATA/big.bin" "s3://$b/big.bin"
    check "$tag get it back (ranged parts), same bytes" aws_get_cmp "$b/big.bin" "$DATA/big.bin"
    check "$tag list the bucket" aws_ls_count "s3://$b/" 2
    check "$tag SHA-256 checksum: put-object, get-object --checksum-mode ENABLED" \
      aws_checksum_round_trip "$b" checksummed.txt "$DATA/small.txt"
    # botocore sends "Expect: 100-continue" even with an empty body. A final answer that comes
    # without a "100 Continue" first leaves botocore < 1.43.77 (the newest aws CLI v1, 1.46.3,
    # bundles 1.43.62) parsing the next response on that connection against the stale status
    # line: a read timeout. Over HTTPS the body is aws-chunked, never empty, so it passes there.
    check "$tag an empty object, then another put on the same connection" empty_then_put "$b"
    check "$tag sync 200 small files up" quiet awsc s3 sync --no-progress "$DATA/tree" "s3://$b/tree"
    check "$tag ls --recursive lists 200 files" aws_ls_count --recursive "s3://$b/tree/" 200
    check "$tag delimiter listing: 10 prefixes" aws_prefixes_are "s3://$b/tree/" "d00/ d01/ d02/ d03/ d04/ d05/ d06/ d07/ d08/ d09/ "
    check "$tag ListObjectsV2 in pages of 37: keys and sizes" aws_listing_is list-objects-v2 "$b" tree/ 37 "$DATA/tree"
    check "$tag ListObjects (v1) in pages of 37: keys and sizes" aws_listing_is list-objects "$b" tree/ 37 "$DATA/tree"
    check "$tag a second sync up transfers nothing" sync_is_noop "$DATA/tree" "s3://$b/tree"
    mkdir -p "$WORK/down"
    check "$tag sync down into an empty folder" quiet awsc s3 sync --no-progress "s3://$b/tree" "$WORK/down"
    check "$tag downloaded tree is identical (diff -r)" diff -r "$DATA/tree" "$WORK/down"
    check "$tag a second sync down transfers nothing" sync_is_noop "s3://$b/tree" "$WORK/down"
    if [ -z "$tls" ]; then
      check "$tag range GET" range_cmp "$b" big.bin "$DATA/big.bin"
      check "$tag server-side copy" quiet awsc s3 cp --no-progress "s3://$b/small.txt" "s3://$b/copy.txt"
      check "$tag copy: same bytes" aws_get_cmp "$b/copy.txt" "$DATA/small.txt"
      check "$tag presigned GET with curl" presigned_get_cmp "$b/small.txt" "$DATA/small.txt"
      check "$tag presigned GET of an awkward key" presigned_get_cmp "$b/tree/d09/100% & a+b=c.txt" "$DATA/tree/d09/100% & a+b=c.txt"
      check "$tag delete an object" quiet awsc s3 rm "s3://$b/copy.txt"
      check "$tag deleted: HeadObject says 404" aws_missing "$b" copy.txt
      check "$tag DeleteObjects of two keys" quiet awsc s3api delete-objects --bucket "$b" \
        --delete 'Objects=[{Key=tree/d00/f00.txt},{Key=tree/d00/f01.txt}]'
      check "$tag deleted: 198 files left under tree/" aws_ls_count --recursive "s3://$b/tree/" 198
      check "$tag removing a bucket that is not empty is refused" aws_rb_refused "$b"
    else
      check "$tag presigned GET with curl" presigned_get_cmp "$b/big.bin" "$DATA/big.bin"
    fi
    check "$tag delete everything (rm --recursive)" quiet awsc s3 rm --recursive "s3://$b/"
    check "$tag the bucket is empty" aws_ls_count --recursive "s3://$b/" 0
    check "$tag remove the bucket" quiet awsc s3 rb "s3://$b"
    check "$tag ListBuckets no longer shows it" not aws_lists_bucket "$b"
  fi
  finish_server "$tag" "$fails_before"
}

# --- 3. rclone ----------------------------------------------------------------------------
# keys with sizes, as rclone lists them, in local_listing's form
rclone_listing() { rcl lsf -R --files-only --format ps --separator $'\t' "$@" | LC_ALL=C sort; }
rclone_listing_is() { # local dir, remote path, rclone options...
  local dir=$1; shift
  same_lines <(rclone_listing "$@") <(local_listing "$dir")
}
copy_is_noop() { # a second copy finds every file up to date (size, mtime in metadata, hash)
  local log changed
  log=$(rcl copy -v "$@" 2>&1) || { tail -n 20 <<<"$log" | say; return 1; }
  changed=$(grep -E ': (Copied|Updated)' <<<"$log")
  [ -z "$changed" ] || { head -n 10 <<<"$changed" | say; return 1; }
}
# rclone check exits 0 when a hash is missing on one side ("could not be checked"): not enough
rcheck() {
  local out
  out=$(rcl check "$@" 2>&1) || { tail -n 8 <<<"$out" | say; return 1; }
  not grep -q 'could not be checked' <<<"$out" || { grep 'could not be checked' <<<"$out" | say; return 1; }
}
remote_cmp() { rcl cat "$1" | cmp - "$2"; }
remote_lists() { local l; l=$(rcl lsf "$1") && grep -qxF "$2" <<<"$l"; }
remote_count() { local n; n=$(rcl lsf -R --files-only "$1" | wc -l); [ "$n" -eq "$2" ] || { echo "     $n files, want $2"; return 1; }; }

part_rclone() {
  local fails_before=$fail tag b=conf-rclone
  if ! have rclone; then check "[rclone] rclone is installed" false; return; fi
  start_server || { check "[rclone] server starts" false; return; }
  tag="[rclone $DAVIT_URL]"
  rclone_setup
  if check "$tag mkdir (make bucket)" quiet rcl mkdir "s3:$b" &&
    check "$tag copy 200 files up" quiet rcl copy "$DATA/tree" "s3:$b/tree"; then
    check "$tag copy the $BIG_MIB MiB file up (multipart)" quiet rcl copyto "$DATA/big.bin" "s3:$b/big.bin"
    check "$tag lsf -R: keys and sizes" rclone_listing_is "$DATA/tree" "s3:$b/tree"
    check "$tag lsf -R, ListObjectsV2 in pages of 37" rclone_listing_is "$DATA/tree" "s3:$b/tree" --s3-list-version 2 --s3-list-chunk 37
    check "$tag lsf -R, ListObjects v1 in pages of 37" rclone_listing_is "$DATA/tree" "s3:$b/tree" --s3-list-version 1 --s3-list-chunk 37
    check "$tag lsf: folders of the bucket" remote_lists "s3:$b/tree" d09/
    check "$tag check local -> remote (hashes)" rcheck "$DATA/tree" "s3:$b/tree"
    check "$tag check remote -> local (hashes)" rcheck "s3:$b/tree" "$DATA/tree"
    check "$tag check, contents downloaded" rcheck --download "$DATA/tree" "s3:$b/tree"
    check "$tag the $BIG_MIB MiB file: hash check (MD5 kept in metadata)" rcheck "$DATA" "s3:$b" --include /big.bin
    check "$tag the $BIG_MIB MiB file: same bytes" remote_cmp "s3:$b/big.bin" "$DATA/big.bin"
    check "$tag a second copy transfers nothing" copy_is_noop "$DATA/tree" "s3:$b/tree"
    check "$tag delete the files of a folder" quiet rcl delete "s3:$b/tree/d01"
    check "$tag deleted: 180 files left" remote_count "s3:$b/tree" 180
    check "$tag purge the bucket" quiet rcl purge "s3:$b"
    check "$tag purged: the bucket is gone" not remote_lists s3: "$b/"
  fi
  finish_server "$tag" "$fails_before"
}

# --- 4. s3cmd -----------------------------------------------------------------------------
s3cmd_lists() { local l; l=$(s3c ls ${1:+"$1"}) && grep -qF "$2" <<<"$l"; }
s3cmd_get_cmp() { rm -f "$WORK/got" && s3c --no-progress get "$1" "$WORK/got" >/dev/null && cmp "$WORK/got" "$2"; }

part_s3cmd() {
  local fails_before=$fail tag b=conf-s3cmd spaced="$DATA/tree/d09/name with spaces.txt"
  if ! have s3cmd; then check "[s3cmd] s3cmd is installed" false; return; fi
  start_server || { check "[s3cmd] server starts" false; return; }
  tag="[s3cmd $DAVIT_URL]"
  s3cmd_setup
  head -c $((20 * 1024 * 1024)) "$DATA/big.bin" >"$WORK/20m.bin" # over s3cmd's 15 MiB part size
  if check "$tag mb" quiet s3c mb "s3://$b"; then
    check "$tag ls shows the bucket" s3cmd_lists "" "s3://$b"
    check "$tag put a small file" quiet s3c --no-progress put "$DATA/small.txt" "s3://$b/small.txt"
    check "$tag put a name with spaces" quiet s3c --no-progress put "$spaced" "s3://$b/dir/name with spaces.txt"
    check "$tag put a 20 MiB file (multipart)" quiet s3c --no-progress put "$WORK/20m.bin" "s3://$b/20m.bin"
    check "$tag ls the bucket" s3cmd_lists "s3://$b/" "s3://$b/small.txt"
    check "$tag ls a prefix" s3cmd_lists "s3://$b/dir/" "s3://$b/dir/name with spaces.txt"
    check "$tag get the small file, same bytes" s3cmd_get_cmp "s3://$b/small.txt" "$DATA/small.txt"
    check "$tag get the spaced name, same bytes" s3cmd_get_cmp "s3://$b/dir/name with spaces.txt" "$spaced"
    check "$tag get the 20 MiB file, same bytes" s3cmd_get_cmp "s3://$b/20m.bin" "$WORK/20m.bin"
    check "$tag del" quiet s3c del "s3://$b/small.txt"
    check "$tag deleted: ls no longer shows it" not s3cmd_lists "s3://$b/" "s3://$b/small.txt"
    check "$tag del --recursive the rest" quiet s3c del --recursive --force "s3://$b/"
    check "$tag rb" quiet s3c rb "s3://$b"
    check "$tag ls no longer shows the bucket" not s3cmd_lists "" "s3://$b"
  fi
  finish_server "$tag" "$fails_before"
}

# --- 5. across protocols ------------------------------------------------------------------
rest_cmp() { "${CURL[@]}" -f "$DAVIT_URL/api/v1/files/$(urlpath "$1")" | cmp - "$2"; }
dav_cmp() { "${CURL[@]}" -f "$DAVIT_URL/dav/$(urlpath "$1")" | cmp - "$2"; }
http_put() { # url-path local-file: 2xx
  local code
  code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -T "$2" "$DAVIT_URL/$1")
  [[ $code == 2?? ]] || { echo "     PUT $1: $code"; return 1; }
}

http_mkcol() {
  local code
  code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X MKCOL "$DAVIT_URL/$1")
  [ "$code" = 201 ] || { echo "     MKCOL $1: $code"; return 1; }
}

part_cross() {
  local fails_before=$fail tag b=conf-cross key="dir/sub/name with spaces & ü.bin"
  head -c 300000 /dev/urandom >"$WORK/cross.bin"
  start_server || { check "[cross] server starts" false; return; }
  tag="[cross $DAVIT_URL]"
  aws_setup
  if check "$tag make bucket over S3" quiet awsc s3 mb "s3://$b" &&
    check "$tag put an object over S3" quiet awsc s3 cp --no-progress "$WORK/cross.bin" "s3://$b/$key"; then
    check "$tag REST reads the same bytes" rest_cmp "$b/$key" "$WORK/cross.bin"
    check "$tag WebDAV reads the same bytes" dav_cmp "$b/$key" "$WORK/cross.bin"
    check "$tag REST writes, S3 reads" http_put "api/v1/files/$b/$(urlpath rest.txt)" "$DATA/small.txt"
    check "$tag   same bytes over S3" aws_get_cmp "$b/rest.txt" "$DATA/small.txt"
    check "$tag WebDAV writes, S3 reads" http_put "dav/$b/dir/$(urlpath 'dav file.bin')" "$WORK/cross.bin"
    check "$tag   same bytes over S3" aws_get_cmp "$b/dir/dav file.bin" "$WORK/cross.bin"
    check "$tag a WebDAV folder at the root is a bucket" http_mkcol dav/conf-dav-folder
    check "$tag   ListBuckets shows it" aws_lists_bucket conf-dav-folder
  fi
  finish_server "$tag" "$fails_before"
}

# --- run ----------------------------------------------------------------------------------
check "aws CLI installed (PyPI, venv)" install_aws && echo "     $("$VENV/bin/aws" --version 2>&1)"
check "rclone and s3cmd installed" install_apt
make_data
part_aws ""
part_aws tls
part_rclone
part_s3cmd
part_cross
summary s3
