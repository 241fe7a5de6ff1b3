#!/usr/bin/env bash
# Show that spec/race_spec.lua can fail: each tools/mutants/*.patch breaks one blocking
# protocol the way lost wake-ups come about (a waker that looks for waiters before it
# publishes, a waiter that reads the futex word after its last look, ...).  For each, a
# temporary copy of src/, include/, spec/ and the Makefile gets the patch, its race build is
# made (build/race, as make test makes it), and the race spec runs there: it must fail, in
# one of TRIES runs (default 3).  First the copy without a patch, which must pass.
# Usage (make mutants runs it): tools/race-mutants.sh [PATCH...]
# Environment: BUSTED (default busted --lua=lua5.4), TRIES.
# The last line is "N caught, N missed"; the exit status is 0 only when every mutant was
# caught and the unpatched copy passed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
BUSTED=${BUSTED:-busted --lua=lua5.4}
TRIES=${TRIES:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lt-mutants.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- "$root"/tools/mutants/*.patch

if [ ! -f "$root/lthreading.so" ]; then echo "build the module first (make)"; exit 1; fi
if command -v patch >/dev/null 2>&1; then apply() { patch -s -d "$tmp/w" -p1 <"$1"; }
elif command -v git >/dev/null 2>&1; then apply() { (cd "$tmp/w" && git apply "$1"); }
else echo "needs patch or git to apply the mutants (apt-get install patch)"; exit 1; fi

# A fresh copy in $tmp/w with patch $1 (none when empty) and its race build.  (busted itself
# loads the repository's module, copied there; the spec's child loads the copy's build/race.)
prepare() {
  rm -rf "$tmp/w" && mkdir -p "$tmp/w" &&
  cp -r "$root/src" "$root/include" "$root/spec" "$root/Makefile" "$root/lthreading.so" \
        "$tmp/w/" || return 1
  if [ -n "$1" ]; then apply "$1" || return 1; fi
  make -s -C "$tmp/w" build/race/lthreading.so >"$tmp/build.log" 2>&1
}

# Run the race spec in the copy (./?.so first; $1: keep going after a failure or not): 0
# when it passed.
run_spec() {
  (cd "$tmp/w" && LUA_CPATH="./?.so;;" LUA_CPATH_5_4="./?.so;;" LUA_CPATH_5_5="./?.so;;" \
     $BUSTED "$1" -o TAP spec/race_spec.lua) >"$tmp/out" 2>&1
}

# The first failed check of the last run whose report shows a wait that ran into its bound
# ("... after 4.0 s", "... took 4.0 s", "... timed out"): "check (that line)"; else nothing.
bounded_wait() {
  awk '/^not ok/ { sub(/^not ok [0-9]+ - [^)]*\) /, ""); title = $0; next }
       title != "" && /(after|took) [0-9.]+ s|timed out/ {
         sub(/^# /, ""); sub(/^.*race_spec.lua:[0-9]+: /, ""); sub(/^\(string\) /, "")
         sub(/^\047/, ""); sub(/\047$/, ""); print title " (" $0 ")"; exit }' "$tmp/out"
}

caught=0 missed=0
if ! prepare ""; then
  cat "$tmp/build.log"; echo "the unpatched race build failed"; exit 1
fi
if run_spec --keep-going; then
  if grep -q "# SKIP" "$tmp/out"; then        # (a pending check would pass every mutant)
    grep -m1 "# SKIP" "$tmp/out"
    echo "unpatched: checks pending (run it without ASAN_OPTIONS/TSAN_OPTIONS)"; exit 1
  fi
  echo "unpatched: passes"
else
  grep -E "^not ok|Failure message" "$tmp/out"
  echo "unpatched: FAILS (the spec must pass before a mutant can tell anything)"; exit 1
fi
for p in "$@"; do
  name=$(basename "$p" .patch)
  p=$(cd "$(dirname "$p")" && pwd)/$(basename "$p")
  if ! prepare "$p"; then
    echo "$name: does not apply or build (update the patch to the sources)"
    missed=$((missed + 1)); continue
  fi
  verdict="" other=""
  for i in $(seq 1 "$TRIES"); do
    run_spec --no-keep-going && continue       # (stop at the first failed check)
    # only a wait that ran into its bound counts (not a load error or a crash)
    what=$(bounded_wait)
    if [ -n "$what" ]; then verdict="caught in run $i: $what"; break; fi
    other=$(grep -m1 -E "^not ok|Failure message" "$tmp/out")
  done
  if [ -n "$verdict" ]; then echo "$name: $verdict"; caught=$((caught + 1))
  elif [ -n "$other" ]; then echo "$name: MISSED (the spec failed otherwise: $other)"; missed=$((missed + 1))
  else echo "$name: MISSED (the spec passed $TRIES times)"; missed=$((missed + 1)); fi
done
echo "$caught caught, $missed missed"
[ "$missed" -eq 0 ]
