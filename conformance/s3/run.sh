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
#   6. shares in S3's words, two users (aws s3api): a bucket policy granting the other user
#      read is a share (read by the bucket's name and in the shared bucket, not written),
#      get-bucket-policy and get-bucket-acl show it, a Deny is refused with NotImplemented,
#      a public-read ACL with AccessDenied (the server does not allow public read), and
#      delete-bucket-policy ends the share;
#   7. versions (depth.sh): PutBucketVersioning, two PUTs over S3 and one over WebDAV make three
#      versions, a GET by version id, a delete marker that hides the key (over WebDAV too) and
#      whose removal brings it back, rclone --s3-versions lists the old versions; object lock:
#      a COMPLIANCE default retention keeps a version that S3 and REST may not delete, while a
#      plain delete leaves a marker; restic backs up into the versioned bucket and restores
#      identical files;
#   8. CORS, tags, lifecycle (depth.sh): a CORS rule answers a browser preflight (curl OPTIONS)
#      and refuses other origins and the REST API, object tags round-trip and are replaced, a
#      lifecycle rule is stored and read back;
#   and after every server stops, the offline consistency check of its data folder.
# aws CLI is installed from PyPI into a venv (kept in target/ between runs); rclone and s3cmd
# and restic with apt-get when missing.
set -uo pipefail # no -e: a failing step is counted and the suite goes on to the next one
cd "$(dirname "$0")/../.." || exit
. conformance/lib/server.sh
. conformance/lib/checks.sh
. conformance/lib/clients.sh
use_test_cert
CERT=$DAVIT_TEST_CERT_DIR/cert.pem
BIG_MIB=200 # clients upload this multipart (aws CLI from 8 MiB, rclone from 200 MiB)
SERVER_LOG_REQUESTS=yes # a failed part also shows the requests that failed or were slow

# whatever a part leaves behind is undone on any exit
suite_work s3

# --- a server with an access key ------------------------------------------------------------

# An access key can only be made offline (the admin command refuses while the server holds
# the database): start a fresh server (it makes the data folder and the test user), stop it,
# add a key, and serve the same folder again. Sets S3_KEY[$TEST_USER], S3_SECRET[$TEST_USER],
# DAVIT_URL, CURL.
start_server() { # [--tls]
  start_davit || { stop_davit; return 1; }
  stop_davit
  add_s3_key "$TEST_USER" || return 1
  start_davit_on "$DAVIT_DATA" "$@" || { stop_davit; return 1; }
  curl_setup 600
}

# --- the clients -------------------------------------------------------------------------
# aws CLI as the test user: only its key, our region, path style, one try per request; over
# HTTPS it trusts the test certificate (aws_setup and aws_as in lib/clients.sh).
aws_conf() { aws_setup "$DAVIT_WORK/aws-config" "$@"; }
awsc() { aws_as "$TEST_USER" "$@"; }

# rclone: a private config with remote "s3:" (one try per request, see lib/clients.sh).
rclone_setup() { rclone_config "$DAVIT_WORK/rclone.conf" && rclone_s3_remote s3 "$TEST_USER"; }

# s3cmd: a private config; host_bucket without %(bucket)s means path style.
s3c() { timeout -k 10 600 s3cmd -c "$DAVIT_WORK/s3cmd.conf" "$@"; }
s3cmd_setup() {
  local hostport=${DAVIT_URL#*://}
  (umask 077 && printf '[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = %s\n' \
    "${S3_KEY[$TEST_USER]}" "${S3_SECRET[$TEST_USER]}" "$hostport" "$hostport" "$REGION" >"$DAVIT_WORK/s3cmd.conf")
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
same_lines() { # file-or-fd a, b: equal, else show the first differences
  diff "$1" "$2" | head -n 20 | say
  [ "${PIPESTATUS[0]}" -eq 0 ]
}

# --- 1 and 2. aws CLI -------------------------------------------------------------------------
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
  aws_conf 'max_concurrent_requests = 1'
  quiet awsc --cli-read-timeout 10 s3 cp --no-progress --recursive "$dir" "s3://$1/empty-then-put/"
  local rc=$?
  aws_conf
  [ "$rc" -eq 0 ] && aws_get_cmp "$TEST_USER" "s3://$1/empty-then-put/a1.txt" "$dir/a1.txt" &&
    aws_get_cmp "$TEST_USER" "s3://$1/empty-then-put/a0-empty.txt" "$dir/a0-empty.txt" &&
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
  aws_conf
  if check "$tag make bucket" quiet awsc s3 mb "s3://$b"; then
    check "$tag ListBuckets shows it" aws_lists_bucket "$b"
    check "$tag put a small file" quiet awsc s3 cp --no-progress "$DATA/small.txt" "s3://$b/small.txt"
    check "$tag get it back, same bytes" aws_get_cmp "$TEST_USER" "s3://$b/small.txt" "$DATA/small.txt"
    check "$tag the access log names the key's user" \
      server_log_has "method=PUT path=/$b/small.txt status=200 .*user=$TEST_USER "
    check "$tag put a $BIG_MIB MiB file (multipart)" quiet awsc s3 cp --no-progress "$DATA/big.bin" "s3://$b/big.bin"
    check "$tag get it back (ranged parts), same bytes" aws_get_cmp "$TEST_USER" "s3://$b/big.bin" "$DATA/big.bin"
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
      check "$tag copy: same bytes" aws_get_cmp "$TEST_USER" "s3://$b/copy.txt" "$DATA/small.txt"
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
# rclone check exits 0 when a hash is missing on one side ("could not be checked"): not enough
rcheck() {
  local out
  out=$(rcl check "$@" 2>&1) || { tail -n 8 <<<"$out" | say; return 1; }
  not grep -q 'could not be checked' <<<"$out" || { grep 'could not be checked' <<<"$out" | say; return 1; }
}

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
  aws_conf
  if check "$tag make bucket over S3" quiet awsc s3 mb "s3://$b" &&
    check "$tag put an object over S3" quiet awsc s3 cp --no-progress "$WORK/cross.bin" "s3://$b/$key"; then
    check "$tag REST reads the same bytes" rest_cmp "$b/$key" "$WORK/cross.bin"
    check "$tag WebDAV reads the same bytes" dav_cmp "$b/$key" "$WORK/cross.bin"
    check "$tag REST writes, S3 reads" http_put "api/v1/files/$b/$(urlpath rest.txt)" "$DATA/small.txt"
    check "$tag   same bytes over S3" aws_get_cmp "$TEST_USER" "s3://$b/rest.txt" "$DATA/small.txt"
    check "$tag WebDAV writes, S3 reads" http_put "dav/$b/dir/$(urlpath 'dav file.bin')" "$WORK/cross.bin"
    check "$tag   same bytes over S3" aws_get_cmp "$TEST_USER" "s3://$b/dir/dav file.bin" "$WORK/cross.bin"
    check "$tag a WebDAV folder at the root is a bucket" http_mkcol dav/conf-dav-folder
    check "$tag   ListBuckets shows it" aws_lists_bucket conf-dav-folder
  fi
  finish_server "$tag" "$fails_before"
}

# --- 6. shares in S3's words -----------------------------------------------------------------
OTHER_USER=other
aws_error_is() { # code, aws arguments...: the call fails with that S3 error code
  local code=$1 out
  shift
  if out=$(awsc "$@" 2>&1); then echo "     succeeded: $out"; return 1; fi
  grep -q "($code)" <<<"$out" || { echo "     $out" | head -n 3; return 1; }
}
policy_is_share() { # bucket
  local doc
  doc=$(printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/%s"]},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}' \
    "$OTHER_USER" "$1" "$1")
  awsc s3api put-bucket-policy --bucket "$1" --policy "$doc"
}
other_reads() { aws_get_cmp "$OTHER_USER" "s3://$1" "$2"; } # s3-path local-file
other_lists() { # bucket key: list-objects-v2 as the other user shows the key
  local l
  l=$(aws_as "$OTHER_USER" s3api list-objects-v2 --bucket "$1" --query "Contents[].Key" --output text) &&
    grep -qw -- "$2" <<<"$l"
}
policy_names() { # bucket text: get-bucket-policy's document has it
  local doc
  doc=$(awsc s3api get-bucket-policy --bucket "$1" --output text) && grep -qF -- "$2" <<<"$doc"
}
acl_owner_is() { # bucket name: get-bucket-acl's Owner
  local o
  o=$(awsc s3api get-bucket-acl --bucket "$1" --query Owner.DisplayName --output text) && [ "$o" = "$2" ]
}
part_policy() {
  local fails_before=$fail tag b=conf-policy deny
  new_davit_data
  if ! { add_user "$TEST_USER" "$TEST_PASSWORD" && add_user "$OTHER_USER" other-password-1 &&
    add_s3_key "$TEST_USER" && add_s3_key "$OTHER_USER"; }; then
    check "[policy] users and keys" false
    return
  fi
  start_davit_on "$DAVIT_DATA" || { check "[policy] server starts" false; return; }
  curl_setup 600
  tag="[policy $DAVIT_URL]"
  aws_conf
  if check "$tag make bucket" quiet awsc s3 mb "s3://$b" &&
    check "$tag put an object" quiet awsc s3 cp --no-progress "$DATA/small.txt" "s3://$b/docs/small.txt"; then
    check "$tag put-bucket-policy granting $OTHER_USER read" quiet policy_is_share "$b"
    check "$tag   $OTHER_USER reads it by the bucket's name" other_reads "$b/docs/small.txt" "$DATA/small.txt"
    check "$tag   and in the shared bucket" other_reads "shared/$TEST_USER/$b/docs/small.txt" "$DATA/small.txt"
    check "$tag   $OTHER_USER lists it" other_lists "$b" docs/small.txt
    check "$tag   $OTHER_USER cannot write it" quiet not aws_as "$OTHER_USER" s3 cp --only-show-errors "$DATA/small.txt" "s3://$b/x.txt"
    check "$tag get-bucket-policy shows the share" policy_names "$b" "arn:aws:iam:::user/$OTHER_USER"
    check "$tag get-bucket-acl names the owner" acl_owner_is "$b" "$TEST_USER"
    deny=$(printf '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}' "$b")
    check "$tag a Deny statement is refused (NotImplemented)" aws_error_is NotImplemented s3api put-bucket-policy --bucket "$b" --policy "$deny"
    check "$tag public-read is refused (AccessDenied)" aws_error_is AccessDenied s3api put-bucket-acl --bucket "$b" --acl public-read
    check "$tag delete-bucket-policy" quiet awsc s3api delete-bucket-policy --bucket "$b"
    check "$tag   $OTHER_USER reads it no more" quiet not other_reads "$b/docs/small.txt" "$DATA/small.txt"
  fi
  finish_server "$tag" "$fails_before"
}

# --- run ----------------------------------------------------------------------------------
check "aws CLI installed (PyPI, venv)" install_aws && echo "     $("$VENV/bin/aws" --version 2>&1)"
check "rclone, s3cmd and restic installed" install_missing rclone s3cmd restic
make_data
part_aws ""
part_aws tls
part_rclone
part_s3cmd
part_cross
part_policy
. conformance/s3/depth.sh
part_versions
part_cors_tags
summary s3
