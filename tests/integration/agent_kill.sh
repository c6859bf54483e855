#!/bin/bash
# agent suite (issue 12): a renewal by `scep-agent check` killed (SIGKILL,
# the test hook SCEP_AGENT_TEST_STOP=STEP, agent/util/sa_step.c, in the
# job child) at each step: key-generated, request-out (before a request's
# bytes leave), request-sent, reply-verified,
# cert-written, cert-stored, key-committed. After each kill: the process
# stopped at that step, `check` says the profile failed (exit 1),
# latest.crt is whole, valid, and matches a private key in the token;
# status --json still names a pair; and the next `check` completes the
# renewal (a new serial, its key in the token, latest.crt switched, no
# staged key left over: KeepOld=1 leaves two keys): one request when the
# killed run sent none, the killed run's transaction again when the CA
# had answered (no new transactionID), nothing new once the certificate
# had arrived. Each step starts from the same enrolled pair (copies of
# the token, StoreDir and StateDir); RenewAt is longer than the lifetime:
# every check renews.
# Under valgrind (SCEP_AGENT_WRAP) a sample: request-sent and cert-stored
# (an RSA key generation in SoftHSM2 takes about 20 s there).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_new t1
ca_start -challenge "$T_CHAL" -allowrenew 0 -valid 3600
agent_profile k1 t1 RenewAt=7200 KeepOld=1
P=$AG_PROFILE
S=$AG_STORE

STEPS="key-generated request-out request-sent reply-verified cert-written cert-stored key-committed"
agent_slow && STEPS="request-sent cert-stored"

# tids_since N: the distinct transactionIDs of the CA's PKIOperations after
# its Nth line
tids_since() {
	tail -n +"$(($1 + 1))" "$CA_LOG" | grep '"op":"PKIOperation"' |
		sed -n 's/.*"tid":"\([^"]*\)".*/\1/p' | sort -u | tr '\n' ' '
}
# pair_ok DESC: latest.crt whole, valid, its key pair in the token
pair_ok() {
	t_ok "$1: latest.crt is a valid certificate" cert_valid "$S/latest.crt"
	t_ok "$1: latest.crt matches a private key in the token" p11_key_for_cert t1 "$S/latest.crt"
}

t_expect_exit 0 sa check "$P"
pair_ok "enrolled"
# each step starts from this enrolled pair: the token, StoreDir, StateDir
ST=$AG_STATE
mkdir base && cp -a tokens "$S" "$ST" base/
restore() {
	rm -rf tokens "$S" "$ST"
	cp -a base/tokens . && cp -a "base/$(basename "$S")" "$S" && cp -a "base/$(basename "$ST")" "$ST"
}

for step in $STEPS; do
	restore
	old=$(serial_hex "$S/latest.crt")
	l0=$(ca_lines)
	SCEP_AGENT_TEST_STOP=$step t_expect_exit 1 sa check "$P"
	t_grep "SCEP_AGENT_TEST_STOP: stopped at step $step\$" "$T_ERR" "$step: the job stopped there (SIGKILL)"
	pair_ok "$step"
	agent_status --warn 10m "$P"
	t_like "$(st serial)" '^[0-9a-f]+$' "$step: status names the current serial"
	t_like "$(st state)" '^(ok|renewing|pending|failed)$' "$step: status state is one of the four"
	killed_tids=$(tids_since "$l0")
	# the backoff after a failure (RetryMin 1 s) runs out
	sleep 2
	l1=$(ca_lines)
	# killed at request-out (the request might have left), the retry
	# polls; a CA that does not know the transaction (badCertId) never
	# got it: the same request is sent again at once, no failure
	t_expect_exit 0 sa check "$P"
	new=$(serial_hex "$S/latest.crt")
	t_ok "$step: the next check completes the renewal ($old -> $new)" test "$new" != "$old"
	pair_ok "$step, then check"
	t_is "$(readlink "$S/latest.crt" | sed 's#.*/##')" "$new.crt" "$step, then check: latest.crt points at it"
	t_is "$(p11_ids t1 privkey | wc -l)" 2 "$step, then check: two keys (current, KeepOld=1), nothing staged left"
	case $step in
	key-generated|request-out)
		# nothing was sent: one request now, whatever its transactionID
		t_is "$(tids_since "$l1" | wc -w)" 1 "$step, then check: one transaction at the CA" ;;
	request-sent|reply-verified)
		# the CA answered, the certificate is nowhere yet: ask again
		# under the killed run's transaction
		t_is "$(tids_since "$l1")" "$killed_tids" \
			"$step, then check: the killed run's transaction resumed (no new transactionID)" ;;
	*)
		# the certificate had arrived: nothing to ask, or the same
		# transaction again
		t_like "$(tids_since "$l1")" "^(${killed_tids% })? ?\$" \
			"$step, then check: no new transaction (the certificate had arrived)" ;;
	esac
	agent_status "$P"
	t_is "$(st state):$(st serial)" "ok:$new" "$step, then check: status ok with the new serial"
done

done_testing
