#!/bin/bash
# agent suite (issue 12): CA rollover through GetNextCACert. The test CA's
# own certificate ends soon (-ca-valid) and it offers a rollover CA
# (-next-ca). The first `check` enrolls and, the CA being near its end,
# fetches the next CA certificate, verifies it against the anchor (the
# pinned FingerPrint) and keeps it: StoreDir/next-ca.crt, its SHA-256
# fingerprint in the state and shown by status. The CA then switches to
# the next CA early (-next-ca-current) while the old one is still valid:
# a renewal (--force) still verifies (the kept CA is trusted alongside the
# anchor). Once the old CA certificate has expired, a renewal makes the
# next CA the anchor: StoreDir/ca.crt is the new CA, the new certificate
# verifies under it, status shows the new fingerprint.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_new t1
# the old CA must outlive the first enrollment and the early renewal (an
# RSA key generation in SoftHSM2 takes about 20 s under valgrind each)
cav=40
agent_slow && cav=150
ca_start -challenge "$T_CHAL" -allowrenew 0 -next-ca -ca-valid $cav
OLD=$CA_CERT
NEXT=$CA_DIR/next-ca.pem
agent_profile ro t1 KeepOld=0
P=$AG_PROFILE
S=$AG_STORE
ST=$AG_STATE
hexfp() { fingerprint "$1" | tr -d : | tr A-F a-f; }
NFP=$(hexfp "$NEXT")
OFP=$(hexfp "$OLD")
# shows FILE FP: FILE holds fingerprint FP (hex, with or without colons, any case)
shows() {
	tr -d : <"$1" | tr A-F a-f | grep -q "$2"
}
# status_all: status --json and the text status, into status.all
status_all() {
	agent_status "$P"
	{ cat status.json; sa status "$P" 2>&1; } >status.all
}

# --- enrollment; the next CA fetched and kept ------------------------------
t_expect_exit 0 sa check "$P"
t_ok "enrolled under the current CA" ca_verify "$OLD" "$S/latest.crt"
t_grep '"op":"GetNextCACert"' "$CA_LOG" "the CA near its end: GetNextCACert asked"
t_ok "StoreDir/next-ca.crt is the next CA" cmp -s <(openssl x509 -in "$S/next-ca.crt" -outform DER 2>/dev/null) \
	<(openssl x509 -in "$NEXT" -outform DER)
t_ok "StoreDir/ca.crt still the current CA" cmp -s <(openssl x509 -in "$S/ca.crt" -outform DER 2>/dev/null) \
	<(openssl x509 -in "$OLD" -outform DER)
t_ok "the next CA's fingerprint is in the state" shows "$ST/ro.state" "$NFP"
status_all
t_ok "status shows the next CA's fingerprint" shows status.all "$NFP"
t_is "$(st state)" ok "status: ok"

# --- the CA switches early: still verifies ------------------------------------
ca_restart -challenge "$T_CHAL" -allowrenew 0 -next-ca -next-ca-current
s1=$(serial_hex "$S/latest.crt")
t_expect_exit 0 sa check --force "$P"
s2=$(serial_hex "$S/latest.crt")
t_ok "renewed from the next CA while the old one is valid ($s1 -> $s2)" test "$s2" != "$s1"
t_ok "the new certificate verifies under the next CA" ca_verify "$NEXT" "$S/latest.crt"
t_like "$(openssl x509 -in "$S/latest.crt" -noout -issuer)" 'next' "issued by the next CA"

# --- the old CA expires: the next one becomes the anchor ----------------------------
end=$(date -u -d "$(openssl x509 -in "$OLD" -noout -enddate | sed 's/.*=//')" +%s)
now=$(date +%s)
[ "$end" -ge "$now" ] && sleep $((end - now + 2))
t_ok "the old CA certificate has expired" sh -c "! openssl x509 -in '$OLD' -noout -checkend 0"
t_expect_exit 0 sa check --force "$P"
s3=$(serial_hex "$S/latest.crt")
t_ok "renewed after the old CA's end ($s2 -> $s3)" test "$s3" != "$s2"
t_ok "the certificate verifies under the new anchor" ca_verify "$NEXT" "$S/latest.crt"
t_ok "StoreDir/ca.crt is now the next CA" cmp -s <(openssl x509 -in "$S/ca.crt" -outform DER 2>/dev/null) \
	<(openssl x509 -in "$NEXT" -outform DER)
t_ok "the state's anchor is the next CA" shows "$ST/ro.state" "$NFP"
status_all
t_ok "status shows the new anchor's fingerprint" shows status.all "$NFP"
t_is "$(st state):$(st serial)" "ok:$s3" "status: ok, the new serial"
t_ok "the key is in the token" p11_key_for_cert t1 "$S/latest.crt"
lines=$(ca_lines)
t_expect_exit 0 sa check "$P"
t_is "$(ca_lines)" "$lines" "then nothing is due"
diag "old CA $OFP, next CA $NFP"

done_testing
