#!/bin/bash
# server suite: transport options end to end: an HTTP proxy (-p, sscep's
# host:port form and a URL), a proxy that is down, the CA on [::1], the
# connect timeout (--connect-timeout, ConnectTimeout) against a loopback
# port that never completes a connection. Credentials in the proxy (-p, or
# http_proxy) and in the URL (-u) are used but never shown, even by -v -d.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

mkkey local.key
mkcsr local.key local.csr "/CN=proxy.example"
ca_start

# a forward proxy (scepca -proxy) on another loopback port, by pid
"$SCEPCA" -proxy -port-file proxy.port -log proxy.log >/dev/null 2>proxy.err &
PROXY_PID=$!
T_PIDS="$T_PIDS $PROXY_PID"
i=0
while [ ! -s proxy.port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
pport=$(sed -n 's/^port //p' proxy.port)

t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt -p "127.0.0.1:$pport"
t_grep '"op":"proxy".*GetCACert.*"status":200' proxy.log "getca went through the proxy (-p host:port)"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt -k local.key -r local.csr -l local.crt \
	-p "http://127.0.0.1:$pport"
t_ok "enrolled through the proxy (-p URL)" cert_has_key local.crt local.key
t_grep '"op":"proxy".*PKIOperation.*"status":200' proxy.log "the PKIOperation went through the proxy"
t_is "$(grep -c '"op":"proxy"' proxy.log)" "$(grep -c '"op"' "$CA_LOG")" "every request the CA saw came through the proxy"

# credentials in the proxy and in the URL: used, never shown (-v -d). They
# come from configuration files (Proxy =, URL =), so that the test's own
# command lines in the TAP output do not carry them either.
PXPW=$T_PROXY_PASS
URLPW=$T_URL_PASS
# no_secret DESC FILE...: none of the test's credentials in FILEs
no_secret() {
	_d=$1
	shift
	t_is "$(cat "$@" | grep -c -e "$PXPW" -e "$URLPW" -e pxuser -e scepuser)" 0 "$_d"
}
cred_url=http://scepuser:$URLPW@${CA_URL#http://}
printf '[sscep]\nURL = %s\nProxy = http://pxuser:%s@127.0.0.1:%s\n' "$CA_URL" "$PXPW" "$pport" >pxurl.conf
printf '[sscep]\nURL = %s\nProxy = pxuser:%s@127.0.0.1:%s\n' "$cred_url" "$PXPW" "$pport" >cred.conf
printf '[sscep]\nURL = %s\n' "$cred_url" >credurl.conf
t_expect_exit 0 sa getca -f pxurl.conf -c cacred.crt -v -d
no_secret "proxy URL with credentials: not in the output of -v -d" "$T_OUT" "$T_ERR"
mkcsr local.key cred.csr "/CN=cred.example"
t_expect_exit 0 sa enroll -f cred.conf -c cacred.crt -k local.key -r cred.csr -l cred.crt -v -d
t_ok "enrolled with credentials in -u and in sscep's -p form" cert_has_key cred.crt local.key
t_grep 'POST http://\*\*\*@127.0.0.1:[0-9]+/scep\?operation=PKIOperation' "$T_ERR" \
	"-d shows the URL with its credentials dropped"
no_secret "URL and proxy credentials: not in the output of -v -d" "$T_OUT" "$T_ERR"

# the proxy is down: a network error naming the proxy, nothing written
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null
rm -f ca2.crt
t_expect_exit 5 sa getca -u "$CA_URL" -c ca2.crt -p "127.0.0.1:$pport"
t_grep "proxy" "$T_ERR" "proxy down: the message names the proxy"
t_no_file ca2.crt "proxy down: no CA certificate written"
t_expect_exit 5 sa getca -f pxurl.conf -c ca2.crt -v -d
t_grep "through the proxy http://\*\*\*@127.0.0.1:$pport failed" "$T_ERR" \
	"proxy down: named without its credentials"
no_secret "proxy down: no credentials in the output" "$T_OUT" "$T_ERR"
# a proxy from the environment: curl reads it; it is never printed either
http_proxy="http://pxuser:$PXPW@127.0.0.1:$pport" t_expect_exit 5 sa getca -f credurl.conf \
	-c ca2.crt -v -d
t_grep "GetCACert request to http://\*\*\*@127.0.0.1" "$T_ERR" "http_proxy down: the request fails"
no_secret "http_proxy with credentials: not in the output" "$T_OUT" "$T_ERR"
ca_new

# the CA on IPv6 loopback
ca_start -6
t_like "$CA_URL" '^http://\[::1\]:' "CA listens on [::1]"
t_expect_exit 0 sa getca -u "$CA_URL" -c ca6.crt
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca6.crt -k local.key -r local.csr -l local6.crt
t_ok "enrolled over IPv6 loopback" cert_has_key local6.crt local.key
ca_new

# a port that never completes a connection: a listener with a full accept
# queue (backlog 0, filled by itself) drops further SYNs, so connecting
# times out as against a blackholed address; it stops by itself after 60 s
cat >blackhole.py <<'PY'
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % port)
time.sleep(60)
PY
python3 blackhole.py bh.port &
BH_PID=$!
T_PIDS="$T_PIDS $BH_PID"
i=0
while [ ! -s bh.port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
bh_url=http://127.0.0.1:$(cat bh.port)/scep
start=$(date +%s)
t_expect_exit 5 sa getca -u "$bh_url" -c bh.crt --connect-timeout 2
took=$(( $(date +%s) - start ))
t_between "$took" 1 10 "--connect-timeout 2: gave up after about 2 s, not 30 (took $took s)"
t_grep 'GetCACert request to .* failed.*([Tt]imeout|timed out)' "$T_ERR" "--connect-timeout: a timeout, named"
t_no_file bh.crt "--connect-timeout: nothing written"
printf '[sscep]\nURL = %s\nConnectTimeout = 2\n' "$bh_url" >ct.conf
start=$(date +%s)
t_expect_exit 5 sa getca -f ct.conf -c bh.crt
took=$(( $(date +%s) - start ))
t_between "$took" 1 10 "ConnectTimeout = 2: gave up after about 2 s (took $took s)"
# with -W, a connect that times out is tried again until the -W deadline
start=$(date +%s)
t_expect_exit 5 sa getca -u "$bh_url" -c bh.crt --connect-timeout 1 -W 4 -v
took=$(( $(date +%s) - start ))
t_between "$took" 3 12 "-W 4 --connect-timeout 1: retried until the deadline (took $took s)"
t_grep 'retrying' "$T_ERR" "-W: connect timeouts are retried"
kill "$BH_PID" 2>/dev/null
wait "$BH_PID" 2>/dev/null

done_testing
