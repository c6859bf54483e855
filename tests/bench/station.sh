#!/bin/bash
# Benchmark (issue 13): slow cards side by side, and the station's memory.
#
# `scep-agent provision` (default --jobs: one worker per token) over 1, 4
# and 16 SoftHSM2 tokens behind tests/p11shim with a smart card's delays
# (P11SHIM_DELAY, default C_GenerateKeyPair:5000,C_Sign:300,C_Decrypt:300),
# against the test CA on loopback. Each size REPS times (default 3),
# interleaved (1, 4, 16, 1, 4, 16, ...), each run on fresh tokens (a token
# dir per run, made before any timing), so every run generates its keys.
# Prints the wall time of each run, the median and spread per size, and the
# ratios 4/1 and 16/1 (target 16/1 <= 1.5) with their spread over the
# repetitions (each rep's own ratio). Then the calls a token costs (one
# run with P11SHIM_TRACE, no delays), and peak RSS: an untimed 16-token
# run sampled every 20 ms (largest process, sum of every process's peak,
# largest total at one moment), one 1-token run, and one one-shot
# `scep-agent enroll` of a SoftHSM2 key (/usr/bin/time).
#
# Usage: station.sh [--smoke] [REPS]
#   --smoke: sizes 1 and 2, one rep, delays 100/10/10 ms, no serial loop: what CI runs (meson
#   test station_smoke, suite bench). It asserts only that every run enrolled
#   every token and that the figures were printed; no timed assertion.
# By hand: SCEP_AGENT=build/agent/scep-agent SCEPCA=build/tests/servers/scepca \
#   P11SHIM=build/tests/p11shim/p11shim.so bash tests/bench/station.sh 3
# or `meson test -C build --benchmark station`.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"
. "$SRCDIR/tests/bench/station_lib.sh"

smoke=0
if [ "${1:-}" = --smoke ]; then
	smoke=1
	shift
fi
reps=${1:-3}
sizes="1 4 16"
delay=${BENCH_DELAY:-C_GenerateKeyPair:5000,C_Sign:300,C_Decrypt:300}
if [ $smoke = 1 ]; then
	reps=1
	sizes="1 2"
	delay=C_GenerateKeyPair:100,C_Sign:10,C_Decrypt:10
fi
big=${sizes##* }
sloop=4 # cards in the serial one-shot loop (today's way)
[ $smoke = 1 ] && sloop=0 # CI: left out

ca_start -timing -allowrenew 0
sa getca -u "$CA_URL" -c ca.crt >/dev/null 2>&1 || { echo "bench: getca failed" >&2; exit 1; }
secret_file pin "$T_PIN"
PROVISION_ARGS="--key-type rsa:2048 --subject /CN=bench-{token_serial}/O=station"

# check_run LOG REPORT N: the run enrolled all N tokens (exit 0, N "ok")
check_run() {
	_ok=$(python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
print(sum(1 for t in r if t.get("state") == "ok"))' "$2" 2>/dev/null)
	if [ "$PROV_RC" != 0 ] || [ "${_ok:-0}" != "$3" ]; then
		echo "bench: provision of $3 token(s): exit $PROV_RC, ${_ok:-0} ok; its output:" >&2
		tail -n 30 "$1" >&2
		exit 1
	fi
}

echo "station benchmark: $(nproc) cores (load average $(cut -d" " -f1-3 /proc/loadavg)), delays $delay, sizes $sizes, $reps rep(s)"
echo "making the tokens (untimed), on $(bench_tokfs)..."
for r in $(seq "$reps"); do
	for n in $sizes; do
		tokens_new "r${r}n$n" "$n"
	done
done
tokens_new trace 1
[ "$sloop" -gt 0 ] && tokens_new serial "$sloop"
tokens_new rss "$big"
tokens_new rss1 1

# which calls a token costs: one token, no delays, traced
rm -f "$T_WORK/trace"
TOK_CONF=$BENCH_TD/tok-trace/softhsm2.conf
P11SHIM_TRACE=$T_WORK/trace provision trace.log --report trace.json
check_run trace.log trace.json 1
echo "PKCS#11 calls of a 1-token run (all processes): $(wc -l <"$T_WORK/trace") in all"
for f in C_GenerateKeyPair C_Sign C_Decrypt C_Login C_Initialize; do
	printf '  %-18s %s\n' "$f" "$(awk -v f=$f '$2 == f' "$T_WORK/trace" | wc -l)"
done
floor=$(echo "$delay" | tr ',' '\n' | while IFS=: read -r f ms; do
	printf '%s %s\n' "$(awk -v f="$f" '$2 == f' "$T_WORK/trace" | wc -l)" "$ms"
done | awk '{ s += $1 * $2 } END { print s / 1000 }')
echo "  delays alone make one token at least $floor s"

# the timed runs, interleaved
declare -A wall
for r in $(seq "$reps"); do
	for n in $sizes; do
		TOK_CONF=$BENCH_TD/tok-r${r}n$n/softhsm2.conf
		P11SHIM_DELAY=$delay provision "run-r$r-n$n.log" --report "r$r-n$n.json"
		check_run "run-r$r-n$n.log" "r$r-n$n.json" "$n"
		wall[$r,$n]=$PROV_MS
		printf 'rep %d, %2d token(s): %6.2f s   CPU %5.2f s   per token %s   load %s\n' "$r" "$n" \
			"$(echo "$PROV_MS" | awk '{ print $1 / 1000 }')" "$PROV_CPU" "$(report_secs "r$r-n$n.json")" \
			"$(cut -d' ' -f1 /proc/loadavg)"
	done
done

echo "wall time per size (s, over $reps rep(s)):"
for n in $sizes; do
	v=
	for r in $(seq "$reps"); do v="$v $(echo "${wall[$r,$n]}" | awk '{ printf "%.2f", $1 / 1000 }')"; done
	# shellcheck disable=SC2086
	printf '  %2d token(s): %s\n' "$n" "$(stats $v)"
done
for n in $sizes; do
	[ "$n" = 1 ] && continue
	v=
	for r in $(seq "$reps"); do
		v="$v $(awk -v a="${wall[$r,$n]}" -v b="${wall[$r,1]}" 'BEGIN { printf "%.3f", a / b }')"
	done
	# shellcheck disable=SC2086
	printf 'ratio %d/1: %s%s\n' "$n" "$(stats $v)" "$([ "$n" = 16 ] && echo '   target <= 1.5')"
done

if [ "$sloop" -gt 0 ]; then
	# today's way, for comparison: one one-shot enroll per card in a shell
	# loop (as operators run sscep), same delays, $sloop cards
	export SOFTHSM2_CONF=$BENCH_TD/tok-serial/softhsm2.conf
	t0=$(ms_now)
	for l in $(seq -f "serial-%02g" 1 "$sloop"); do
		P11SHIM_MODULE=$SOFTHSM P11SHIM_DELAY=$delay "$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt \
			--module "$BENCH_SHIM" --pin-file pin --new-key "pkcs11:token=$l;object=k" \
			--key-type rsa:2048 --subject "/CN=bench-$l/O=station" -r "$l.csr" -l "$l.crt" >"$l.log" 2>&1 ||
			{ echo "bench: one-shot enroll of $l failed:" >&2; cat "$l.log" >&2; exit 1; }
	done
	loop_ms=$(($(ms_now) - t0))
	unset SOFTHSM2_CONF
	printf 'serial loop of one-shot enrolls, %d cards: %.2f s, %.2f s per card (16 cards: about %.0f s)\n' \
		"$sloop" "$(awk -v m="$loop_ms" 'BEGIN { print m / 1000 }')" \
		"$(awk -v m="$loop_ms" -v n="$sloop" 'BEGIN { print m / n / 1000 }')" \
		"$(awk -v m="$loop_ms" -v n="$sloop" 'BEGIN { print 16 * m / n / 1000 }')"
fi

# memory: an untimed run of the largest size, sampled; then one token
TOK_CONF=$BENCH_TD/tok-rss/softhsm2.conf
BENCH_RSS=1 P11SHIM_DELAY=$delay provision rss.log --report rss.json
check_run rss.log rss.json "$big"
printf 'peak RSS, %d-token provision: largest process %s, sum of the %d processes'"'"' peaks %s, largest total at one moment %s\n' \
	"$big" "$(mb "$RSS_MAX_KB")" "$RSS_PROCS" "$(mb "$RSS_SUM_KB")" "$(mb "$RSS_NOW_KB")"
TOK_CONF=$BENCH_TD/tok-rss1/softhsm2.conf
BENCH_RSS=1 provision rss1.log --report rss1.json
check_run rss1.log rss1.json 1
printf 'peak RSS, 1-token provision: largest process %s, sum of the %d processes'"'"' peaks %s\n' \
	"$(mb "$RSS_MAX_KB")" "$RSS_PROCS" "$(mb "$RSS_SUM_KB")"

# one one-shot enrollment of a SoftHSM2 key (the key made beforehand)
SOFTHSM2_CONF=$BENCH_TD/tok-rss1/softhsm2.conf
export SOFTHSM2_CONF
sa mkrequest --module "$SOFTHSM" --pin-file pin --new-key "pkcs11:token=rss1-01;object=one" \
	--key-type rsa:2048 --subject "/CN=bench-one" -r one.csr >/dev/null 2>&1 ||
	{ echo "bench: mkrequest failed" >&2; exit 1; }
/usr/bin/time -f '%e %M' -o "$T_WORK/one.time" "$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt \
	--module "$SOFTHSM" --pin-file pin -k "pkcs11:token=rss1-01;object=one" -r one.csr \
	-l one.crt >one.log 2>&1 || { echo "bench: one-shot enroll failed:" >&2; cat one.log >&2; exit 1; }
read -r one_s one_kb <"$T_WORK/one.time"
printf 'peak RSS, one-shot enroll (SoftHSM2 key): %s, wall %s s\n' "$(mb "$one_kb")" "$one_s"
echo "station benchmark: done (load average at the end: $(cut -d" " -f1-3 /proc/loadavg))"
