#!/bin/bash
# server suite: the process that holds keys, PINs and decrypted replies
# cannot leave a core dump and cannot be read by other processes; a stop
# signal (SIGTERM, SIGINT, SIGHUP) ends any wait promptly and cleanly,
# whenever it comes.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

# start_enroll NAME ARGS...: an enrollment in the background; $pid is the
# agent itself (exec; also under valgrind, which runs in place).
start_enroll() {
	_n=$1
	shift
	(exec ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt \
		-k local.key -r local.csr "$@" >"$T_WORK/$_n.out" 2>"$T_WORK/$_n.err") &
	pid=$!
	T_PIDS="$T_PIDS $pid"
}

# wait_for WHAT FILE PATTERN: wait (up to 120 s: valgrind is slow) until
# FILE holds PATTERN.
wait_for() {
	_i=0
	while ! grep -q -e "$3" "$2" 2>/dev/null && [ $_i -lt 1200 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	grep -q -e "$3" "$2" 2>/dev/null || t_fail "$1: never saw \"$3\" in $(basename "$2")"
}

# stop_and_wait PID: sets rc to PID's exit code once it has ended; a process
# still running 60 s after the signal lost it: KILL, and say so (rc 137).
# (Not in $(...): only this shell can wait for its child.)
stop_and_wait() {
	_i=0
	while [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null &&
		[ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if [ $_i -ge 600 ]; then
		diag "pid $1 still running 60 s after the signal; killing it"
		kill -KILL "$1" 2>/dev/null
	fi
	rc=0
	wait "$1" || rc=$?
}

mkkey local.key
mkcsr local.key local.csr "/CN=hardening.example"
ca_start -pending 100
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# 1. in the poll wait (-t 60 polls)
start_enroll wait -l wait.crt -t 60
wait_for "poll wait" "$T_WORK/wait.err" 'polling again in'
limits=$(grep 'Max core file size' "/proc/$pid/limits")
t_like "$limits" 'size +0 +0 ' "core file size limit is 0 (soft and hard)"
t_is "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status")" S "the agent is waiting between polls"
kill -TERM "$pid"
stop_and_wait "$pid"
t_is "$rc" 3 "SIGTERM during the poll wait: exit 3 (pending)"
t_grep 'stopped by SIGTERM' "$T_WORK/wait.err" "names the signal"
t_grep '-R' "$T_WORK/wait.err" "says how to resume"
t_no_file wait.crt "no certificate written"
ca_stop

# 2. inside an HTTP transfer: the CA holds its reply back for 10 minutes.
# The signal comes while the reply is awaited, before the poll wait: it
# must neither be lost (the CI hang: the agent went on to sleep and poll)
# nor wait for the server.
ca_start -delay 600
start_enroll xfer -l xfer.crt -t 60
wait_for "transfer" "$CA_LOG" '"delay":'
kill -TERM "$pid"
stop_and_wait "$pid"
t_is "$rc" 143 "SIGTERM during the transfer: exit 128+15 at once, not after the server's delay"
t_grep 'PKIOperation request to .* stopped by SIGTERM' "$T_WORK/xfer.err" "says which request the signal stopped"
t_grep 'may have reached the CA.*-R' "$T_WORK/xfer.err" "and that -R resumes"
t_no_file xfer.crt "no certificate written"

# 3. started with SIGHUP ignored (nohup, some service managers): the agent
# keeps it ignored, as programs should; SIGTERM still stops it
n=$(grep -c '"delay":' "$CA_LOG") # before the agent starts: it may be quick
(trap '' HUP; exec ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt \
	-k local.key -r local.csr -l hup.crt -t 60 >"$T_WORK/hup.out" 2>"$T_WORK/hup.err") &
pid=$!
T_PIDS="$T_PIDS $pid"
i=0
while [ "$(grep -c '"delay":' "$CA_LOG")" -le "$n" ] && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -HUP "$pid"
sleep 1
t_is "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status")" S "an ignored SIGHUP stays ignored: still waiting for the reply"
kill -TERM "$pid"
stop_and_wait "$pid"
t_is "$rc" 143 "SIGTERM stops it"
t_no_file hup.crt "no certificate written"
ca_stop

# 4. Ctrl-C at the challenge password prompt: exit 130, nothing written
#    (it used to be swallowed, leaving the prompt waiting)
pty_interrupt int.log 'challenge' mkrequest -k new.key --key-type rsa:2048 \
	--subject /CN=int --challenge-prompt -r int.csr
t_is "$PTY_RC" 130 "SIGINT at the challenge prompt: exit 130"
t_grep 'stopped by SIGINT' int.log "says the entry was stopped"
t_no_file int.csr "no request written"

done_testing
