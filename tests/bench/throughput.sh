#!/bin/bash
# Benchmark (issue 13): throughput of the station on pre-made keys.
#
# N SoftHSM2 tokens (default 100), each with an RSA-2048 key pair made
# before any timing; one `scep-agent provision --use-key --jobs J` (default
# 2: the machine's 2 cores) enrolls them all against the test CA on
# loopback, in one run, through tests/p11shim (no delays) so that every
# PKCS#11 call is timed (P11SHIM_TIMES). Target: N=100 in at most 1 s of
# wall time. Prints the wall time and where it went:
#   - token: time inside the real module (SoftHSM2), every call of every
#     process, from P11SHIM_TIMES (per function: calls, total, max);
#   - server: the test CA's own time per request (scepca -timing: `us`, in
#     the handler; `wait_us`, queued behind its lock: it handles one
#     request at a time), and its CPU time (/proc/PID/stat);
#   - network: loopback HTTP cost per request measured in the same run
#     (curl, keep-alive, 4 KB POSTs like a PKIOperation to the same CA:
#     curl's time per request less the CA's `us`) times the requests made;
#   - ours: the rest of the workers' time (J x wall, less the above): our
#     crypto (CSR and pkiMessage build, CertRep verify and decrypt on the
#     host side), process and module start-up, scheduling, and idle time;
# and the CPU time of scep-agent and all its processes (bash `times`).
# Each part is a sum over the J workers' timelines, next to J x wall.
#
# Usage: throughput.sh [--smoke] [N [J]]
#   --smoke: N=4: what CI runs (meson test throughput_smoke, suite bench).
#   It asserts only that every token was enrolled and the figures printed;
#   no timed assertion.
# By hand: SCEP_AGENT=build/agent/scep-agent SCEPCA=build/tests/servers/scepca \
#   P11SHIM=build/tests/p11shim/p11shim.so bash tests/bench/throughput.sh 100 2
# or `meson test -C build --benchmark throughput`.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"
. "$SRCDIR/tests/bench/station_lib.sh"

smoke=0
if [ "${1:-}" = --smoke ]; then
	smoke=1
	shift
fi
n=${1:-100}
jobs=${2:-2}
[ $smoke = 1 ] && n=4
klabel=bench

ca_start -timing -allowrenew 0
sa getca -u "$CA_URL" -c ca.crt >/dev/null 2>&1 || { echo "bench: getca failed" >&2; exit 1; }
secret_file pin "$T_PIN"
echo "throughput benchmark: $(nproc) cores (load average $(cut -d" " -f1-3 /proc/loadavg)), $n tokens with pre-made keys, --jobs $jobs"
echo "making the tokens and keys (untimed), on $(bench_tokfs)..."
tokens_new tp "$n" "$klabel"

# the loopback HTTP cost per request, against the same CA (keep-alive,
# one curl process, 4 KB bodies: a PKIOperation's size; the CA answers 500)
head -c 4096 /dev/urandom >junk
calib=50
urls=()
for _ in $(seq "$calib"); do urls+=(-o /dev/null "$CA_URL?operation=PKIOperation"); done
l0=$(wc -l <"$CA_LOG")
curl -s -w '%{time_total}\n' -H 'Content-Type: application/x-pki-message' \
	--data-binary @junk "${urls[@]}" >curl.times || { echo "bench: curl calibration failed" >&2; exit 1; }
# medians (the first request also connects: the workers keep theirs)
curl_us=$(awk '{ print $1 * 1e6 }' curl.times | sort -n | awk '{ a[NR] = $1 } END { printf "%d", a[int((NR + 1) / 2)] }')
ca_us=$(tail -n +"$((l0 + 1))" "$CA_LOG" | sed -n 's/.*"us":\([0-9]*\).*/\1/p' | sort -n |
	awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] + 0 }')
net_req_us=$((curl_us - ca_us))
echo "loopback HTTP per request (curl, keep-alive, 4 KB POST, median less the CA's median): $net_req_us us"

# the timed run
l0=$(wc -l <"$CA_LOG")
ca_cpu0=$(awk '{ print $14 + $15 }' /proc/"$CA_PID"/stat)
rm -f "$T_WORK/shim.times"
TOK_CONF=$BENCH_TD/tok-tp/softhsm2.conf
P11SHIM_TIMES=$T_WORK/shim.times provision tp.log --use-key --key-label "$klabel" \
	--jobs "$jobs" --subject "/CN=tp-{token_serial}/O=throughput" --report tp.json
ca_cpu1=$(awk '{ print $14 + $15 }' /proc/"$CA_PID"/stat)
ok=$(python3 -c 'import json,sys
print(sum(1 for t in json.load(open(sys.argv[1])) if t.get("state") == "ok"))' tp.json 2>/dev/null)
if [ "$PROV_RC" != 0 ] || [ "${ok:-0}" != "$n" ]; then
	echo "bench: provision: exit $PROV_RC, ${ok:-0} of $n ok; its output:" >&2
	tail -n 30 tp.log >&2
	exit 1
fi
[ -s "$T_WORK/shim.times" ] || { echo "bench: no P11SHIM_TIMES output" >&2; exit 1; }

# figures (all in microseconds below)
wall_us=$((PROV_MS * 1000))
tail -n +"$((l0 + 1))" "$CA_LOG" >run.calog
reqs=$(wc -l <run.calog)
srv_us=$(sed -n 's/.*"us":\([0-9]*\).*/\1/p' run.calog | awk '{ s += $1 } END { print s + 0 }')
wait_us=$(sed -n 's/.*"wait_us":\([0-9]*\).*/\1/p' run.calog | awk '{ s += $1 } END { print s + 0 }')
ops=$(sed -n 's/.*"op":"\([A-Za-z]*\)".*/\1/p' run.calog | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')
tok_us=$(shim_total_us "$T_WORK/shim.times")
net_us=$((net_req_us * reqs))
cpu_s=$PROV_CPU
ca_cpu_s=$(awk -v a="$ca_cpu0" -v b="$ca_cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
budget=$((wall_us * jobs))
ours=$((budget - tok_us - srv_us - wait_us - net_us))
pct() { awk -v a="$1" -v b="$budget" 'BEGIN { printf "%5.1f%%", 100 * a / b }'; }
sec() { awk -v a="$1" 'BEGIN { printf "%6.3f s", a / 1e6 }'; }

printf '%d enrollments, --jobs %d: wall %.3f s (%.1f ms per token; target: 100 in <= 1 s)\n' \
	"$n" "$jobs" "$(awk -v w="$wall_us" 'BEGIN { print w / 1e6 }')" "$(awk -v w="$wall_us" -v n="$n" 'BEGIN { print w / n / 1000 }')"
echo "HTTP requests: $reqs (${ops%, })"
printf 'split of %d workers x wall = %s:\n' "$jobs" "$(sec "$budget")"
printf '  token operations (SoftHSM2)    %s  %s\n' "$(sec "$tok_us")" "$(pct "$tok_us")"
printf '  server (CA handler)            %s  %s\n' "$(sec "$srv_us")" "$(pct "$srv_us")"
printf '  server queue (CA lock wait)    %s  %s\n' "$(sec "$wait_us")" "$(pct "$wait_us")"
printf '  network (loopback, estimated)  %s  %s\n' "$(sec "$net_us")" "$(pct "$net_us")"
printf '  ours (crypto, start-up, idle)  %s  %s\n' "$(sec "$ours")" "$(pct "$ours")"
echo "token calls (function, calls, total, max; all processes):"
shim_times "$T_WORK/shim.times" | head -n 8 | awk '{ printf "  %-20s %5d  %8.3f s  %7.1f ms\n", $1, $2, $3 / 1e6, $4 / 1e3 }'
printf 'CPU: scep-agent and its processes %s s, the CA %s s, on %d cores x %.3f s wall\n' \
	"$cpu_s" "$ca_cpu_s" "$(nproc)" "$(awk -v w="$wall_us" 'BEGIN { print w / 1e6 }')"
secs=$(report_secs tp.json)
echo "per token (report seconds): $secs"

# today's way, for comparison: one one-shot enroll process per token
# (pre-made key, the CSR built by enroll), $jobs at a time, over the
# first min(N, 20) tokens
m=$((n < 20 ? n : 20))
[ $smoke = 1 ] && m=2
export SOFTHSM2_CONF=$TOK_CONF
t0=$(ms_now)
seq -f "tp-%02g" 1 "$m" | xargs -P "$jobs" -I{} sh -c '"$1" enroll -u "$2" -c ca.crt \
	--module "$3" --pin-file pin -k "pkcs11:token=$4;object=$5" --subject "/CN=loop-$4" \
	-r "loop-$4.csr" -l "loop-$4.crt" >"loop-$4.log" 2>&1 || { cat "loop-$4.log" >&2; exit 255; }' \
	sh "$SCEP_AGENT" "$CA_URL" "$SOFTHSM" {} "$klabel" ||
	{ echo "bench: one-shot enroll loop failed" >&2; exit 1; }
loop_ms=$(($(ms_now) - t0))
unset SOFTHSM2_CONF
printf 'one-shot enroll per token, %d at a time, %d tokens: %.3f s, %.1f ms per token (%d tokens: about %.2f s)\n' \
	"$jobs" "$m" "$(awk -v a="$loop_ms" 'BEGIN { print a / 1000 }')" "$(awk -v a="$loop_ms" -v m="$m" 'BEGIN { print a / m }')" \
	"$n" "$(awk -v a="$loop_ms" -v m="$m" -v n="$n" 'BEGIN { print a / m * n / 1000 }')"
echo "throughput benchmark: done (load average at the end: $(cut -d" " -f1-3 /proc/loadavg))"
