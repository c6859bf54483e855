#!/bin/bash
# station suite (issue 13): `scep-agent provision` templates and CSV, on
# three SoftHSM2 tokens with their keys made beforehand (--use-key): two
# labelled "twin", one "solo1". --subject and --san with {token_serial},
# {token_label}, {n} (--first 7) and {csv:COLUMN}; each token's PIN and
# challenge from the CSV (no --pin-file, no --challenge-file), a wrong
# challenge for solo1: that token fails (the CA refuses it), the twins
# are enrolled, exit 1; a CSV readable by others is refused. Then a
# filter URI (token=twin) selects 2 of the 3 tokens.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_tokens 2 =twin k1 && softhsm_tokens 1 solo k1 || { echo "Bail out! tokens not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup
# no --pin-file, no --challenge-file: the CSV gives them
ST_OPTS=(-u "$CA_URL" -c "$T_WORK/ca.pem" -F "$(fingerprint "$CA_CERT")" --module "$P11_MODULE")
T1=${TOK_SERIAL[1]} T2=${TOK_SERIAL[2]} S1=${TOK_SERIAL[3]}

# a quoted field (RFC 4180) with a comma in it
(umask 077 && {
	echo 'token_serial,dept,host,pin,challenge'
	echo "$T1,\"Ops, East\",alpha,$T_PIN,$T_CHAL"
	echo "$T2,Lab,beta,$T_PIN,$T_CHAL"
	echo "$S1,Lab,gamma,$T_PIN,wrongChal0"
} >tokens.csv)

TPL=(--subject '/CN={token_label}-{n}/serialNumber={token_serial}/OU={csv:dept}'
	--san 'DNS:{csv:host}.example.org' --san 'DNS:n{n}.example.org'
	--first 7 --csv tokens.csv --key-label k1 --use-key)

cp tokens.csv open.csv && chmod 644 open.csv
t_expect_exit 4 prov "${TPL[@]/tokens.csv/open.csv}" --report rep0.json
t_like "$(cat "$T_ERR")" 'open\.csv.*(readable|mode|0600)' "a CSV with PINs readable by others is refused, named"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" 0 "nothing was sent"
rm -f open.csv  # an input with secrets: not for the canary test to find

t_expect_exit 1 prov "${TPL[@]}" --report rep.json
t_canary_keep rep.json
t_grep '3 token\(s\): 2 ok, 0 skipped, 0 pending, 1 failed' "$T_OUT" "summary: 2 ok, 1 failed"
declare -A N
for sn in "$T1" "$T2"; do
	t_is "$(rep rep.json "$sn" state)" ok "twin $sn: ok (its PIN and challenge from the CSV)"
	tok_cert "$sn" "$sn.pem" k1
	t_ok "twin $sn: its certificate verifies under the CA" ca_verify "$CA_CERT" "$sn.pem"
	t_is "$(rep rep.json "$sn" serial)" "$(serial_hex "$sn.pem")" "twin $sn: report serial is the token's certificate's"
	t_is "$(tok_pub "$sn" k1)" "$(pub_of "$sn.pem")" "twin $sn: certified key is the pre-made k1"
	subj=$(openssl x509 -in "$sn.pem" -noout -subject -nameopt RFC2253)
	n=$(printf '%s\n' "$subj" | sed -n 's/.*CN=twin-\([0-9]*\).*/\1/p')
	N[$sn]=$n
	t_like "$n" '^[789]$' "twin $sn: {token_label}-{n} with {n} from 7 ($subj)"
	t_like "$subj" "serialNumber=$sn" "twin $sn: {token_serial}"
	san=$(openssl x509 -in "$sn.pem" -noout -ext subjectAltName 2>/dev/null | tail -n +2)
	t_like "$san" "DNS:n$n\.example\.org" "twin $sn: {n} in a SAN, the same as in the subject"
done
t_like "$(openssl x509 -in "$T1.pem" -noout -subject -nameopt RFC2253)" 'OU=Ops\\, East' \
	"{csv:dept}: the quoted field with its comma"
t_like "$(openssl x509 -in "$T1.pem" -noout -ext subjectAltName)" 'DNS:alpha\.example\.org' "{csv:host} (first row)"
t_like "$(openssl x509 -in "$T2.pem" -noout -subject -nameopt RFC2253)" 'OU=Lab' "{csv:dept} (second row)"
t_like "$(openssl x509 -in "$T2.pem" -noout -ext subjectAltName)" 'DNS:beta\.example\.org' "{csv:host} (second row)"
t_ok "{n}: the twins got different numbers (${N[$T1]}, ${N[$T2]})" test "${N[$T1]}" != "${N[$T2]}"
t_is "$(rep rep.json "$S1" state)" failed "solo1 (wrong challenge): failed"
t_like "$(rep rep.json "$S1" error)" '[Rr]efused|FAILURE' "solo1: the error says the CA refused it"
t_grep "^failed +token $S1 \\(solo1\\)" "$T_OUT" "solo1: its failed line"
t_ok "solo1: no certificate stored" eval "! tok_cert '$S1' s1.pem k1"
t_is "$(grep '"op":"PKIOperation"' "$CA_LOG" | grep -c '"challenge_ok":false')" 1 \
	"the CA saw one wrong challenge"
for f in "$T_OUT" "$T_ERR" rep.json; do
	t_ok "no PIN or challenge in $(basename "$f")" eval "! grep -qF -e '$T_PIN' -e '$T_CHAL' -e wrongChal0 '$f'"
done

# --- the filter: token=twin is 2 of the 3 ---------------------------------------
t_expect_exit 0 prov 'pkcs11:token=twin' --subject '/CN=f-{token_serial}' --csv tokens.csv \
	--key-label k1 --use-key --report rep2.json
t_canary_keep rep2.json
t_is "$(python3 -c 'import json,sys; print(" ".join(sorted(o["token_serial"] for o in json.load(open(sys.argv[1])))))' rep2.json)" \
	"$(printf '%s\n' "$T1" "$T2" | sort | tr '\n' ' ' | sed 's/ $//')" "the filter took the two twins, not solo1"
t_is "$(rep rep2.json "$T1" state):$(rep rep2.json "$T2" state)" ok:ok "both enrolled"
t_grep '2 token\(s\): 2 ok' "$T_OUT" "summary: 2 tokens"
done_testing
