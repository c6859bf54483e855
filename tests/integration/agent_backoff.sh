#!/bin/bash
# agent suite (issue 12): a failing CA and the backoff. Against a CA that
# answers FAILURE badRequest to everything: `check` exits 1; the state
# (status --json: state "failed", last_error with the CA's words,
# next_check) persists between runs; a `check` within the backoff exits 1
# without contacting the CA; each failed attempt after it pushes the next
# try further (exponential from RetryMin, up to RetryMax); the state file
# records the failures. A CA whose GetCACaps answers 503 fails the same way. Once the
# CA is healthy and the backoff over, `check` enrolls and the failure
# record is cleared.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_new t1
ca_start -challenge "$T_CHAL" -fail badRequest -fail-text "enrollment closed for maintenance"
# the backoff must outlast a check's start (seconds under valgrind)
RMIN=4 RMAX=8
agent_slow && RMIN=20 RMAX=40
agent_profile b1 t1 RetryMin=$RMIN RetryMax=$RMAX
P=$AG_PROFILE
S=$AG_STORE
ST=$AG_STATE

# gap: the backoff the last attempt got: the state's next_try (state.h)
# minus the time the state file was written (right after the attempt),
# once status's next_check is next_try
sv() { sed -n "s/^$1=//p" "$ST/b1.state"; }
gap() {
	agent_status "$P"
	[ "$(date -u -d "$(st next_check)" +%s)" = "$(sv next_try)" ] ||
		diag "status next_check $(st next_check) is not the state's next_try $(sv next_try)"
	echo $(($(sv next_try) - $(stat -c %Y "$ST/b1.state")))
}
# wait_due: sleep until status's next_check has passed
wait_due() {
	local g
	g=$(($(sv next_try) - $(date +%s)))
	[ "$g" -ge 0 ] && sleep $((g + 1))
	return 0
}

# --- first failure ----------------------------------------------------------
t_expect_exit 1 sa check "$P"
t_grep 'badRequest|maintenance' "$T_ERR" "check says what the CA answered"
agent_status "$P"
t_is "$?" 1 "status exits 1 for a failed profile"
t_is "$(st state)" failed "status --json: state failed"
t_like "$(st last_error)" 'badRequest|maintenance' "status --json: last_error has the CA's answer"
g1=$(gap)
t_between "$g1" $RMIN $((RMIN + 1)) "the first backoff is about RetryMin ($RMIN s): $g1 s"
t_grep '^failures *= *1$' "$ST/b1.state" "the state file records one failure"

# --- within the backoff: no contact --------------------------------------------
lines=$(ca_lines)
t_expect_exit 1 sa check "$P"
t_is "$(ca_lines)" "$lines" "check within the backoff: the CA is not contacted"
t_grep 'backoff|retry|until|after' "$T_ERR" "check within the backoff says when it will try"

# --- it grows ---------------------------------------------------------------
wait_due
lines=$(ca_lines)
t_expect_exit 1 sa check "$P"
t_ok "past the backoff the CA is asked again" test "$(ca_lines)" -gt "$lines"
g2=$(gap)
t_ok "the backoff grows ($g1 s -> $g2 s)" test "$g2" -gt "$g1"
t_grep '^failures *= *2$' "$ST/b1.state" "the state file records two failures"
lines=$(ca_lines)
t_expect_exit 1 sa check "$P"
t_is "$(ca_lines)" "$lines" "within the second backoff: no contact either"
wait_due
t_expect_exit 1 sa check "$P"
g3=$(gap)
t_between "$g3" "$g2" $((RMAX + 1)) "and stops growing at RetryMax, $RMAX s ($g2 s -> $g3 s)"
agent_status "$P"
t_like "$(st last_error)" 'badRequest|maintenance' "last_error persists across runs"

# --- an outage (GetCACaps 503) fails the same way --------------------------------
ca_restart -challenge "$T_CHAL" -caps-status 503
wait_due
t_expect_exit 1 sa check "$P"
t_grep '503' "$T_ERR" "a CA outage: the message names the HTTP status"
agent_status "$P"
t_like "$(st last_error)" '503' "status --json: last_error names the outage"
t_grep '^failures *= *4$' "$ST/b1.state" "the outage counts as a failure too"

# --- healthy again ------------------------------------------------------------
ca_restart -challenge "$T_CHAL"
wait_due
t_expect_exit 0 sa check "$P"
t_ok "enrolled once the CA is healthy" cert_valid "$S/latest.crt"
agent_status "$P"
t_is "$(st state):$(st last_error)" "ok:null" "status: ok, no last_error"
t_ok "the failures are cleared in the state file" sh -c "! grep -Eq '^failures *= *[1-9]' '$ST/b1.state'"
lines=$(ca_lines)
t_expect_exit 0 sa check "$P"
t_is "$(ca_lines)" "$lines" "and the next check has nothing to do"

done_testing
