#!/bin/bash
# server suite: bare to certificate in one process. enroll with a CA URL
# and a pinned fingerprint (-F), no CA file: GetCACert in the same
# process, checked against the pin, written to -c when -c names a file
# that does not exist yet (as getca writes it, a chain as FILE-0 ...),
# and the key generated in a SoftHSM2 token enrolled. A wrong pin is
# refused before any key is made and nothing is written; no pin and no
# CA file is the usage error it was, with the hint to pin.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool

softhsm_new t1
pin_file
MOD=$P11_MODULE

# token_key_is CERT LABEL: the certificate holds the key LABEL of token t1
token_key_is() {
	pkcs11-tool --module "$MOD" --token-label t1 --read-object --type pubkey \
		--label "$2" -o "$T_WORK/.pub.der" >/dev/null 2>&1 &&
		[ "$(pub_of "$1")" = "$(openssl pkey -pubin -inform DER -in "$T_WORK/.pub.der")" ]
}

# getca_count: GetCACert requests the test CA has logged
getca_count() {
	grep -c '"op":"GetCACert"' "$CA_LOG"
}

ca_start
fp=$(fingerprint "$CA_CERT" sha256)

# --- no -c at all: fetched, pinned, used, written nowhere
ls >before.lst
t_expect_exit 0 sa enroll -u "$CA_URL" -F "$fp" --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=one" --key-type rsa:2048 \
	--subject /CN=one.example -l one.crt
t_ok "no -c, -F: the certificate holds the token key" token_key_is one.crt one
t_ok "no -c, -F: issued by the test CA" ca_verify "$CA_CERT" one.crt
t_is "$(getca_count)" 1 "no -c, -F: one GetCACert, in the same process"
t_is "$(ls | grep -vxF -f before.lst | tr '\n' ' ')" "one.crt " \
	"no -c: no CA file written, only the certificate"

# --- -c names a file that does not exist: fetched and written there
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -F "$fp" --module "$MOD" \
	--pin-file pin --new-key "pkcs11:token=t1;object=two" \
	--subject /CN=two.example -l two.crt
t_ok "-c new file: the certificate holds the token key" token_key_is two.crt two
t_ok "-c new file: the CA certificate is written to -c" cmp \
	<(openssl x509 -in ca.crt -outform DER) <(openssl x509 -in "$CA_CERT" -outform DER)
t_is "$(stat -c %a ca.crt)" 644 "-c new file: written as getca writes it (0644)"
t_no_file ca.crt-0 "-c new file: one certificate, not suffixed"
t_is "$(getca_count)" 2 "-c new file: GetCACert sent"

# --- the file now exists: read, not fetched again
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -F "$fp" --module "$MOD" \
	--pin-file pin -k "pkcs11:token=t1;object=two" -r two.csr -l two-again.crt \
	--subject /CN=two-again.example
t_is "$(getca_count)" 2 "-c existing file: no GetCACert"
t_ok "-c existing file: enrolled" token_key_is two-again.crt two

# --- a wrong pin: refused, nothing written, no key made, nothing sent
wrong=$(wrong_fingerprint "$CA_CERT")
before=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
t_expect_exit 6 sa enroll -u "$CA_URL" -c bad.crt -F "$wrong" --module "$MOD" \
	--pin-file pin --new-key "pkcs11:token=t1;object=bad" \
	--subject /CN=bad.example -l bad-out.crt
t_grep "$fp" "$T_ERR" "wrong pin: the message names the CA's real fingerprint"
t_grep 'nothing was written to .*bad.crt' "$T_ERR" "wrong pin: says nothing was written"
t_no_file bad.crt "wrong pin: no CA file"
t_no_file bad.crt-0 "wrong pin: no CA chain file"
t_no_file bad-out.crt "wrong pin: no certificate"
t_is "$(p11_count t1 privkey bad)" 0 "wrong pin: no key generated in the token"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$before" "wrong pin: no request sent"
t_is "$(ls -A | grep -c 'bad')" 0 "wrong pin: no file, temporary or not"

# --- no pin, no file: the usage error, with the hint to pin
t_expect_exit 4 sa enroll -u "$CA_URL" --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=nopin" --subject /CN=nopin.example -l nopin.crt
t_grep 'needs the CA certificate' "$T_ERR" "no -c, no pin: needs the CA certificate"
t_grep 'pinned fingerprint \(-F FINGERPRINT' "$T_ERR" "no -c, no pin: says to pin with -F"
t_expect_exit 9 sa enroll -u "$CA_URL" -c none.crt --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=nopin" --subject /CN=nopin.example -l nopin.crt
t_grep 'neither .*none.crt' "$T_ERR" "missing -c file, no pin: names the file"
t_grep 'pin the CA with -F' "$T_ERR" "missing -c file, no pin: says to pin with -F"
t_no_file none.crt "missing -c file, no pin: nothing fetched or written"
t_is "$(p11_count t1 privkey nopin)" 0 "no pin: no key generated"
ca_stop

# --- an NDES-style chain (CA, RA sign, RA encrypt) from a file key:
# written as getca writes a chain, and used
ca_new
ca_start -ra
fp=$(fingerprint "$CA_CERT" sha256)
mkkey f.key
t_expect_exit 0 sa enroll -u "$CA_URL" -c ra.crt -F "$fp" -k f.key \
	--subject /CN=file.example -r f.csr -l f.crt
t_ok "chain: the certificate holds the file key" cert_has_key f.crt f.key
t_file ra.crt-0 "chain: written as ra.crt-0"
t_file ra.crt-2 "chain: ... ra.crt-2"
t_no_file ra.crt "chain: no unsuffixed file"
t_ok "chain: issued by the test CA" ca_verify "$CA_CERT" f.crt
ca_stop

done_testing
