#!/bin/bash
# softhsm suite: mkrequest (and enroll) --new-key leaves nothing behind when the request
# cannot be made. Inputs that can be checked first (subject, subjectAltNames,
# the challenge source) are checked before a key is generated; a failure
# after the key was generated (the request file cannot be written, a bad
# key usage) removes that key again, so the same command can run again.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new t2
pin_file
MOD=$P11_MODULE

# count CLASS LABEL: objects of a class (privkey, pubkey) with a label in t2
count() {
	p11_count t2 "$@"
}

# mk ARGS...: mkrequest of an EC key labelled mk1 in t2, plus ARGS
mk() {
	sa mkrequest --module "$MOD" --pin-file pin \
		--new-key 'pkcs11:token=t2;object=mk1' --key-type ec:P-256 "$@"
}

# gone DESC: no key labelled mk1 in the token
gone() {
	t_is "$(count privkey mk1) $(count pubkey mk1)" "0 0" "$1"
}

t_expect_exit 4 mk --subject 'CN=nolead' -r mk1.csr
t_grep 'subject' "$T_ERR" "bad subject: says so"
gone "bad subject: no key left in the token"
t_no_file mk1.csr "bad subject: no request written"

t_expect_exit 4 mk --subject /CN=mk1 --san 'bogus:x' -r mk1.csr
gone "bad subjectAltName: no key left in the token"

t_expect_exit 4 mk --subject /CN=mk1 --key-usage frobnicate -r mk1.csr
gone "bad key usage: no key left in the token"

t_expect_exit 9 mk --subject /CN=mk1 --challenge-file "$T_WORK/nonexistent" -r mk1.csr
t_grep 'nonexistent' "$T_ERR" "missing challenge file: named"
gone "missing challenge file: no key left in the token"

# a failure after the key was generated (the request file cannot be
# written): the key goes again
t_expect_exit 9 mk --subject /CN=mk1 -r "$T_WORK/nodir/mk1.csr"
t_grep 'nodir' "$T_ERR" "request file not writable: named"
t_grep 'removed' "$T_ERR" "request file not writable: says the new key was removed"
gone "request file not writable: no key left in the token"


# and the same command with good inputs works
t_expect_exit 0 mk --subject /CN=mk1 -r mk1.csr
t_is "$(count privkey mk1)" 1 "the rerun generated the key"
t_ok "the request verifies" openssl req -in mk1.csr -noout -verify

# a key that was there before is never removed: -k with an unwritable -r
t_expect_exit 9 sa mkrequest --module "$MOD" --pin-file pin -k 'pkcs11:token=t2;object=mk1' \
	--subject /CN=mk1 -r "$T_WORK/nodir/again.csr"
t_is "$(count privkey mk1)" 1 "-k with an unwritable -r: the existing key stays"

# --overwrite: mkrequest has no certificate to wait for, so the new key
# takes the label at once; no provisional LABEL~new pair is left behind
old_pub=$(openssl req -in mk1.csr -noout -pubkey)
t_expect_exit 0 mk --subject /CN=mk1 -r mk1b.csr --overwrite
t_is "$(count privkey mk1) $(count pubkey mk1)" "1 1" "--overwrite: one key pair labelled mk1"
t_is "$(count privkey 'mk1~new') $(count pubkey 'mk1~new')" "0 0" "--overwrite: nothing left as mk1~new"
t_grep 'object=mk1;' "$T_OUT" "--overwrite: the URI printed names the label mk1"
t_ok "--overwrite: the request is for a new key" \
	test "$(openssl req -in mk1b.csr -noout -pubkey)" != "$old_pub"
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin -k 'pkcs11:token=t2;object=mk1' \
	--subject /CN=mk1 -r mk1c.csr
t_is "$(openssl req -in mk1c.csr -noout -pubkey)" "$(openssl req -in mk1b.csr -noout -pubkey)" \
	"--overwrite: -k with the label now finds the new key"

# enroll --new-key checks the subject before generating the key, too
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key 'pkcs11:token=t2;object=en1' --subject 'CN=nolead' -l en1.crt
t_grep 'subject' "$T_ERR" "enroll, bad subject: says so"
t_ok "enroll, bad subject: no key was generated at all" \
	sh -c '! grep -q -i generat "$1"' sh "$T_ERR"
t_is "$(count privkey en1) $(count pubkey en1)" "0 0" "enroll, bad subject: nothing in the token"
t_is "$(grep -c PKIOperation "$CA_LOG")" 0 "enroll, bad subject: nothing sent"

# a CA that cannot be reached (GetCACaps: 503) fails before a key is
# generated (it used to be kept for a -R that could never find the request)
ca_restart -caps-status 503
t_expect_exit 5 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key 'pkcs11:token=t2;object=en2' --subject /CN=en2 -l en2.crt
t_grep 'GetCACaps' "$T_ERR" "CA unavailable: the GetCACaps failure is the error"
t_ok "CA unavailable: no key was generated" sh -c '! grep -q -i generat "$1"' sh "$T_ERR"
t_is "$(count privkey en2) $(count pubkey en2)" "0 0" "CA unavailable: nothing in the token"

# a token that ignores the key template (tests/p11shim makes the private
# key extractable and not sensitive): the readback after C_GenerateKeyPair
# finds it, the pair is removed, exit 7, no request made or sent
ca_restart
export P11SHIM_MODULE=$MOD
t_expect_exit 0 sa mkrequest --module "$P11SHIM" --pin-file pin \
	--new-key 'pkcs11:token=t2;object=sh0' --key-type ec:P-256 --subject /CN=sh0 -r sh0.csr
t_file sh0.csr "through the shim without a mode: the token behaves as itself"
export P11SHIM_KEYGEN=extractable
for kt in ec:P-256 rsa:2048; do
	t_expect_exit 7 sa mkrequest --module "$P11SHIM" --pin-file pin \
		--new-key 'pkcs11:token=t2;object=sh1' --key-type $kt --subject /CN=sh1 -r sh1.csr
	t_grep "ignored the key template.*CKA_SENSITIVE=false, CKA_EXTRACTABLE=true" "$T_ERR" \
		"$kt: the weakened key is named for what it is"
	t_is "$(count privkey sh1) $(count pubkey sh1)" "0 0" "$kt: the weakened key pair is removed"
	t_no_file sh1.csr "$kt: no request written"
done
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$P11SHIM" --pin-file pin \
	--new-key 'pkcs11:token=t2;object=sh2' --key-type ec:P-256 --subject /CN=sh2 -l sh2.crt
t_grep "ignored the key template" "$T_ERR" "enroll: the weakened key is refused"
t_is "$(count privkey sh2) $(count pubkey sh2)" "0 0" "enroll: the weakened key pair is removed"
t_is "$(grep -c PKIOperation "$CA_LOG")" 0 "enroll: no request sent"
t_no_file sh2.crt "enroll: no certificate"
unset P11SHIM_KEYGEN P11SHIM_MODULE
ca_stop

done_testing
