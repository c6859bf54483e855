#!/bin/bash
# agent suite (issue 12): the daemon, `scep-agent run DIR`. With no
# profiles it stays up and says so; SIGHUP picks up the profiles added to
# DIR since; one profile failing (its CA refuses, its failure hook fails
# too) does not stop another from enrolling, nor the daemon; idle (every
# profile done, the next deadline far away) it does not wake up: its
# context switches (/proc/PID/task/*/status) do not change over ~3 s; it
# loads no PKCS#11 module itself (the jobs run in children); a SIGHUP
# while a job runs neither stops the daemon nor the job; SIGTERM ends it
# with exit 0.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 setsid
softhsm_new t1
# two CAs side by side: the refusing one, then the good one (the current)
ca_start -challenge "$T_CHAL" -fail badRequest -fail-text "this CA refuses everyone"
BAD_URL=$CA_URL BAD_CERT=$CA_CERT
unset CA_DIR CA_LOG
ca_start -challenge "$T_CHAL"
D=$T_WORK/profiles
mkdir -p "$D"

alive() { kill -0 "$AG_PID" 2>/dev/null; }

# --- no profiles ------------------------------------------------------------------
agent_run run.log "$D"
t_ok "run with an empty profile directory says so" wait_for 30 grep -qi 'no profile' run.log
sleep 1
t_ok "and stays up" alive

# --- SIGHUP: a good profile and a failing one -------------------------------------
agent_profile good t1
G=$AG_PROFILE
GS=$AG_STORE
agent_profile bad t1 "URL=$BAD_URL" "FingerPrint=$(fingerprint "$BAD_CERT")" RetryMin=600 \
	"HookFailure=exit 9"
B=$AG_PROFILE
BS=$AG_STORE
kill -HUP "$AG_PID"
t_ok "SIGHUP: the new profile enrolls" wait_for 60 test -e "$GS/latest.crt"
t_ok "its certificate verifies" wait_for 5 ca_verify "$CA_CERT" "$GS/latest.crt"
bad_failed() { agent_status "$B"; [ "$(st state)" = failed ]; }
t_ok "the failing profile is recorded as failed" wait_for 30 bad_failed
agent_status "$G" "$B"
t_is "$(st state 0):$(st state 1)" "ok:failed" "status --json: good ok, bad failed"
t_like "$(st last_error 1)" 'badRequest|refuses everyone' "the failed profile's last_error"
t_no_file "$BS/latest.crt" "the failing profile has no certificate"
t_ok "the daemon is still up after a failure and a failing hook" alive
t_grep 'bad' run.log "the log names the failing profile"

# --- idle -----------------------------------------------------------------------
# everything done: the good profile's next check is at 75% of a year, the
# bad one's retry 600 s away
sleep 2
c1=$(ctxt "$AG_PID")
sleep 3
c2=$(ctxt "$AG_PID")
t_is "$c2" "$c1" "idle: no context switch over 3 s ($c1)"
t_is "$(grep -c 'libsofthsm2' /proc/"$AG_PID"/maps)" 0 \
	"the scheduling process has no PKCS#11 module loaded"
t_is "$(ls /proc/"$AG_PID"/task | wc -l)" 1 "the scheduling process has one thread"
diag "idle daemon: VmRSS $(sed -n 's/^VmRSS: *//p' /proc/"$AG_PID"/status)"

# --- a profile goes away on SIGHUP ------------------------------------------------------
rm -f "$B"
lines=$(ca_lines)
kill -HUP "$AG_PID"
sleep 2
t_ok "SIGHUP with one profile less: still up" alive
t_is "$(ca_lines)" "$lines" "the reload sends nothing for a profile with nothing due"

# --- SIGHUP while a job runs --------------------------------------------------------
# a third profile against a CA that holds its replies back: the reload
# comes while its job waits for the CA
ca_new
ca_start -challenge "$T_CHAL" -delay 4
agent_profile slow t1
SL=$AG_STORE
kill -HUP "$AG_PID"
t_ok "a job for the new profile starts" wait_for 30 grep -q '"delay"' "$CA_LOG"
kill -HUP "$AG_PID"
sleep 1
t_ok "SIGHUP during a job: the daemon stays up" alive
t_ok "and the job completes" wait_for 30 test -e "$SL/latest.crt"

# --- SIGTERM ------------------------------------------------------------------------
alive || agent_run run-again.log "$D"
sleep 1
kill -TERM "$AG_PID"
rc=0
wait "$AG_PID" || rc=$?
t_is "$rc" 0 "SIGTERM: exit 0"

# --- SIGHUP then SIGTERM while a job runs ----------------------------------------------
agent_profile slow2 t1
agent_run run3.log "$D"
t_ok "a new daemon: a job for slow2 waits for the CA" wait_for 30 sh -c \
	"[ \$(grep -c '\"delay\"' '$CA_LOG') -ge 2 ]"
kill -HUP "$AG_PID"
sleep 0.5
kill -TERM "$AG_PID"
rc=0
wait "$AG_PID" || rc=$?
t_is "$rc" 0 "SIGHUP, then SIGTERM during a job: exit 0"
t_grep 'stopping on SIGTERM' run3.log "the daemon says it stops on SIGTERM"
cat run*.log >>"$T_CANARY"

done_testing
