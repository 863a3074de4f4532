# Garage (an S3-compatible cluster) for tests, on 127.0.0.1 only. Source this file.
#
#   garage_install                  builds Garage 2.5.0 into the tools cache if missing
#   garage_start DIR N REPLICATION  N nodes, one zone each, a key and a bucket; exports
#                                   GARAGE_ENDPOINT (node 1), GARAGE_ENDPOINTS (all, space-
#                                   separated), GARAGE_KEY_ID, GARAGE_SECRET, GARAGE_BUCKET,
#                                   GARAGE_REGION, GARAGE_DIR; also writes them to DIR/garage.env
#   garage_stop_node I [DIR]        stops node I (1-based)
#   garage_start_node I [DIR]       starts it again, same ports and data
#   garage_stop_all [DIR]           stops every node
#
# The tools cache is outside the clone (`DAVIT_TOOLS`, default ~/.cache/davit-tools) so a
# build survives `git clean` and is shared by clones; only the features a test cluster needs
# are built (sqlite bundled, no lmdb, no telemetry), which takes about 25 minutes here.

GARAGE_VERSION=2.5.0
garage_tools() { printf '%s' "${DAVIT_TOOLS:-$HOME/.cache/davit-tools}"; }
GARAGE_BIN=${GARAGE_BIN:-$(garage_tools)/garage-$GARAGE_VERSION/bin/garage}
export GARAGE_BIN

garage_install() {
  if [ -x "$GARAGE_BIN" ]; then
    return 0
  fi
  local root
  root="$(garage_tools)/garage-$GARAGE_VERSION"
  echo "garage: building Garage $GARAGE_VERSION into $root (about 25 minutes the first time)" >&2
  cargo install --locked garage@"$GARAGE_VERSION" --no-default-features --features sqlite,bundled-libs --root "$root"
  GARAGE_BIN="$root/bin/garage"
  export GARAGE_BIN
}

# Free TCP ports on 127.0.0.1, all held at once while chosen so they differ.
garage_free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

garage_cli() { # NODE_INDEX ARGS...
  local i=$1
  shift
  "$GARAGE_BIN" -c "$GARAGE_DIR/node$i/garage.toml" "$@"
}

# Waits (bounded) until 127.0.0.1:PORT accepts connections.
garage_wait_port() {
  local port=$1 tries=0
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$port" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 300 ]; then
      echo "garage: nothing listens on 127.0.0.1:$port after 30 s" >&2
      return 1
    fi
    sleep 0.1
  done
}

garage_start_node() { # I [DIR]
  local i=$1
  GARAGE_DIR=${2:-$GARAGE_DIR}
  local node="$GARAGE_DIR/node$i"
  "$GARAGE_BIN" -c "$node/garage.toml" server >>"$node/log" 2>&1 &
  echo $! >"$node/pid"
  garage_wait_port "$(cat "$node/rpc_port")" && garage_wait_port "$(cat "$node/s3_port")"
}

garage_stop_node() { # I [DIR]
  local i=$1
  GARAGE_DIR=${2:-$GARAGE_DIR}
  local pidfile="$GARAGE_DIR/node$i/pid" pid tries=0
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  rm -f "$pidfile"
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 100 ]; then
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

garage_stop_all() { # [DIR]
  GARAGE_DIR=${1:-$GARAGE_DIR}
  local d
  for d in "$GARAGE_DIR"/node*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    garage_stop_node "${d##*/node}"
  done
}

garage_start() { # DIR N REPLICATION
  local dir=$1 n=$2 repl=$3 i secret ports
  [ -x "$GARAGE_BIN" ] || { echo "garage: $GARAGE_BIN is missing (run garage_install)" >&2; return 1; }
  mkdir -p "$dir"
  GARAGE_DIR=$(cd "$dir" && pwd)
  export GARAGE_DIR
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  read -r -a ports <<<"$(garage_free_ports $((3 * n)))"
  GARAGE_ENDPOINTS=""
  for i in $(seq 1 "$n"); do
    local node="$GARAGE_DIR/node$i" rpc=${ports[$((3 * i - 3))]} s3=${ports[$((3 * i - 2))]} admin=${ports[$((3 * i - 1))]}
    mkdir -p "$node/meta" "$node/data"
    echo "$rpc" >"$node/rpc_port"
    echo "$s3" >"$node/s3_port"
    # Garage 2.x names: replication_factor (was replication_mode), rpc_bind_addr,
    # [s3_api] api_bind_addr / s3_region / root_domain.
    cat >"$node/garage.toml" <<EOF
metadata_dir = "$node/meta"
data_dir = "$node/data"
db_engine = "sqlite"
replication_factor = $repl
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"
bootstrap_peers = []

[s3_api]
api_bind_addr = "127.0.0.1:$s3"
s3_region = "garage"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
    chmod 600 "$node/garage.toml"
    GARAGE_ENDPOINTS="$GARAGE_ENDPOINTS${GARAGE_ENDPOINTS:+ }http://127.0.0.1:$s3"
    garage_start_node "$i" || return 1
  done
  # Every node joins node 1, and gets a role in a zone of its own (so that replication
  # puts each copy in another zone, like distinct machines).
  local peers=""
  for i in $(seq 1 "$n"); do
    local id
    id=$(garage_cli "$i" node id -q 2>/dev/null) || { echo "garage: node $i has no id" >&2; return 1; }
    [ "$i" -eq 1 ] || garage_cli 1 node connect "$id" >/dev/null || return 1
    garage_cli 1 layout assign -z "zone$i" -c 1G "${id%%@*}" >/dev/null || return 1
    peers="$peers${peers:+, }\"$id\""
  done
  # A node writes the peers it knows to its metadata only from time to time (seen here: not
  # within its first minute), and a cluster restarted whole before that never found itself
  # again ("Not connected"). Every node gets them all as
  # bootstrap peers (read at its next start), as a deployment's configuration would.
  for i in $(seq 1 "$n"); do
    sed -i "s/^bootstrap_peers = \[\]$/bootstrap_peers = [$peers]/" "$GARAGE_DIR/node$i/garage.toml"
  done
  garage_cli 1 layout apply --version 1 >/dev/null || return 1
  local tries=0
  until garage_cli 1 health >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 300 ]; then
      echo "garage: the cluster is not healthy after 30 s" >&2
      garage_cli 1 status >&2 || true
      return 1
    fi
    sleep 0.1
  done
  local out
  out=$(garage_cli 1 key create davit-test) || return 1
  GARAGE_KEY_ID=$(printf '%s\n' "$out" | sed -n 's/^Key ID:[[:space:]]*//p')
  GARAGE_SECRET=$(printf '%s\n' "$out" | sed -n 's/^Secret key:[[:space:]]*//p')
  GARAGE_BUCKET=davit-chunks
  GARAGE_REGION=garage
  GARAGE_ENDPOINT=${GARAGE_ENDPOINTS%% *}
  [ -n "$GARAGE_KEY_ID" ] && [ -n "$GARAGE_SECRET" ] || { echo "garage: could not read the new key" >&2; return 1; }
  garage_cli 1 bucket create "$GARAGE_BUCKET" >/dev/null || return 1
  garage_cli 1 bucket allow --read --write --owner "$GARAGE_BUCKET" --key davit-test >/dev/null || return 1
  # davit creates its bucket when missing: let the test key do so too.
  garage_cli 1 key allow --create-bucket davit-test >/dev/null || return 1
  export GARAGE_ENDPOINT GARAGE_ENDPOINTS GARAGE_KEY_ID GARAGE_SECRET GARAGE_BUCKET GARAGE_REGION
  (
    umask 077
    for v in GARAGE_DIR GARAGE_ENDPOINT GARAGE_ENDPOINTS GARAGE_KEY_ID GARAGE_SECRET GARAGE_BUCKET GARAGE_REGION; do
      printf "%s='%s'\n" "$v" "${!v}"
    done >"$GARAGE_DIR/garage.env"
  )
  echo "garage: $n node(s), replication $repl, S3 at $GARAGE_ENDPOINT, bucket $GARAGE_BUCKET, key $GARAGE_KEY_ID" >&2
}
