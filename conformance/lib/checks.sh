# Shared by the conformance suites: count checks and report them in one closing line.
# Source it, run `check NAME cmd…` (and `skip NAME REASON` where a part cannot run here),
# then end with `summary SUITE`, which prints "SUITE: N passed, M failed, K skipped" and
# fails when anything failed.

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
