# shellcheck shell=bash
# Shared by the conformance suites: count checks and report them in one closing line.
# Source it, run `check NAME cmd…` (and `skip NAME REASON` where a part cannot run here),
# then end with `summary SUITE`, which prints "SUITE: N passed, M failed, K skipped" and
# fails when anything failed. Also what several suites use: `quiet cmd…` (a client's
# output only when it fails), `make_tree DIR` (the awkward 200-file test tree),
# `local_listing DIR` (what a listing of it must show) and `urlpath PATH` (percent-encoded).

pass=0
fail=0
skipped=0
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok   $name"; return 0; fi
  fail=$((fail + 1)); echo "FAIL $name"; return 1
}
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
say() { sed 's/^/     /'; } # indent details under the check they belong to
not() { ! "$@"; }
summary() {
  echo "$1: $pass passed, $fail failed, $skipped skipped"
  [ "$fail" -eq 0 ]
}

# Run a client quietly; on failure show the end of what it said.
quiet() {
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" -eq 0 ] || { tail -n 8 <<<"$out" | cut -c1-400 | say; echo "     (exit $rc)"; }
  return "$rc"
}

# 200 small files under DIR/tree (d00 to d09, with the names clients stumble on), each
# with its own modification time, so that times cannot match by chance.
make_tree() { # DIR
  local dir=$1 d f i=0 t0=1614834367
  for d in $(seq 0 9); do
    mkdir -p "$dir/tree/d0$d"
    for f in $(seq -w 0 19); do
      head -c $((i * 37 % 4096)) /dev/urandom >"$dir/tree/d0$d/f$f.txt"
      i=$((i + 1))
    done
  done
  mv "$dir/tree/d09/f19.txt" "$dir/tree/d09/name with spaces.txt"
  mv "$dir/tree/d09/f18.txt" "$dir/tree/d09/ünïcødé ✓.txt"
  mv "$dir/tree/d09/f17.txt" "$dir/tree/d09/100% & a+b=c.txt"
  mv "$dir/tree/d09/f16.txt" "$dir/tree/d09/brackets [1] (2) {3} #4.txt"
  i=0
  while IFS= read -r -d '' f; do touch -d "@$((t0 + i * 61))" "$f"; i=$((i + 1)); done \
    < <(find "$dir/tree" -type f -print0 | LC_ALL=C sort -z)
}

# "key<TAB>size" of every file under a local folder, sorted: what a listing must show.
local_listing() { (cd "$1" && find . -type f -printf "${2:-}%P\t%s\n" | LC_ALL=C sort); } # dir [key prefix]

# A path percent-encoded for a URL ("/" kept).
urlpath() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
