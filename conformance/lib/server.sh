# Shared by the conformance suites: start a fresh davit on 127.0.0.1 with a test user,
# and stop it on exit. Source it, then call start_davit [--tls] (or start_davit_on DIR [--tls]
# for an existing data folder); stop_davit; check_davit_data.
# Sets: DAVIT_URL, DAVIT_DATA, DAVIT_PID, TEST_USER, TEST_PASSWORD.

DAVIT_BIN=${DAVIT_BIN:-target/release/davit}
TEST_USER=${TEST_USER:-tester}
TEST_PASSWORD=${TEST_PASSWORD:-tester-password-1}

start_davit() {
  DAVIT_WORK=$(mktemp -d)
  DAVIT_WORKS+=("$DAVIT_WORK")
  DAVIT_DATA=$DAVIT_WORK/data
  echo "$TEST_PASSWORD" | DAVIT_LOG=warn "$DAVIT_BIN" admin --data-dir "$DAVIT_DATA" user add "$TEST_USER" --password-stdin --email "$TEST_USER@example.test" >/dev/null
  trap cleanup_davit EXIT
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
  local dir=$1 tls=() scheme=http i addr="" log
  if [ "${2:-}" = "--tls" ]; then
    tls=(--tls-cert "$DAVIT_TEST_CERT_DIR/cert.pem" --tls-key "$DAVIT_TEST_CERT_DIR/key.pem")
    scheme=https
  fi
  log=$DAVIT_WORK/server.log
  [ -e "$log" ] && mv "$log" "$log.before"
  DAVIT_ADMIN_PASSWORD=admin-password-1 DAVIT_LOG=${DAVIT_LOG:-warn,davit=info} \
    "$DAVIT_BIN" serve --data-dir "$dir" --listen 127.0.0.1:0 "${tls[@]}" 2>"$log" &
  DAVIT_PID=$!
  for i in $(seq 1 100); do
    addr=$(grep -o 'davit listening on https\?://[0-9.:]*' "$log" | head -1 | sed 's#.*://##') || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "davit did not start:"; cat "$log"; return 1
  fi
  DAVIT_URL="$scheme://$addr"
  DAVIT_DATA=$dir
}
