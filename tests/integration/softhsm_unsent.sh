#!/bin/bash
# softhsm suite (EC keys: quick to make, and the CA is never asked to issue
# here): a key generated in this run (--new-key) is removed from
# the token whenever no request reached the CA, and "-R" is advised only
# when one may have:
# - the message cannot be built (an EC encryption certificate given with
#   -e): the key goes, no -R advice;
# - the CA answers GetCACaps, then is down when the PKIOperation is sent
#   (connection refused): the key goes, no -R advice;
# - the PKIOperation went out whole and the connection broke before a
#   reply: the key stays, and -R is advised.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3

softhsm_new t1
pin_file
MOD=$P11_MODULE

# objects LABEL: how many objects labelled LABEL the token holds
objects() {
	p11_count t1 any "$1"
}

# no_resume_advice: stderr does not tell the user to resume with -R
no_resume_advice() {
	! grep -q -e '-R' "$T_ERR"
}

ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# --- an EC encryption certificate, issued by the CA itself (so that it is
#     a certificate the CA stands behind): the request cannot be encrypted
openssl ecparam -genkey -name prime256v1 -noout -out ec.key
openssl req -new -key ec.key -subj /CN=ec-ra -out ec.csr
openssl x509 -req -in ec.csr -CA "$CA_CERT" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
	-days 1 -out ec.crt 2>/dev/null
t_file ec.crt "an EC certificate issued by the test CA"
npki=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca.crt -e ec.crt --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=eck" --key-type ec:P-256 --subject /CN=eck.example \
	-l eck.crt
t_grep 'cannot encrypt the request to .*ec-ra.*needs an RSA key' "$T_ERR" \
	"EC -e: says the request cannot be encrypted to it"
t_grep 'no request reached the CA: the key "eck" generated in this run was removed' "$T_ERR" \
	"EC -e: says the new key was removed"
t_is "$(objects eck)" 0 "EC -e: no key left in the token"
t_ok "EC -e: no advice to resume with -R" no_resume_advice
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$npki" "EC -e: no PKIOperation reached the CA"
t_no_file eck.crt "EC -e: no certificate written"
ca_stop

# a one-shot server: answers GetCACaps, then either is gone ("down": its
# listening socket closed before the caps reply is sent) or takes the
# PKIOperation whole and closes the connection without a reply ("drop")
cat >oneshot.py <<'PY'
import socket, sys

portfile, mode = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
s.settimeout(60)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os
os.rename(portfile + ".tmp", portfile)

def read_request(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(65536)
        if not d:
            return data
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        d = c.recv(65536)
        if not d:
            break
        body += d
    return head

c, _ = s.accept()
read_request(c)
if mode == "down":
    s.close()
caps = b"POSTPKIOperation\nSHA-256\nAES\n"
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
          b"Connection: close\r\n\r\n" % len(caps) + caps)
c.close()
if mode == "drop":
    c, _ = s.accept()
    head = read_request(c)
    with open(portfile + ".req", "wb") as f:
        f.write(head.split(b"\r\n")[0] + b"\n")
    c.close()
    s.close()
PY

# oneshot MODE: start it; sets OS_URL and OS_PID
oneshot() {
	rm -f "os-$1.port"
	python3 oneshot.py "os-$1.port" "$1" &
	OS_PID=$!
	T_PIDS="$T_PIDS $OS_PID"
	_i=0
	while [ ! -s "os-$1.port" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	OS_URL=http://127.0.0.1:$(cat "os-$1.port")/scep
}

# --- the CA is down when the PKIOperation goes out: refused, nothing sent
oneshot down
t_expect_exit 5 sa enroll -u "$OS_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=downk" --key-type ec:P-256 --subject /CN=down.example \
	-l down.crt
t_grep 'PKIOperation request to .* failed' "$T_ERR" "CA down at PKIOperation: a network error"
t_grep 'no request reached the CA: the key "downk" generated in this run was removed' \
	"$T_ERR" "CA down at PKIOperation: says the new key was removed"
t_is "$(objects downk)" 0 "CA down at PKIOperation: no key left in the token"
t_ok "CA down at PKIOperation: no advice to resume with -R" no_resume_advice
wait "$OS_PID" 2>/dev/null

# --- the request went out, the connection broke: the CA may hold it
oneshot drop
t_expect_exit 5 sa enroll -u "$OS_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=dropk" --key-type ec:P-256 --subject /CN=drop.example \
	-l drop.crt
wait "$OS_PID" 2>/dev/null
t_grep '^POST /scep\?operation=PKIOperation' os-drop.port.req "the request reached the server"
t_grep 'stays in the token as pkcs11:.*object=dropk.*-R continues with it' "$T_ERR" \
	"connection broken after sending: the key stays, -R advised"
t_is "$(objects 'dropk~new')" 2 "connection broken after sending: the key pair is in the token (staged)"

done_testing
