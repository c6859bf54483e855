#!/bin/bash
# agent suite (issue 12): pending approval across a daemon's death. The CA
# answers PENDING to the request and the first polls (-pending); `run`
# (PollInterval 1) polls, is killed with SIGKILL mid-wait (it and its job
# child: its process group, as systemd stops a unit), and started again:
# it resumes the same transaction and completes it. At the CA: ONE
# PKCSReq, then CertPolls, all under that request's transactionID. And
# `check` on a pending profile exits 3, sending nothing before PollInterval.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 setsid
softhsm_new t1
# polls before SUCCESS: enough for the first daemon to be killed mid-wait
# (each poll about a second apart), few enough to finish soon after
ca_start -challenge "$T_CHAL" -pending 5
agent_profile p1 t1 PollInterval=1 MaxPollTime=600
P=$AG_PROFILE
S=$AG_STORE

pkiops() { grep -c '"op":"PKIOperation"' "$CA_LOG"; }
polls() { grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"msgType":20'; }
has_polled() { [ "$(polls)" -ge 1 ]; }
# the state file says pending (the CA's PENDING recorded; a job polling
# may be running: it keeps that record); the binary unwrapped, to poll fast
recorded_pending() {
	"$SCEP_AGENT" status --json "$P" 2>/dev/null | python3 -c \
		'import json, sys; sys.exit(json.load(sys.stdin)[0]["state"] != "pending")'
}

# --- the daemon enrolls, is killed mid-wait, resumes ------------------------
agent_run run1.log "$P"
t_ok "the daemon sends the request and polls" wait_for 60 has_polled
# a poll seen at the CA may still be in the job that sent the request
# (under valgrind the parent records PENDING seconds later): kill once
# the state holds it
t_ok "the daemon records the transaction as pending" wait_for 60 recorded_pending
tid=$(ca_log_field 1 tid)
t_is "$(ca_log_field 1 msgType):$(ca_log_field 1 status)" "19:PENDING" "the CA got a PKCSReq and answered PENDING"
agent_kill9
agent_status "$P"
t_is "$(st state)" pending "killed mid-wait: status --json says pending"
t_ok "the first daemon is gone (SIGKILL to its group)" sh -c "! kill -0 $AG_PID 2>/dev/null"
t_no_file "$S/latest.crt" "killed mid-wait: no certificate yet"
n1=$(polls)
t_ok "killed before the CA's last PENDING" test "$n1" -lt 5

agent_run run2.log "$P"
t_ok "the restarted daemon completes the enrollment" wait_for 60 test -e "$S/latest.crt"
t_ok "the certificate verifies under the CA" wait_for 5 ca_verify "$CA_CERT" "$S/latest.crt"
sleep 1
kill -TERM "$AG_PID"
wait "$AG_PID"
t_is "$?" 0 "SIGTERM: the daemon exits 0"

t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"msgType":19')" 1 "the CA saw ONE PKCSReq"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | sed -n 's/.*"tid":"\([^"]*\)".*/\1/p' | sort -u)" "$tid" \
	"every request and poll under the one transactionID"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | tail -n 1 | grep -c '"msgType":20.*"status":"SUCCESS"')" 1 \
	"the last poll got SUCCESS"
t_ok "polls by both daemons" test "$(polls)" -gt "$n1"
t_like "$(p11_key_for_cert t1 "$S/latest.crt")" '^[0-9a-f]+$' "the certificate's key is in the token"
t_is "$(p11_ids t1 privkey | wc -l)" 1 "one key in the token: the transaction's"
agent_status "$P"
t_is "$(st state):$(st serial)" "ok:$(serial_hex "$S/latest.crt")" "status: ok, the new serial"
cat run1.log run2.log >>"$T_CANARY"

# --- check: exit 3 while pending; nothing sent before PollInterval --------
agent_profile p2 t1 "NewKey=pkcs11:token=t1;object=p2" PollInterval=300
t_expect_exit 3 sa check "$AG_PROFILE"
t_grep 'has not decided yet' "$T_ERR" "check: the CA's PENDING said"
n=$(pkiops)
t_expect_exit 3 sa check "$AG_PROFILE"
t_is "$(pkiops)" "$n" "check again before PollInterval: still pending (3), nothing sent"
agent_status "$AG_PROFILE"
t_is "$(st state)" pending "status: pending"

done_testing
