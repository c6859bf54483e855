#!/bin/bash
# faults suite (issue 13): the fault sweep over a station run. Three
# SoftHSM2 tokens (A, B, C) are provisioned side by side
# (`scep-agent provision`, RSA-2048 keys made in the tokens: the test CA
# encrypts its reply to the requester's key, RSA only) through
# tests/p11shim, which fails only token C's calls (P11SHIM_TOKEN): for a
# sample of k, C's k-th call and every later one answer
# CKR_DEVICE_REMOVED (a card pulled out at that point; each process
# counts its own calls about C: the scan's and C's worker's; k at every
# 32nd call of C's worker and its first C_GenerateKeyPair, C_Sign,
# C_Decrypt, C_CreateObject; in the plain build every 64th and the first
# C_GenerateKeyPair, C_Decrypt), and at every 64th once with
# CKR_DEVICE_MEMORY. For every point: the run ends
# (bounded: no hang), with exit 0 or 1; A and B end ok with certificates
# that verify under the CA and match their keys; no process is left; C
# ends failed or ok (a known bug, TODO: when C fails while the tokens
# are listed, it is left out of the report); and
# the next run on the healthy token enrolls C (or skips it, already
# enrolled) with one key pair under its label, A and B skipped.
# Each point starts from the same tokens (a copy).
#
# By hand: STATION_SWEEP_STEP=1 (every call) or STATION_SWEEP_POINTS="3 9"
# (these calls) with the meson environment (SCEP_AGENT, SCEPCA, P11SHIM).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3 timeout
: "${P11SHIM:?P11SHIM not set (meson sets it)}"
softhsm_tokens 3 sw || { echo "Bail out! tokens not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup
export P11SHIM_MODULE=$P11_MODULE
A=${TOK_SERIAL[1]} B=${TOK_SERIAL[2]} C=${TOK_SERIAL[3]}
REAL=("${ST_OPTS[@]}")
SHIM=("${ST_OPTS[@]}")
for i in "${!SHIM[@]}"; do
	[ "${SHIM[$i]}" = "$P11_MODULE" ] && SHIM[$i]=$P11SHIM
done
RUN=(--subject '/CN=sw-{token_serial}' --key-type rsa:2048 --deadline 120)
rm -rf snap && mkdir snap && cp -a tokens snap/
restore() {
	rm -rf tokens && cp -a snap/tokens .
}

# run_prov OUT REPORT OPTS...: provision (bounded by timeout), its exit
# code in RC
run_prov() {
	local out=$1 rp=$2
	shift 2
	RC=0
	STATION_MARK=$T_WORK timeout 300 "$SCEP_AGENT" provision "$@" "${RUN[@]}" --report "$rp" \
		>"$out.out" 2>"$out.err" || RC=$?
	t_canary_keep "$out.out" "$out.err" "$rp"
}

# the calls about C in a healthy run, per process: C's worker makes the
# most
P11SHIM_TOKEN=$C P11SHIM_TRACE=$T_WORK/trace run_prov healthy healthy.json "${SHIM[@]}"
t_is "$RC" 0 "a healthy run through the shim: exit 0"
t_is "$(rep healthy.json "$C" state)" ok "token C enrolled through the shim"
wpid=$(sed -n 's/.* target \([0-9]*\):[0-9]*$/\1/p' trace | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
n=$(grep -c " target $wpid:" trace)
t_ok "C's worker made calls about C ($n)" test "$n" -gt 10
restore

# a sample (CI's whole run must stay under 30 minutes): in the ASan
# build every 32nd call and the first key generation, signature,
# decryption and object creation; CKR_DEVICE_MEMORY once at every 64th
# (10 points). The plain build (the same code, no sanitizer to see more)
# takes every 64th call and the first key generation and decryption (5)
step=${STATION_SWEEP_STEP:-32}
funcs="C_GenerateKeyPair C_Sign C_Decrypt C_CreateObject"
if [ -z "${STATION_SWEEP_STEP:-}" ] && ! ldd "$SCEP_AGENT" 2>/dev/null | grep -q libasan; then
	step=64
	funcs="C_GenerateKeyPair C_Decrypt"
fi
pts=$(seq 1 "$step" "$n")
for f in $funcs; do
	pts="$pts $(awk -v f="$f" -v p="$wpid" '$2 == f && $0 ~ (" target " p ":") { sub(/.*:/, ""); print; exit }' trace)"
done
pts=$(printf '%s\n' ${STATION_SWEEP_POINTS:-$pts} | sort -nu | tr '\n' ' ')
diag "points (of $n calls about C in its worker): $pts"

for k in $pts; do
	for rv in CKR_DEVICE_REMOVED:always CKR_DEVICE_MEMORY:once; do
		[ "${rv#*:}" = once ] && [ $((k % 64)) != 1 ] && continue
		what="C's call $k ($(awk -v k="$k" -v p="$wpid" '$0 ~ (" target " p ":" k "$") { print $2 }' trace)) ${rv}"
		restore
		P11SHIM_TOKEN=$C P11SHIM_FAIL_AT=$k P11SHIM_FAIL_RV=${rv%:*} P11SHIM_FAIL_MODE=${rv#*:} \
			run_prov pt pt.json "${SHIM[@]}"
		ok=1
		case $RC in 0|1) ;; *) ok=0; diag "$what: exit $RC (124: hung)" ;; esac
		grep -q 'ERROR: AddressSanitizer\|runtime error:' pt.err && { ok=0; diag "$what: sanitizer report"; }
		for sn in "$A" "$B"; do
			if [ "$(rep pt.json "$sn" state)" != ok ] || ! tok_cert "$sn" x.pem ||
				! ca_verify "$CA_CERT" x.pem || [ "$(tok_pub "$sn" scep-key)" != "$(pub_of x.pem)" ]; then
				ok=0
				diag "$what: token $sn: $(rep pt.json "$sn" state), $(rep pt.json "$sn" error)"
			fi
		done
		cs=$(rep pt.json "$C" state)
		[ "$(marked_pids)" = "" ] || { ok=0; diag "$what: processes left: $(marked_pids | tr '\n' ' ')"; }
		# put back: the next run enrolls C
		RC0=$RC
		run_prov rt rt.json "${REAL[@]}"
		cs2=$(rep rt.json "$C" state)
		if [ "$RC" != 0 ] || { [ "$cs2" != ok ] && [ "$cs2" != skipped ]; } ||
			[ "$(rep rt.json "$A" state):$(rep rt.json "$B" state)" != skipped:skipped ] ||
			! tok_cert "$C" x.pem || ! ca_verify "$CA_CERT" x.pem ||
			[ "$(tok_pub "$C" scep-key)" != "$(pub_of x.pem)" ] ||
			[ "$(tok_tool "$C" -O --type privkey | grep -c '^Private Key Object')" != 1 ]; then
			ok=0
			diag "$what: the next run (exit $RC, C $cs2: $(rep rt.json "$C" error)) did not enroll C cleanly;" \
				"C's keys: $(tok_tool "$C" -O --type privkey | grep -c '^Private Key Object')" \
				"its output:" "$(grep -v '^$' rt.out | head -n 8)"
		fi
		if [ $ok = 1 ]; then
			t_pass "$what: A, B ok, nothing left running; the next run: C $cs2"
		else
			t_fail "$what"
			diag "stderr:" "$(tail -n 5 pt.err)"
		fi
		# a token whose slot or token information cannot be read when
		# the tokens are listed is left out (pkcs11/p11_list.c,
		# p11_tokens_get: "continue"): not reported at all
		[ "$cs" = missing ] && t_todo "a token that fails while the tokens are listed is not reported"
		case $cs in
		failed|ok) t_pass "$what: C reported $cs" ;;
		*) t_fail "$what: C reported failed or ok (it is '$cs', exit $RC0)" ;;
		esac
	done
done
done_testing
