#!/bin/bash
# server suite: renewal with the old key and certificate (-K/-O):
# RenewalReq when the CA offers Renewal, PKCSReq signed by the old
# certificate otherwise, with and without the challenge.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey old.key
mkcsr old.key old.csr "/CN=renew.example/O=Example" "$T_CHAL"
mkkey new.key
mkcsr new.key new.csr "/CN=renew.example/O=Example"
mkcsr new.key newpw.csr "/CN=renew.example/O=Example" "$T_CHAL"

# short-lived certificates, as a renewal scenario has
ca_start -valid 600 -challenge "$T_CHAL" -renew-no-challenge
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_ok "initial enrollment" cert_has_key old.crt old.key
nb=$(openssl x509 -in old.crt -noout -startdate | sed 's/.*=//')
na=$(openssl x509 -in old.crt -noout -enddate | sed 's/.*=//')
t_like "$(( $(date -d "$na" +%s) - $(date -d "$nb" +%s) ))" '^(599|600|601)$' "-valid 600: ten minutes"

# RenewalReq (Renewal offered), signed by the old certificate, no challenge
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -K old.key -O old.crt -l new.crt
t_ok "renewal: certificate of the new key" cert_has_key new.crt new.key
t_is "$(ca_log_field -1 msgType)" 17 "renewal: RenewalReq sent"
t_is "$(ca_log_field -1 signer)" issued "renewal: signed by the issued certificate"
t_is "$(ca_log_field -1 challenge_present)" false "renewal: no challenge needed"
ca_new

# the stock CA checks the challenge on renewals too
ca_start -valid 600 -challenge "$T_CHAL"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -K old.key -O old.crt -l nochal.crt
t_grep 'challenge' "$T_ERR" "stock renewal without challenge: refused, says why"
t_no_file nochal.crt "stock renewal without challenge: nothing written"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r newpw.csr -K old.key -O old.crt -l withchal.crt
t_ok "stock renewal with the challenge" cert_has_key withchal.crt new.key
t_is "$(ca_log_field -1 msgType)" 17 "stock renewal: RenewalReq"
ca_new

# no Renewal in the caps: PKCSReq signed by the old certificate
ca_start -valid 600 -caps 'POSTPKIOperation\nSHA-256\nAES'
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -K old.key -O old.crt -l new2.crt
t_ok "no Renewal cap: certificate of the new key" cert_has_key new2.crt new.key
t_is "$(ca_log_field -1 msgType)" 19 "no Renewal cap: PKCSReq"
t_is "$(ca_log_field -1 signer)" issued "no Renewal cap: signed by the old certificate"
# the old certificate was replaced: the depot revoked it
t_grep '^R' "$CA_DIR/index.txt" "the CA revoked the replaced certificate"
ca_new

# Renewal offered, but the user asks for a PKCSReq signed by the old
# certificate (OpenXPKI, NDES), without the challenge
ca_start -valid 600 -challenge "$T_CHAL" -renew-no-challenge
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -K old.key -O old.crt -l forced.crt \
	--renew-mode pkcsreq
t_ok "--renew-mode pkcsreq: certificate of the new key" cert_has_key forced.crt new.key
t_is "$(ca_log_field -1 msgType)" 19 "--renew-mode pkcsreq: PKCSReq although Renewal is offered"
t_is "$(ca_log_field -1 signer)" issued "--renew-mode pkcsreq: signed by the old certificate"
t_is "$(ca_log_field -1 challenge_present)" false "--renew-mode pkcsreq: without the challenge"
# and with the challenge, against a CA that wants it on every request
ca_new
ca_start -valid 600 -challenge "$T_CHAL"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r newpw.csr -K old.key -O old.crt -l forcedpw.crt \
	--renew-mode pkcsreq
t_is "$(ca_log_field -1 msgType)" 19 "--renew-mode pkcsreq with the challenge: PKCSReq"
t_is "$(ca_log_field -1 challenge_ok)" true "--renew-mode pkcsreq with the challenge: accepted"
# RenewalReq forced although the caps do not offer Renewal
ca_new
ca_start -valid 600 -caps 'POSTPKIOperation\nSHA-256\nAES'
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k new.key -r new.csr -K old.key -O old.crt -l forcedrr.crt \
	--renew-mode renewalreq
t_is "$(ca_log_field -1 msgType)" 17 "--renew-mode renewalreq: RenewalReq"
ca_new

# same key renewed (re-key not required)
ca_start -valid 600
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -l old.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k old.key -r old.csr -K old.key -O old.crt -l same.crt
t_ok "renewal with the same key" cert_has_key same.crt old.key
t_is "$(ca_log_field -1 signer)" issued "same-key renewal signed by the old certificate"

done_testing
