#!/bin/sh
# Run all of scep-agent's tests: installs missing Debian packages, builds,
# runs every meson suite (unit, softhsm, server, ...).
#
#   tests/run.sh            plain build (build/), all suites
#   tests/run.sh asan       AddressSanitizer + UBSan build (build-asan/)
#   tests/run.sh valgrind   every C test program and every scep-agent run
#                           under valgrind (build/)
#   tests/run.sh fuzz       every libFuzzer target for a short fixed number of
#                           runs (tests/fuzz/run.sh: clang, build-fuzz/); one test
#   tests/run.sh all        the three above and fuzz, one after another (what CI runs)
#
# Extra arguments after the mode go to `meson test` (e.g. --suite unit).
# Ends with a line "N passed, N failed, N skipped"; exit status non-zero
# when any test failed, or was skipped (no test may skip on a full install).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-plain}
[ $# -gt 0 ] && shift

sh tests/lib/deps.sh test

setup() { # builddir [meson options...]
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	meson compile -C "$dir" >/dev/null || meson compile -C "$dir"
}

total_ok=0 total_fail=0 total_skip=0
run() { # builddir label [meson test args...]
	dir=$1 label=$2; shift 2
	log=$dir/run-$label.log
	rm -rf "$dir/canary" # the canary test reads this run's outputs only
	set +e
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" >"$log" 2>&1
	rc=$?
	set -e
	tail -n 12 "$log"
	[ $rc -ne 0 ] && sed -n '/^Summary of Failures/,$p' "$log" | head -60
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	total_ok=$((total_ok + ${ok:-0}))
	total_fail=$((total_fail + ${fail:-0} + ${to:-0}))
	total_skip=$((total_skip + ${skip:-0}))
	if [ $rc -ne 0 ] && [ "${fail:-0}" = 0 ] && [ "${to:-0}" = 0 ]; then
		total_fail=$((total_fail + 1)) # meson itself failed
	fi
	echo "$label: ${ok:-0} ok, ${fail:-0} failed, ${to:-0} timed out, ${skip:-0} skipped (log: $log)"
}

do_plain() {
	setup build
	run build plain "$@"
}
do_asan() {
	setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$top/tests/lib/lsan.supp \
		run build-asan asan "$@"
}
do_valgrind() { # all but suite no-valgrind (see tests/integration/meson.build)
	setup build
	run build valgrind --wrapper "$top/tests/lib/vgwrap.sh" \
		--timeout-multiplier 3 --no-suite no-valgrind "$@"
}

do_fuzz() { # not a meson test: counts as one test in the totals
	if sh tests/fuzz/run.sh; then
		total_ok=$((total_ok + 1))
	else
		total_fail=$((total_fail + 1))
	fi
}

case $mode in
plain) do_plain "$@" ;;
asan) do_asan "$@" ;;
valgrind) do_valgrind "$@" ;;
fuzz) do_fuzz ;;
all) do_plain "$@"; do_asan "$@"; do_valgrind "$@"; do_fuzz ;;
*) echo "usage: tests/run.sh [plain|asan|valgrind|fuzz|all] [meson test args]" >&2; exit 4 ;;
esac

echo "$total_ok passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ] && [ "$total_skip" -eq 0 ]
