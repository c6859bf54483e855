#!/bin/bash
# server suite: servers that misbehave on the wire (issue 10). getca and
# enroll against a test CA that resets the connection in the middle of its
# reply, dribbles the reply a byte at a time past the total timeout
# (--timeout), redirects in a loop, sends a reply larger than the 8 MiB cap,
# answers for another transaction, or serves HTTPS with a certificate for
# another name or an expired one. Each: its exit code, a message that says
# what happened and names the URL without its credentials, no certificate
# file written or changed, and an end within bounded time (the bounds are
# safety checks, generous enough for valgrind, not performance targets).
# HTTPS with the right name and the test CA's TLS bundle works.
# Under valgrind (SCEP_AGENT_WRAP set) a sample, as the transport code is
# the same for both: getca meets the wire misbehaviours only for the reset,
# enroll meets the refused TLS certificates not at all (getca does).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

sample=${SCEP_AGENT_WRAP:+1}
T_SAMPLED=

mkkey local.key 1024
mkcsr local.key local.csr "/CN=misbehave.example"
# one CA for the whole test, restarted with each misbehaviour (same dir and
# port); -allowrenew 0: requests it processed before do not block the DN
ca_start -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
cp ca.crt ca.orig

# URL credentials come from a configuration file, so that no command line
# in the TAP output carries them
URLPW=$T_URL_PASS
no_secret() {
	t_is "$(cat "$T_OUT" "$T_ERR" | grep -c -e "$URLPW" -e scepuser)" 0 "$1"
}
cred_conf() {
	printf '[sscep]\nURL = %s://scepuser:%s@127.0.0.1:%s/scep\n' "$1" "$URLPW" "$CA_PORT" >cred.conf
}

# since: seconds since t0 (set before each run)
since() {
	echo $(($(date +%s) - t0))
}

# check DESC OP EXIT PHRASE LO HI: after a run that began at t0, its exit
# code, its message (OP naming the URL without credentials, and PHRASE, an
# ERE), no credentials shown, bounded time
check() {
	local _d=$1 _op=$2 _code=$3 _phrase=$4 _lo=$5 _hi=$6 _el
	_el=$(since)
	[ "$T_RC" = "$_code" ] && t_pass "$_d: exit $_code" || {
		t_fail "$_d: exit $_code (got $T_RC)"
		t_show_output
	}
	t_grep "$_op (request to|reply from) $scheme://\*\*\*@127\.0\.0\.1:$CA_PORT/scep" "$T_ERR" \
		"$_d: the message names $_op and the URL without credentials"
	t_grep "$_phrase" "$T_ERR" "$_d: the message says '$_phrase'"
	no_secret "$_d: no credentials in the output"
	t_between "$_el" "$_lo" "$_hi" "$_d: ended in bounded time (${_el} s)"
}

# run CMD...: run, keeping exit code and output (check() asserts the code)
run() {
	T_RC=0
	"$@" >"$T_OUT" 2>"$T_ERR" || T_RC=$?
	t_canary_keep "$T_OUT" "$T_ERR"
}

# misbehave DESC STATUS EXIT PHRASE_GETCA PHRASE_ENROLL LO HI FLAGS...:
# restart the CA with FLAGS; getca and enroll (--timeout $TMO, enroll also
# with $EXTRA) each fail with EXIT and their phrase, nothing is written; the
# enrollment request reached the CA, which logged STATUS for it (the
# misbehaviour it applied).
scheme=http
TMO=30 EXTRA=
misbehave() {
	local _d=$1 _st=$2 _x=$3 _pg=$4 _pe=$5 _l=$6 _h=$7
	shift 7
	ca_restart -allowrenew 0 "$@"
	cred_conf http
	rm -f got.crt out.crt
	if [ -z "$sample" ] || [ -z "$T_SAMPLED" ]; then
		T_SAMPLED=1
		t0=$(date +%s)
		run sa getca -f cred.conf -c got.crt --timeout "$TMO"
		check "$_d, getca" GetCACert "$_x" "$_pg" "$_l" "$_h"
		t_no_file got.crt "$_d, getca: no CA certificate written"
	fi
	t0=$(date +%s)
	run sa enroll -f cred.conf -c ca.crt -k local.key -r local.csr -l out.crt \
		--timeout "$TMO" $EXTRA
	check "$_d, enroll" PKIOperation "$_x" "$_pe" "$_l" "$_h"
	t_no_file out.crt "$_d, enroll: no certificate written"
	t_is "$(ca_log_field -1 status)" "$_st" "$_d, enroll: the request reached the CA, which misbehaved"
	t_ok "$_d: the CA certificate file is unchanged" cmp -s ca.crt ca.orig
}

# a connection reset (TCP RST) after half the reply: exit 5; the enrollment
# request went out, so -R is the way on
misbehave "reset mid-reply" RESET 5 'reset by peer.*before the reply was complete' \
	'reset by peer.*may have reached the CA: run the same command with -R' 0 60 -reset-reply
# one byte every 100 ms (a reply of about 1 KB: minutes): --timeout 4 ends
# it (4 s: the GetCACaps before it must not time out on a busy machine).
# With -W 30 too: a timeout on the kept-alive connection of GetCACaps is
# not "no connectivity", so the request is not sent again
TMO=4 EXTRA='-W 30'
n=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
misbehave "dribbled reply" DRIBBLE 5 'timed out.*did not complete its reply within the --timeout of 4 s' \
	'timed out.*did not complete its reply within the --timeout of 4 s.*-R' 3 60 -dribble 100
t_ok "dribbled reply: not taken for a server that is down" \
	sh -c '! grep -q "is the server running" "$1"' sh "$T_ERR"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" $((n + 1)) \
	"dribbled reply, -W 30: the request was sent once, not again"
TMO=30 EXTRA=
# 9 MB with its Content-Length: refused at the cap, exit 6
misbehave "huge reply" HUGE 6 'larger than 8388608 bytes' 'larger than 8388608 bytes' 0 60 \
	-huge-reply 9000000
# 302 to the same URL, forever: exit 5 after 5 redirects
misbehave "redirect loop" REDIRECT 5 'more than 5 redirects.*redirect loop' \
	'more than 5 redirects.*redirect loop' 0 60 -redirect-loop
t_is "$(grep -c '"status":"REDIRECT"' "$CA_LOG")" $((sample ? 6 : 12)) \
	"redirect loop: 6 requests each for getca and enroll, then the client gave up"

# a reply for another transaction (getca is not concerned): exit 6, named
ca_restart -allowrenew 0 -wrong-tid
cred_conf http
rm -f out.crt
t0=$(date +%s)
run sa enroll -f cred.conf -c ca.crt -k local.key -r local.csr -l out.crt
check "reply for another transaction" PKIOperation 6 "transactionID not-[0-9A-F]+ is not ours" 0 60
t_no_file out.crt "reply for another transaction: no certificate written"

# --- HTTPS -------------------------------------------------------------------
scheme=https
bundle=$CA_DIR/tls-ca.pem
ca_restart -allowrenew 0 -tls
t_file "$bundle" "the test CA wrote its TLS CA certificate"
cred_conf https
rm -f got.crt out.crt
t_expect_exit 0 sa getca -f cred.conf --ca-bundle "$bundle" -c got.crt
t_ok "https, right name, the bundle: the CA certificate fetched" cmp -s got.crt ca.orig
t_expect_exit 0 sa enroll -f cred.conf --ca-bundle "$bundle" -c ca.crt -k local.key \
	-r local.csr -l out.crt
t_ok "https: enrolled" cert_has_key out.crt local.key
no_secret "https: no credentials in the output"
rm -f got.crt out.crt
t_expect_exit 5 sa getca -f cred.conf -c got.crt
t_grep 'CA bundle' "$T_ERR" "https without the bundle: refused, the message points at the CA bundle"
t_no_file got.crt "https without the bundle: nothing written"

# tls_refused DESC PHRASE FLAGS...: getca and enroll fail with exit 5 and
# PHRASE before any HTTP request reached the server (no fallback)
tls_refused() {
	local _d=$1 _p=$2 _n
	shift 2
	ca_restart -allowrenew 0 -tls "$@"
	rm -f got.crt out.crt
	_n=$(wc -l <"$CA_LOG")
	t0=$(date +%s)
	run sa getca -f cred.conf --ca-bundle "$bundle" -c got.crt
	check "$_d, getca" GetCACert 5 "$_p" 0 60
	t_no_file got.crt "$_d, getca: no CA certificate written"
	if [ -z "$sample" ]; then
		t0=$(date +%s)
		run sa enroll -f cred.conf --ca-bundle "$bundle" -c ca.crt -k local.key \
			-r local.csr -l out.crt
		check "$_d, enroll" GetCACaps 5 "$_p" 0 60
		t_no_file out.crt "$_d, enroll: no certificate written"
	fi
	t_is "$(wc -l <"$CA_LOG")" "$_n" "$_d: no HTTP request reached the server (no fallback)"
	t_ok "$_d: the CA certificate file is unchanged" cmp -s ca.crt ca.orig
}
tls_refused "https, certificate for another name" \
	"does not name the host 127\.0\.0\.1" -tls-name elsewhere.example
tls_refused "https, expired certificate" "certificate has expired.*clock" -tls-expired

# a reset mid-reply over TLS is a network error too
ca_restart -allowrenew 0 -tls -reset-reply
rm -f got.crt
t0=$(date +%s)
run sa getca -f cred.conf --ca-bundle "$bundle" -c got.crt
check "https, reset mid-reply" GetCACert 5 'before the reply was complete' 0 60
t_no_file got.crt "https, reset mid-reply: nothing written"
ca_stop

done_testing
