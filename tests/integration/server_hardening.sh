#!/bin/bash
# server suite: the process that holds keys, PINs and decrypted replies
# cannot leave a core dump and cannot be read by other processes.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=hardening.example"
ca_start -pending 100
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# an enrollment that stays in its poll wait while we look at it
# (exec: $! is the agent itself, also under valgrind, which runs in place)
(exec ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt -k local.key \
	-r local.csr -l local.crt -t 60 >"$T_WORK/enroll.out" 2>"$T_WORK/enroll.err") &
pid=$!
T_PIDS="$T_PIDS $pid"
i=0
while ! grep -q '"msgType":19' "$CA_LOG" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
limits=$(grep 'Max core file size' "/proc/$pid/limits")
t_like "$limits" 'size +0 +0 ' "core file size limit is 0 (soft and hard)"
t_is "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status")" S "the agent is waiting between polls"

# SIGTERM ends the wait cleanly: pending exit code, no certificate
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
t_is "$rc" 3 "SIGTERM during the poll wait: exit 3 (pending)"
t_grep '-R' "$T_WORK/enroll.err" "says how to resume"
t_no_file local.crt "no certificate written"

done_testing
