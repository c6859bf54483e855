#!/bin/bash
# server suite: a pinned CA bounds what is trusted (issue 9). Against a CA
# that also sends an unrelated "rogue" CA certificate of the same name,
# signs its replies and issues certificates with it (scepca -rogue), or
# only issues with it (-rogue-issue), or only signs the CRL with it
# (-rogue-crl): getca refuses the ambiguous reply without -F and writes only
# the pinned chain with it; enroll, renew, getnextca, getcert and getcrl
# exit 6 and change nothing, with CA files that hold the rogue certificate
# (as an unpinned getca wrote them before) and with -F. Also: stale FILE-N
# files removed by getca, a -e certificate of another CA refused, MD5 and
# SHA-1 pins accepted with a warning.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

# state: checksums of every file in the work dir but the CA's and logs
state() {
	find . -maxdepth 1 -type f ! -name '.*' ! -name 'ca*.log' ! -name 'ca*.out' \
		! -name 'ca*.err' ! -name 'ca*.port' ! -name 'ca*.pid' -print0 |
		sort -z | xargs -0 sha256sum
}

mkkey dev.key 1024
mkcsr dev.key dev.csr "/CN=dev.example"
mkkey new.key 1024
mkcsr new.key new.csr "/CN=new.example"

# --- the genuine CA: what the device had before the attack
ca_start -allowrenew 0 -next-ca
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k dev.key -r dev.csr -l dev.crt
serial=$(serial_of dev.crt)
# the queries sign with their own copy, so that a renewal that went wrong
# (the old code) does not spoil them
cp dev.crt q.crt
fp=$(fingerprint ca.crt)
t_expect_exit 0 sa getcrl -u "$CA_URL" -c ca.crt -k dev.key -l q.crt -w good-crl.der
t_file good-crl.der "the genuine CA's CRL is accepted"

# --- -rogue: the reply carries a second CA that signs and issues
ca_restart -allowrenew 0 -next-ca -rogue
ROGUE=$CA_DIR/rogue.pem
rfp=$(fingerprint "$ROGUE")
t_is "$(openssl x509 -in "$ROGUE" -noout -subject)" "$(openssl x509 -in ca.crt -noout -subject)" \
	"the rogue CA copies the genuine CA's name"

t_expect_exit 6 sa getca -u "$CA_URL" -c rg.crt
t_grep 'pin one with -F' "$T_ERR" "getca, two CAs, no pin: refused, says how to pin"
t_grep "$fp" "$T_ERR" "getca, no pin: names the genuine CA's fingerprint"
t_grep "$rfp" "$T_ERR" "getca, no pin: names the rogue CA's fingerprint"
t_no_file rg.crt "getca, no pin: nothing written"
t_no_file rg.crt-0 "getca, no pin: no chain written"

t_expect_exit 0 sa getca -u "$CA_URL" -c rgp.crt -F "$fp"
t_grep "warning: .*ignoring .*$rfp.*does not chain" "$T_ERR" \
	"getca -F: the rogue certificate is dropped with a warning naming it"
t_ok "getca -F: only the pinned CA written" cmp <(openssl x509 -in rgp.crt -outform DER) \
	<(openssl x509 -in ca.crt -outform DER)
t_no_file rgp.crt-0 "getca -F: no chain holding the rogue certificate"
t_no_file rgp.crt-1 "getca -F: no rogue certificate file"

# CA files as an unpinned getca wrote them before: genuine CA, rogue CA
cp ca.crt poison.crt-0
cp "$ROGUE" poison.crt-1
cat poison.crt-0 poison.crt-1 >poison.pem
cp dev.crt dev.crt.orig
before=$(state)

for pin in "" "$fp"; do
	F=()
	what="no pin"
	if [ -n "$pin" ]; then
		F=(-F "$pin")
		what="-F"
	fi
	t_expect_exit 6 sa enroll -u "$CA_URL" -c poison.crt "${F[@]}" -k new.key -r new.csr -l new.crt
	t_no_file new.crt "rogue, enroll, $what: no certificate written"
	# renewal in place: -l is the old certificate -O
	mkkey renew.key 1024
	t_expect_exit 6 sa enroll -u "$CA_URL" -c poison.crt "${F[@]}" -K dev.key -O dev.crt \
		-k renew.key --subject /CN=dev.example -l dev.crt
	rm -f renew.key
	t_ok "rogue, renew in place, $what: the old certificate is untouched" cmp dev.crt dev.crt.orig
	t_expect_exit 6 sa getnextca -u "$CA_URL" -c poison.crt "${F[@]}" -w next.crt
	t_no_file next.crt "rogue, getnextca, $what: nothing written"
	t_no_file next.crt-0 "rogue, getnextca, $what: no chain written"
	t_expect_exit 6 sa getcert -u "$CA_URL" -c poison.crt "${F[@]}" -k dev.key -l q.crt \
		-s "$serial" -w got.crt
	t_no_file got.crt "rogue, getcert, $what: nothing written"
	t_expect_exit 6 sa getcrl -u "$CA_URL" -c poison.crt "${F[@]}" -k dev.key -l q.crt -w crl.der
	t_no_file crl.der "rogue, getcrl, $what: nothing written"
done
# with the pin, the reply itself is what fails: it is signed by the rogue CA
t_grep 'CertRep signature does not verify' "$T_ERR" "rogue, -F: the rogue CertRep signature is refused"
t_expect_exit 6 sa getnextca -u "$CA_URL" -C poison.pem -F "$fp" -c next2.crt -w signer.crt
t_no_file next2.crt "rogue, getnextca -C (sscep form) -F: nothing written"
t_no_file signer.crt "rogue, getnextca -C (sscep form) -F: no signer written"
t_is "$(state)" "$before" "rogue: no file changed"

# --- -rogue-issue: the replies are signed by the CA, the certificates are not
ca_restart -allowrenew 0 -rogue-issue
t_expect_exit 6 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -l new.crt
t_grep 'does not verify under the trusted CA' "$T_ERR" "rogue issuer: the issued certificate is refused"
t_is "$(ca_log_field -1 status)" SUCCESS "rogue issuer: the CA did answer SUCCESS"
t_no_file new.crt "rogue issuer, enroll: no certificate written"
rserial=$(ca_log_field -1 serial)
mkkey renew.key 1024
t_expect_exit 6 sa enroll -u "$CA_URL" -c ca.crt -F "$fp" -K dev.key -O dev.crt -k renew.key \
	--subject /CN=dev.example -l dev.crt
t_ok "rogue issuer, renew in place -F: the old certificate is untouched" cmp dev.crt dev.crt.orig
t_expect_exit 6 sa getcert -u "$CA_URL" -c ca.crt -k dev.key -l q.crt -s "0x$rserial" -w rgot.crt
t_grep 'does not verify under the trusted CA' "$T_ERR" "rogue issuer, getcert: the certificate is refused"
t_no_file rgot.crt "rogue issuer, getcert: nothing written"

# --- -rogue-crl: the CRL names the CA but is signed by another key
ca_restart -allowrenew 0 -rogue-crl
t_expect_exit 6 sa getcrl -u "$CA_URL" -c ca.crt -k dev.key -l q.crt -w rcrl.der
t_grep 'CRL .* is not signed by the trusted CA' "$T_ERR" "forged CRL: refused, says why"
t_no_file rcrl.der "forged CRL: nothing written"

# --- -e must be a certificate of the trusted CA
nreq=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca.crt -e "$ROGUE" -k new.key -r new.csr -l new.crt
t_grep "encryption certificate \(-e\).*$rfp.*not issued by the trusted CA.*$fp" "$T_ERR" \
	"-e of another CA: refused, naming both"
t_no_file new.crt "-e of another CA: nothing written"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$nreq" "-e of another CA: checked before any request"

# --- MD5 and SHA-1 pins: sscep's, accepted with a warning
for alg in md5:MD5 sha1:SHA-1; do
	name=${alg#*:}
	alg=${alg%:*}
	t_expect_exit 0 sa getca -u "$CA_URL" -c "weak-$alg.crt" -F "$(fingerprint ca.crt $alg)"
	t_grep "warning: .*pinned fingerprint is $name, a weak digest" \
		"$T_ERR" "$alg pin: warned that it is weak"
	t_grep "$fp" "$T_ERR" "$alg pin: the warning gives the SHA-256 fingerprint to pin instead"
	t_file "weak-$alg.crt" "$alg pin: the CA certificate written"
done
t_expect_exit 0 sa getca -u "$CA_URL" -c strong.crt -F "$fp"
t_ok "a SHA-256 pin: no warning" sh -c '! grep -q weak "$1"' sh "$T_ERR"

# --- getca removes what it did not write: an old RA certificate is not
# trusted forever
ca_restart -allowrenew 0 -ra
cp "$ROGUE" st.crt
cp "$ROGUE" st.crt-3
cp "$ROGUE" st.crt-4
t_expect_exit 0 sa getca -u "$CA_URL" -c st.crt
t_file st.crt-2 "chain of three written"
t_no_file st.crt-3 "stale st.crt-3 removed"
t_no_file st.crt-4 "stale st.crt-4 removed"
t_no_file st.crt "stale single-certificate st.crt removed when a chain is written"
t_grep 'removed st.crt-3' "$T_ERR" "the removal is reported"
ca_restart -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c st.crt
t_file st.crt "single certificate written"
for i in 0 1 2; do
	t_no_file "st.crt-$i" "the old chain's st.crt-$i removed"
done
t_expect_exit 0 sa enroll -u "$CA_URL" -c st.crt -k new.key -r new.csr -l st-new.crt
t_ok "the new CA file works" cert_has_key st-new.crt new.key

done_testing
