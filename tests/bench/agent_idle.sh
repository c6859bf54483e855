#!/bin/bash
# Benchmark (issue 12): the agent daemon at rest and one renewal cycle.
# Three SoftHSM2 profiles (one token each) against the test CA; `scep-agent
# run` on their directory until all three are enrolled; then over SECS
# seconds (default 60): the daemon's wake-ups (voluntary and involuntary
# context switches of all its threads, /proc/PID/task/*/status; target 0),
# its RSS and the libraries it has mapped (target 8 MB: the scheduling
# process need not load libcurl or a PKCS#11 module); then one renewal
# (`check --force` of one profile): wall and CPU time (user+system, the
# check and its job child), and its peak RSS. Reports numbers, asserts
# nothing timed. `meson test --benchmark agent_idle`, or by hand:
#   SCEP_AGENT=build/agent/scep-agent SCEPCA=build/tests/servers/scepca \
#       bash tests/bench/agent_idle.sh 60
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"
secs=${1:-60}

ca_start -challenge "$T_CHAL" -allowrenew 0
D=$T_WORK/profiles
mkdir -p "$D"
for i in 1 2 3; do
	softhsm_new "bench$i"
	agent_profile "gw$i" "bench$i"
done
agent_run run.log "$D"
for i in 1 2 3; do
	wait_for 120 test -e "$T_WORK/store/gw$i/latest.crt" ||
		{ echo "agent_idle: gw$i did not enroll:"; tail -20 run.log; exit 1; }
done
sleep 2 # the last job's child reaped, the state written

pid=$AG_PID
c1=$(ctxt "$pid")
v1=$(awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/"$pid"/status)
sleep "$secs"
c2=$(ctxt "$pid")
v2=$(awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/"$pid"/status)
rss=$(sed -n 's/^VmRSS: *//p' /proc/"$pid"/status)
hwm=$(sed -n 's/^VmHWM: *//p' /proc/"$pid"/status)
threads=$(ls /proc/"$pid"/task | wc -l)
libs=$(awk '$6 ~ /\.so/ { n = $6; sub(/.*\//, "", n); print n }' /proc/"$pid"/maps | sort -u)
printf 'idle daemon, 3 profiles, %d s:  %d context switches (%d voluntary, main thread)  target 0\n' \
	"$secs" $((c2 - c1)) $((v2 - v1))
printf 'idle daemon RSS:               %s (peak %s), %d thread(s)   target 8 MB\n' "$rss" "$hwm" "$threads"
printf 'libraries mapped:              %s\n' "$(echo $libs)"
for l in libcurl libsofthsm2 libp11 libp11-kit; do
	printf '  %-12s %s\n' "$l" "$(echo "$libs" | grep -q "^$l\." && echo loaded || echo 'not loaded')"
done

# one renewal cycle: check --force on gw1 while the daemon runs (the
# lock: the daemon is idle, so the check takes it at once)
old=$(serial_hex "$T_WORK/store/gw1/latest.crt")
/usr/bin/time -f '%e %U %S %M' -o "$T_WORK/time" ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" check --force \
	"$D/gw1.conf" >"$T_WORK/check.out" 2>&1 ||
	{ echo "agent_idle: the renewal failed:"; cat "$T_WORK/check.out"; exit 1; }
new=$(serial_hex "$T_WORK/store/gw1/latest.crt")
read -r wall usr sys maxrss <"$T_WORK/time"
printf 'one renewal (check --force):   wall %s s, CPU %s s (user %s, sys %s), peak RSS %.1f MB  %s\n' \
	"$wall" "$(echo "$usr $sys" | awk '{print $1 + $2}')" "$usr" "$sys" \
	"$(echo "$maxrss" | awk '{print $1/1024}')" "$([ "$old" != "$new" ] && echo "($old -> $new)" || echo '(NOT renewed)')"
c3=$(ctxt "$pid")
printf 'the daemon meanwhile:          %d context switches\n' $((c3 - c2))
kill -TERM "$pid"
wait "$pid"
echo "daemon exit status on SIGTERM: $?"
