#!/bin/bash
# faults suite: tests/faults/sweep.sh as a test. Every flow (first
# enrollment with --new-key, renewal in place, renewal with a new key under
# a new label, mkrequest --new-key, getcert and getcrl with a token key)
# runs once per PKCS#11 call it makes, failing that call
# with CKR_DEVICE_REMOVED from then on (a card pulled out), and a sample of
# calls once with each of CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_MEMORY,
# CKR_PIN_LOCKED, CKR_FUNCTION_FAILED and CKR_TOKEN_WRITE_PROTECTED (at
# every 16th call and the first key generation, signature, decryption,
# object creation, relabel and removal). For
# every point: no hang, no crash (under ASan: no sanitizer report either),
# a documented exit code and a message, the token's old objects intact,
# the same command (or it with -R) completes on the healthy token, and the
# result is whole.
# Under valgrind (SCEP_AGENT_WRAP) a sample: getcert (no key generation,
# which takes about 20 s per RSA key there) at a dozen calls, failed from
# then on; the full sweep runs in the ASan build, every 4th call of it in
# the plain build.
#
# sweep_test.sh tpm (test faults_tpm, suites faults and tpm, serial): the
# TPM flows on swtpm through tpm2-pkcs11, a sample (each point starts its
# own swtpm on a copy of the prepared state): enroll --tpm --new-key
# (RSA-2048) failed from then on at every 16th call and the first key
# generation, signature, decryption, object creation, relabel and login
# (under valgrind four of these); init-token --tpm at every call, failed
# from then on, and the CKR sample once at every 16th call (34 points;
# under valgrind: C_InitToken, the SO login after it, C_Finalize). The
# same assertions, and: every failed TPM run blames the token or the PIN
# (exit 7 or 8), a failed init-token leaves no token or token gw, and one
# that exits 0 made it whole; a run that stopped after C_InitToken is
# finished by the same command or, as its message says, with -R.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
BUILD=${SCEP_AGENT%/agent/scep-agent}
OUT=$T_WORK/out
if [ "${1:-}" = tpm ]; then
	t_require swtpm tpm2_getcap
	FLOWS=(tpm-init tpm-enroll)
	if [ -n "${SCEP_AGENT_WRAP:-}" ]; then
		# of the 129 calls: the first key generation, the decryption
		# of the reply, the certificate stored, the relabel half-way
		SWEEP=(-s -t 120 -p "37 57 73 103" tpm-enroll)
		SWEEP2=(-s -t 120 -p "6 14 19" tpm-init)
	else
		SWEEP=(-s -x 16 tpm-enroll)
		SWEEP2=(-e 16 tpm-init)
	fi
elif [ -n "${SCEP_AGENT_WRAP:-}" ]; then
	# -s: CKR_DEVICE_REMOVED only; points spread over the run (33 calls)
	FLOWS=(getcert)
	SWEEP=(-s -t 120 -p "2 5 8 11 14 17 20 23 26 29 32" "${FLOWS[@]}")
else
	FLOWS=(enroll renew newlabel mkrequest getcert getcrl)
	# the CKR sample at every 16th call (and the first of each kind):
	# about 800 points, 7 min under ASan on 2 cores. The plain build
	# (the same code, and no sanitizer to see more) takes every 4th call
	# and every 64th for the sample (the first of each kind always):
	# CI runs both, and its whole run must stay near 30 minutes
	SWEEP=(-t 30 -e 16 "${FLOWS[@]}")
	ldd "$SCEP_AGENT" 2>/dev/null | grep -q libasan ||
		SWEEP=(-t 30 -x 4 -e 64 "${FLOWS[@]}")
fi
R=$T_WORK/results.txt
: >"$R"
# sweep N ARGS...: tests/faults/sweep.sh ARGS into OUT.N, its results
# added to R; the test ends when it fails
sweep() {
	local n=$1
	shift
	diag "tests/faults/sweep.sh -b $BUILD $*"
	if ! "$SRCDIR/tests/faults/sweep.sh" -b "$BUILD" -o "$OUT.$n" -j 2 -t 30 "$@" >"$T_WORK/sweep.log" 2>&1; then
		t_fail "the sweep ran: $*"
		sed 's/^/# /' "$T_WORK/sweep.log" | tail -20
		done_testing
		exit
	fi
	t_pass "the sweep ran: $*"
	sed -n '1,/^exit codes/p' "$OUT.$n/summary.txt" | sed 's/^/# /'
	cat "$OUT.$n/results.txt" >>"$R"
}
sweep 1 "${SWEEP[@]}"
[ -n "${SWEEP2:-}" ] && sweep 2 "${SWEEP2[@]}"
[ -n "${SWEEP3:-}" ] && sweep 3 "${SWEEP3[@]}"

# points PATTERN: the points (flow, call, CKR, mode) whose line matches
points() {
	grep -E -- "$1" "$R" | awk '{ printf "%s%s:%s:%s:%s", (n++ ? ", " : ""), $1, $2, $3, $4 } END { print "" }'
}

# none PATTERN DESC: no point's line matches
none() {
	local bad
	bad=$(points "$1")
	if [ -z "$bad" ]; then
		t_pass "$2"
	else
		t_fail "$2"
		diag "points: $bad"
	fi
}

flows=$(awk '{ print $1 }' "$R" | sort -u | tr '\n' ' ')
for f in "${FLOWS[@]}"; do
	t_ok "$f: points were run" eval "grep -q '^$f ' '$R'"
done
none ' rc=hang' "no run hangs (each ends within the sweep's limit)"
none ' rc=sig' "no run crashes (no signal; under ASan/UBSan no report: they abort)"
none ' rc=(1[1-9]|[2-9][0-9]|[0-9]{3,}) ' "every run ends with a documented exit code (0-10; valgrind errors: 99)"
none ' rc=1 ' "no token failure ends as an internal error (exit 1)"
none ' rc=(2|3|5|6) ' "no token failure is blamed on the CA, the network or the reply (exit 2, 3, 5, 6)"
none ' rc=[1-9][0-9]* .*\| *$' "every failed run says why (an error line)"
none ' intact=no ' "the token's old key and certificate are intact after every failure"
none ' retry=stuck' "the same command (or it with -R) completes on the healthy token every time"
none ' final=BAD ' "every retry leaves a whole result (one key pair and certificate under the label)"
if [ "${1:-}" = tpm ]; then
	none '^tpm-[a-z]+ .* rc=([1-69]|10) ' "every failed TPM run blames the token or the PIN (exit 7 or 8)"
	none '^tpm-init .* intact=no ' "a failed init-token leaves no token or token gw (never another)"
	none '^tpm-init .* rc=0 .* intact=(none|nopin) ' "an init-token that exits 0 made the whole token"
fi
diag "flows: $flows; $(wc -l <"$R") points"
done_testing
