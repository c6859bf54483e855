#!/bin/bash
# agent suite (issue 12): what a device brings and what it runs in.
# AdoptCert: a key and certificate the device already has (made here with
# the one-shot enroll) become the profile's current pair at the first
# check, with no request sent; a certificate of another key is refused.
# MetricsFile: the Prometheus textfile names the profile's notAfter and
# last success. The clock: a check on a clock before the program's build
# date (faketime) or not synchronised (systemd's timesync flag missing)
# waits up to ClockWait, then decides nothing and exits 1 without
# contacting the CA; synchronised, it goes on. TokenTimeout bounds the
# job's token calls (a card that stops answering).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 faketime
softhsm_new t1
ca_start -challenge "$T_CHAL" -allowrenew 0
pin_file
secret_file chal "$T_CHAL"

# PKIOperations the CA saw (a job fetches the CA certificate each time)
pki_ops() { grep -c '"op":"PKIOperation"' "$CA_LOG"; }

# --- AdoptCert ----------------------------------------------------------------
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt -F "$(fingerprint "$CA_CERT")"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module /usr/lib/softhsm/libsofthsm2.so \
	--pin-file pin --challenge-file chal --new-key 'pkcs11:token=t1;object=dev' \
	--subject /CN=a1 -l adopt.crt
aser=$(serial_hex adopt.crt)
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module /usr/lib/softhsm/libsofthsm2.so \
	--pin-file pin --challenge-file chal --new-key 'pkcs11:token=t1;object=other' \
	--subject /CN=a1 -l other.crt

# a certificate of another key: refused, nothing stored
agent_profile a0 t1 "NewKey=pkcs11:token=t1;object=dev" "AdoptCert=$T_WORK/other.crt"
lines=$(pki_ops)
t_expect_exit 1 sa check "$AG_PROFILE"
t_grep "not the certificate of the key" "$T_ERR" "AdoptCert of another key: refused, saying so"
t_no_file "$AG_STORE/latest.crt" "AdoptCert of another key: nothing in StoreDir"

agent_profile a1 t1 "NewKey=pkcs11:token=t1;object=dev" "AdoptCert=$T_WORK/adopt.crt" \
	"MetricsFile=$T_WORK/metrics.prom"
P=$AG_PROFILE
S=$AG_STORE
lines=$(pki_ops)
t_expect_exit 0 sa check "$P"
t_grep "adopted" "$T_ERR" "AdoptCert: the check says it adopted the pair"
t_is "$(pki_ops)" "$lines" "AdoptCert: no request sent (no PKIOperation)"
t_is "$(readlink "$S/latest.crt" | sed 's#.*/##')" "$aser.crt" "AdoptCert: latest.crt is the adopted certificate"
t_ok "AdoptCert: ca.crt written" test -s "$S/ca.crt"
agent_status "$P"
t_is "$(st state):$(st serial)" "ok:$aser" "AdoptCert: status ok with the adopted serial"
t_expect_exit 0 sa check "$P"
t_is "$(pki_ops)" "$lines" "AdoptCert: the next check sends nothing either"

# --- MetricsFile --------------------------------------------------------------
na=$(date -u -d "$(openssl x509 -in adopt.crt -noout -enddate | sed 's/.*=//')" +%s)
t_file metrics.prom "MetricsFile written"
t_grep "^scep_agent_cert_not_after_seconds{profile=\"a1\"} $na\$" metrics.prom \
	"MetricsFile: notAfter of the profile's certificate"
t_grep '^scep_agent_last_success_seconds{profile="a1"} [1-9][0-9]*$' metrics.prom \
	"MetricsFile: last success recorded"
t_grep '^# TYPE scep_agent_cert_not_after_seconds gauge$' metrics.prom "MetricsFile: a gauge"

# --- the clock ----------------------------------------------------------------
agent_profile c1 t1 ClockWait=3
P=$AG_PROFILE
lines=$(ca_lines)
# (under ASan, libfaketime is preloaded before the ASan runtime: allowed)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	faketime -f '@1971-01-01 00:00:00' "$SCEP_AGENT" check "$P" >"$T_WORK/out" 2>"$T_ERR"
rc=$?
t_is "$rc" 1 "a clock in 1971: check exits 1"
t_grep "before this program was built" "$T_ERR" "a clock in 1971: it says why it waits"
t_grep "clock is not plausible" "$T_ERR" "a clock in 1971: after ClockWait, nothing decided"
t_is "$(ca_lines)" "$lines" "a clock in 1971: the CA was not contacted"
t_no_file "$AG_STORE/latest.crt" "a clock in 1971: nothing enrolled"

mkdir timesync
export SCEP_AGENT_TIMESYNC_DIR=$T_WORK/timesync
t_expect_exit 1 sa check "$P"
t_grep "systemd has not synchronised it yet" "$T_ERR" "not synchronised: it says why it waits"
t_is "$(ca_lines)" "$lines" "not synchronised: the CA was not contacted"
: >timesync/synchronized
t_expect_exit 0 sa check "$P"
t_ok "synchronised: the profile enrolls" cert_valid "$AG_STORE/latest.crt"
unset SCEP_AGENT_TIMESYNC_DIR

# --- TokenTimeout bounds a job's token calls --------------------------------
# a card that stops answering (the shim holds C_Sign for 60 s): the job
# ends at TokenTimeout, not when the card answers; nothing enrolled
export P11SHIM_MODULE=/usr/lib/softhsm/libsofthsm2.so
agent_profile slow t1 "PKCS11Module=$P11SHIM" TokenTimeout=1 "NewKey=pkcs11:token=t1;object=slow"
start=$(date +%s)
P11SHIM_DELAY=C_Sign:60000 t_expect_exit 1 sa check "$AG_PROFILE"
took=$(( $(date +%s) - start ))
t_between "$took" 0 30 "TokenTimeout 1: the job gave up in time (took $took s, the card 60)"
t_grep "did not answer|TokenTimeout|token-timeout" "$T_ERR" "TokenTimeout: the message says the token did not answer"
t_no_file "$AG_STORE/latest.crt" "TokenTimeout: nothing enrolled"
unset P11SHIM_MODULE

done_testing
