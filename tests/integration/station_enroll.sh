#!/bin/bash
# station suite (issue 13): `scep-agent provision` enrolls three SoftHSM2
# tokens side by side against the test CA (with a challenge): one line per
# token, the summary table, the JSON report (every field, checked against
# the certificate in each token), certificates that verify under the CA
# and match the token keys, keys sensitive and never extractable, exit 0;
# a second run skips all three (exit 0, nothing sent to the CA);
# --reenroll enrolls them again under new keys.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_tokens 3 st || { echo "Bail out! tokens not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup

# --- three tokens at once -------------------------------------------------------
t_expect_exit 0 prov --subject "/CN={token_serial}/O=Station" --report rep.json
t_canary_keep rep.json
t_is "$(grep -cE '^ok +token [0-9a-f]+ \(st[123]\)' "$T_OUT")" 3 "one 'ok' line per token"
t_grep '3 token\(s\): 3 ok, 0 skipped, 0 pending, 0 failed' "$T_OUT" "the summary counts 3 ok"
t_is "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' rep.json)" 3 \
	"the report holds 3 objects"
declare -A SER1
for i in 1 2 3; do
	sn=${TOK_SERIAL[$i]} lab=${TOK_LABEL[$i]}
	t_grep "^ok +$sn +$lab +[0-9a-f]+ " "$T_OUT" "$lab: a row in the summary table"
	t_is "$(rep rep.json "$sn" state)" ok "$lab: state ok"
	t_is "$(rep rep.json "$sn" error)" null "$lab: error null"
	t_is "$(rep rep.json "$sn" token_label)" "$lab" "$lab: token_label"
	uri=$(rep rep.json "$sn" key_uri)
	t_like "$uri" "^pkcs11:.*serial=$sn" "$lab: key_uri names the token by serial"
	t_like "$uri" "object=scep-key" "$lab: key_uri names the key (scep-key)"
	t_ok "$lab: key_uri carries no PIN" uri_no_pin "$uri"
	t_like "$(rep rep.json "$sn" seconds)" '^[0-9]+(\.[0-9]+)?$' "$lab: seconds, a number"
	t_ok "$lab: the token holds a certificate labelled scep-key" tok_cert "$sn" "c$i.pem"
	ser=$(serial_hex "c$i.pem")
	SER1[$i]=$ser
	t_like "$(rep rep.json "$sn" serial)" '^[0-9a-f]+$' "$lab: serial in lowercase hex"
	t_is "$(rep rep.json "$sn" serial)" "$ser" "$lab: serial is the certificate's"
	na=$(rep rep.json "$sn" not_after)
	t_like "$na" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$' \
		"$lab: not_after in RFC 3339"
	t_is "$(date -u -d "$na" +%s 2>/dev/null)" \
		"$(date -u -d "$(openssl x509 -in "c$i.pem" -noout -enddate | sed 's/.*=//')" +%s)" \
		"$lab: not_after is the certificate's"
	t_ok "$lab: the certificate verifies under the CA" ca_verify "$CA_CERT" "c$i.pem"
	t_like "$(openssl x509 -in "c$i.pem" -noout -subject)" "CN *= *$sn" "$lab: subject from the template"
	t_is "$(tok_pub "$sn" scep-key)" "$(pub_of "c$i.pem")" "$lab: the certificate's key is the token's key"
	t_like "$(tok_tool "$sn" -O --type privkey)" 'sensitive, always sensitive, never extractable' \
		"$lab: the private key is sensitive and was never extractable"
	t_is "$(tok_tool "$sn" -O --type privkey | grep -c '^Private Key Object')" 1 "$lab: one private key"
done
t_is "$(printf '%s\n' "${SER1[@]}" | sort -u | wc -l)" 3 "three distinct certificates"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"status":"SUCCESS"')" 3 \
	"the CA issued three certificates"
t_no_file "$T_WORK/home/.scep-agent" "nothing written under HOME"

# --- a second run skips all three ------------------------------------------------
n_ops=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
t_expect_exit 0 prov --subject "/CN={token_serial}/O=Station" --report rep2.json
t_canary_keep rep2.json
t_is "$(grep -cE '^skipped +token ' "$T_OUT")" 3 "second run: one 'skipped' line per token"
t_grep '3 token\(s\): 0 ok, 3 skipped, 0 pending, 0 failed' "$T_OUT" "second run: the summary"
for i in 1 2 3; do
	sn=${TOK_SERIAL[$i]}
	t_is "$(rep rep2.json "$sn" state):$(rep rep2.json "$sn" serial)" "skipped:${SER1[$i]}" \
		"${TOK_LABEL[$i]}: skipped, the report names the certificate it holds"
done
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$n_ops" "second run: nothing sent to the CA"

# --- --reenroll -----------------------------------------------------------------
t_expect_exit 0 prov --subject "/CN={token_serial}/O=Station" --reenroll --report rep3.json
t_canary_keep rep3.json
for i in 1 2 3; do
	sn=${TOK_SERIAL[$i]} lab=${TOK_LABEL[$i]}
	t_is "$(rep rep3.json "$sn" state)" ok "--reenroll: $lab ok"
	tok_cert "$sn" "r$i.pem"
	t_is "$(rep rep3.json "$sn" serial)" "$(serial_hex "r$i.pem")" "--reenroll: $lab: the token holds the new certificate"
	t_ok "--reenroll: $lab: a new certificate" test "$(serial_hex "r$i.pem")" != "${SER1[$i]}"
	t_is "$(tok_pub "$sn" scep-key)" "$(pub_of "r$i.pem")" "--reenroll: $lab: under the token's key"
	t_is "$(tok_tool "$sn" -O --type privkey | grep -c '^Private Key Object')" 1 \
		"--reenroll: $lab: the new key replaced the old"
done
for f in "$T_OUT" "$T_ERR" rep.json rep2.json rep3.json; do
	t_ok "no secret in $(basename "$f")" eval "! grep -qF -e '$T_PIN' -e '$T_CHAL' '$f'"
done
done_testing
