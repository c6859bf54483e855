#!/bin/bash
# server suite: an sscep 0.10 style sscep.conf used as is (-f), with the
# command line overriding it.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=conf.example/O=Example"

ca_start -valid 600 -pending 1
cat >sscep.conf <<CONF
# sscep.conf, as sscep 0.10 ships it (paths relative to the cwd)
[sscep]
engine =
# URL of the SCEP server
URL	= $CA_URL
# Proxy	= localhost:8080
CACertFile	= ./ca.crt
# CAIdentifier	= mydomain.com
Verbose	= no
Debug	= no

[sscep_engine]
# engine	= pkcs11

[sscep_getca]
FingerPrint	= sha256

[sscep_enroll]
PrivateKeyFile	= ./local.key
CertReqFile	= ./local.csr
LocalCertFile	= ./local.crt
SelfSignedFile	= ./selfsigned.crt
EncAlgorithm	= 3des
SigAlgorithm	= sha256
PollInterval	= 1
MaxPollTime	= 60
MaxPollCount	= 5

[sscep_getcert]
PrivateKeyFile	= ./local.key
LocalCertFile	= ./local.crt
GetCertFile	= ./cert.crt

[sscep_getcrl]
PrivateKeyFile	= ./local.key
LocalCertFile	= ./local.crt
GetCrlFile	= ./crl.crl

[sscep_getnextca]
CACertFile	= ./ca.crt
CONF

t_expect_exit 0 sa getca -f sscep.conf
t_file ca.crt "getca -f: CACertFile written"
t_grep "$(fingerprint ca.crt sha256)" "$T_OUT" "getca -f: FingerPrint = sha256 used"

t_expect_exit 0 sa enroll -f sscep.conf
t_ok "enroll -f: LocalCertFile of our key" cert_has_key local.crt local.key
t_file selfsigned.crt "enroll -f: SelfSignedFile written"
t_is "$(ca_log_field 1 enc)" DES-EDE3-CBC "enroll -f: EncAlgorithm = 3des"
t_is "$(ca_log_field 1 digest)" sha256 "enroll -f: SigAlgorithm = sha256"
t_is "$(ca_log_field -1 msgType)" 20 "enroll -f: polled (PollInterval, MaxPollCount)"

# the command line wins over the file
t_expect_exit 0 sa enroll -f sscep.conf -l override.crt -E aes256
t_ok "-l overrides LocalCertFile" cert_has_key override.crt local.key
t_is "$(ca_log_field -1 enc)" AES-256-CBC "-E overrides EncAlgorithm"

serial=$(serial_of local.crt)
t_expect_exit 0 sa getcert -f sscep.conf -s "$serial"
t_ok "getcert -f: GetCertFile written" cmp <(openssl x509 -in cert.crt -outform DER) \
	<(openssl x509 -in local.crt -outform DER)
t_expect_exit 0 sa getcrl -f sscep.conf
t_file crl.crl "getcrl -f: GetCrlFile written"

# an unknown key: one warning naming file and line, then it works
printf '[sscep]\nURL = %s\nCACertFile = ./ca.crt\nNoSuchKey = 1\n' "$CA_URL" >odd.conf
t_expect_exit 0 sa getcaps -f odd.conf
t_grep 'odd.conf:4' "$T_ERR" "unknown key: warning names file and line"
t_is "$(grep -c NoSuchKey "$T_ERR")" 1 "unknown key: a single warning"

# OpenSSL NCONF syntax, which sscep reads its file with: $variables (also
# from another section and from the environment) and backslash line
# continuation; a key that only serves as a variable gets no warning
mkdir -p vars
cat >vars.conf <<CONF
dir = $T_WORK/vars
[paths]
key = \$dir/v.key
[sscep]
URL = $CA_URL
CACertFile = \${dir}/ca.crt
[sscep_getca]
FingerPrint = sha256
[sscep_enroll]
PrivateKeyFile = \$paths::key
CertReqFile = \$dir/\\
v.csr
LocalCertFile = \$ENV::SA_TEST_CERT_DIR/v.crt
PollInterval = 1
CONF
mkkey vars/v.key
mkcsr vars/v.key vars/v.csr "/CN=vars.example"
SA_TEST_CERT_DIR=$T_WORK/vars
export SA_TEST_CERT_DIR
t_expect_exit 0 sa getca -f vars.conf
t_file vars/ca.crt "\${dir}: CA written where the variable points"
t_expect_exit 0 sa enroll -f vars.conf
t_file vars/v.crt "\$paths::key, continuation, \$ENV::NAME: enrolled"
t_is "$(grep -c -i 'warning' "$T_ERR")" 0 "no warning for keys used as variables"
printf '[sscep]\nURL = $undefined_url\n' >undef.conf
t_expect_exit 4 sa getca -f undef.conf
t_grep 'undef.conf:2: .*variable has no value' "$T_ERR" "undefined variable: usage error with file and line"

# a missing configuration file is an I/O error
t_expect_exit 9 sa getca -f missing.conf

done_testing
