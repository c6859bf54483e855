#!/bin/bash
# softhsm suite: the audit's worst case (issue 9). A renewal in place
# (--new-key with the label of the old key, --overwrite) against a CA that
# sends a rogue CA certificate, signs with it and issues with it (scepca
# -rogue), or only issues with it (-rogue-issue): exit 6, and the token's
# old key and certificate are intact, still the certified pair.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new t3
pin_file
MOD=$P11_MODULE

tool() {
	pkcs11-tool --module "$MOD" --token-label t3 "$@" 2>/dev/null
}

# count CLASS LABEL: objects of a class (privkey, cert) with a label
count() {
	p11_count t3 "$@"
}

# holds CERT LABEL: CERT is for the token key LABEL
holds() {
	tool --read-object --type pubkey --label "$2" -o "$T_WORK/.pub.der" &&
		openssl pkey -pubin -inform DER -in "$T_WORK/.pub.der" -out "$T_WORK/.pub.pem" 2>/dev/null &&
		[ "$(pub_of "$1")" = "$(cat "$T_WORK/.pub.pem")" ]
}

# token_serial LABEL: serial of the certificate object LABEL
token_serial() {
	tool --read-object --type cert --label "$1" -o "$T_WORK/.c.der" &&
		openssl x509 -inform DER -in "$T_WORK/.c.der" -noout -serial
}

enroll() {
	sa enroll -u "$CA_URL" --module "$MOD" --pin-file pin "$@"
}

ca_start -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
fp=$(fingerprint ca.crt)
t_expect_exit 0 enroll -c ca.crt --new-key 'pkcs11:token=t3;object=p1' \
	--subject /CN=p1 -l p1.crt
t_ok "p1: certificate for the token key" holds p1.crt p1
cp p1.crt p1.crt.orig
serial=$(token_serial p1)

RENEW=(-K 'pkcs11:token=t3;object=p1' -O p1.crt --new-key 'pkcs11:token=t3;object=p1'
	--overwrite --subject /CN=p1 -l p1.crt)

# the worst case: CA files holding the rogue CA as an unpinned getca wrote
# them, with and without -F
ca_restart -allowrenew 0 -rogue
cp ca.crt poison.crt-0
cp "$CA_DIR/rogue.pem" poison.crt-1
for pin in "" "$fp"; do
	F=()
	what="no pin"
	if [ -n "$pin" ]; then
		F=(-F "$pin")
		what="-F"
	fi
	t_expect_exit 6 enroll -c poison.crt "${F[@]}" "${RENEW[@]}"
	t_is "$(count privkey p1) $(count cert p1)" "1 1" "rogue, $what: one key and one certificate labelled p1"
	t_ok "rogue, $what: the key labelled p1 is still the certified one" holds p1.crt.orig p1
	t_is "$(token_serial p1)" "$serial" "rogue, $what: the token's certificate is the old one"
	t_ok "rogue, $what: -l untouched" cmp p1.crt p1.crt.orig
done

# the reply is signed properly, the certificate is the rogue CA's
ca_restart -allowrenew 0 -rogue-issue
t_expect_exit 6 enroll -c ca.crt -F "$fp" "${RENEW[@]}"
t_is "$(ca_log_field -1 status)" SUCCESS "rogue issuer: the CA answered SUCCESS"
t_grep 'does not verify under the trusted CA' "$T_ERR" "rogue issuer: the certificate is refused"
t_is "$(count privkey p1) $(count cert p1)" "1 1" "rogue issuer: one key and one certificate labelled p1"
t_ok "rogue issuer: the key labelled p1 is still the certified one" holds p1.crt.orig p1
t_is "$(token_serial p1)" "$serial" "rogue issuer: the token's certificate is the old one"
t_ok "rogue issuer: -l untouched" cmp p1.crt p1.crt.orig

done_testing
