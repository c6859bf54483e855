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

	# getcrl -s: asks by the CA's name and that serial, not by -l's
	# (the test CA answers any GetCRL with its CRL: the agent's -d line
	# shows what the request carried)
	hexserial=$(openssl x509 -in local.crt -noout -serial | sed 's/.*=0*//')
	cacn=$(openssl x509 -in "$CA_CERT" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
	t_expect_exit 0 sa getcrl -d -u "$CA_URL" -c ca.crt -k second.key -l second.crt -s "$serial" -w crl.der
	t_grep "GetCRL: issuer .*CN=$cacn.*, serial $serial \\(0x0*$hexserial\\)" "$T_ERR" \
		"$mode: getcrl -s: the request carries the CA's name and the -s serial"
	t_is "$(ca_log_field -1 msgType)" 22 "$mode: getcrl -s: GetCRL sent"
	t_file crl.der "$mode: getcrl -s: CRL written"
	rm -f crl.der
	t_expect_exit 0 sa getcrl -d -u "$CA_URL" -c ca.crt -k second.key -l second.crt -w crl.der
	t_grep "GetCRL: issuer .*CN=$cacn.*, serial $(serial_of second.crt) " "$T_ERR" \
		"$mode: getcrl without -s: the serial of -l"
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
t_expect_exit 4 sa getcrl -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s 12x -w crl.der
t_grep '12x' "$T_ERR" "getcrl with a bad -s: names it"
t_no_file crl.der "getcrl with a bad -s: nothing written"
# a certificate not of the key: a key problem (7), nothing sent
mkkey other.key
openssl req -new -x509 -key other.key -subj /CN=other -days 1 -out other.crt 2>/dev/null
n=$(grep -c PKIOperation "$CA_LOG")
t_expect_exit 7 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l other.crt -s "$serial" -w got.crt
t_grep 'does not belong to the key local.key' "$T_ERR" "getcert, -l not of -k: says so"
t_expect_exit 7 sa getcrl -u "$CA_URL" -c ca.crt -k local.key -l other.crt -w crl.der
t_is "$(grep -c PKIOperation "$CA_LOG")" "$n" "-l not of -k: no query sent"
t_no_file crl.der "getcrl, -l not of -k: nothing written"
ca_restart -bad-sig
t_expect_exit 6 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
t_no_file got.crt "getcert with a bad reply signature: nothing written"
ca_restart -getcert-other
t_expect_exit 6 sa getcert -u "$CA_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
t_grep "serial $serial" "$T_ERR" "getcert answered with another certificate: says which serial was asked"
t_no_file got.crt "getcert answered with another certificate: nothing written"

done_testing
