#!/bin/bash
# softhsm suite: secrets stay secret. A PIN given as pin-value in a key URI
# never shows in output or messages (the canonical URI is shown instead);
# a request holding a challenge password is written readable by its owner
# only.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util
PIN=$T_PIN
# as a URI carries it (pin-value is percent-encoded: the space is %20)
PINU=$(printf '%s' "$PIN" | sed 's/ /%20/g')
softhsm_new sec1 "$PIN"
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# no_pin DESC: the PIN is in neither stdout nor stderr of the last command
no_pin() {
	if grep -q -i -F -e "$PIN" -e "$PINU" "$T_OUT" "$T_ERR"; then
		t_fail "$1"
		grep -n -i -F -e "$PIN" -e "$PINU" "$T_OUT" "$T_ERR" | cut -d: -f1,2 | sed 's/^/#   /'
	else
		t_pass "$1"
	fi
}

# a key generated with the PIN in the --new-key URI
t_expect_exit 0 sa mkrequest -v --module "$P11_MODULE" \
	--new-key "pkcs11:token=sec1;object=dev?pin-value=$PINU" --key-type rsa:2048 \
	--subject /CN=secrets.example -r dev.csr
no_pin "mkrequest --new-key ...?pin-value: the PIN is not shown"
t_grep "pin-value" "$T_ERR" "mkrequest: warns that pin-value shows in ps"
t_grep "key in the token: pkcs11:.*id=.*object=dev" "$T_OUT" "mkrequest: shows the canonical key URI"

# enroll with an existing key named with pin-value, verbose
t_expect_exit 0 sa enroll -v -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-k "pkcs11:token=sec1;object=dev?pin-value=$PINU" -r dev.csr -l dev.crt
no_pin "enroll -v -k ...?pin-value: the PIN is not shown"
t_grep "key: pkcs11:.*id=.*object=dev;type=private" "$T_OUT" "enroll: shows the canonical key URI"

# an error message naming the key (old certificate of another key)
mkkey other.key
openssl req -new -x509 -key other.key -subj /CN=other -days 1 -out other.crt 2>/dev/null
# (a key not matching its certificate is a key problem: exit 7)
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-K "pkcs11:token=sec1;object=dev?pin-value=$PINU" -O other.crt \
	-k "pkcs11:token=sec1;object=dev?pin-value=$PINU" -r dev.csr -l renew.crt
t_grep "does not belong to the old key pkcs11:token=sec1;object=dev" "$T_ERR" "mismatch error names the key"
no_pin "mismatch error: the PIN is not shown"

# getcert and getcrl signed with a token key named with pin-value and a
# certificate of another key: refused (exit 7) without showing the PIN
t_expect_exit 7 sa getcert -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-k "pkcs11:token=sec1;object=dev?pin-value=$PINU" -l other.crt -s 1 -w got.crt
t_grep "does not belong to the key pkcs11:token=sec1;object=dev" "$T_ERR" "getcert mismatch: names the key"
no_pin "getcert mismatch: the PIN is not shown"
t_no_file got.crt "getcert mismatch: nothing written"
t_expect_exit 7 sa getcrl -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-k "pkcs11:token=sec1;object=dev?pin-value=$PINU" -l other.crt -w crl.der
t_grep "does not belong to the key pkcs11:token=sec1;object=dev" "$T_ERR" "getcrl mismatch: names the key"
no_pin "getcrl mismatch: the PIN is not shown"
t_no_file crl.der "getcrl mismatch: nothing written"

# the PIN in the path part of the URI (p11-kit accepts pin-value and
# pin-source there too): every message naming the key shows the canonical
# form, without any PIN attribute
PURI="pkcs11:token=sec1;object=dev;pin-value=$PINU"
# no_pin_attr DESC: no "pin-value=" and no pin-source= naming a file in the
# output of the last command (the pin-value warning names neither)
no_pin_attr() {
	if grep -q -e 'pin-value=' -e 'pin-source=/' -e 'pin-source=file:[^/]*/[^p]' "$T_OUT" "$T_ERR"; then
		t_fail "$1"
		grep -n 'pin-' "$T_OUT" "$T_ERR" | sed 's/^/#   /'
	else
		t_pass "$1"
	fi
}
t_expect_exit 0 sa mkrequest -v --module "$P11_MODULE" -k "$PURI" \
	--subject /CN=secrets2.example -r dev2.csr
t_expect_exit 0 sa enroll -v -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-k "$PURI" -r dev2.csr -l dev2.crt
no_pin "enroll -v -k ...;pin-value= (path): the PIN is not shown"
no_pin_attr "enroll -v -k ...;pin-value= (path): no PIN attribute shown"
t_grep "using the key pkcs11:token=sec1;object=dev in the token" "$T_ERR" "-v names the key in canonical form"
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-K "$PURI" -O other.crt -k "$PURI" -r dev.csr -l renew.crt
t_grep "does not belong to the old key pkcs11:token=sec1;object=dev\$" "$T_ERR" \
	"path pin-value: the mismatch error names the key without it"
no_pin "path pin-value: mismatch error without the PIN"
for op in getcert getcrl; do
	t_expect_exit 7 sa $op -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
		-k "$PURI" -l other.crt -s 1 -w got.$op
	t_grep "does not belong to the key pkcs11:token=sec1;object=dev;" "$T_ERR" \
		"$op, path pin-value: names the key without it"
	no_pin "$op, path pin-value: the PIN is not shown"
	no_pin_attr "$op, path pin-value: no PIN attribute shown"
done
# pin-source in the path, a request file made for another key
(umask 077 && printf '%s\n' "$PIN" >pinf)
mkcsr other.key other.csr /CN=other
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	-k "pkcs11:token=sec1;pin-source=$T_WORK/pinf;object=dev" -r other.csr -l x.crt
t_grep "not made for the key pkcs11:" "$T_ERR" "pin-source in the path: the error names the key"
no_pin_attr "pin-source in the path: not shown"
# a label with control characters: shown %-encoded, never raw
t_expect_exit 0 sa mkrequest --module "$P11_MODULE" --pin-file pinf \
	--new-key "pkcs11:token=sec1;object=e%1b%5B2Jsc" --key-type ec:P-256 \
	--subject /CN=esc.example -r esc.csr
t_grep 'key in the token: pkcs11:.*object=e%1B%5B2Jsc' "$T_OUT" "a label's control characters are shown %-encoded"
if grep -q "$(printf '\033')" "$T_OUT" "$T_ERR"; then
	t_fail "no raw escape character in the output"
else
	t_pass "no raw escape character in the output"
fi
t_expect_exit 0 sa list-objects --module "$P11_MODULE" --pin-file pinf \
	"pkcs11:token=sec1;pin-value=$PINU"
no_pin "list-objects of a URI with a path pin-value: the PIN is not shown"
t_grep 'uri: *pkcs11:.*object=e%1B%5B2Jsc' "$T_OUT" "list-objects: URIs %-encoded"

# each secret source is read once per run: a challenge and a PIN given as
# FIFOs (process substitution, /dev/fd/N) work for enroll and mkrequest
# has_chal CSR WORD: the request carries the challenge password WORD
has_chal() {
	openssl req -in "$1" -noout -text 2>/dev/null | grep -A1 -i challengePassword | grep -q "$2"
}
t_expect_exit 0 sa mkrequest --module "$P11_MODULE" --pin-file <(printf '%s\n' "$PIN") \
	--new-key "pkcs11:token=sec1;object=fifo1" --key-type ec:P-256 \
	--subject /CN=fifo1.example --challenge-file <(printf '%s\n' "$T_CHAL") -r fifo1.csr
t_ok "mkrequest, PIN and challenge from FIFOs: the challenge is in the request" has_chal fifo1.csr "$T_CHAL"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	--pin-file <(printf '%s\n' "$PIN") --new-key "pkcs11:token=sec1;object=fifo2" \
	--key-type rsa:2048 --subject /CN=fifo2.example \
	--challenge-file <(printf '%s\n' "$T_CHAL") -r fifo2.csr -l fifo2.crt
t_file fifo2.crt "enroll --new-key, challenge from a FIFO (read once): enrolled"
t_ok "enroll: the FIFO's challenge is in the request" has_chal fifo2.csr "$T_CHAL"
# two tokens logged in with one PIN source: a renewal whose old key is in
# sec1 and whose new key is made in sec2, the PIN from one FIFO
softhsm_new sec2 "$PIN"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$P11_MODULE" \
	--pin-file <(printf '%s\n' "$PIN") -K "pkcs11:token=sec1;object=fifo2" -O fifo2.crt \
	--new-key "pkcs11:token=sec2;object=fifo3" --key-type rsa:2048 \
	--subject /CN=fifo3.example -l fifo3.crt
t_file fifo3.crt "two tokens, one PIN FIFO (read once): renewed into the second token"

# a request with a challenge password is owner-readable only; others 0644
secret_file chal "$T_CHAL"
mkkey f.key
t_expect_exit 0 sa mkrequest -k f.key -r chal.csr --subject /CN=chal.example --challenge-file chal
t_is "$(stat -c %a chal.csr)" 600 "request with a challenge password: mode 600"
t_expect_exit 0 sa mkrequest -k f.key -r plain.csr --subject /CN=plain.example
t_is "$(stat -c %a plain.csr)" 644 "request without a challenge: mode 644"
: >old.csr
chmod 644 old.csr
t_expect_exit 0 sa mkrequest -k f.key -r old.csr --subject /CN=chal.example --challenge-file chal
t_is "$(stat -c %a old.csr)" 600 "an existing 0644 file replaced by a challenge request: mode 600"

done_testing
