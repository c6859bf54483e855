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
wrong=$(wrong_fingerprint ca.crt)
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
# the first request (GetCACaps) fails with the network message: a server
# that cannot be reached is not taken for one without capabilities
t_grep "GetCACaps request to .*127.0.0.1:$port.* failed" "$T_ERR" \
	"server down: the GetCACaps failure is the error"
t_grep 'is the server running' "$T_ERR" "server down: says what to check"
t_ok "server down: no PKIOperation attempted with guessed capabilities" \
	sh -c '! grep -q PKIOperation "$1"' sh "$T_ERR"
# nothing listens and nothing answers in time: -W gives up, after one wait
# for the run (not one per request: GetCACaps and PKIOperation)
start=$(date +%s)
t_expect_exit 5 sa enroll -u "http://127.0.0.1:$port/scep" -c ca.crt -k local.key -r local.csr -l down.crt -W 5 -v
took=$(( $(date +%s) - start ))
# it waits: at least most of -W (that a run waits once, not once per
# request, is unit-tested in test_scep_http: test_wait)
t_between "$took" 4 60 "-W 5 waits for connectivity (took $took s)"
t_grep 'operation=GetCACaps.*retrying' "$T_ERR" "-W: GetCACaps is retried"
t_grep 'GetCACaps request to .* failed.*-W' "$T_ERR" "-W: the failure is the first request's, after the wait"
t_no_file down.crt "-W: no certificate written"

# a key that does not match the request
mkkey other.key
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca2.crt
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca2.crt -k other.key -r local.csr -l mismatch.crt
t_grep 'not made for the key' "$T_ERR" "key not matching the CSR: says so"
t_no_file mismatch.crt "key not matching the CSR: no certificate written"

# renewal with an old certificate of another key: a key problem (7)
openssl req -new -x509 -key other.key -subj /CN=other -days 1 -out other.crt 2>/dev/null
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca2.crt -K local.key -O other.crt \
	-k local.key -r local.csr -l renew.crt
t_grep 'does not belong to the old key local.key' "$T_ERR" "-K/-O mismatch: says so"
t_no_file renew.crt "-K/-O mismatch: no certificate written"

# mkrequest with a file key: inputs checked before the key is made; a key
# file written in this run is removed when the request then fails; a key
# file that was there before is never replaced nor removed (exit 9)
t_expect_exit 9 sa mkrequest -k fk2.key --subject /CN=fk2 -r fk2.csr \
	--challenge-file /nonexistent/challenge
t_grep '/nonexistent/challenge' "$T_ERR" "mkrequest, missing challenge file: named"
t_no_file fk2.key "mkrequest, missing challenge file: no key file left"
t_expect_exit 4 sa mkrequest -k fk3.key --subject 'CN=nolead' -r fk3.csr
t_no_file fk3.key "mkrequest, bad subject: no key file left"
t_expect_exit 9 sa mkrequest -k fk4.key --subject /CN=fk4 -r /nonexistent/fk4.csr
t_no_file fk4.key "mkrequest, request not writable: the new key file removed"
t_expect_exit 4 sa mkrequest -k fk5.key --subject /CN=fk5 --key-usage frobnicate -r fk5.csr
t_no_file fk5.key "mkrequest, bad key usage: the new key file removed"
cp local.key keep.key
t_expect_exit 9 sa mkrequest -k keep.key --subject /CN=keep -r /nonexistent/keep.csr
t_ok "mkrequest with an existing key, request not writable: the key stays" cmp keep.key local.key
t_expect_exit 9 sa mkrequest -k keep.key --key-type rsa:2048 --subject /CN=keep -r keep.csr
t_grep 'keep.key.*exists' "$T_ERR" "mkrequest --key-type over an existing key file: says it exists"
t_ok "mkrequest --key-type over an existing key file: the key stays" cmp keep.key local.key
t_no_file keep.csr "mkrequest --key-type over an existing key file: no request written"

# usage errors
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca2.crt -k local.key -l x.crt
t_expect_exit 4 sa frobnicate
# --connect-timeout / ConnectTimeout: whole seconds, 1 or more
t_expect_exit 4 sa getca -u "$CA_URL" -c ct.crt --connect-timeout 0
t_grep 'connect-timeout' "$T_ERR" "--connect-timeout 0: the option is named"
t_expect_exit 4 sa getca -u "$CA_URL" -c ct.crt --connect-timeout -5
t_expect_exit 4 sa getca -u "$CA_URL" -c ct.crt --connect-timeout soon
printf '[sscep]\nConnectTimeout = 0\n' >ct0.conf
t_expect_exit 4 sa getca -f ct0.conf -u "$CA_URL" -c ct.crt
t_grep 'ConnectTimeout' "$T_ERR" "ConnectTimeout = 0: the key is named"
printf '[sscep]\nConnectTimeout = -1\n' >ctneg.conf
t_expect_exit 4 sa getca -f ctneg.conf -u "$CA_URL" -c ct.crt
t_no_file ct.crt "bad connect timeouts: nothing written"
t_expect_exit 0 sa getca -u "$CA_URL" -c ct.crt --connect-timeout 3
printf '[sscep]\nConnectTimeout = 3\n' >ct3.conf
t_expect_exit 0 sa getca -f ct3.conf -u "$CA_URL" -c ct2.crt
t_expect_exit 9 sa enroll -u "$CA_URL" -c ca2.crt -k /nonexistent/key -r local.csr -l x.crt
t_grep '/nonexistent/key' "$T_ERR" "missing key file: named"

# GetCACaps answered with an HTTP error: 404 is a server without GetCACaps
# (no capabilities: GET, 3DES, SHA-1, and the enrollment goes on); 503 is
# an outage in front of the CA, not a CA without capabilities: exit 5
mkkey caps.key
mkcsr caps.key caps.csr "/CN=caps-status.example"
ca_restart -caps-status 404
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca2.crt -k caps.key -r caps.csr -l caps404.crt
t_file caps404.crt "GetCACaps 404: enrolled without capabilities"
t_is "$(ca_log_field -1 method)" GET "GetCACaps 404: PKIOperation by GET"
t_grep 'warning: the CA at http://127.0.0.1:[0-9]+/scep does not answer GetCACaps \(HTTP 404\): .*GET, 3DES and SHA-1.*lost: POST, AES, SHA-256' \
	"$T_ERR" "GetCACaps 404: a warning names the fallback and what was lost"
ca_restart -caps-status 503
t_expect_exit 5 sa enroll -u "$CA_URL" -c ca2.crt -k caps.key -r caps.csr -l caps503.crt
t_grep 'GetCACaps .*503' "$T_ERR" "GetCACaps 503: the outage is the error"
t_no_file caps503.crt "GetCACaps 503: no certificate written"
ca_restart -caps-status 502
t_expect_exit 5 sa enroll -u "$CA_URL" -c ca2.crt -k caps.key -r caps.csr -l caps502.crt
t_grep 'GetCACaps .*502' "$T_ERR" "GetCACaps 502 (a proxy's bad gateway): an outage too"
ca_stop

# a failInfoText with terminal controls (colour, a window-title sequence
# ending in BEL, a newline, the C1 CSI in UTF-8): shown escaped, never raw,
# by enroll and by getcert
ftext=$'\e[31mred\e]0;owned\a\nline2 \xc2\x9b2J'
ftext_shown='\("\\x1B\[31mred\\x1B\]0;owned\\x07\\x0Aline2 \\xC2\\x9B2J"\)'
# no_ctl FILE: no ESC, BEL or C1 CSI byte in FILE
no_ctl() {
	! LC_ALL=C grep -q "$(printf '\033')" "$1" && ! LC_ALL=C grep -q "$(printf '\007')" "$1" &&
		! LC_ALL=C grep -q "$(printf '\302\233')" "$1"
}
ca_new
ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c caf.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c caf.crt -k local.key -r local.csr -l failok.crt
ca_restart -fail badRequest -fail-text "$ftext"
t_expect_exit 2 sa enroll -u "$CA_URL" -c caf.crt -k local.key -r local.csr -l fail.crt
t_grep "failInfo badRequest $ftext_shown" "$T_ERR" "enroll FAILURE: the failInfoText shown escaped"
t_ok "enroll FAILURE: no control character reached stderr" no_ctl "$T_ERR"
t_expect_exit 2 sa getcert -u "$CA_URL" -c caf.crt -k local.key -l failok.crt \
	-s "$(serial_of failok.crt)" -w got.crt
t_grep "failInfo badRequest $ftext_shown" "$T_ERR" "getcert FAILURE: the failInfoText shown escaped"
t_ok "getcert FAILURE: no control character reached stderr" no_ctl "$T_ERR"
ca_stop

done_testing
