#!/bin/bash
# softhsm suite: a token that fails in the middle of a key operation (the
# fault module tests/p11shim in front of SoftHSM2). Each failure ends the
# run at once (no hang, no crash) with exit code 7 and a message naming the
# PKCS#11 call and the token's words for it - not the key, the CA or the
# PIN - and leaves the token as it was; the same command then completes on
# the healthy token. Also: a token that allows one session works (we hold
# one session per slot and never open another).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool

softhsm_new t1
pin_file
MOD=$P11_MODULE
KEY='pkcs11:token=t1;object=base'

ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
# the key is made by pkcs11-tool (fast also under valgrind), enrolled by us
pkcs11-tool --module "$MOD" --token-label t1 -l --pin "$T_PIN" --keypairgen \
	--key-type rsa:1024 --label base --id 0b >/dev/null 2>&1
t_is "$(p11_count t1 privkey base)" 1 "a 1024-bit RSA key 'base' in the token"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "$KEY" --subject /CN=base -l base.crt
t_file base.crt "the key's certificate"
SERIAL=$(serial_of base.crt)

# getcert signs the request (C_Sign) and decrypts the reply (C_Decrypt)
GETCERT=(getcert -u "$CA_URL" -c ca.crt --module "$P11SHIM" --pin-file pin
	-k "$KEY" -l base.crt -s "$SERIAL" -w got.crt)
export P11SHIM_MODULE=$MOD

# shim FUNC RV MODE [AT]: the next run fails the AT-th (default 1st) call
# of FUNC with RV, once or from then on
shim() {
	export P11SHIM_FAIL_FUNC=$1 P11SHIM_FAIL_RV=$2 P11SHIM_FAIL_MODE=$3 \
		P11SHIM_FAIL_AT=${4:-1}
}
noshim() {
	unset P11SHIM_FAIL_FUNC P11SHIM_FAIL_RV P11SHIM_FAIL_MODE P11SHIM_FAIL_AT
}

# after NAME: the token holds the key pair unchanged, no certificate was
# written, no OpenSSL noise from elsewhere, and the retry completes
after() {
	t_is "$(p11_count t1 privkey base)" 1 "$1: the private key is still there"
	t_is "$(p11_count t1 pubkey base)" 1 "$1: the public key is still there"
	t_no_file got.crt "$1: no certificate written"
	t_ok "$1: no unrelated OpenSSL errors in the message" \
		eval '! grep -q "shared library" "$T_ERR"'
	noshim
	t_expect_exit 0 sa "${GETCERT[@]}"
	t_ok "$1: the retry fetched the certificate" cmp -s got.crt base.crt
	rm -f got.crt
}

# --- the card pulled out while signing the request: not "check that the
#     key matches its certificate" (exit 1)
shim C_Sign CKR_DEVICE_REMOVED always
t_expect_exit 7 sa "${GETCERT[@]}"
t_grep "C_Sign with key 'base' on token 't1' failed: .*CK_RV 0x32" "$T_ERR" \
	"C_Sign: the message names the call, the key, the token and the CKR"
after "C_Sign removed"

# --- the token's memory full at the signature, once
shim C_Sign CKR_DEVICE_MEMORY once
t_expect_exit 7 sa "${GETCERT[@]}"
t_grep "C_Sign with key 'base' on token 't1' failed: .*CK_RV 0x31" "$T_ERR" \
	"C_Sign once: CKR_DEVICE_MEMORY named"
after "C_Sign memory"

# --- while decrypting the reply: the token, not the CA (was exit 6,
#     "cannot decrypt the CertRep")
shim C_Decrypt CKR_DEVICE_REMOVED always
t_expect_exit 7 sa "${GETCERT[@]}"
t_grep "C_Decrypt with key 'base' on token 't1' failed: .*CK_RV 0x32" "$T_ERR" \
	"C_Decrypt: the message names the call and the token"
t_grep "the token failed on the way" "$T_ERR" "C_Decrypt: the token is blamed"
after "C_Decrypt"

# --- at login: a token problem (7), not a PIN problem (was exit 8)
shim C_Login CKR_DEVICE_REMOVED always
t_expect_exit 7 sa "${GETCERT[@]}"
t_grep "login to token 't1' failed: .*CK_RV 0x32" "$T_ERR" "C_Login: named"
t_ok "C_Login: the PIN is not blamed" eval '! grep -qi "wrong.*PIN" "$T_ERR"'
after "C_Login"

# --- reading the key's public half: an error, not a hang (libp11 0.4.12
#     waited forever in its session pool, or crashed, here)
for at in 1 2 3; do
	shim C_GetAttributeValue CKR_DEVICE_REMOVED always $at
	t_expect_exit 7 sa "${GETCERT[@]}"
	t_grep "C_GetAttributeValue on token 't1' failed|cannot read .* on token 't1'" \
		"$T_ERR" "C_GetAttributeValue #$at: named"
	after "C_GetAttributeValue #$at"
done

# --- a token that allows one session at a time (some smart cards): the
#     second C_OpenSession would fail, and there is none
shim C_OpenSession CKR_SESSION_COUNT always 2
export P11SHIM_TRACE=$T_WORK/trace
t_expect_exit 0 sa "${GETCERT[@]}"
t_is "$(grep -c ' C_OpenSession ' "$P11SHIM_TRACE")" 1 "one session for the whole run"
t_ok "one-session token: the certificate fetched" cmp -s got.crt base.crt
unset P11SHIM_TRACE
noshim
rm -f got.crt

ca_stop
done_testing
