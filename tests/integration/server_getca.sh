#!/bin/bash
# server suite: getcaps, getca (single CA, CA/RA chain, -i, -F display and
# pinning), an sscep.conf naming another engine, getnextca (both forms),
# IPv6, server down.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

ca_start

# getcaps
t_expect_exit 0 sa getcaps -u "$CA_URL"
t_grep 'POSTPKIOperation' "$T_OUT" "getcaps prints the capabilities"
t_grep '"op":"GetCACaps"' "$CA_LOG" "getcaps sent GetCACaps"

# getca: one DER certificate, written to -c
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_ok "getca wrote the CA certificate" cmp <(openssl x509 -in ca.crt -outform DER) \
	<(openssl x509 -in "$CA_CERT" -outform DER)
t_no_file ca.crt-0 "a single CA certificate is not suffixed"

# -F as a display algorithm
fp256=$(fingerprint "$CA_CERT" sha256)
fp1=$(fingerprint "$CA_CERT" sha1)
t_expect_exit 0 sa getca -u "$CA_URL" -c ca2.crt -F sha256
t_grep "$fp256" "$T_OUT" "getca -F sha256 prints the SHA-256 fingerprint"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca3.crt -F sha1
t_grep "$fp1" "$T_OUT" "getca -F sha1 prints the SHA-1 fingerprint"

# -F as a pin: right (with and without colons), wrong
t_expect_exit 0 sa getca -u "$CA_URL" -c pinned.crt -F "$fp256"
t_file pinned.crt "pinned getca wrote the certificate"
t_expect_exit 0 sa getca -u "$CA_URL" -c pinned2.crt -F "$(printf '%s' "$fp256" | tr -d :)"
wrong=$(wrong_fingerprint "$CA_CERT")
t_expect_exit 6 sa getca -u "$CA_URL" -c wrong.crt -F "$wrong"
t_grep 'pinned' "$T_ERR" "wrong pin: the message names the pinned fingerprint"
t_grep "$fp256" "$T_ERR" "wrong pin: the message names the CA's real fingerprint"
t_no_file wrong.crt "wrong pin: no CA certificate written"
t_no_file wrong.crt-0 "wrong pin: no CA chain written"

# -i CA identifier goes in message=
t_expect_exit 0 sa getca -u "$CA_URL" -c ident.crt -i myca
t_file ident.crt "getca -i works"

# GetNextCACert without a rollover CA: a clear error, no file
t_expect_exit 5 sa getnextca -u "$CA_URL" -c ca.crt -w next.crt
t_no_file next.crt "getnextca without a next CA writes nothing"

# sscep's sample configuration names the capi engine: operations that need
# no key go on with one warning; a key that only that engine could give
# (an engine key id) is a usage error; a key file still works
mkkey e.key
mkcsr e.key e.csr "/CN=engine.example"
cat >engine.conf <<CONF
[sscep]
engine = sscep_engine
URL = $CA_URL
CACertFile = ./eng-ca.crt

[sscep_engine]
engine_id = capi

[sscep_engine_capi]
new_key_location = REQUEST
storelocation = LOCAL_MACHINE

[sscep_enroll]
PrivateKeyFile = 0:01
CertReqFile = ./e.csr
LocalCertFile = ./e.crt
CONF
t_expect_exit 0 sa getca -f engine.conf
t_file eng-ca.crt "engine capi in the file: getca wrote the CA certificate"
t_is "$(grep -c 'warning' "$T_ERR")" 1 "engine capi in the file: one warning"
t_grep 'capi' "$T_ERR" "the warning names the engine"
t_expect_exit 0 sa getcaps -f engine.conf
t_expect_exit 4 sa enroll -f engine.conf
t_grep '0:01.*capi|capi.*0:01' "$T_ERR" "engine key id: the key and the engine are named"
t_grep 'pkcs11:' "$T_ERR" "engine key id: says what to give instead"
t_no_file e.crt "engine key id: nothing enrolled"
# mkrequest reads [sscep_enroll] too: it must not make a file key named 0:01
t_expect_exit 4 sa mkrequest -f engine.conf --subject /CN=eng -r e2.csr
t_grep '0:01' "$T_ERR" "mkrequest, engine key id: the key is named"
t_no_file 0:01 "mkrequest, engine key id: no file key created in its place"
t_expect_exit 0 sa enroll -f engine.conf -k e.key
t_ok "engine capi in the file, key file on the command line: enrolled" cert_has_key e.crt e.key
t_expect_exit 4 sa getca -f engine.conf -g capi -c eng-ca2.crt
t_grep '-g' "$T_ERR" "-g capi on the command line: refused, naming -g"

ca_new

# CA/RA chain (NDES style): ca.crt-0, -1, -2
ca_start -ra -next-ca
t_expect_exit 0 sa getca -u "$CA_URL" -c chain.crt
for i in 0 1 2; do
	t_file "chain.crt-$i" "chain certificate $i written"
done
t_no_file chain.crt-3 "exactly three certificates"
t_like "$(for i in 0 1 2; do openssl x509 -in chain.crt-$i -noout -subject; done | tr '\n' ' ')" \
	'test CA.*RA \(sign\).*RA \(encrypt\)' "chain written in reply order"
t_ok "RA signing certificate chains to the CA" ca_verify chain.crt-0 chain.crt-1
# pin the CA of a chain
t_expect_exit 0 sa getca -u "$CA_URL" -c pchain.crt -F "$(fingerprint "$CA_DIR/ca.pem")"
t_file pchain.crt-2 "pinned chain written"
t_expect_exit 6 sa getca -u "$CA_URL" -c wchain.crt -F "$(wrong_fingerprint chain.crt-1)"
t_no_file wchain.crt-0 "wrong pin on a chain: nothing written"

# getnextca: signed by the current RA, new CA inside
t_grep 'GetNextCACert' <(sa getcaps -u "$CA_URL" 2>/dev/null) "caps advertise GetNextCACert"
t_expect_exit 0 sa getnextca -u "$CA_URL" -c chain.crt -w next.crt
nextfile=next.crt
[ -s next.crt ] || nextfile=next.crt-0
t_ok "getnextca wrote the rollover CA" cmp <(openssl x509 -in "$nextfile" -outform DER) \
	<(openssl x509 -in "$CA_DIR/next-ca.pem" -outform DER)
t_grep '"op":"GetNextCACert"' "$CA_LOG" "GetNextCACert was sent"

# getnextca as sscep 0.10 is called: -C the chain (PEM) that verifies the
# reply, -c where the next CA certificate goes, -w the reply's signer
cat chain.crt-0 chain.crt-1 chain.crt-2 >chain.pem
t_expect_exit 0 sa getnextca -u "$CA_URL" -C chain.pem -c sscep-next.crt -w signer.crt -F sha1
nextfile=sscep-next.crt
[ -s sscep-next.crt ] || nextfile=sscep-next.crt-0
t_ok "sscep form: -c received the rollover CA" cmp <(openssl x509 -in "$nextfile" -outform DER) \
	<(openssl x509 -in "$CA_DIR/next-ca.pem" -outform DER)
t_ok "sscep form: -w received the RA certificate that signed the reply" \
	cmp <(openssl x509 -in signer.crt -outform DER) <(openssl x509 -in chain.crt-1 -outform DER)
t_grep "$(fingerprint "$CA_DIR/next-ca.pem" sha1)" "$T_OUT" "sscep form: -F sha1 fingerprint printed"
t_expect_exit 0 sa getnextca -u "$CA_URL" -C chain.pem -c sscep-next2.crt
t_no_file signer.crt.next "sscep form without -w: nothing else written"
t_file sscep-next2.crt "sscep form without -w: the next CA written"
t_expect_exit 4 sa getnextca -u "$CA_URL" -C chain.pem
t_grep '-c' "$T_ERR" "sscep form without -c: asks for the output file"
t_expect_exit 6 sa getnextca -u "$CA_URL" -C chain.pem -c pinned-next.crt \
	-F "$(wrong_fingerprint "$CA_DIR/ca.pem")"
t_no_file pinned-next.crt "sscep form, -C not matching the pin: nothing written"
ca_new

# getnextca from a CA without RA: signed by the CA itself
ca_start -next-ca
t_expect_exit 0 sa getca -u "$CA_URL" -c own.crt
t_expect_exit 0 sa getnextca -u "$CA_URL" -c own.crt -w own-next.crt
nextfile=own-next.crt
[ -s own-next.crt ] || nextfile=own-next.crt-0
t_ok "getnextca (no RA) wrote the rollover CA" cmp <(openssl x509 -in "$nextfile" -outform DER) \
	<(openssl x509 -in "$CA_DIR/next-ca.pem" -outform DER)
t_expect_exit 0 sa getnextca -u "$CA_URL" -C own.crt -c own-sscep.crt -w own-signer.crt
t_ok "sscep form (no RA): the CA signed the reply" \
	cmp <(openssl x509 -in own-signer.crt -outform DER) <(openssl x509 -in own.crt -outform DER)
ca_new

# getnextca reply signed by a CA we do not trust: refused
ca_start -next-ca
t_expect_exit 6 sa getnextca -u "$CA_URL" -c ca.crt -w bad-next.crt
t_no_file bad-next.crt "getnextca signed by another CA: nothing written"
t_expect_exit 6 sa getnextca -u "$CA_URL" -C ca.crt -c bad-next.crt -w bad-signer.crt
t_no_file bad-next.crt "sscep form, reply signed by another CA: nothing written"
t_no_file bad-signer.crt "sscep form, reply signed by another CA: no signer written"
ca_new

# an issuing CA under a root: GetCACert sends both, the issuing CA is used
ca_start -intermediate -valid 600
t_expect_exit 0 sa getca -u "$CA_URL" -c inter.crt
t_file inter.crt-1 "intermediate: issuing CA and root written"
t_no_file inter.crt-2 "intermediate: two certificates"
mkkey i.key
mkcsr i.key i.csr "/CN=inter.example"
t_expect_exit 0 sa enroll -u "$CA_URL" -c inter.crt -k i.key -r i.csr -l i.crt
t_ok "intermediate: certificate of our key" cert_has_key i.crt i.key
t_ok "intermediate: chains to the root through the issuing CA" \
	openssl verify -CAfile "$CA_DIR/root.pem" -untrusted "$CA_DIR/ca.pem" i.crt
t_expect_exit 0 sa getca -u "$CA_URL" -c rootpin.crt -F "$(fingerprint "$CA_DIR/root.pem")"
t_file rootpin.crt-1 "intermediate: the chain can be pinned by the root's fingerprint"
ca_new

# GetCACert variants seen in the field: PKCS#7 for one certificate, PEM,
# a Content-Type that lies; each still gives the CA and a working enrollment
mkkey v.key
mkcsr v.key v.csr "/CN=variant.example"
n=0
for variant in "-getca-p7" "-getca-pem" "-getca-pem -ra" "-getca-type text/plain" \
	"-getca-type application/x-x509-ca-cert -ra"; do
	n=$((n + 1))
	# shellcheck disable=SC2086
	ca_start -allowrenew 0 $variant
	t_expect_exit 0 sa getca -u "$CA_URL" -c "v$n.crt"
	f=v$n.crt
	[ -s "$f" ] || f=v$n.crt-0
	t_ok "getca $variant: the CA certificate written" cmp <(openssl x509 -in "$f" -outform DER 2>/dev/null) \
		<(openssl x509 -in "$CA_DIR/ca.pem" -outform DER)
	t_expect_exit 0 sa enroll -u "$CA_URL" -c "v$n.crt" -k v.key -r v.csr -l "v$n-local.crt"
	t_ok "getca $variant: enrollment works" cert_has_key "v$n-local.crt" v.key
	ca_new
done

# IPv6 loopback
ca_start -6
t_expect_exit 0 sa getca -u "$CA_URL" -c v6.crt
t_file v6.crt "getca over [::1]"

# server down
port=$CA_PORT
ca_stop
t_expect_exit 5 sa getca -u "http://127.0.0.1:$port/scep" -c down.crt
t_grep "127.0.0.1:$port" "$T_ERR" "server down: the message names the URL"
t_no_file down.crt "server down: nothing written"
t_expect_exit 5 sa getcaps -u "http://127.0.0.1:$port/scep"
# getnextca: the GetCACaps failure is the error, not "no GetNextCACert"
t_expect_exit 5 sa getnextca -u "http://127.0.0.1:$port/scep" -c ca.crt -w down-next.crt
t_grep 'GetCACaps request to .* failed' "$T_ERR" "getnextca, server down: the GetCACaps failure is the error"
t_ok "getnextca, server down: not taken for a server without GetNextCACert" \
	sh -c '! grep -q "does not announce" "$1"' sh "$T_ERR"
t_no_file down-next.crt "getnextca, server down: nothing written"

done_testing
