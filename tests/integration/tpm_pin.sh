#!/bin/bash
# tpm suite: a wrong user PIN on a TPM token (tpm2-pkcs11 on swtpm) counts
# toward the TPM's dictionary-attack lockout. Each run with a wrong PIN
# exits 8 having tried it once: TPM2_PT_LOCKOUT_COUNTER rises by exactly 1
# per run (a retry would burn the next try), and the message says that it
# counts toward the lockout. After swtpm's 3 tries (TPM2_PT_MAX_AUTH_FAIL)
# the TPM is in lockout: the right PIN is refused too (exit 8), and the
# message says "lockout" and how recovery goes. No PIN is ever printed
# (the canary test checks every output too). Under valgrind
# (SCEP_AGENT_WRAP), where each run takes about 5 s, the second and third
# wrong PINs are pkcs11-tool's, only to reach the lockout.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"


tpm_fixture
# a wrong PIN that holds the right one: printed, the canary would see it
secret_file badpin "${T_PIN}x"

# prop NAME: a TPM2_PT_* variable property of the swtpm, in decimal
prop() {
	printf '%d\n' "$(tpm_cmd tpm2_getcap properties-variable 2>/dev/null | sed -n "s/^$1: *//p")"
}
lockouts() {
	prop TPM2_PT_LOCKOUT_COUNTER
}

# no_pin DESC: neither PIN in the last command's output
no_pin() {
	t_is "$(cat "$T_OUT" "$T_ERR" | grep -c -F -e "$T_PIN" -e "$T_SOPIN")" 0 "$1: no PIN printed"
}

"$SCEP_AGENT" init-token "${TPM[@]}" --label gw --so-pin-file sopin --pin-file pin >init.out 2>&1
t_canary_keep init.out
t_expect_exit 0 sa mkrequest "${TPM[@]}" --pin-file pin --new-key "$TOK;object=dev" \
	--key-type rsa:2048 --subject /CN=dev -r dev.csr
t_is "$(lockouts)" 0 "right PINs: the lockout counter is 0"
t_is "$(prop TPM2_PT_MAX_AUTH_FAIL)" 3 "swtpm allows 3 failed authorisations"

# --- a wrong PIN: exit 8, one try, the dictionary-attack lockout named
MKREQ=(mkrequest "${TPM[@]}" -k "$TOK;object=dev" --subject /CN=dev -r x.csr)
t_expect_exit 8 sa "${MKREQ[@]}" --pin-file badpin -v -d
t_is "$(lockouts)" 1 "wrong PIN: tried once (the lockout counter rose by 1)"
t_grep '^scep-agent: .*dictionary-attack' "$T_ERR" \
	"wrong PIN: says it counts toward the TPM's dictionary-attack lockout"
t_grep '[Uu]nseal' "$T_ERR" "with -d, tpm2-pkcs11's own messages are shown"
no_pin "wrong PIN, -v -d"
t_no_file x.csr "wrong PIN: no request written"

if [ -z "${SCEP_AGENT_WRAP:-}" ]; then
	# from the environment, the same
	BADPIN="${T_PIN}x" t_expect_exit 8 sa "${MKREQ[@]}" --pin-env BADPIN
	t_is "$(lockouts)" 2 "wrong PIN from the environment: tried once"
	no_pin "wrong PIN from the environment"
	t_expect_exit 8 sa "${MKREQ[@]}" --pin-file badpin
	t_is "$(lockouts)" 3 "a third wrong PIN: tried once"
	t_is "$(grep -v '^scep-agent: ' "$T_ERR" | grep -c .)" 0 \
		"without -d, nothing but scep-agent's own messages (tpm2-pkcs11's are captured)"
else
	for _ in 2 3; do
		tpm_tool --token-label gw -l --pin "${T_PIN}x" -O >/dev/null
	done
	t_is "$(lockouts)" 3 "two more wrong PINs (pkcs11-tool): the TPM counted 3"
fi

# --- the TPM is in lockout: the right PIN is refused too
t_expect_exit 8 sa "${MKREQ[@]}" --pin-file pin
t_grep '^scep-agent: .*lockout' "$T_ERR" "in lockout: the message says so"
t_grep '^scep-agent: .*[Rr]ecover' "$T_ERR" "in lockout: the message says how it recovers"
diag "the message:" "$(cat "$T_ERR")"
t_is "$(lockouts)" 3 "in lockout: the counter stays at 3"
no_pin "in lockout"
t_no_file x.csr "in lockout: no request written"

done_testing
