#!/bin/bash
# softhsm suite: --new-key life cycle against the test CA. Renewing in place
# with --overwrite (same label as the old key -K) keeps the old key and
# certificate until the new certificate is stored, also when the CA refuses
# or leaves the request pending; a pending --new-key enrollment resumes with
# the same command plus -R (same transactionID, same key); a refused new
# key is removed from the token; an EC P-256 token key enrolled with a
# request signed by an RSA token key; id= in --new-key and a missing
# --subject are usage errors.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new t2
pin_file
MOD=$P11_MODULE

tool() {
	pkcs11-tool --module "$MOD" --token-label t2 "$@" 2>/dev/null
}

# count CLASS LABEL: objects of a class (privkey, pubkey, cert) with a label
count() {
	p11_count t2 "$@"
}

# key_pub LABEL OUT: the public key (PEM) of the RSA key LABEL in t2
key_pub() {
	tool --read-object --type pubkey --label "$1" -o "$2.der" &&
		openssl pkey -pubin -inform DER -in "$2.der" -out "$2" 2>/dev/null
}

# holds CERT LABEL: CERT is for the token key LABEL
holds() {
	key_pub "$2" "$T_WORK/.pub.pem" && [ "$(pub_of "$1")" = "$(cat "$T_WORK/.pub.pem")" ]
}

# token_cert LABEL OUT: the certificate object LABEL, PEM
token_cert() {
	tool --read-object --type cert --label "$1" -o "$2.der" &&
		openssl x509 -inform DER -in "$2.der" -out "$2"
}

# enroll ARGS...: scep-agent enroll against the current CA with token t2
enroll() {
	sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin "$@"
}

ca_start -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 enroll --new-key 'pkcs11:token=t2;object=p1' --subject /CN=p1 -l p1.crt
t_ok "p1: certificate for the token key" holds p1.crt p1

# --- renewal in place: --new-key with the label of the old key (-K), --overwrite
RENEW_P1=(-K 'pkcs11:token=t2;object=p1' -O p1.crt --new-key 'pkcs11:token=t2;object=p1'
	--overwrite --subject /CN=p1)
t_expect_exit 0 enroll "${RENEW_P1[@]}" -l p1-2.crt
t_is "$(ca_log_field -1 msgType)" 17 "in place: RenewalReq sent"
t_is "$(ca_log_field -1 signer)" issued "in place: signed by the old key and certificate"
t_ok "in place: the new certificate holds the key now labelled p1" holds p1-2.crt p1
if [ "$(pub_of p1-2.crt)" != "$(pub_of p1.crt)" ]; then
	t_pass "in place: it is a new key"
else
	t_fail "in place: it is a new key"
fi
t_is "$(count privkey p1) $(count pubkey p1) $(count cert p1)" "1 1 1" \
	"in place: one key pair and one certificate labelled p1 (the old ones are gone)"
t_is "$(count privkey 'p1~new')" 0 "in place: nothing left under the provisional label"
token_cert p1 tok.pem
t_is "$(openssl x509 -in tok.pem -noout -serial)" "$(openssl x509 -in p1-2.crt -noout -serial)" \
	"in place: the token's certificate is the new one"
t_grep 'key: pkcs11:.*object=p1;type=private' "$T_OUT" "in place: the key's final URI is shown"
cp p1-2.crt p1.crt

# --- the CA refuses the renewal: the old key and certificate stay usable
ca_restart -allowrenew 0 -fail badRequest
t_expect_exit 2 enroll "${RENEW_P1[@]}" -l p1-3.crt
t_grep 'removed from the token' "$T_ERR" "refused: the new key is removed, and says so"
t_is "$(count privkey p1) $(count cert p1) $(count privkey 'p1~new')" "1 1 0" \
	"refused: the old key and certificate are still there, no new key"
t_ok "refused: the key labelled p1 is still the certified one" holds p1.crt p1
t_no_file p1-3.crt "refused: no certificate written"
# a plain enrollment with --overwrite that is refused loses nothing either
t_expect_exit 2 enroll --new-key 'pkcs11:token=t2;object=p1' --overwrite --subject /CN=p1 -l x.crt
t_is "$(count privkey p1) $(count cert p1) $(count privkey 'p1~new')" "1 1 0" \
	"refused plain enrollment with --overwrite: old objects kept"
# a refused --new-key: the key made in this run does not block the retry
t_expect_exit 2 enroll --new-key 'pkcs11:token=t2;object=f1' --subject /CN=f1 -l f1.crt
t_is "$(count privkey f1) $(count pubkey f1)" "0 0" "refused new key: removed from the token"
t_expect_exit 2 enroll --new-key 'pkcs11:token=t2;object=f1' --subject /CN=f1 -l f1.crt
t_grep 'refused the request' "$T_ERR" "the same command again: refused again, not 'already holds'"
# an error before the request is sent does not leave the key behind either
t_expect_exit 9 enroll --new-key 'pkcs11:token=t2;object=c1' --subject /CN=c1 \
	--challenge-file nonexistent -l c1.crt
t_is "$(count privkey c1)" 0 "a missing challenge file: no key in the token"
t_ok "a missing challenge file: found before a key is generated" \
	sh -c '! grep -q -i generat "$1"' sh "$T_ERR"

# --- pending renewal in place, interrupted (-n 1), then resumed with -R
ca_restart -allowrenew 0 -pending 2
t_expect_exit 3 enroll "${RENEW_P1[@]}" -l p1-4.crt -n 1 -t 1
tid=$(ca_log_field -1 tid)
t_is "$(count privkey p1) $(count cert p1) $(count privkey 'p1~new')" "1 1 1" \
	"pending: old key and certificate kept, the new key waits as p1~new"
t_ok "pending: the key labelled p1 is still the certified one" holds p1.crt p1
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin -k 'pkcs11:token=t2;object=p1' \
	--subject /CN=p1 -r still.csr
t_is "$(pub_of still.csr)" "$(pub_of p1.crt)" "pending: the old key still signs"
t_expect_exit 0 enroll "${RENEW_P1[@]}" -l p1-4.crt -n 1 -t 1 -R
t_is "$(ca_log_field -1 tid)" "$tid" "resumed: the same transactionID"
t_is "$(ca_log_field -1 msgType)" 20 "resumed: with CertPoll"
t_ok "resumed: the certificate holds the key now labelled p1" holds p1-4.crt p1
t_is "$(count privkey p1) $(count cert p1) $(count privkey 'p1~new')" "1 1 0" \
	"resumed: only then the old objects went"

# --- a pending --new-key enrollment: the same command plus -R
Q1=(--new-key 'pkcs11:token=t2;object=q1' --subject /CN=q1 -l q1.crt -n 1 -t 1)
t_expect_exit 3 enroll "${Q1[@]}"
tid=$(ca_log_field -1 tid)
t_grep 'same command again with -R' "$T_ERR" "pending: says to run the same command with -R"
t_expect_exit 0 enroll "${Q1[@]}" -R
t_is "$(ca_log_field -1 tid)" "$tid" "the same command + -R: the same transactionID"
t_ok "the same command + -R: certificate for the token key" holds q1.crt q1
t_is "$(count privkey q1) $(count cert q1)" "1 1" "one key, its certificate next to it"
# resumed from the request file alone (no --subject)
t_expect_exit 3 enroll --new-key 'pkcs11:token=t2;object=q2' --subject /CN=q2 -r q2.csr \
	-l q2.crt -n 1 -t 1
tid=$(ca_log_field -1 tid)
t_expect_exit 0 enroll --new-key 'pkcs11:token=t2;object=q2' -r q2.csr -l q2.crt -n 1 -t 1 -R
t_is "$(ca_log_field -1 tid)" "$tid" "-R with -r and no --subject: the same transactionID"
t_ok "-R with -r: certificate for the token key" holds q2.crt q2
# nothing to resume
t_expect_exit 7 enroll --new-key 'pkcs11:token=t2;object=nokey' --subject /CN=n -l n.crt -n 1 -t 1 -R
t_grep "no private key labelled 'nokey'" "$T_ERR" "-R without a key of that label: says so"
# a plain retry of a pending --new-key uses the same (staged) key again:
# the same transactionID, the request sent again
t_expect_exit 3 enroll --new-key 'pkcs11:token=t2;object=q3' --subject /CN=q3 -l q3.crt -n 1 -t 1
tid=$(ca_log_field -1 tid)
t_is "$(count privkey 'q3~new') $(count privkey q3)" "1 0" "pending: the new key waits as q3~new"
t_expect_exit 0 enroll --new-key 'pkcs11:token=t2;object=q3' --subject /CN=q3 -l q3.crt -n 1 -t 1
t_grep 'using again the key "q3~new"' "$T_ERR" "retry without -R: says it uses the waiting key again"
t_is "$(ca_log_field -1 tid)" "$tid" "retry without -R: the same transactionID"
t_is "$(count privkey q3) $(count cert q3) $(count privkey 'q3~new')" "1 1 0" \
	"retry without -R: one key and its certificate labelled q3"

# --- usage errors
t_expect_exit 4 enroll --new-key 'pkcs11:token=t2;object=i1;id=%01' --subject /CN=i1 -l i1.crt -n 1 -t 1
t_grep 'must not name an id=' "$T_ERR" "--new-key with id=: refused"
t_is "$(count privkey i1)" 0 "--new-key with id=: no key generated"
t_expect_exit 4 sa mkrequest --module "$MOD" --pin-file pin \
	--new-key 'pkcs11:token=t2;object=i2;id=%01' --subject /CN=i2 -r i2.csr
t_expect_exit 4 enroll --new-key 'pkcs11:token=t2;object=mm' -r mk.csr -l mm.crt -n 1 -t 1
t_grep 'new key .*needs --subject' "$T_ERR" "--new-key with -r but no --subject: asks for --subject"
t_is "$(count privkey mm)" 0 "no key generated"

# --- EC P-256 key born in the token; the request signed by an RSA token
#     key and its certificate (the CA needs an RSA signer)
ca_restart -allowrenew 0 -allow-ec
t_expect_exit 0 enroll --new-key 'pkcs11:token=t2;object=rsa1' --subject /CN=rsa1 -l rsa1.crt
t_expect_exit 0 enroll -K 'pkcs11:token=t2;object=rsa1' -O rsa1.crt \
	--new-key 'pkcs11:token=t2;object=ec1' --key-type ec:P-256 --subject /CN=ec1 -l ec1.crt
t_is "$(ca_log_field -1 status)" SUCCESS "EC: the CA issued a certificate"
t_is "$(ca_log_field -1 signer)" issued "EC: the request was signed by the RSA key and certificate"
t_like "$(openssl x509 -in ec1.crt -noout -text)" 'ASN1 OID: prime256v1' "EC: a P-256 certificate"
t_ok "EC: issued by the CA" ca_verify ca.crt ec1.crt
want=$(openssl x509 -in ec1.crt -noout -pubkey | openssl pkey -pubin -outform DER |
	tail -c 65 | openssl sha1 -r | cut -d' ' -f1)
objs=$(tool -l --pin "$T_PIN" -O)
# obj_id TYPE-PREFIX LABEL: the ID of the object of that type and label in
# pkcs11-tool's listing (each object starts at a line without indent; a sed
# range missed an object listed right after another of its type)
obj_id() {
	printf '%s\n' "$objs" | awk -v t="$1" -v l="$2" '
		/^[A-Z]/ { inobj = index($0, t) == 1; hit = 0 }
		inobj && $1 == "label:" && $2 == l { hit = 1 }
		inobj && hit && $1 == "ID:" { print $2; exit }'
}
kid=$(obj_id "Private Key Object; EC" ec1)
cid=$(obj_id "Certificate Object" ec1)
t_is "$kid" "$want" "EC: the certificate holds the token key (CKA_ID = SHA-1 of its point)"
t_like "$cid" '^[0-9a-f]{40}$' "EC: the certificate object is in the token"
t_is "$cid" "$kid" "EC: the certificate is stored in the token next to the EC key"

ca_stop
done_testing
