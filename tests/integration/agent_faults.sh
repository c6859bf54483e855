#!/bin/bash
# faults suite (issue 12): the fault sweep over a daemon renewal. A
# profile's renewal by `scep-agent check` runs through tests/p11shim (the
# profile's PKCS11Module) once per sampled PKCS#11 call of the job,
# failing that call and every later one with CKR_DEVICE_REMOVED (a card
# pulled out), and a sample once with other CKRs; each point starts from
# the same token, StoreDir and StateDir (copies). For every point: no hang
# (bounded), no crash (exit 0 or 1; under ASan no report), latest.crt
# whole, valid and matching a private key in the token; and the next
# `check` on the healthy token completes the renewal with no staged key
# left over (KeepOld=0: one key). A sample (every 8th call and a few
# named ones): the SoftHSM2 flows' full sweep is tests/faults/sweep.sh.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 timeout
: "${P11SHIM:?P11SHIM not set (meson sets it)}"
softhsm_new t1
ca_start -challenge "$T_CHAL" -allowrenew 0 -valid 3600
agent_profile f1 t1 RenewAt=7200 KeepOld=0 "PKCS11Module=$P11SHIM"
P=$AG_PROFILE
S=$AG_STORE
ST=$AG_STATE
export P11SHIM_MODULE=/usr/lib/softhsm/libsofthsm2.so

t_expect_exit 0 sa check "$P"
t_ok "enrolled through the shim" cert_valid "$S/latest.crt"
base=$(serial_hex "$S/latest.crt")
rm -rf snap && mkdir snap && cp -a tokens "$S" "$ST" snap/
restore() {
	rm -rf tokens "$S" "$ST"
	cp -a snap/tokens . && cp -a "snap/$(basename "$S")" "$S" && cp -a "snap/$(basename "$ST")" "$ST"
}

# the calls of one renewal
P11SHIM_TRACE=$T_WORK/trace t_expect_exit 0 sa check "$P"
n=$(wc -l <trace)
t_ok "a healthy renewal makes PKCS#11 calls ($n)" test "$n" -gt 10
restore

# points: every 8th call, and the first key generation, signature,
# decryption, object creation and attribute change; a CKR sample
# (every 16th in the plain build: the ASan build sees the same code with
# more eyes, and CI's whole run must stay near 30 minutes)
step=8
ldd "$SCEP_AGENT" 2>/dev/null | grep -q libasan || step=16
agent_slow && step=24
pts=$(seq 1 "$step" "$n")
for f in C_GenerateKeyPair C_Sign C_Decrypt C_CreateObject C_SetAttributeValue C_DestroyObject; do
	pts="$pts $(awk -v f="$f" '$2 == f { print $1; exit }' trace)"
done
pts=$(printf '%s\n' $pts | sort -nu | tr '\n' ' ')
diag "points: $pts"
bad=0
for k in $pts; do
	for rv in CKR_DEVICE_REMOVED:always CKR_DEVICE_MEMORY:once; do
		[ "${rv#*:}" = once ] && [ $((k % 16)) != 1 ] && continue
		restore
		rc=0
		P11SHIM_FAIL_AT=$k P11SHIM_FAIL_RV=${rv%:*} P11SHIM_FAIL_MODE=${rv#*:} \
			timeout 120 ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" check "$P" >"$T_OUT" 2>"$T_ERR" || rc=$?
		t_canary_keep "$T_OUT" "$T_ERR"
		what="call $k $(awk -v k="$k" '$1 == k { print $2 }' trace) ${rv}"
		ok=1
		case $rc in 0|1) ;; *) ok=0; diag "$what: exit $rc" ;; esac
		grep -q 'ERROR: AddressSanitizer\|runtime error:' "$T_ERR" && { ok=0; diag "$what: sanitizer report"; }
		cert_valid "$S/latest.crt" && p11_key_for_cert t1 "$S/latest.crt" >/dev/null ||
			{ ok=0; diag "$what: latest.crt not valid or without its key"; }
		# a failed attempt's backoff (RetryMin 1 s, kept in whole seconds)
		[ $rc = 0 ] || sleep 1.1
		rc2=0
		${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" check "$P" >"$T_OUT" 2>"$T_ERR" || rc2=$?
		t_canary_keep "$T_OUT" "$T_ERR"
		now=$(serial_hex "$S/latest.crt")
		if [ $rc2 != 0 ] || [ "$now" = "$base" ] || ! p11_key_for_cert t1 "$S/latest.crt" >/dev/null ||
			[ "$(p11_ids t1 privkey | wc -l)" != 1 ]; then
			ok=0
			diag "$what: the next check (exit $rc2) did not complete the renewal cleanly:" \
				"$(tail -n 5 "$T_ERR")" "keys: $(p11_ids t1 privkey | tr '\n' ' ')"
		fi
		if [ $ok = 1 ]; then t_pass "$what: exit $rc, pair intact, the next check renewed"; else
			t_fail "$what"; bad=$((bad + 1)); fi
	done
done
diag "$bad failing points"

done_testing
