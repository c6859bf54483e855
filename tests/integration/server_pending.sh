#!/bin/bash
# server suite: PENDING, polling (CertPoll), stop after -n polls with the
# pending exit code, resume with -R under the same transactionID.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=pending.example"

# --- PENDING twice: the request and the first poll; the second poll wins
ca_start -pending 2
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 3 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l local.crt -t 1 -n 1
t_like "$(cat "$T_OUT" "$T_ERR")" "[Pp][Ee][Nn][Dd][Ii][Nn][Gg]" "stopped after one poll: says PENDING"
t_no_file local.crt "stopped while pending: no certificate written"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" 2 "PKCSReq plus exactly one CertPoll"
t_is "$(ca_log_field 1 msgType)" 19 "first message: PKCSReq"
t_is "$(ca_log_field 1 status)" PENDING "PKCSReq answered PENDING"
t_is "$(ca_log_field 2 msgType)" 20 "second message: CertPoll"
t_is "$(ca_log_field 2 status)" PENDING "first poll answered PENDING"
tid=$(ca_log_field 1 tid)
t_is "$(ca_log_field 2 tid)" "$tid" "the poll keeps the transactionID"

t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l local.crt -t 1 -R
t_ok "resumed: certificate of our key" cert_has_key local.crt local.key
t_ok "resumed: issued by the CA" ca_verify ca.crt local.crt
t_is "$(ca_log_field -1 msgType)" 20 "resume sends CertPoll, not a new PKCSReq"
t_is "$(ca_log_field -1 status)" SUCCESS "the resumed poll gets SUCCESS"
t_is "$(ca_log_field -1 tid)" "$tid" "resume uses the same transactionID"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"msgType":19')" 1 "only one PKCSReq in all"
ca_new

# --- PENDING once, polling within one run completes
ca_start -pending 1
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l once.crt -t 1 -n 5
t_ok "polled to completion in one run" cert_has_key once.crt local.key
t_is "$(ca_log_field -1 poll)" 1 "one poll was enough"
ca_new

# --- several polls, with the max poll time (-T) stopping it
ca_start -pending 50
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
start=$(date +%s)
t_expect_exit 3 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l slow.crt -t 1 -T 3
took=$(( $(date +%s) - start ))
t_between "$took" 2 30 "-T 3 stops polling after about 3 s (took $took s)"
t_no_file slow.crt "max poll time reached: no certificate"

# --- the CA forgot the transaction (restart): resume fails cleanly
ca_restart -pending 50
t_expect_exit 2 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l lost.crt -t 1 -n 1 -R
t_grep 'badCertId' "$T_ERR" "forgotten transaction: badCertId"
t_no_file lost.crt "forgotten transaction: no certificate"

done_testing
