#!/bin/bash
# server suite: replies a client must refuse (bad signature, wrong nonce,
# wrong transactionID, wrong messageType, HTML error pages), a wrong pinned
# fingerprint and a server that is down: each has its clear message and
# exit code, and no certificate file is written.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=errors.example"

# refused FLAG EXIT PHRASE: enroll against a CA started with FLAG fails
refused() {
	_flag=$1 _code=$2 _phrase=$3
	shift 3
	ca_start $_flag "$@"
	t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
	t_expect_exit "$_code" sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l out.crt
	t_grep "$_phrase" "$T_ERR" "$_flag: message says '$_phrase'"
	t_no_file out.crt "$_flag: no certificate written"
	t_is "$(ca_log_field -1 msgType)" 19 "$_flag: the request did reach the CA"
	ca_new
}

refused -bad-sig 6 'signature does not verify'
refused -wrong-nonce 6 'recipientNonce'
refused -wrong-tid 6 'transactionID'
refused -wrong-type 6 'messageType'
# misbehaving PENDING replies are checked too
refused -wrong-nonce 6 'recipientNonce' -pending 1
refused -bad-sig 6 'signature does not verify' -pending 1

# HTML error page with status 500: an HTTP error naming the status
ca_start -html
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 5 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l out.crt
t_grep '500' "$T_ERR" "HTML 500: the status is named"
t_no_file out.crt "HTML 500: no certificate written"
ca_new

# HTML page with status 200: refused by Content-Type
ca_start -html -html-status 200
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
t_expect_exit 6 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l out.crt
t_grep 'HTML' "$T_ERR" "HTML 200: says it got an HTML page"
t_grep '-u' "$T_ERR" "HTML 200: points at the URL option"
t_no_file out.crt "HTML 200: no certificate written"
ca_new

# a reply signed by another CA (the client holds the wrong CA certificate)
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c other.crt
ca_new
ca_start
t_expect_exit 6 sa enroll -u "$CA_URL" -c other.crt -k local.key -r local.csr -l out.crt
t_no_file out.crt "CA certificate of another CA: no certificate written"

# wrong pinned fingerprint on enroll (the CA certificate file is checked)
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
wrong=$(fingerprint ca.crt | sed 's/^../00/')
t_expect_exit 6 sa enroll -u "$CA_URL" -c ca.crt -F "$wrong" -k local.key -r local.csr -l out.crt
t_grep 'pinned' "$T_ERR" "enroll with a wrong pin: says so"
t_no_file out.crt "enroll with a wrong pin: no certificate written"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -F "$(fingerprint ca.crt)" -k local.key -r local.csr -l pinned.crt
t_ok "enroll with the right pin works" cert_has_key pinned.crt local.key

# the server goes away
port=$CA_PORT
ca_stop
t_expect_exit 5 sa enroll -u "http://127.0.0.1:$port/scep" -c ca.crt -k local.key -r local.csr -l down.crt
t_grep "127.0.0.1:$port" "$T_ERR" "server down: the URL is named"
t_no_file down.crt "server down: no certificate written"
# nothing listens and nothing answers in time: -W gives up
start=$(date +%s)
t_expect_exit 5 sa enroll -u "http://127.0.0.1:$port/scep" -c ca.crt -k local.key -r local.csr -l down.crt -W 2
took=$(( $(date +%s) - start ))
t_between "$took" 1 30 "-W 2 waits about 2 s for connectivity (took $took s)"

# a key that does not match the request
mkkey other.key
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca2.crt
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca2.crt -k other.key -r local.csr -l mismatch.crt
t_grep 'not made for the key' "$T_ERR" "key not matching the CSR: says so"
t_no_file mismatch.crt "key not matching the CSR: no certificate written"

# usage errors
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca2.crt -k local.key -l x.crt
t_expect_exit 4 sa frobnicate
t_expect_exit 9 sa enroll -u "$CA_URL" -c ca2.crt -k /nonexistent/key -r local.csr -l x.crt
t_grep '/nonexistent/key' "$T_ERR" "missing key file: named"

done_testing
