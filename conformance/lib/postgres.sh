# shellcheck shell=bash
# A throwaway PostgreSQL server for a suite: pg_start DIR starts one on a free port of
# 127.0.0.1 with its data and socket under DIR, as the `postgres` user (initdb refuses root,
# and CI runs as root), and sets PG_URL (a superuser URL with a password, database `davit`)
# and PG_PID; pg_stop stops it. Needs PostgreSQL's server programs (tests/run.sh installs
# Debian's postgresql when they are missing).

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Runs a command as the postgres user when we are root, else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

PG_DIR= PG_BIN= PG_PORT=
pg_start() { # DIR
  PG_BIN=$(pg_bindir) || { echo "no PostgreSQL server programs (initdb): install postgresql"; return 1; }
  PG_DIR=$1/pg
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR" "$1" && chmod 755 "$1"
  local pwfile=$PG_DIR/pw
  PG_PASSWORD=$(openssl rand -hex 12)
  echo "$PG_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U davit --pwfile="$pwfile" -A scram-sha-256 \
    --no-instructions >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; return 1; }
  PG_PORT=$(free_port)
  # fsync stays on: the suite kills davit nodes, never PostgreSQL, but it measures too.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200" start >/dev/null ||
    { cat "$PG_DIR/server.log"; return 1; }
  PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U davit -d postgres -qc 'create database davit' >/dev/null ||
    return 1
  PG_URL="postgres://davit:$PG_PASSWORD@127.0.0.1:$PG_PORT/davit"
}

# Stops the server and starts it again on the same port, keeping its data (for the faults of a
# suite: the engine goes away while davit runs, then comes back).
pg_pause() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null; }
pg_resume() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200" start >/dev/null
}

pg_stop() {
  [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}
