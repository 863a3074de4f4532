#!/usr/bin/env bash
# Security suite against a fresh release server: the hostile header corpus is sent to every
# front end (no panic, no dropped connection, an answer below 500), and slow clients
# (tricklers spread over 127.0.0.2-127.0.0.21) cannot starve a client on 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/../.."
. conformance/lib/server.sh
. conformance/lib/checks.sh

start_davit
check "hostile header corpus: every answer below 500, no connection dropped" \
  quiet python3 conformance/security/replay_headers.py "$DAVIT_URL" "$TEST_USER" "$TEST_PASSWORD" conformance/security/headers.txt
check "the server logged no panic" not grep -q 'panicked' "$DAVIT_WORK/server.log"
check "500 tricklers from 127.0.0.2-21 for 30 s; /api/v1/health from 127.0.0.1 answers within 1 s throughout" \
  quiet python3 conformance/security/slow_clients.py "$DAVIT_URL"
stop_davit
check "offline consistency check after stop" check_davit_data
summary security
