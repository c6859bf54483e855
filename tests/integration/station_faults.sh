#!/bin/bash
# station suite (issue 13): tokens that die do not take the others with
# them. Three SoftHSM2 tokens with their keys (--use-key) behind
# tests/p11shim, which fails or delays only one token's calls
# (P11SHIM_TOKEN):
# - one token hangs (every C_Sign of it sleeps 120 s, longer than
#   --deadline 4): the other two end ok, it ends failed with a timeout
#   reason, the run ends well before the card would have answered, and no
#   process of the run is left (by pid);
# - one token is pulled out mid-way (from its 6th call in the worker on,
#   every call about it fails: CKR_DEVICE_REMOVED): the others ok, it
#   failed, exit 1; put back (no shim), the next run enrolls it with
#   nothing in the way and skips the other two.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
: "${P11SHIM:?P11SHIM not set (meson sets it)}"
softhsm_tokens 3 st k1 || { echo "Bail out! tokens not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup
export P11SHIM_MODULE=$P11_MODULE
A=${TOK_SERIAL[1]} B=${TOK_SERIAL[2]} C=${TOK_SERIAL[3]}
SHIMMED=("${ST_OPTS[@]}")
for i in "${!SHIMMED[@]}"; do
	[ "${SHIMMED[$i]}" = "$P11_MODULE" ] && SHIMMED[$i]=$P11SHIM
done

# --- one token hangs ------------------------------------------------------------
t0=$(date +%s)
ST_OPTS_SAVE=("${ST_OPTS[@]}")
ST_OPTS=("${SHIMMED[@]}")
export P11SHIM_TOKEN=$B P11SHIM_DELAY=C_Sign:120000
t_expect_exit 1 prov --subject '/CN=h-{token_serial}' --key-label k1 --use-key \
	--deadline 4 --report hang.json
unset P11SHIM_TOKEN P11SHIM_DELAY
t1=$(date +%s)
t_canary_keep hang.json
t_is "$(rep hang.json "$A" state):$(rep hang.json "$C" state)" ok:ok "the two others end ok"
t_is "$(rep hang.json "$B" state)" failed "the hung token ends failed"
t_like "$(rep hang.json "$B" error)" '[Dd]eadline|[Tt]ime(d)? ?out|timeout' "its error names the timeout"
t_grep "^failed +token $B " "$T_OUT" "its failed line"
t_ok "the run ended long before the card would have answered ($((t1 - t0)) s, the card: 120 s)" \
	test $((t1 - t0)) -lt 60
left=$(marked_pids | tr '\n' ' ')
t_is "$left" "" "no process of the run left behind (pids: ${left:-none})"
for sn in "$A" "$C"; do
	tok_cert "$sn" "$sn.pem" k1
	t_ok "token $sn: its certificate verifies under the CA" ca_verify "$CA_CERT" "$sn.pem"
	t_is "$(tok_pub "$sn" k1)" "$(pub_of "$sn.pem")" "token $sn: for its key"
done

# --- one token pulled out mid-way ---------------------------------------------
export P11SHIM_TOKEN=$C P11SHIM_FAIL_AT=6 P11SHIM_FAIL_MODE=always P11SHIM_TRACE=$T_WORK/trace
t_expect_exit 1 prov --subject '/CN=p-{token_serial}' --key-label k1 --use-key --report pull.json
unset P11SHIM_TOKEN P11SHIM_FAIL_AT P11SHIM_FAIL_MODE P11SHIM_TRACE
t_canary_keep pull.json
t_is "$(rep pull.json "$A" state):$(rep pull.json "$B" state)" ok:ok "the two others end ok"
t_is "$(rep pull.json "$C" state)" failed "the pulled token ends failed"
t_like "$(rep pull.json "$C" error)" 'CKR_DEVICE_REMOVED|removed|token' "its error blames the token"
t_grep ' CKR_DEVICE_REMOVED injected target ' trace "the shim did pull it (injected calls in the trace)"
left=$(marked_pids | tr '\n' ' ')
t_is "$left" "" "no process of the run left behind (pids: ${left:-none})"

# --- put back: the next run enrolls it -------------------------------------------
ST_OPTS=("${ST_OPTS_SAVE[@]}")
t_expect_exit 0 prov --subject '/CN=p-{token_serial}' --key-label k1 --use-key --report back.json
t_canary_keep back.json
t_is "$(rep back.json "$C" state)" ok "the token put back is enrolled"
t_is "$(rep back.json "$A" state):$(rep back.json "$B" state)" skipped:skipped "the two others are skipped"
tok_cert "$C" c.pem k1
t_ok "its certificate verifies under the CA" ca_verify "$CA_CERT" c.pem
t_is "$(tok_pub "$C" k1)" "$(pub_of c.pem)" "for its key k1"
t_like "$(openssl x509 -in c.pem -noout -subject)" "CN *= *p-$C" "with the subject asked for"
t_is "$(tok_tool "$C" -O --type privkey | grep -c '^Private Key Object')" 1 "one private key in it, as before"
done_testing
