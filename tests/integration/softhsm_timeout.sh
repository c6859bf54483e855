#!/bin/bash
# softhsm suite: bounded waits on the token (--token-timeout, TokenTimeout).
# tests/p11shim delays chosen calls (a slow or hung card): a call that
# runs past its bound ends the run in bounded time with exit code 10 and a
# message naming the call and the module; the token's objects are left as
# they were; the same command with a bound above the delay succeeds. Key
# generation has a bound of its own (the second number), distinct from
# every other call's.
# These tests take seconds by nature (the delays): about 9 s plain. Under
# valgrind (SCEP_AGENT_WRAP), where a scep-agent run takes seconds before
# its first token call, the bounds and the slow call are stretched (a
# normal call there may take a good part of a second) and only a sample
# runs: C_Login and C_Sign past their bound, C_GenerateKeyPair past its own, and a slow
# C_GenerateKeyPair within it (about 30 s).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new t1
pin_file
export P11SHIM_MODULE=$P11_MODULE
VG=${SCEP_AGENT_WRAP:+1}
# the rest of this part: plain and ASan only (see above)
if [ -z "$VG" ]; then
		SHORT=1 SLOW=2 LONG=4
	else
		SHORT=3 SLOW=5 LONG=10
fi
# SHORT: the bound a call runs past; SLOW: a slow call, above SHORT and
# below LONG; HANG: a call that hangs (the run must end long before)
HANG=60

# objects LABEL: what the token holds under LABEL (class, label, id), sorted
objects() {
	pkcs11-tool --module "$P11_MODULE" --token-label t1 -l --pin "$T_PIN" -O 2>/dev/null |
		awk -v l="$1" '/^[A-Z][a-z]+ Key Object|^Certificate Object/ { c = $0 }
			/^ *label:/ { lab = $2 } /^ *ID:/ { if (lab == l) print c, lab, $2 }' | sort
}

# timed VAR CMD...: run CMD, its wall time in milliseconds in VAR
timed() {
	_v=$1
	shift
	_t0=$(date +%s%N)
	"$@"
	eval "$_v=$(( ($(date +%s%N) - _t0) / 1000000 ))"
}

# mk ARGS...: mkrequest through the shim with the key "old" of t1
mk() {
	sa mkrequest --module "$P11SHIM" --pin-file pin -k 'pkcs11:token=t1;object=old' \
		--subject /CN=old "$@"
}

# newkey ARGS...: mkrequest through the shim, generating the key "new"
newkey() {
	sa mkrequest --module "$P11SHIM" --pin-file pin --new-key 'pkcs11:token=t1;object=new' \
		--key-type ec:P-256 --subject /CN=new "$@"
}

# an old key pair that must stay intact
pkcs11-tool --module "$P11_MODULE" --token-label t1 -l --pin "$T_PIN" --keypairgen \
	--key-type EC:prime256v1 --label old --id 01 >/dev/null 2>&1
before=$(objects old)
t_like "$before" "Private Key Object.*old" "the old key pair is in the token"

# --- a short-bound call (C_Login: every run with a PIN makes one) runs past
#     --token-timeout
export P11SHIM_DELAY=C_Login:$((HANG * 1000))
timed ms t_expect_exit 10 mk -r a.csr --token-timeout $SHORT
t_between "$ms" $((SHORT * 1000)) $((HANG * 1000 / 2)) \
	"C_Login past the bound: ends after $SHORT s, while the call still hangs"
t_grep "did not answer C_Login within $SHORT s" "$T_ERR" "the message names the call and the bound"
t_grep "module .*p11shim" "$T_ERR" "the message names the module"
t_grep "--token-timeout" "$T_ERR" "the message names the option that raises the bound"
t_no_file a.csr "no request written"
t_is "$(objects old)" "$before" "the old key pair is intact (label, id)"

# the rest of this part: plain and ASan only (see above)
if [ -z "$VG" ]; then
	# the same command with a bound above the delay completes
	export P11SHIM_DELAY=C_Login:$((SLOW * 1000))
	t_expect_exit 0 mk -r a.csr --token-timeout $LONG
	t_ok "with a bound above the delay: the request verifies" openssl req -in a.csr -noout -verify

	# the same bound from the configuration file
	printf '[sscep]\nTokenTimeout = %s\n' "$SHORT" >timeout.conf
	t_expect_exit 10 mk -f timeout.conf -r b.csr
	t_grep "did not answer C_Login within $SHORT s" "$T_ERR" "TokenTimeout in the file bounds the call"
	t_expect_exit 0 mk -f timeout.conf -r b.csr --token-timeout $LONG
	t_file b.csr "--token-timeout overrides TokenTimeout"
fi

# --- the signature of a token key (our provider's C_Sign) is bounded too
export P11SHIM_DELAY=C_Sign:$((HANG * 1000))
timed ms t_expect_exit 10 mk -r s.csr --token-timeout $SHORT
t_between "$ms" $((SHORT * 1000)) $((HANG * 1000 / 2)) \
	"C_Sign past the bound: ends after $SHORT s, while the call still hangs"
t_grep "did not answer C_Sign within $SHORT s" "$T_ERR" "the message names C_Sign"
t_no_file s.csr "C_Sign past the bound: no request written"
t_is "$(objects old)" "$before" "C_Sign past the bound: the old key pair is intact"

# --- key generation has its own bound: the second number
export P11SHIM_DELAY=C_GenerateKeyPair:$((HANG * 1000))
timed ms t_expect_exit 10 newkey -r c.csr --token-timeout $LONG,$SHORT
t_between "$ms" $((SHORT * 1000)) $((HANG * 1000 / 2)) \
	"C_GenerateKeyPair past the key generation bound: ends after $SHORT s"
t_grep "did not answer C_GenerateKeyPair within $SHORT s" "$T_ERR" "the message names the key generation"
t_grep "key pair" "$T_ERR" "the message says a key pair may be left"
t_is "$(objects new)" "" "no key pair made (the delay came before the real call)"
t_is "$(objects old)" "$before" "the old key pair is intact"
t_no_file c.csr "no request written"
# key generation longer than the per-call bound, within its own: fine
export P11SHIM_DELAY=C_GenerateKeyPair:$((SLOW * 1000))
t_expect_exit 0 newkey -r c.csr --token-timeout $SHORT,$LONG
t_like "$(objects new)" "Private Key Object.*new" "with the key generation bound above the delay: the key is made"
t_ok "and the request verifies" openssl req -in c.csr -noout -verify
t_is "$(objects old)" "$before" "the old key pair is still intact"
unset P11SHIM_DELAY P11SHIM_MODULE

done_testing
