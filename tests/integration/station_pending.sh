#!/bin/bash
# station suite (issue 13): PENDING and --init. The test CA answers
# PENDING to the request and the first poll (-pending 2): provision with
# one poll (-n 1) reports the token pending, exit 3; --resume polls the
# same transaction and finishes it (the certificate in the token for the
# key the first run made, exit 0). Then --init: a blank SoftHSM2 slot is
# initialised with --so-pin-file (the user PIN from --pin-file, the label
# from --label) and enrolled in the same run.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_tokens 1 pd || { echo "Bail out! token not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0 -pending 2
station_setup
P=${TOK_SERIAL[1]}

# --- pending, then --resume ------------------------------------------------------
t_expect_exit 3 prov --subject '/CN=pend-{token_serial}' -t 1 -n 1 --report pend.json
t_canary_keep pend.json
t_is "$(rep pend.json "$P" state)" pending "the token is pending"
t_grep "^pending +token $P " "$T_OUT" "its pending line"
t_grep '1 token\(s\): 0 ok, 0 skipped, 1 pending, 0 failed' "$T_OUT" "the summary counts it pending"
t_is "$(rep pend.json "$P" serial)" null "no certificate serial yet"
tid=$(ca_log_field 1 tid)
t_ok "no certificate in the token yet" eval "! tok_cert '$P' none.pem"
t_expect_exit 0 prov --subject '/CN=pend-{token_serial}' -t 1 -n 3 --resume --report res.json
t_canary_keep res.json
t_is "$(rep res.json "$P" state)" ok "--resume: the token is enrolled"
t_is "$(ca_log_field -1 tid)" "$tid" "--resume polled the same transaction"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"msgType":"19"\|"msgType":19')" 1 \
	"one PKCSReq in all (the resume polled, it did not ask again)"
tok_cert "$P" p.pem
t_ok "the certificate verifies under the CA" ca_verify "$CA_CERT" p.pem
t_is "$(rep res.json "$P" serial)" "$(serial_hex p.pem)" "the report names it"
t_is "$(tok_pub "$P" scep-key)" "$(pub_of p.pem)" "for the key the first run made"
t_is "$(tok_tool "$P" -O --type privkey | grep -c '^Private Key Object')" 1 "one private key, no leftover"

# --- --init: a blank slot --------------------------------------------------------
ca_new
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup
secret_file sopin "$T_SOPIN"
before=$(pkcs11-tool --module "$P11_MODULE" -L 2>/dev/null | grep -c 'token initialized')
t_expect_exit 0 prov --init --so-pin-file sopin --label 'new-{n}' 'pkcs11:token=none-such' \
	--subject '/CN={token_label}/serialNumber={token_serial}' --report init.json
t_canary_keep init.json
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' init.json)
t_is "$n" 1 "one token in the report: the blank one (the filter matches nothing else)"
sn=$(json_get init.json 'd[0]["token_serial"]')
t_is "$(json_get init.json 'd[0]["state"]')" ok "it is enrolled"
t_like "$(json_get init.json 'd[0]["token_label"]')" '^new-1$' "labelled from --label"
tok_slots_read
t_ok "pkcs11-tool logs in to it with the user PIN" tok_tool "$sn" -O
tok_cert "$sn" i.pem
t_ok "its certificate verifies under the CA" ca_verify "$CA_CERT" i.pem
t_like "$(openssl x509 -in i.pem -noout -subject)" "CN *= *new-1" "subject from the new label"
t_is "$(tok_pub "$sn" scep-key)" "$(pub_of i.pem)" "for the key made in it"
t_ok "SO PIN set as asked (an SO login works)" eval "pkcs11-tool --module '$P11_MODULE' --slot '$(tok_slot "$sn")' --login --login-type so --so-pin '$T_SOPIN' --init-pin --new-pin '$T_PIN' >/dev/null 2>&1"
t_ok "one more token initialised than before" test \
	"$(pkcs11-tool --module "$P11_MODULE" -L 2>/dev/null | grep -c 'token initialized')" -gt "$before"
for f in "$T_OUT" "$T_ERR" init.json; do
	t_ok "no PIN or SO PIN in $(basename "$f")" eval "! grep -qF -e '$T_PIN' -e '$T_SOPIN' '$f'"
done
done_testing
