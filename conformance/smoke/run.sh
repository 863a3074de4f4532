#!/usr/bin/env bash
# Smoke suite with curl against a fresh release server, over HTTP and over HTTPS (the test
# command's self-signed certificate, HTTP/1.1 and HTTP/2): health, routing answers, a
# streamed 64 MiB upload and download, a range, and a clean stop.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit
. conformance/lib/server.sh
. conformance/lib/checks.sh
use_test_cert

run_suite() {
  local mode=$1 curl_opts=()
  start_davit ${mode:+--tls}
  if [ -n "$mode" ]; then curl_opts=(--cacert "$DAVIT_TEST_CERT_DIR/cert.pem"); fi
  local c=(curl -sS "${curl_opts[@]}" -u "$TEST_USER:$TEST_PASSWORD")
  local tmp=$DAVIT_WORK
  check "[$DAVIT_URL] health" bash -c "curl -sS ${curl_opts[*]} '$DAVIT_URL/api/v1/health' | grep -q '\"status\":\"ok\"'"
  check "[$DAVIT_URL] anonymous S3 is refused in S3's XML" bash -c "curl -sS ${curl_opts[*]} '$DAVIT_URL/bucket/key' | grep -q '<Code>AccessDenied</Code>'"
  check "[$DAVIT_URL] unknown API path is problem+json 404" bash -c "[ \"\$(curl -sS -o /dev/null -w '%{http_code} %{content_type}' ${curl_opts[*]} '$DAVIT_URL/api/v1/nope')\" = '404 application/problem+json' ]"
  head -c $((64 * 1024 * 1024)) /dev/urandom > "$tmp/big.bin"
  check "[$DAVIT_URL] 64 MiB upload" bash -c "[ \"\$(${c[*]} -o /dev/null -w '%{http_code}' -T '$tmp/big.bin' '$DAVIT_URL/api/v1/files/big.bin')\" = 201 ]"
  check "[$DAVIT_URL] download matches" bash -c "${c[*]} '$DAVIT_URL/api/v1/files/big.bin' | cmp - '$tmp/big.bin'"
  check "[$DAVIT_URL] the access log records the download as complete" \
    server_log_has 'method=GET path=/api/v1/files/big.bin status=200 bytes=67108864 .*complete=true'
  check "[$DAVIT_URL] range" bash -c "${c[*]} -r 1000-1999 '$DAVIT_URL/api/v1/files/big.bin' | cmp - <(dd if='$tmp/big.bin' bs=1000 skip=1 count=1 2>/dev/null)"
  if [ -n "$mode" ]; then
    check "[$DAVIT_URL] HTTP/2 negotiated" bash -c "[ \"\$(curl -sS --http2 ${curl_opts[*]} -o /dev/null -w '%{http_version}' '$DAVIT_URL/api/v1/health')\" = 2 ]"
  fi
  stop_davit
  check "[$DAVIT_URL] offline consistency check after stop" check_davit_data
}

run_suite ""
run_suite tls
summary smoke
