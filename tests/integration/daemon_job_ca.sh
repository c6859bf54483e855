#!/bin/bash
# server suite: the daemon job's CA step (agent/daemon/job_ca.c) through
# tests/integration/daemon_job_ca.c against the test CA: no anchor refused,
# TrustOnFirstUse pins the first reply, a pin (FingerPrint or the state's)
# is checked, StoreDir/ca.crt holds only what chains to the anchor, and
# the rollover: a CA near its end offering GetNextCACert gives the next CA
# (verified, kept as next-ca.crt, its fingerprint reported); a CA that
# switched early verifies with the kept rollover CA while the old anchor
# stays recorded; a far-off CA end fetches nothing.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

: "${DAEMON_JOB_CA:?DAEMON_JOB_CA: the driver}"
# under tests/run.sh valgrind the driver runs under valgrind too
jobca() { ${SCEP_AGENT_WRAP:-} "$DAEMON_JOB_CA" "$@"; }

hexfp() { fingerprint "$1" | tr -d : | tr 'A-F' 'a-f'; }
val() { sed -n "s/^$1=//p" "$T_OUT"; }

# --- a CA far from its end, no rollover offered
ca_start
fp=$(hexfp "$CA_CERT")
t_expect_exit 1 jobca "$CA_URL" store0
t_grep "no CA anchor: set FingerPrint" "$T_ERR" "no pin and no TrustOnFirstUse: refused, saying what to set"
t_no_file store0/ca.crt "nothing written without an anchor"

t_expect_exit 0 jobca "$CA_URL" store1 -tofu
t_is "$(val ca_fp)" "$fp" "TrustOnFirstUse pins the first reply's CA (SHA-256, lowercase hex)"
t_grep "TrustOnFirstUse: pinned the CA certificate .*$fp" "$T_ERR" "and says so, naming the fingerprint"
t_is "$(val next_ca_fp)" "" "no rollover CA for a CA 10 years from its end"
t_is "$(openssl x509 -in store1/ca.crt -noout -fingerprint -sha256 | sed 's/.*=//')" \
	"$(fingerprint "$CA_CERT")" "ca.crt holds the anchor"

t_expect_exit 0 jobca "$CA_URL" store1 -state "$fp"
t_is "$(val ca_fp)" "$fp" "the state's pin is checked and kept"
t_expect_exit 0 jobca "$CA_URL" store1 -pin "$(fingerprint "$CA_CERT" sha1)"
t_is "$(val ca_fp)" "$fp" "a FingerPrint of another digest: the anchor recorded as SHA-256"

wrong=$(wrong_fingerprint "$CA_CERT" | tr -d :)
cp store1/ca.crt ca.before
t_expect_exit 1 jobca "$CA_URL" store1 -state "$wrong"
t_grep "pinned fingerprint" "$T_ERR" "a reply that does not match the state's pin is refused"
t_ok "ca.crt unchanged after a refused reply" cmp -s ca.before store1/ca.crt
t_expect_exit 1 jobca "$CA_URL" store1 -pin "$wrong" -state "$fp"
t_grep "pinned fingerprint $wrong" "$T_ERR" "FingerPrint comes first: the message names it"
ca_new

# --- a CA near its end offering GetNextCACert (-ca-valid: 10 days left)
ca_start -next-ca -ca-valid 864000
fp=$(hexfp "$CA_CERT")
t_expect_exit 0 jobca "$CA_URL" store2 -state "$fp"
nfp=$(hexfp "$CA_DIR/next-ca.pem")
t_is "$(val ca_fp)" "$fp" "the anchor stays the current CA"
t_is "$(val next_ca_fp)" "$nfp" "the rollover CA is fetched and reported"
t_is "$(hexfp store2/next-ca.crt)" "$nfp" "kept as next-ca.crt"
t_grep "rollover certificate \(SHA-256 $nfp" "$T_ERR" "and logged"
# a kept one is not fetched again
n=$(grep -c GetNextCACert "$CA_LOG" || true)
t_expect_exit 0 jobca "$CA_URL" store2 -state "$fp" -next "$nfp"
t_is "$(val next_ca_fp)" "$nfp" "the kept rollover CA is reported again"
t_is "$(grep -c GetNextCACert "$CA_LOG" || true)" "$n" "and not fetched again"
# RenewAt as a time: 5 days before the end is not yet due... but 30 days always is
t_expect_exit 0 jobca "$CA_URL" store3 -state "$fp" -before 432000
t_is "$(val next_ca_fp)" "$nfp" "within 30 days of the CA's end the next CA is looked for whatever RenewAt says"

# --- the CA switched early: GetCACert gives the rollover CA
ca_restart -next-ca -next-ca-current
t_expect_exit 0 jobca "$CA_URL" store2 -state "$fp" -next "$nfp"
t_is "$(val pin)" "$nfp" "the kept rollover CA verifies the switched CA"
t_is "$(val ca_fp)" "$fp" "the old anchor stays recorded until it expires"
t_is "$(val next_ca_fp)" "$nfp" "the rollover CA stays kept alongside"
t_is "$(hexfp store2/ca.crt)" "$nfp" "ca.crt now holds the rollover CA"
t_expect_exit 1 jobca "$CA_URL" store4 -state "$fp"
t_grep "pinned fingerprint" "$T_ERR" "without the kept rollover CA the switched CA is refused"
ca_new

# --- the old anchor expires: the rollover CA becomes the anchor
ca_start -next-ca -ca-valid 3
fp=$(hexfp "$CA_CERT")
nfp=$(hexfp "$CA_DIR/next-ca.pem")
t_expect_exit 0 jobca "$CA_URL" store5 -state "$fp"
t_is "$(val next_ca_fp)" "$nfp" "a CA seconds from its end: the rollover CA is kept"
t_file store5/anchor.crt "the anchor's certificate is kept beside it"
sleep 4
ca_restart -next-ca -next-ca-current
t_expect_exit 0 jobca "$CA_URL" store5 -state "$fp" -next "$nfp"
t_is "$(val ca_fp)" "$nfp" "the old anchor expired: the rollover CA is the anchor"
t_is "$(val next_ca_fp)" "" "and no longer reported as kept alongside"
t_grep "is the anchor from now on" "$T_ERR" "the switch is logged"
t_expect_exit 0 jobca "$CA_URL" store5 -pin "$(fingerprint "$CA_DIR/ca.pem")" -state "$nfp"
t_is "$(val ca_fp)" "$nfp" "a FingerPrint of the old CA: the rollover CA that took over still holds"
t_expect_exit 1 jobca "$CA_URL" store1 -pin "$(fingerprint "$CA_DIR/ca.pem")" -state "$nfp"
t_grep "pinned fingerprint" "$T_ERR" "but a state pin that is no kept rollover CA does not outlive FingerPrint"
ca_stop

done_testing
