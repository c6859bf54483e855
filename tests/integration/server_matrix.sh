#!/bin/bash
# server suite: every operation (getcaps, getca, enroll, getcert, getcrl,
# getnextca) in every mode of the test CA and in combinations of them.
# Under valgrind (SCEP_AGENT_WRAP) every other mode (the first, third, ...):
# the matrix was valgrind's longest test, and each mode runs whole in the
# plain and ASan builds.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key plain.csr "/CN=matrix.example/O=Example"
mkcsr local.key chal.csr "/CN=matrix.example/O=Example" "$T_CHAL"

n=0
while IFS='|' read -r name flags; do
	[ -z "$name" ] && continue
	n=$((n + 1))
	[ -n "${SCEP_AGENT_WRAP:-}" ] && [ $((n % 2)) = 0 ] && continue
	csr=plain.csr
	case " $flags " in *" -challenge "*) csr=chal.csr ;; esac
	# shellcheck disable=SC2086 # flags are words
	eval "set -- $flags"
	ca_start -next-ca -valid 600 -allowrenew 0 "$@"
	d=m$n
	mkdir "$d"

	t_expect_exit 0 sa getcaps -u "$CA_URL"
	t_expect_exit 0 sa getca -u "$CA_URL" -c "$d/ca.crt"
	t_expect_exit 0 sa enroll -u "$CA_URL" -c "$d/ca.crt" -k local.key -r "$csr" -l "$d/local.crt" -t 1 -n 5
	t_ok "$name: enrolled certificate of our key" cert_has_key "$d/local.crt" local.key
	t_ok "$name: issued by the CA" ca_verify "$CA_DIR/ca.pem" "$d/local.crt"
	serial=$(serial_of "$d/local.crt")
	t_expect_exit 0 sa getcert -u "$CA_URL" -c "$d/ca.crt" -k local.key -l "$d/local.crt" -s "$serial" -w "$d/got.crt"
	t_ok "$name: getcert returned it" cmp <(openssl x509 -in "$d/got.crt" -outform DER 2>/dev/null) \
		<(openssl x509 -in "$d/local.crt" -outform DER)
	t_expect_exit 0 sa getcrl -u "$CA_URL" -c "$d/ca.crt" -k local.key -l "$d/local.crt" -w "$d/crl"
	t_file "$d/crl" "$name: getcrl wrote the CRL"
	t_expect_exit 0 sa getnextca -u "$CA_URL" -c "$d/ca.crt" -w "$d/next.crt"
	t_ok "$name: getnextca wrote the next CA" sh -c "[ -s '$d/next.crt' ] || [ -s '$d/next.crt-0' ]"
	t_is "$(grep -c '"status":"ERROR"' "$CA_LOG")" 0 "$name: no request the CA could not parse"
	ca_new
done <<'MODES'
stock|
RA|-ra
challenge|-challenge $T_CHAL
pending|-pending 2
RA+pending+challenge|-ra -pending 1 -challenge $T_CHAL
AES reply, SHA-256 signature|-reply-cipher aes256 -reply-digest sha256
RA, AES-128 reply|-ra -reply-cipher aes128
GET only, DES3, SHA-1|-caps 'DES3\nSHA-1\nRenewal\nGetNextCACert'
no caps at all|-caps '\n'
RA, GET, AES|-ra -caps 'AES\nSHA-256\nGetNextCACert'
intermediate CA|-intermediate
intermediate CA, RA, pending|-intermediate -ra -pending 1
MODES

done_testing
