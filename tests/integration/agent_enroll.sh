#!/bin/bash
# agent suite (issue 12): the first enrollment of a profile from nothing
# with `scep-agent check` (no CA file, no key, no certificate; a SoftHSM2
# token, the test CA with a challenge, FingerPrint pinned): exit 0;
# StoreDir/<serial>.crt, ca.crt, latest.crt a symbolic link to it; the
# certificate in the token beside its key (same CKA_ID); `status --json`
# (every documented field); a second `check` sends nothing; `status` exit
# codes (--warn); the {hostname} template; FingerPrint as a digest name
# alone refused, TrustOnFirstUse pinning the first CA and refusing
# another; a profile whose lock another process holds is skipped (and
# says so), its state and store untouched.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 flock
softhsm_new t1
ca_start -challenge "$T_CHAL"

agent_profile gw1 t1 "SubjectAltName=DNS:gw1.example.org"
P=$AG_PROFILE
S=$AG_STORE
ST=$AG_STATE

# --- first enrollment -----------------------------------------------------
t_no_file "$S" "nothing in StoreDir before"
t_expect_exit 0 sa check "$P"
ser=$(serial_hex "$S/latest.crt")
t_like "$ser" '^[0-9a-f]+$' "latest.crt is a certificate (serial $ser)"
t_ok "latest.crt is a symbolic link" test -L "$S/latest.crt"
t_is "$(readlink "$S/latest.crt" | sed 's#.*/##')" "$ser.crt" "latest.crt points at <serial>.crt"
t_file "$S/$ser.crt" "StoreDir/<serial>.crt written"
t_ok "ca.crt is the CA certificate" cmp -s \
	<(openssl x509 -in "$S/ca.crt" -outform DER) <(openssl x509 -in "$CA_CERT" -outform DER)
t_ok "the certificate verifies under the CA" ca_verify "$CA_CERT" "$S/latest.crt"
t_like "$(openssl x509 -in "$S/latest.crt" -noout -subject)" 'CN *= *gw1' "the subject is the profile's"
t_like "$(openssl x509 -in "$S/latest.crt" -noout -ext subjectAltName 2>/dev/null)" 'DNS:gw1.example.org' \
	"the SubjectAltName is the profile's"
t_is "$(ca_log_field 1 msgType):$(ca_log_field 1 status):$(ca_log_field 1 challenge_ok)" \
	"19:SUCCESS:true" "the CA saw one PKCSReq with the challenge"
id=$(p11_key_for_cert t1 "$S/latest.crt")
t_like "$id" '^[0-9a-f]+$' "the token holds the certificate's key pair (CKA_ID $id)"
p11_cert_der t1 "$id" cert.der
t_ok "the token holds the certificate under the key's CKA_ID" cmp -s cert.der \
	<(openssl x509 -in "$S/latest.crt" -outform DER)
t_is "$(p11_ids t1 privkey | wc -l)" 1 "one private key in the token"
t_file "$ST/gw1.state" "StateDir/gw1.state written"

# --- status --json -----------------------------------------------------------
lines=$(ca_lines)
t_ok "status --json exits 0 (ok)" agent_status "$P"
t_is "$(json_get status.json 'len(d)')" 1 "status --json: an array of one object"
t_is "$(st profile)" gw1 "status: profile"
t_is "$(st state)" ok "status: state ok"
t_is "$(st serial)" "$ser" "status: serial, lowercase hex"
t_like "$(st subject)" 'CN *= *gw1' "status: subject"
na=$(date -u -d "$(openssl x509 -in "$S/latest.crt" -noout -enddate | sed 's/.*=//')" +%s)
t_is "$(date -u -d "$(st not_after)" +%s 2>/dev/null)" "$na" "status: not_after is the certificate's"
t_like "$(st not_after)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$' \
	"status: not_after in RFC 3339"
t_like "$(st key_uri)" '^pkcs11:.*token=t1' "status: key_uri names the token"
t_ok "status: key_uri carries no PIN" uri_no_pin "$(st key_uri)"
t_like "$(st next_check)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "status: next_check in RFC 3339"
nc=$(date -u -d "$(st next_check)" +%s)
t_between "$nc" "$(date +%s)" "$na" "status: next_check between now and the end"
t_like "$(st last_success)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "status: last_success set"
t_is "$(st last_error)" null "status: no last_error"
t_is "$(ca_lines)" "$lines" "status contacted no CA"
t_expect_exit 1 sa status --warn 400d "$P"

# --- a second check sends nothing ------------------------------------------
lines=$(ca_lines)
t_expect_exit 0 sa check "$P"
t_is "$(ca_lines)" "$lines" "a second check right away sends nothing to the CA"
t_is "$(serial_hex "$S/latest.crt")" "$ser" "the certificate is unchanged"
t_is "$(p11_ids t1 privkey | wc -l)" 1 "still one private key in the token"

# Under valgrind (CI's whole run must stay near 30 minutes) the test ends
# here: the template and TrustOnFirstUse sections each enroll with a new
# RSA key (about 20 s of SoftHSM2 each there); their code runs under
# valgrind in daemon_profile (templates) and daemon_job_ca (TOFU), and
# these sections run plain and under ASan/UBSan. The lock section follows
# them, so it goes too (state_lock: daemon_state under valgrind).
if agent_slow; then
	done_testing
	exit
fi

# --- templates: {hostname} ---------------------------------------------------
host=$(python3 -c 'import socket; print(socket.gethostname())')
agent_profile tmpl t1 "Subject=/CN={hostname}/O=Agent Test"
P2=$AG_PROFILE
t_expect_exit 0 sa check "$P2"
t_like "$(openssl x509 -in "$AG_STORE/latest.crt" -noout -subject -nameopt RFC2253)" \
	"CN=$host(,|$)" "Subject {hostname} is the host name ($host)"
t_ok "status of two profiles" agent_status "$P" "$P2"
t_is "$(st profile 0) $(st profile 1)" "gw1 tmpl" "status --json: one object per profile, in order"

# --- TrustOnFirstUse ----------------------------------------------------------
lines=$(ca_lines)
agent_profile tofu t1 FingerPrint=sha256
P3=$AG_PROFILE
t_expect_exit 1 sa check "$P3"
t_grep 'FingerPrint' "$T_ERR" "a digest name alone as FingerPrint: refused, naming the key"
t_grep 'TrustOnFirstUse' "$T_ERR" "the refusal names TrustOnFirstUse"
t_no_file "$AG_STORE/latest.crt" "refused: no certificate"
t_is "$(grep -c PKIOperation "$CA_LOG")" "$(head -n "$lines" "$CA_LOG" | grep -c PKIOperation)" \
	"refused: no request sent"
agent_profile tofu t1 FingerPrint= TrustOnFirstUse=yes
P3=$AG_PROFILE
t_expect_exit 0 sa check "$P3"
t_ok "TrustOnFirstUse: enrolled, verifying under the first CA" ca_verify "$CA_CERT" "$AG_STORE/latest.crt"
fp=$(fingerprint "$CA_CERT" | tr -d : | tr A-F a-f)
t_ok "TrustOnFirstUse: the CA's fingerprint recorded in the state" grep -qi "$fp" "$ST/tofu.state"
tofu_ser=$(serial_hex "$AG_STORE/latest.crt")
# another CA on another port: the pin holds
old_cert=$CA_CERT
ca_new
ca_start -challenge "$T_CHAL" -allowrenew 0
agent_profile tofu t1 FingerPrint= TrustOnFirstUse=yes
P3=$AG_PROFILE
t_expect_exit 1 sa check --force "$P3"
t_like "$(cat "$T_ERR")" '[Ff]ingerprint|pin|trust' "TrustOnFirstUse: another CA later is refused, saying why"
t_is "$(serial_hex "$AG_STORE/latest.crt")" "$tofu_ser" "TrustOnFirstUse: the pinned pair stays"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" 0 "TrustOnFirstUse: nothing sent to the other CA"

# --- the lock ----------------------------------------------------------------
cp "$ST/gw1.state" gw1.state.before
# the lock held by a process of the test's (the sleep holds the descriptor)
(exec 8>>"$ST/gw1.lock" && flock -x 8 && exec sleep 60) &
lockpid=$!
T_PIDS="$T_PIDS $lockpid"
held() { ! flock -n -x "$ST/gw1.lock" true; }
t_ok "the test holds gw1's lock" wait_for 5 held
lines=$(ca_lines)
start=$(date +%s)
T_RC=0
sa check --force "$P" >"$T_OUT" 2>"$T_ERR" || T_RC=$?
t_canary_keep "$T_OUT" "$T_ERR"
diag "check --force on a locked profile: exit $T_RC after $(($(date +%s) - start)) s"
t_grep 'lock|skip' "$T_ERR" "a locked profile is skipped, and the agent says so"
t_grep 'gw1' "$T_ERR" "the message names the profile"
t_is "$(ca_lines)" "$lines" "a locked profile: nothing sent"
t_ok "a locked profile: the state untouched" cmp -s gw1.state.before "$ST/gw1.state"
t_is "$(serial_hex "$S/latest.crt")" "$ser" "a locked profile: the certificate untouched"
kill "$lockpid"
wait "$lockpid" 2>/dev/null
t_expect_exit 0 sa check "$P"
t_is "$(serial_hex "$S/latest.crt")" "$ser" "the lock released: check runs, nothing due"

done_testing
