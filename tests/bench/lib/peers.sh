# What the benchmarks compare davit with, measured in the same run. Source this file.
#
#   nginx_start DIR      nginx (Debian's nginx-light + libnginx-mod-http-dav-ext) serving
#                        DIR/root over WebDAV on a free 127.0.0.1 port, with a throwaway config
#                        and prefix under DIR; sets NGINX_URL, NGINX_PID. Stopped by nginx_stop
#                        (and by peers_cleanup, which the caller's EXIT trap should run).
#   nginx_rss            nginx's peak RSS in MiB (master + worker: VmHWM summed)
#   disk_rate DIR        "SECOND FIRST CPU2 CPU1": MB/s of two `dd if=/dev/zero bs=1M count=1024
#                        conv=fdatasync` into DIR, one right after the other: the durable write
#                        rate of the disk DIR is on, now (why two: see the function); then each
#                        one's CPU seconds, what writing 1 GiB through the page cache costs in
#                        memory just freed and in memory the host had taken back
#   timed_cpu FILE CMD…  runs CMD, and writes its CPU seconds (user + system) to FILE
#   stage_costs          "CUT COPY HASH SEAL MD5": CPU ns per byte of each stage of a write on
#                        one core (storage/examples/stage_costs.rs, built here in release)
#   ceiling BYTES NS CPU… the MB/s at which this machine's cores, all busy with nothing else,
#                        would move BYTES that cost NS CPU ns per byte in the server plus the
#                        CPU seconds given after it (the client's, the page cache's)
#   ratio A B            A/B with two decimals ("-" when either is missing or B is zero)
#
# Why these: the issue's goals are ratios to a plain server and to the disk itself, both of
# which vary a lot between runs on a shared machine, so each run measures its own.

NGINX_PID=
NGINX_URL=
NGINX_DIR=

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nginx_start() { # DIR
  NGINX_DIR=$1
  local port tries=0
  mkdir -p "$NGINX_DIR/root" "$NGINX_DIR/tmp" "$NGINX_DIR/logs"
  port=$(free_port)
  # As root nginx's workers would drop to nobody, who cannot enter a private temp dir.
  local user_line=
  [ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
  cat >"$NGINX_DIR/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
daemon off;
$user_line
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/tmp;
  proxy_temp_path $NGINX_DIR/tmp;
  fastcgi_temp_path $NGINX_DIR/tmp;
  uwsgi_temp_path $NGINX_DIR/tmp;
  scgi_temp_path $NGINX_DIR/tmp;
  client_max_body_size 0;
  sendfile on;
  server {
    listen 127.0.0.1:$port;
    root $NGINX_DIR/root;
    location / {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw;
      autoindex on;
    }
  }
}
EOF
  nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log" &
  NGINX_PID=$!
  NGINX_URL=http://127.0.0.1:$port
  until curl -s -o /dev/null "$NGINX_URL/"; do
    tries=$((tries + 1))
    if [ $tries -gt 100 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
      echo "nginx did not start:" >&2
      cat "$NGINX_DIR/logs/error.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

nginx_rss() {
  local total=0 pid kb
  [ -n "$NGINX_PID" ] || { echo "-"; return; }
  for pid in $NGINX_PID $(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null); do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

nginx_stop() {
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
}

disk_rate() { # DIR
  # Twice, both printed ("SECOND FIRST", then their CPU): this VM hands free memory back to its host (free
  # page reporting, about a second after it is freed), and the first write into such memory
  # pays the host's page faults. Measured here within a minute: 318-366 MB/s into memory
  # handed back, 1,500 a moment later into the pages the first `dd` had just freed, 519-638
  # after a pause of 1-3 s. The second is the disk's own rate and the one ratios use; the
  # first is what a write as long as the server's PUT (1.5-2.5 s, long enough for the pages
  # the probe freed to be handed back) meets. The server's CPU per GiB tells which it met.
  local first second
  rm -f "$1/dd-cpu1" "$1/dd-cpu2"
  first=$(dd_probe "$1/dd-probe" "$1/dd-cpu1")
  second=$(dd_probe "$1/dd-probe" "$1/dd-cpu2")
  echo "${second:--} ${first:--} $(cat "$1/dd-cpu2" 2>/dev/null || echo -) $(cat "$1/dd-cpu1" 2>/dev/null || echo -)"
}

# One `dd` of 1 GiB into FILE, removed after: its MB/s, or nothing if it failed; its CPU
# seconds into CPU_FILE when given.
dd_probe() { # FILE [CPU_FILE]
  local out
  out=$(LC_ALL=C timed_cpu "${2:-/dev/null}" dd if=/dev/zero of="$1" bs=1M count=1024 conv=fdatasync 2>&1) || { rm -f "$1"; return; }
  rm -f "$1"
  # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.53 s, 702 MB/s": bytes over seconds.
  awk '/bytes/ && /copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.1f", $1 / $(i - 1) / 1e6 }' <<<"$out"
}

timed_cpu() { # FILE CMD...
  local file=$1
  shift
  [ "$file" = /dev/null ] && { "$@"; return; }
  rm -f "$file"
  # Without GNU time (Debian's `time`), the command runs and its CPU reads "-".
  [ -x /usr/bin/time ] || { echo - >"$file"; "$@"; return; }
  # GNU time's own line goes to a file: the command's output and errors stay where they were.
  /usr/bin/time -f '%U %S' -o "$file.t" "$@" || { rm -f "$file.t"; return 1; }
  awk '{ printf "%.2f", $1 + $2 }' "$file.t" >"$file"
  rm -f "$file.t"
}

stage_costs() {
  cargo build -q --release -p davit-storage --example stage_costs
  "${CARGO_TARGET_DIR:-target}/release/examples/stage_costs" 256 3
}

ceiling() { # BYTES NS CPU_SECONDS...
  python3 -c '
import os, sys
b, ns = float(sys.argv[1]), float(sys.argv[2])
try:
    extra = sum(float(x) for x in sys.argv[3:])
except ValueError:
    print("-"); sys.exit()
print(f"{len(os.sched_getaffinity(0)) * b / (b * ns / 1e9 + extra) / 1e6:.1f}")' "$@"
}

ratio() { # A B
  python3 -c '
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print(f"{a / b:.2f}" if b else "-")
except ValueError:
    print("-")' "$1" "$2"
}

peers_cleanup() {
  nginx_stop
}
