#!/bin/sh
# run.sh [RUNS] - build the libFuzzer targets (clang, ASan + UBSan, in
# build-fuzz/, or $FUZZ_BUILD) and run each for a fixed number of
# executions past its seed corpus (tests/fuzz/corpus/<target>/; fuzz_conf
# also conf/examples). RUNS scales the counts (default 1: about 2000
# executions for the targets that sign and envelope every input, 20000 for
# the string parsers). New inputs go to a temporary directory, never into
# the tree. Fails (exit 1) on any crash, sanitizer report, leak or
# timeout, and names the input that caused it, and when a seed of the
# reply targets no longer gets past the signature checks; exit 0 otherwise.
# tests/run.sh fuzz (and all) runs it; docs/fuzzing.md says how to fuzz
# for hours.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
scale=${1:-1}
build=${FUZZ_BUILD:-build-fuzz}
# target:runs (the crypto targets run ~500/s under ASan, the others 5k-50k/s)
targets="certrep:2000 getcert:2000 nextca:2000 getcacert:2000 http:2000
caps:20000 conf:20000 p11uri:20000 csr:20000 esc:20000"

if [ ! -f "$build/build.ninja" ]; then
	mkdir -p "$build"
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$build/fuzz-setup.log" 2>&1 ||
		{ cat "$build/fuzz-setup.log"; exit 1; }
fi
exes=
for t in $targets; do exes="$exes tests/fuzz/fuzz_${t%%:*}"; done
# shellcheck disable=SC2086 # a list of targets
ninja -C "$build" $exes >"$build/fuzz-build.log" 2>&1 ||
	{ tail -n 40 "$build/fuzz-build.log"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/scep-agent-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS="suppressions=$top/tests/lib/lsan.supp"

# one target; its result in $work/<t>.rc
run_one() { # name runs
	t=$1 n=$(($2 * scale))
	seeds=tests/fuzz/corpus/$t
	[ "$t" = conf ] && seeds="conf/examples"
	mkdir -p "$work/$t"
	set +e
	# shellcheck disable=SC2086 # seeds may be two words
	"$build/tests/fuzz/fuzz_$t" -runs="$n" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/$t-" \
		"$work/$t" $seeds >"$work/$t.log" 2>&1
	echo $? >"$work/$t.rc"
}

# The seeds must still reach behind the signature checks (what made the
# old CertRep target shallow): each named seed, traced, shows its line.
depth() { # target seed expected-line
	if ! FUZZ_VERBOSE=1 "$build/tests/fuzz/fuzz_$1" "tests/fuzz/corpus/$1/$2" 2>&1 |
		grep -q "^$3"; then
		echo "fuzz_$1: the seed $2 no longer reaches \"$3\"; regenerate the seeds" \
			"(tests/fuzz/make-seeds.sh) or fix the target"
		depth_fail=1
	fi
}
depth_fail=0
depth certrep success "SUCCESS: 0 ok"
depth certrep pending "PENDING: 0 ok"
depth certrep failure "FAILURE: 0 ok"
depth getcert cert-resigned "scep_ca_verify_issued: 0 ok"
depth getcert crl-resigned "scep_ca_verify_crl: 0 ok"
depth nextca bag "scep_next_ca_parse: 0 ok"

start=$(date +%s)
# shellcheck disable=SC2086 # a list of targets
set -- $targets
while [ $# -gt 0 ]; do
	# two at a time (CI has two cores)
	run_one "${1%%:*}" "${1##*:}" &
	p1=$!
	p2=
	if [ $# -gt 1 ]; then
		run_one "${2%%:*}" "${2##*:}" &
		p2=$!
	fi
	wait $p1
	[ -n "$p2" ] && wait $p2
	shift
	[ $# -gt 0 ] && shift
done

fail=0
for t in $targets; do
	t=${t%%:*}
	rc=$(cat "$work/$t.rc")
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
	cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz_$t: ok, ${execs:-?} runs, $cov"
	else
		fail=1
		echo "fuzz_$t: FAILED (exit $rc)"
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$work/$t.log" | head -n 8
		for a in "$work/$t"-*; do
			[ -f "$a" ] || continue
			mkdir -p "$build/fuzz-artifacts"
			cp "$a" "$build/fuzz-artifacts/"
			echo "  input kept as $build/fuzz-artifacts/$(basename "$a")"
		done
	fi
done
echo "fuzz: $(($(date +%s) - start)) s of fuzzing"
[ $depth_fail -eq 0 ] || fail=1
exit $fail
