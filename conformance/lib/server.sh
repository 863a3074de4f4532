# shellcheck shell=bash
# Shared by the conformance suites: start a fresh davit on 127.0.0.1 with a test user,
# and stop it on exit. Source it, then call start_davit [--tls] (or start_davit_on DIR [--tls]
# for an existing data folder; --tls after use_test_cert); stop_davit; check_davit_data.
# Sets: DAVIT_URL, DAVIT_DATA, DAVIT_PID, TEST_USER, TEST_PASSWORD.
# For a data folder made by hand: new_davit_data, add_user, add_s3_key (then start_davit_on).
# For a suite's parts: suite_work (a scratch folder and the clean-up on any exit),
# finish_server (stop, offline check, the log when the part failed), server_log_has.
# Uses checks.sh (check, say, fail): source it too.

DAVIT_BIN=${DAVIT_BIN:-target/release/davit}
TEST_USER=${TEST_USER:-tester}
TEST_PASSWORD=${TEST_PASSWORD:-tester-password-1}

# The self-signed test certificate (tests/make-cert.sh) that --tls servers present and the
# clients trust: made when missing.
use_test_cert() {
  export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
  [ -s "$DAVIT_TEST_CERT_DIR/cert.pem" ] || bash tests/make-cert.sh "$DAVIT_TEST_CERT_DIR"
}

# A new, empty place for a server: DAVIT_WORK (removed on exit by cleanup_davit), its log
# and DAVIT_DATA, the data folder that the admin commands below fill before it is served.
new_davit_data() {
  DAVIT_WORK=$(mktemp -d)
  DAVIT_WORKS+=("$DAVIT_WORK")
  DAVIT_DATA=$DAVIT_WORK/data
}

# Users and keys can only be made offline (the admin command refuses while a server holds the
# database). What the admin command says on stderr goes to $DAVIT_WORK/admin.log.
add_user() { # user password [role]
  local role=()
  [ -n "${3:-}" ] && role=(--role "$3")
  echo "$2" | DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" user add "$1" \
    --password-stdin --email "$1@example.test" "${role[@]}" >/dev/null 2>>"$DAVIT_WORK/admin.log" ||
    { echo "     user add $1 failed:"; tail -n 3 "$DAVIT_WORK/admin.log" | say; return 1; }
}
declare -gA S3_KEY=() S3_SECRET=() # a user's S3 access key, as add_s3_key made it
add_s3_key() { # user: sets S3_KEY[user], S3_SECRET[user]
  local out
  out=$(DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" key add "$1" 2>>"$DAVIT_WORK/admin.log") ||
    { echo "     key add $1 failed: $out"; tail -n 3 "$DAVIT_WORK/admin.log" | say; return 1; }
  S3_KEY[$1]=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$out")
  S3_SECRET[$1]=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$out")
  if [ -z "${S3_KEY[$1]}" ] || [ -z "${S3_SECRET[$1]}" ]; then echo "     key add printed: $out"; return 1; fi
}

start_davit() {
  new_davit_data
  add_user "$TEST_USER" "$TEST_PASSWORD" # on failure the server starts all the same, as before
  # Removes what it made on exit, unless the suite has an EXIT trap of its own (suite_work's
  # also calls cleanup_davit): never replace it.
  [ -n "$(trap -p EXIT)" ] || trap cleanup_davit EXIT
  start_davit_on "$DAVIT_DATA" "$@"
}

stop_davit() {
  if [ -n "${DAVIT_PID:-}" ] && kill -0 "$DAVIT_PID" 2>/dev/null; then
    kill -TERM "$DAVIT_PID"
    wait "$DAVIT_PID" || true
  fi
  DAVIT_PID=
}

# Offline consistency check of the last server's data folder (run after stop_davit).
check_davit_data() {
  DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" check
}

DAVIT_WORKS=()
cleanup_davit() {
  stop_davit
  local d
  for d in "${DAVIT_WORKS[@]}"; do rm -rf "$d"; done
}

# Start a server on an existing data folder, like start_davit does on a fresh one (same log
# level, same way of reading the address it listens on).
start_davit_on() { # DIR [--tls]
  local dir=$1 tls_args=() scheme=http addr="" log
  if [ "${2:-}" = "--tls" ]; then
    tls_args=(--tls-cert "$DAVIT_TEST_CERT_DIR/cert.pem" --tls-key "$DAVIT_TEST_CERT_DIR/key.pem")
    scheme=https
  fi
  log=$DAVIT_WORK/server.log
  [ -e "$log" ] && mv "$log" "$log.before"
  DAVIT_ADMIN_PASSWORD=admin-password-1 DAVIT_LOG=${DAVIT_LOG:-warn,davit=info} \
    "$DAVIT_BIN" serve --data-dir "$dir" --listen 127.0.0.1:0 "${tls_args[@]}" 2>"$log" &
  DAVIT_PID=$!
  for _ in $(seq 1 100); do
    addr=$(grep -o 'davit listening on https\?://[0-9.:]*' "$log" | head -1 | sed 's#.*://##') || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "davit did not start:"; cat "$log"; return 1
  fi
  # shellcheck disable=SC2034 # for the suites
  DAVIT_URL="$scheme://$addr"
  DAVIT_DATA=$dir
}

# --- a suite's scratch folder and clean-up ---------------------------------------------------
# WORK=/tmp/davit-NAME.XXXXXX; whatever the suite leaves behind is undone on any exit: first
# CMD (e.g. unmounting what is mounted in WORK), then the servers and their folders, then WORK.
suite_work() { # NAME [CMD]
  WORK=$(mktemp -d "/tmp/davit-$1.XXXXXX")
  SUITE_CLEANUP=${2:-}
  trap cleanup_suite EXIT
  trap 'exit 130' INT TERM # so that the EXIT trap runs
}
cleanup_suite() {
  if [ -n "${SUITE_CLEANUP:-}" ]; then "$SUITE_CLEANUP"; fi
  cleanup_davit
  # --one-file-system: never reach into a mount that would not go away
  rm -rf --one-file-system "$WORK" 2>/dev/null || echo "note: left $WORK behind"
}

# --- the server's log ---------------------------------------------------------------------
# The last server's log without colours (the access log's fields are then plain text).
server_log_plain() { sed 's/\x1b\[[0-9;]*m//g' "$DAVIT_WORK/server.log"; }
# (Captured before grep: with pipefail, "sed | grep -q" fails at random when grep stops
# reading early and sed gets SIGPIPE.)
server_log_has() { local l; l=$(server_log_plain) && grep -q -- "$1" <<<"$l"; } # a grep pattern

# What to look at when a part failed: the server's warnings and errors, then the last lines.
# With SERVER_LOG_REQUESTS=yes, also the requests that failed (5xx), were cut off, or took
# over 10 s.
SERVER_LOG_REQUESTS=
show_server_log() {
  [ -s "${DAVIT_WORK:-}/server.log" ] || return 0
  echo "     server log: warnings and errors, then the last lines"
  server_log_plain >"$DAVIT_WORK/server.plain.log"
  grep -E ' (WARN|ERROR) ' "$DAVIT_WORK/server.plain.log" | tail -n 20 | cut -c1-400 | say
  if [ "$SERVER_LOG_REQUESTS" = yes ]; then
    echo "     requests that failed (5xx), were cut off, or took over 10 s:"
    grep -E 'davit::access: .*(status=5[0-9][0-9]|complete=false)' "$DAVIT_WORK/server.plain.log" |
      grep -vE 'method=(GET|HEAD) ' | tail -n 10 | cut -c1-400 | say
    awk 'match($0, / ms=[0-9.]+/) && substr($0, RSTART + 4, RLENGTH - 4) + 0 > 10000' \
      "$DAVIT_WORK/server.plain.log" | tail -n 10 | cut -c1-400 | say
  fi
  echo "     ..."
  tail -n 15 "$DAVIT_WORK/server.plain.log" | cut -c1-400 | say
}

# Stop the server of a part, run the offline check, and show the server log if the part failed.
finish_server() { # tag fails-before (the value of $fail when the part began)
  local tag=$1 fails_before=$2
  stop_davit
  check "$tag offline consistency check after stop" check_davit_data
  # shellcheck disable=SC2154 # fail: counted by checks.sh
  if [ "$fail" -gt "$fails_before" ]; then show_server_log; fi
}
