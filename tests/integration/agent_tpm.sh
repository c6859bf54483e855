#!/bin/bash
# tpm + agent suites (issue 12): a gateway's profile on its TPM. A bare
# swtpm (127.0.0.1, no resource manager), its token made with init-token;
# a profile with TPM = yes, TCTI and TPMStore: `check` enrolls with a key
# generated in the TPM, `check --force` renews with a new one (the job's
# child sets up tpm2-pkcs11 itself: the scheduler never does), the TPM
# holds nothing loaded afterwards (the child flushed what tpm2-pkcs11
# left), and `status` reads it without the TPM.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

tpm_fixture
t_expect_exit 0 sa init-token "${TPM[@]}" --label gw --so-pin-file sopin --pin-file pin
ca_start -challenge "$T_CHAL" -allowrenew 0
agent_profile gw gw PKCS11Module= TPM=yes "TCTI=$TPM_TCTI" "TPMStore=$TPM_STORE" \
	"NewKey=pkcs11:token=gw;object=device" KeepOld=1
P=$AG_PROFILE
S=$AG_STORE

# tpm2-pkcs11's key objects on the token (pkcs11-tool on the same store)
tpm_keys() { tpm_tool --login --pin "$(cat pin)" --token-label gw -O --type privkey 2>/dev/null | grep -c '^Private Key Object'; }
transient() { tpm_cmd tpm2_getcap handles-transient | grep -c '^- 0x'; }

t_expect_exit 0 sa check "$P"
t_ok "enrolled: latest.crt valid" cert_valid "$S/latest.crt"
s1=$(serial_hex "$S/latest.crt")
t_ok "the certificate verifies under the CA" ca_verify "$CA_CERT" "$S/latest.crt"
t_is "$(tpm_keys)" 1 "one key in the TPM token"
t_is "$(transient)" 0 "nothing left loaded in the TPM after the job"

t_expect_exit 0 sa check --force "$P"
s2=$(serial_hex "$S/latest.crt")
t_ok "renewed: a new serial ($s1 -> $s2)" test "$s1" != "$s2"
t_is "$(readlink "$S/latest.crt" | sed 's#.*/##')" "$s2.crt" "latest.crt switched"
t_is "$(tpm_keys)" 2 "two keys in the TPM token: the new one and the retired one (KeepOld=1)"
t_is "$(transient)" 0 "nothing left loaded in the TPM after the renewal"
t_is "$(ca_log_field 2 msgType):$(ca_log_field 2 signer)" "17:issued" \
	"the renewal: RenewalReq signed by the certificate the TPM key holds"

agent_status "$P"
t_is "$(st state):$(st serial)" "ok:$s2" "status: ok, the new serial"
t_like "$(st key_uri)" 'token=gw' "status: the key's URI names the TPM token"

tpm_stop
done_testing
