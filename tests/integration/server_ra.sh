#!/bin/bash
# server suite: a CA with separate RA certificates (NDES style): automatic
# selection of the signing and encryption certificates, and -c/-e explicit.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=ra.example/O=Example"

ca_start -ra -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_file ca.crt-2 "CA/RA chain written"

# automatic: -c names the base of ca.crt-0, -1, -2
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l auto.crt
t_ok "auto selection: certificate of our key" cert_has_key auto.crt local.key
t_ok "auto selection: issued by the CA" ca_verify ca.crt-0 auto.crt
t_is "$(ca_log_field -1 status)" SUCCESS "auto selection: the RA decrypted the request"

# explicit: -e the RA encryption certificate, -c the CA certificates
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -e ca.crt-2 -k local.key -r local.csr -l explicit.crt
t_ok "explicit -e: certificate of our key" cert_has_key explicit.crt local.key
# sscep's -c RA-signing-certificate -e RA-encryption-certificate: ca.crt-1
# holds no CA, so the chain getca wrote beside it (ca.crt-0, -1, -2) is the
# CA set, as with -c ca.crt
t_expect_exit 0 sa enroll -v -u "$CA_URL" -c ca.crt-1 -e ca.crt-2 -k local.key -r local.csr -l sscep.crt
t_ok "sscep's -c RA -e RA: certificate of our key" cert_has_key sscep.crt local.key
t_grep 'ca.crt-1 holds no CA certificate; using the chain' "$T_ERR" \
	"sscep's -c RA -e RA: -v says the chain beside it is used"
# the same certificates alone, with no chain beside them: -c holds no CA,
# so neither -e nor the issued certificate can be checked: refused
cp ca.crt-1 lone-ra-sign.crt
cp ca.crt-2 lone-ra-enc.crt
t_expect_exit 4 sa enroll -u "$CA_URL" -c lone-ra-sign.crt -e lone-ra-enc.crt -k local.key -r local.csr -l ra-only.crt
t_grep 'encryption certificate \(-e\).*not issued by the trusted CA' "$T_ERR" \
	"-c with the RA certificate alone: -e is not issued by it, says so"
t_no_file ra-only.crt "-c with the RA certificate alone: nothing written"

# explicit, but encrypting to the CA certificate: the RA cannot decrypt
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -e ca.crt-0 -k local.key -r local.csr -l wrongenc.crt
t_grep 'badMessageCheck' "$T_ERR" "encrypted to the wrong certificate: badMessageCheck"
t_no_file wrongenc.crt "encrypted to the wrong certificate: nothing written"

# the RA chain pinned by the CA's fingerprint
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -F "$(fingerprint ca.crt-0)" -k local.key -r local.csr -l pinned.crt
t_ok "RA chain pinned by the CA fingerprint" cert_has_key pinned.crt local.key

# GET with an RA
ca_new
ca_start -ra -allowrenew 0 -caps 'DES3\nSHA-256'
t_expect_exit 0 sa getca -u "$CA_URL" -c ra2.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ra2.crt -k local.key -r local.csr -l get.crt
t_ok "RA over GET: certificate of our key" cert_has_key get.crt local.key
t_is "$(ca_log_field -1 method)" GET "RA over GET: GET used"

# PENDING through the RA
ca_new
ca_start -ra -pending 1
t_expect_exit 0 sa getca -u "$CA_URL" -c ra3.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ra3.crt -k local.key -r local.csr -l pend.crt -t 1
t_ok "RA with PENDING: certificate after polling" cert_has_key pend.crt local.key

done_testing
