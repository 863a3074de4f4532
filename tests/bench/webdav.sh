#!/usr/bin/env bash
# Benchmark (not a test) of WebDAV with curl against a fresh release server on 127.0.0.1:
# one stream PUT and GET of a large file, N small files PUT then GET with one
# `curl -Z --parallel-max C` process, PROPFIND Depth 1 of a folder of F files (4 properties
# and allprop), COPY and DELETE of that folder, and the server's peak RSS. MB = 10^6 bytes.
# With --peer, nginx (nginx-light + dav-ext, see lib/peers.sh) is measured the same way in the
# same run, and the disk's durable write rate (`dd conv=fdatasync`) just before each large
# PUT; every figure is printed beside nginx's with the ratio (for times: davit's time over
# nginx's, so lower is better; for rates: davit's over the peer's, higher is better).
# davit also takes a large file of other bytes over REST (`PUT /api/v1/files/...`, the same
# write path as WebDAV), compared with the disk measured just before it. The server's CPU
# seconds for each large PUT are printed too: unlike the rates, they barely move with the
# load other processes put on the machine.
# Usage: tests/bench/webdav.sh [--peer] [BIG_MIB=1024] [N=4000] [F=10000] [C=16]
# DAVIT_BIN picks the server binary (default target/release/davit); BENCH_ONLY=big measures
# only the large file (PUT, GET, REST PUT), for runs repeated while tuning that path.
set -euo pipefail
cd "$(dirname "$0")/../.."
PEER=0
if [ "${1:-}" = "--peer" ]; then PEER=1; shift; fi
BIG=${1:-1024}; N=${2:-4000}; F=${3:-10000}; C=${4:-16}
export DAVIT_TEST_CERT_DIR=${DAVIT_TEST_CERT_DIR:-$PWD/target/test-tls}
. conformance/lib/server.sh
. tests/bench/lib/peers.sh
trap 'peers_cleanup; cleanup_davit' EXIT
DAVIT_LOG=warn start_davit
w=$DAVIT_WORK
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])):.1f}')" "$@"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$@"; }
MB=$(python3 -c "print($BIG * 1048576 / 1e6)")
# The CPU a write's stages cost per byte here, for the ceiling printed with the disk's figures.
[ "$PEER" = 1 ] && read -r S_CUT S_COPY S_HASH S_SEAL S_MD5 <<<"$(stage_costs)"

head -c $((BIG * 1048576)) /dev/urandom > "$w/big"
# The REST PUT sends other bytes: the same file again would be a dedup hit (cut and hashed,
# nothing sealed or written), about a third of a new file's CPU.
head -c $((BIG * 1048576)) /dev/urandom > "$w/big2"
head -c 4096 /dev/urandom > "$w/small"
declare -A R # R[figure,server]
# CPU seconds (user + system) the davit server has used so far.
server_cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$DAVIT_PID/stat"; }

# The whole set of figures against one server: BASE (its WebDAV root URL), NAME, curl auth.
measure() { # NAME BASE [curl args...]
  local name=$1 base=$2 t0 t1 t2 kind body best t n
  shift 2
  local a=("$@")
  if [ "$PEER" = 1 ]; then read -r "R[disk,$name]" "R[diskcold,$name]" "R[ddcpu,$name]" "R[ddcoldcpu,$name]" <<<"$(disk_rate "$w")"; fi
  local c0 c1
  [ "$name" = davit ] && c0=$(server_cpu)
  t0=$(now); timed_cpu "$w/client-cpu" curl -sS -f "${a[@]}" -T "$w/big" "$base/big.bin" -o /dev/null; t1=$(now)
  R[clientcpu,$name]=$(cat "$w/client-cpu")
  [ "$name" = davit ] && c1=$(server_cpu) && R[putcpu,$name]=$(python3 -c "print(f'{$c1 - $c0:.2f}')")
  curl -sS -f "${a[@]}" "$base/big.bin" -o /dev/null; t2=$(now)
  R[put,$name]=$(rate "$MB" "$t0" "$t1"); R[get,$name]=$(rate "$MB" "$t1" "$t2")
  if [ -n "$REST" ]; then
    read -r "R[rdisk,$name]" "R[rdiskcold,$name]" "R[rddcpu,$name]" "R[rddcoldcpu,$name]" <<<"$(disk_rate "$w")"
    c0=$(server_cpu)
    t0=$(now); timed_cpu "$w/client-cpu" curl -sS -f "${a[@]}" -T "$w/big2" "$REST/big-rest.bin" -o /dev/null; t1=$(now)
    R[rclientcpu,$name]=$(cat "$w/client-cpu")
    c1=$(server_cpu); R[rputcpu,$name]=$(python3 -c "print(f'{$c1 - $c0:.2f}')")
    R[rput,$name]=$(rate "$MB" "$t0" "$t1")
  fi
  [ "${BENCH_ONLY:-}" = big ] && return

  curl -sS -f "${a[@]}" -X MKCOL "$base/small/" -o /dev/null
  : > "$w/put.cfg"; : > "$w/get.cfg"
  for i in $(seq 1 "$N"); do
    printf 'url = "%s/small/f%d"\nupload-file = "%s"\noutput = "/dev/null"\n' "$base" "$i" "$w/small" >> "$w/put.cfg"
    printf 'url = "%s/small/f%d"\noutput = "/dev/null"\n' "$base" "$i" >> "$w/get.cfg"
  done
  t0=$(now); curl -sS -f -Z --parallel-max "$C" --no-progress-meter "${a[@]}" -K "$w/put.cfg"; t1=$(now)
  curl -sS -f -Z --parallel-max "$C" --no-progress-meter "${a[@]}" -K "$w/get.cfg"; t2=$(now)
  R[sput,$name]=$(rate "$N" "$t0" "$t1"); R[sget,$name]=$(rate "$N" "$t1" "$t2")

  curl -sS -f "${a[@]}" -X MKCOL "$base/many/" -o /dev/null
  : > "$w/many.cfg"
  for i in $(seq 1 "$F"); do printf 'url = "%s/many/file-%05d.txt"\nupload-file = "%s"\noutput = "/dev/null"\n' "$base" "$i" "$w/small" >> "$w/many.cfg"; done
  curl -sS -f -Z --parallel-max "$C" --no-progress-meter "${a[@]}" -K "$w/many.cfg"
  local props='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/></D:prop></D:propfind>'
  # davfs2 1.6.1's listing (neon's form, with Apache's executable).
  local davfs2='<?xml version="1.0" encoding="utf-8"?>
<propfind xmlns="DAV:"><prop>
<resourcetype xmlns="DAV:"/>
<getcontentlength xmlns="DAV:"/>
<getetag xmlns="DAV:"/>
<getlastmodified xmlns="DAV:"/>
<executable xmlns="http://apache.org/dav/props/"/>
</prop></propfind>'
  # Windows' mini-redirector sends no body (allprop), and gets Microsoft's properties too.
  for kind in four davfs2 allprop windows; do
    body=$props; agent=curl
    [ "$kind" = allprop ] && body='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    [ "$kind" = davfs2 ] && body=$davfs2
    [ "$kind" = windows ] && body='' && agent=Microsoft-WebDAV-MiniRedir/10.0.19045
    best=999
    for _ in 1 2 3; do
      t=$(curl -sS -f "${a[@]}" -A "$agent" -X PROPFIND -H "Depth: 1" -H "Content-Type: application/xml" --data "$body" -o "$w/pf.xml" -w '%{time_total}' "$base/many/")
      best=$(python3 -c "print(min($best, $t))")
    done
    n=$(grep -o '<D:response>' "$w/pf.xml" | wc -l)
    R[pf$kind,$name]=$best; R[pf$kind-n,$name]=$n
  done
  t0=$(now); curl -sS -f "${a[@]}" -X COPY -H "Destination: $base/many-copy/" -H "Depth: infinity" "$base/many/" -o /dev/null; t1=$(now)
  R[copy,$name]=$(secs "$t0" "$t1")
  t0=$(now); curl -sS -f "${a[@]}" -X DELETE "$base/many/" -o /dev/null; t1=$(now)
  R[delete,$name]=$(secs "$t0" "$t1")
}

REST=$DAVIT_URL/api/v1/files
measure davit "$DAVIT_URL/dav" -u "$TEST_USER:$TEST_PASSWORD"
REST=
R[rss,davit]=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$DAVIT_PID/status")
stop_davit
check_davit_data >/dev/null

if [ "$PEER" = 0 ]; then
  echo "large file ($BIG MiB): PUT ${R[put,davit]} MB/s, GET ${R[get,davit]} MB/s; REST PUT ${R[rput,davit]} MB/s"
  echo "server CPU of the large PUT: ${R[putcpu,davit]} s over WebDAV, ${R[rputcpu,davit]} s over REST"
  if [ "${BENCH_ONLY:-}" != big ]; then
    echo "4 KiB files x $N at concurrency $C: PUT ${R[sput,davit]}/s, GET ${R[sget,davit]}/s"
    echo "PROPFIND Depth 1 of $F files (four): ${R[pffour,davit]}s best of 3, ${R[pffour-n,davit]} responses"
    echo "PROPFIND Depth 1 of $F files (davfs2's body): ${R[pfdavfs2,davit]}s best of 3, ${R[pfdavfs2-n,davit]} responses"
    echo "PROPFIND Depth 1 of $F files (allprop): ${R[pfallprop,davit]}s best of 3, ${R[pfallprop-n,davit]} responses"
    echo "PROPFIND Depth 1 of $F files (Windows, no body): ${R[pfwindows,davit]}s best of 3, ${R[pfwindows-n,davit]} responses"
    echo "COPY of the $F-file folder: ${R[copy,davit]}s; DELETE of it: ${R[delete,davit]}s"
  fi
  echo "server peak RSS: ${R[rss,davit]} MiB"
  exit 0
fi

nginx_start "$w/nginx"
measure nginx "$NGINX_URL"
R[rss,nginx]=$(nginx_rss)
nginx_stop

row() { # label key unit rate|time|size
  local d=${R[$2,davit]} n=${R[$2,nginx]} r
  case $4 in
    rate) r="$(ratio "$d" "$n")x nginx's rate" ;;
    time) r="$(ratio "$d" "$n")x nginx's time" ;;
    *) r="$(ratio "$d" "$n")x nginx's" ;;
  esac
  printf '%-40s %12s %12s   %s\n' "$1" "$d $3" "$n $3" "$r"
}
printf '%-40s %12s %12s   %s\n' "figure (MB = 10^6 B)" davit nginx ratio
row "$BIG MiB PUT, one stream" put MB/s rate
row "$BIG MiB GET, one stream" get MB/s rate
printf '%-40s %12s %12s   %s\n' "$BIG MiB PUT over REST, one stream" "${R[rput,davit]} MB/s" "-" "$(ratio "${R[rput,davit]}" "${R[rdisk,davit]}")x the disk (${R[rdisk,davit]} MB/s just before; ${R[rdiskcold,davit]} the first time)"
if [ "${BENCH_ONLY:-}" != big ]; then
  row "4 KiB PUT x $N, concurrency $C" sput /s rate
  row "4 KiB GET x $N, concurrency $C" sget /s rate
  row "PROPFIND Depth 1, $F files, 4 props" pffour s time
  row "PROPFIND Depth 1, $F files, davfs2's" pfdavfs2 s time
  row "PROPFIND Depth 1, $F files, allprop" pfallprop s time
  row "PROPFIND Depth 1, $F files, Windows'" pfwindows s time
  row "COPY of the $F-file folder" copy s time
  row "DELETE of the $F-file folder" delete s time
fi
row "peak RSS" rss MiB size
echo "disk, dd bs=1M count=1024 conv=fdatasync, the second of two (see tests/bench/lib/peers.sh): ${R[disk,davit]} MB/s before davit's PUT (the first: ${R[diskcold,davit]}), ${R[disk,nginx]} MB/s before nginx's (the first: ${R[diskcold,nginx]})"
echo "davit PUT / disk (same moment): $(ratio "${R[put,davit]}" "${R[disk,davit]}")x; nginx PUT / disk: $(ratio "${R[put,nginx]}" "${R[disk,nginx]}")x"
echo "server CPU of davit's large PUT: ${R[putcpu,davit]} s over WebDAV, ${R[rputcpu,davit]} s over REST; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# What the machine allows at all: its cores busy with nothing but the stages a write cannot
# skip (measured on one core by stage_costs: cutting, copying, keyed hash, sealing), the
# client's own CPU (curl's, measured on this PUT) and the page cache's copy (dd's CPU, which
# writes the same way), into memory just freed (the second dd) or memory the host had taken
# back (the first: see disk_rate). Nothing else the server does is counted, so these are
# upper bounds; which memory the PUT met shows in the server's CPU.
STAGES=$(python3 -c "print(round($S_CUT + $S_COPY + $S_HASH + $S_SEAL, 3))")
echo "stages of a write, CPU ns per byte on one core (stage_costs): cut $S_CUT, copy $S_COPY, keyed hash $S_HASH, seal $S_SEAL: $STAGES (MD5, S3 only: $S_MD5)"
for k in "" r; do
  via=WebDAV; [ "$k" = r ] && via=REST
  for mem in warm cold; do
    key=${k}ddcpu; [ $mem = cold ] && key=${k}ddcoldcpu
    dd_cpu=$(python3 -c "print(round(${R[$key,davit]} * $BIG / 1024, 2))" 2>/dev/null || echo -)
    top=$(ceiling $((BIG * 1048576)) "$STAGES" "${R[${k}clientcpu,davit]}" "$dd_cpu")
    echo "ceiling of a $via PUT on $(nproc) cores, $mem memory: $top MB/s = $(ratio "$top" "${R[${k}disk,davit]}")x the disk (curl ${R[${k}clientcpu,davit]} CPU-s, page cache $dd_cpu CPU-s); davit reached $(ratio "${R[${k}put,davit]}" "$top")x it, the goal (0.5x the disk) is $(ratio "$(python3 -c "print(${R[${k}disk,davit]} / 2)")" "$top")x it"
  done
done
[ "${BENCH_ONLY:-}" = big ] || echo "PROPFIND responses: davit ${R[pfallprop-n,davit]}, nginx ${R[pfallprop-n,nginx]}"
