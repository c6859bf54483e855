#!/bin/bash
# agent suite (issue 12): renewal by `scep-agent check` at the renewal
# point (RenewAt longer than the certificate's lifetime: due at once): a
# new serial, a new key in the token (another CKA_ID) signing a
# RenewalReq, latest.crt switched, the previous pair retired as KeepOld
# says (1: one retired pair under a label of its own, the files beyond it
# pruned; 0: none); HookSuccess run with the documented environment; a
# failing HookSuccess does not fail the check; not due: nothing sent, and
# --force renews anyway; a changed Subject renews at the next check; an
# expired certificate falls back to a new enrollment (PKCSReq with the
# challenge) and says so; a CA failure runs HookFailure with
# SCEP_AGENT_ERROR.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_new t1
ca_start -challenge "$T_CHAL" -allowrenew 0 -valid 3600

# the hooks keep only the agent's variables: the test's own environment
# holds the canary secrets (T_PIN ...), which the canary test would find
HOOK="HookSuccess=\"env | grep ^SCEP_AGENT_ > $T_WORK/hook.env\""
HOOKF="HookFailure=\"env | grep ^SCEP_AGENT_ > $T_WORK/hookfail.env\""
agent_profile r1 t1 RenewAt=7200 KeepOld=1 "$HOOK" "$HOOKF"
P=$AG_PROFILE
S=$AG_STORE

# hookvar NAME: NAME's value in the success hook's environment
hookvar() {
	sed -n "s/^$1=//p" hook.env
}
# pkiop N FIELD: shorthand
pkiop() {
	ca_log_field "$@"
}
# store_crts: the <serial>.crt files of StoreDir, sorted
store_crts() {
	(cd "$S" && ls | grep -E '^[0-9a-f]+\.crt$' | grep -vx -e ca.crt -e latest.crt | sort | tr '\n' ' ')
}

# --- enrollment, then the renewals ----------------------------------------
t_expect_exit 0 sa check "$P"
s1=$(serial_hex "$S/latest.crt")
id1=$(p11_key_for_cert t1 "$S/latest.crt")
t_like "$id1" '^[0-9a-f]+$' "enrolled: serial $s1, key $id1"
t_is "$(hookvar SCEP_AGENT_SERIAL)" "$s1" "HookSuccess ran after the enrollment"
rm -f hook.env

t_expect_exit 0 sa check "$P"
s2=$(serial_hex "$S/latest.crt")
id2=$(p11_key_for_cert t1 "$S/latest.crt")
t_ok "renewed: a new serial ($s2)" test "$s2" != "$s1"
t_like "$id2" '^[0-9a-f]+$' "the new certificate's key pair is in the token ($id2)"
t_ok "renewed: a new key (another CKA_ID)" test "$id2" != "$id1"
t_is "$(readlink "$S/latest.crt" | sed 's#.*/##')" "$s2.crt" "latest.crt switched to the new certificate"
t_ok "the new certificate verifies under the CA" ca_verify "$CA_CERT" "$S/latest.crt"
t_is "$(pkiop -1 msgType):$(pkiop -1 signer):$(pkiop -1 status)" "17:issued:SUCCESS" \
	"the CA saw a RenewalReq signed by the old certificate"
p11_cert_der t1 "$id2" new.der
t_ok "the new certificate is in the token under the new key's CKA_ID" cmp -s new.der \
	<(openssl x509 -in "$S/latest.crt" -outform DER)
t_is "$(p11_ids t1 privkey | tr '\n' ' ')" "$(printf '%s\n' "$id1" "$id2" | sort | tr '\n' ' ')" \
	"KeepOld=1: the old key is kept beside the new one"
t_is "$(p11_count t1 privkey r1)" 1 "the profile's label names the new key only (the old one retired)"
t_is "$(store_crts)" "$(printf '%s\n' "$s1.crt" "$s2.crt" | sort | tr '\n' ' ')" \
	"KeepOld=1: StoreDir keeps the old certificate"

# the hook's environment
t_is "$(hookvar SCEP_AGENT_PROFILE)" r1 "hook: SCEP_AGENT_PROFILE"
t_is "$(hookvar SCEP_AGENT_SERIAL)" "$s2" "hook: SCEP_AGENT_SERIAL, lowercase hex"
t_is "$(hookvar SCEP_AGENT_CERT)" "$S/$s2.crt" "hook: SCEP_AGENT_CERT, the new certificate's path"
na=$(date -u -d "$(openssl x509 -in "$S/latest.crt" -noout -enddate | sed 's/.*=//')" +%s)
t_like "$(hookvar SCEP_AGENT_NOTAFTER)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}' \
	"hook: SCEP_AGENT_NOTAFTER in RFC 3339"
t_is "$(date -u -d "$(hookvar SCEP_AGENT_NOTAFTER)" +%s 2>/dev/null)" "$na" "hook: SCEP_AGENT_NOTAFTER is the certificate's"
t_like "$(hookvar SCEP_AGENT_KEY)" '^pkcs11:.*token=t1' "hook: SCEP_AGENT_KEY, a pkcs11: URI"
t_ok "hook: SCEP_AGENT_KEY without a PIN" uri_no_pin "$(hookvar SCEP_AGENT_KEY)"
t_ok "hook: no SCEP_AGENT_ERROR on success" sh -c '! grep -q ^SCEP_AGENT_ERROR= hook.env'

t_expect_exit 0 sa check "$P"
s3=$(serial_hex "$S/latest.crt")
id3=$(p11_key_for_cert t1 "$S/latest.crt")
t_ok "renewed again ($s3)" test "$s3" != "$s2"
t_is "$(p11_ids t1 privkey | tr '\n' ' ')" "$(printf '%s\n' "$id2" "$id3" | sort | tr '\n' ' ')" \
	"KeepOld=1: one retired key: the previous one; the one before is gone"
t_is "$(p11_ids t1 cert | tr '\n' ' ')" "$(printf '%s\n' "$id2" "$id3" | sort | tr '\n' ' ')" \
	"KeepOld=1: the certificate objects follow their keys"
t_is "$(store_crts)" "$(printf '%s\n' "$s2.crt" "$s3.crt" | sort | tr '\n' ' ')" \
	"KeepOld=1: StoreDir keeps the previous certificate only"

# KeepOld = 0, and a failing success hook
agent_profile r1 t1 RenewAt=7200 KeepOld=0 "HookSuccess=exit 7" "$HOOKF"
P=$AG_PROFILE
t_expect_exit 0 sa check "$P"
s4=$(serial_hex "$S/latest.crt")
id4=$(p11_key_for_cert t1 "$S/latest.crt")
t_ok "renewed with KeepOld=0 ($s4)" test "$s4" != "$s3"
t_is "$(p11_ids t1 privkey | tr '\n' ' ')" "$id4 " "KeepOld=0: only the new key in the token"
t_is "$(store_crts)" "$s4.crt " "KeepOld=0: only the new certificate in StoreDir"
t_grep '[Hh]ook.*\b7\b' "$T_ERR" "a failing hook: its exit status is logged"
t_no_file hookfail.env "a failing success hook does not run the failure hook"
t_ok "status after a failing hook: ok" agent_status --warn 10m "$P"
t_is "$(st state):$(st serial)" "ok:$s4" "status: ok with the new serial"

# --- not due: nothing; --force renews ---------------------------------------
agent_profile r1 t1 KeepOld=0 "$HOOK"
P=$AG_PROFILE
lines=$(ca_lines)
t_expect_exit 0 sa check "$P"
t_is "$(ca_lines):$(serial_hex "$S/latest.crt")" "$lines:$s4" "RenewAt 75% (default): not due, nothing sent"
t_expect_exit 0 sa check --force "$P"
s5=$(serial_hex "$S/latest.crt")
t_ok "--force renews now ($s5)" test "$s5" != "$s4"
t_ok "--force: a new key" test "$(p11_key_for_cert t1 "$S/latest.crt")" != "$id4"

# --- a changed Subject renews at the next check -----------------------------
agent_profile r1 t1 KeepOld=0 "Subject=/CN=r1-renamed/O=Agent Test" "$HOOK"
P=$AG_PROFILE
t_expect_exit 0 sa check "$P"
s6=$(serial_hex "$S/latest.crt")
t_ok "Subject changed: renewed at the next check ($s6)" test "$s6" != "$s5"
t_like "$(openssl x509 -in "$S/latest.crt" -noout -subject)" 'CN *= *r1-renamed' \
	"the new certificate has the new Subject"
t_is "$(p11_ids t1 privkey | wc -l)" 1 "KeepOld=0: one key"
lines=$(ca_lines)
t_expect_exit 0 sa check "$P"
t_is "$(ca_lines)" "$lines" "and then nothing is due"

# --- an expired certificate: a new enrollment -------------------------------
# a lifetime the enrollment outlives (RSA key generation in SoftHSM2 takes
# about 20 s under valgrind), then wait until it has expired
life=6
agent_slow && life=90
ca_restart -challenge "$T_CHAL" -allowrenew 0 -valid $life
agent_profile x1 t1 "$HOOK"
P=$AG_PROFILE
XS=$AG_STORE
t_expect_exit 0 sa check "$P"
xs1=$(serial_hex "$XS/latest.crt")
end=$(date -u -d "$(openssl x509 -in "$XS/latest.crt" -noout -enddate | sed 's/.*=//')" +%s)
now=$(date +%s)
[ "$end" -ge "$now" ] && sleep $((end - now + 2))
t_ok "the certificate has expired" sh -c "! openssl x509 -in '$XS/latest.crt' -noout -checkend 0"
ca_restart -challenge "$T_CHAL" -allowrenew 0 -valid 3600
t_expect_exit 0 sa check "$P"
t_grep 'expired' "$T_ERR" "an expired certificate: the agent says so"
t_grep 'enrol' "$T_ERR" "and says it enrolls anew"
t_is "$(pkiop -1 msgType):$(pkiop -1 challenge_ok):$(pkiop -1 status)" "19:true:SUCCESS" \
	"a new enrollment: PKCSReq with the challenge"
xs2=$(serial_hex "$XS/latest.crt")
t_ok "a new, valid certificate ($xs2)" sh -c "test '$xs2' != '$xs1' && openssl x509 -in '$XS/latest.crt' -noout -checkend 60"
t_like "$(p11_key_for_cert t1 "$XS/latest.crt")" '^[0-9a-f]+$' "its key is in the token"

# --- a CA failure: HookFailure with SCEP_AGENT_ERROR -------------------------
ca_restart -fail badRequest -fail-text 'no more certificates today\tomorrow'
agent_profile r1 t1 KeepOld=0 "Subject=/CN=r1-renamed/O=Agent Test" "$HOOK" "$HOOKF"
P=$AG_PROFILE
rm -f hook.env
t_expect_exit 1 sa check --force "$P"
t_file hookfail.env "HookFailure ran"
t_is "$(sed -n 's/^SCEP_AGENT_PROFILE=//p' hookfail.env)" r1 "failure hook: SCEP_AGENT_PROFILE"
t_like "$(sed -n 's/^SCEP_AGENT_ERROR=//p' hookfail.env)" 'badRequest|no more certificates' \
	"failure hook: SCEP_AGENT_ERROR says what the CA said"
# the CA's text escaped once (a backslash as \\), not twice
t_ok "failure hook: the CA's text escaped once" \
	grep -qF 'today\\tomorrow)' hookfail.env
t_no_file hook.env "the success hook did not run"
t_is "$(serial_hex "$S/latest.crt")" "$s6" "a failed renewal: the current certificate stays"
t_ok "a failed renewal: the current key stays" p11_key_for_cert t1 "$S/latest.crt"

done_testing
