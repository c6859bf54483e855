#!/bin/bash
# server suite: getcert (GetCert, 21) and getcrl (GetCRL, 22), signed with
# an enrolled key and certificate.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=query.example"
mkkey second.key
mkcsr second.key second.csr "/CN=query.example"

for mode in stock ra; do
	if [ $mode = ra ]; then ca_start -ra -valid 600; else ca_start -valid 600; fi
	rm -f ca.crt ca.crt-*
	t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
	t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l local.crt
	serial=$(serial_of local.crt)

	# getcert by decimal serial
	t_expect_exit 0 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
	t_ok "$mode: getcert returned the certificate" cmp <(openssl x509 -in got.crt -outform DER 2>/dev/null) \
		<(openssl x509 -in local.crt -outform DER)
	t_is "$(ca_log_field -1 msgType)" 21 "$mode: GetCert sent"
	t_is "$(ca_log_field -1 signer)" issued "$mode: GetCert signed with our certificate"
	rm -f got.crt

	# unknown serial: FAILURE badCertId, nothing written
	t_expect_exit 2 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s 987654 -w none.crt
	t_grep 'badCertId' "$T_ERR" "$mode: unknown serial: badCertId"
	t_no_file none.crt "$mode: unknown serial: nothing written"

	# replace the certificate of the DN, so the CRL has an entry
	t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k second.key -r second.csr -l second.crt
	t_expect_exit 0 sa getcrl -u "$CA_URL" -c ca.crt -k second.key -l second.crt -w crl.der
	form=DER
	grep -q -- '-----BEGIN' crl.der 2>/dev/null && form=PEM
	t_ok "$mode: getcrl wrote a CRL signed by the CA" \
		openssl crl -in crl.der -inform $form -CAfile "$CA_DIR/ca.pem" -noout
	hexserial=$(openssl x509 -in local.crt -noout -serial | sed 's/.*=//')
	t_like "$(openssl crl -in crl.der -inform $form -noout -text 2>&1)" \
		"Serial Number: 0*$hexserial" "$mode: the CRL lists the replaced certificate"
	t_is "$(ca_log_field -1 msgType)" 22 "$mode: GetCRL sent"
	rm -f crl.der
	ca_new
done

# getcert and getcrl against a CA that refuses
ca_start -valid 600
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l local.crt
serial=$(serial_of local.crt)
ca_restart -fail badRequest -fail-text "queries disabled"
t_expect_exit 2 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
t_grep 'queries disabled' "$T_ERR" "refused getcert: failInfoText shown"
t_no_file got.crt "refused getcert: nothing written"
t_expect_exit 2 sa getcrl -u "$CA_URL" -c ca.crt -k local.key -l local.crt -w crl.der
t_no_file crl.der "refused getcrl: nothing written"
ca_restart -bad-sig
t_expect_exit 6 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
t_no_file got.crt "getcert with a bad reply signature: nothing written"
ca_restart -getcert-other
t_expect_exit 6 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
t_grep "serial $serial" "$T_ERR" "getcert answered with another certificate: says which serial was asked"
t_no_file got.crt "getcert answered with another certificate: nothing written"

done_testing
