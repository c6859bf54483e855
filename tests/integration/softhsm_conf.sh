#!/bin/bash
# softhsm suite: an sscep.conf written for sscep's pkcs11 engine (engine
# section with MODULE_PATH and PIN) drives a token enrollment unchanged,
# with the key named by a pkcs11: URI. The PIN never shows in the output.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util
softhsm_new conf1
pin_file

ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# the key, generated in the token beforehand (PIN from a file)
t_expect_exit 0 sa mkrequest --module "$P11_MODULE" --pin-file pin \
	--new-key "pkcs11:token=conf1;object=gw" --key-type rsa:2048 \
	--subject "/CN=conf.example" -r local.csr

cat >sscep.conf <<CONF
# sscep 0.10 style: engine section named by [sscep] engine
[sscep]
engine = sscep_engine_pkcs11
URL = $CA_URL
CACertFile = ca.crt
Verbose = no

[sscep_engine_pkcs11]
engine_id = pkcs11
MODULE_PATH = $P11_MODULE
PIN = $T_PIN

[sscep_enroll]
PrivateKeyFile = pkcs11:token=conf1;object=gw
CertReqFile = local.csr
LocalCertFile = local.crt
CONF

t_expect_exit 0 sa enroll -f sscep.conf
t_file local.crt "enrolled with the engine section's module and PIN"
t_grep "engine section" "$T_ERR" "warns that the PIN comes from the configuration file"
if grep -q -F "$T_PIN" "$T_OUT" "$T_ERR"; then
	t_fail "the PIN does not show in the output"
else
	t_pass "the PIN does not show in the output"
fi
t_like "$(openssl x509 -in local.crt -noout -subject)" "conf.example" "the certificate is for the CSR's subject"
t_expect_exit 0 sa list-objects --module "$P11_MODULE" --pin-file pin "pkcs11:token=conf1"
t_grep "^certificate 'gw'" "$T_OUT" "the certificate is stored in the token next to its key"

# a wrong PIN in the engine section: one attempt, the PIN exit code
sed -i 's/^PIN = .*/PIN = 999999/' sscep.conf
rm -f local.crt
t_expect_exit 8 sa enroll -f sscep.conf
t_no_file local.crt "wrong engine PIN: no certificate"

done_testing
