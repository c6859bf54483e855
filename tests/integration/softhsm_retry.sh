#!/bin/bash
# softhsm suite: a --new-key run that the token fails part-way leaves a
# state the same command (or it with -R) completes on the healthy token.
# The token is made to fail with the fault module tests/p11shim
# (P11SHIM_FAIL_FUNC: only the calls named fail, from the first on, so a
# dead token is simulated where it matters, e.g. C_Sign and the
# C_DestroyObject of the clean-up):
# - first enrollment and mkrequest: the key was generated, the request
#   never went out and the key could not be removed: the retry uses the
#   staged key (LABEL~new) again, no second key under the label;
# - renewal in place (-K/-O --new-key --overwrite, new EC key, old RSA
#   key imported): the token store of the new certificate fails after -l
#   (the same file as -O) holds it: the retry, and the retry with -R,
#   finish without a new request; removing the old objects fails (at the
#   first and the second object): the retry finishes; relabelling the new
#   objects fails: the retry finishes.
# Under valgrind (SCEP_AGENT_WRAP set) a sample: the renewal cases only
# with -R, removal failing at the second object, relabelling failing.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool openssl
softhsm_new t1
pin_file
MOD=$P11_MODULE
TOK='pkcs11:token=t1'

tool() {
	pkcs11-tool --module "$MOD" --token-label t1 -l --pin "$T_PIN" "$@" >/dev/null 2>&1
}

# count CLASS LABEL
count() {
	p11_count t1 "$@"
}

# key_pub LABEL: the public key (PEM) of the token key LABEL
key_pub() {
	tool --read-object --type pubkey --label "$1" -o "$T_WORK/.pub.der" &&
		openssl pkey -pubin -inform DER -in "$T_WORK/.pub.der" 2>/dev/null
}

# holds CERT LABEL: CERT is for the token key LABEL
holds() {
	[ "$(pub_of "$1")" = "$(key_pub "$2")" ]
}

# whole LABEL: one key pair and one certificate labelled LABEL, nothing
# staged
whole() {
	[ "$(count privkey "$1") $(count pubkey "$1") $(count cert "$1")" = "1 1 1" ] &&
		[ "$(count any "$1~new")" = 0 ]
}

# failing FUNCS ARGS...: scep-agent through the fault module, every call
# of FUNCS (comma-separated) failing with CKR_DEVICE_REMOVED from the
# first on (FUNCS may end in @N: from the Nth of them on)
failing() {
	local f=${1%@*} at=1
	case $1 in *@*) at=${1#*@} ;; esac
	shift
	P11SHIM_MODULE=$MOD P11SHIM_FAIL_FUNC=$f P11SHIM_FAIL_AT=$at \
		P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED P11SHIM_FAIL_MODE=always \
		sa "$1" --module "$P11SHIM" "${@:2}"
}

ca_start -allowrenew 0 -allow-ec
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
CA=(-u "$CA_URL" -c ca.crt --pin-file pin)

# --- first enrollment: key made, the request never sent, the key stays
E1=(--new-key "$TOK;object=e1" --subject /CN=e1 -l e1.crt)
t_expect_exit 7 failing C_Sign,C_DestroyObject enroll "${CA[@]}" "${E1[@]}"
t_is "$(count privkey 'e1~new') $(count any e1)" "1 0" \
	"enroll, token failed before sending: the key stays staged as e1~new"
npki=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
t_expect_exit 0 sa enroll "${CA[@]}" --module "$MOD" "${E1[@]}"
t_grep 'using again the key "e1~new"' "$T_ERR" "enroll retry: uses the staged key again"
t_ok "enroll retry: one key pair and its certificate labelled e1, nothing staged" whole e1
t_ok "enroll retry: the certificate is the token key's" holds e1.crt e1
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" $((npki + 1)) "enroll retry: one request sent"

# --- mkrequest: key made, the request never written
M1=(--new-key "$TOK;object=m1" --key-type ec:P-256 --subject /CN=m1 -r m1.csr)
t_expect_exit 7 failing C_Sign,C_DestroyObject mkrequest --pin-file pin "${M1[@]}"
t_is "$(count privkey 'm1~new') $(count any m1)" "1 0" \
	"mkrequest, token failed: the key stays staged as m1~new"
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin "${M1[@]}"
t_is "$(count privkey m1) $(count pubkey m1) $(count any 'm1~new')" "1 1 0" \
	"mkrequest retry: one key pair labelled m1, nothing staged"
t_is "$(openssl req -in m1.csr -noout -pubkey)" "$(key_pub m1)" \
	"mkrequest retry: the request is for the key labelled m1"

# base NAME: an RSA key pair (made by openssl: quick under valgrind too)
# and its certificate from the CA, imported into the token as NAME
base() {
	openssl genrsa -out "$1.key" 2048 2>/dev/null &&
		openssl pkey -in "$1.key" -pubout -outform DER -out "$1.pub.der" &&
		sa enroll "${CA[@]}" -k "$1.key" --subject "/CN=$1" -l "$1.crt" >/dev/null 2>&1 &&
		openssl x509 -in "$1.crt" -outform DER -out "$1.der" &&
		tool --write-object "$1.key" --type privkey --id "$2" --label "$1" &&
		tool --write-object "$1.pub.der" --type pubkey --id "$2" --label "$1" &&
		tool --write-object "$1.der" --type cert --id "$2" --label "$1"
}

# renew NAME ARGS...: renewal in place of the token key NAME (new key EC)
renew_args() {
	R=(enroll "${CA[@]}" -K "$TOK;object=$1" -O "$1.crt" --new-key "$TOK;object=$1"
		--key-type ec:P-256 --overwrite --subject "/CN=$1")
}

# renewed NAME CERT WHAT: after the retry, NAME is the new key, certified
# by CERT, alone under its label
renewed() {
	t_ok "$3: one key pair and its certificate labelled $1, nothing staged" whole "$1"
	t_ok "$3: $2 is the key now labelled $1" holds "$2" "$1"
	if [ "$(key_pub "$1")" != "$(openssl pkey -pubin -inform DER -in "$1.pub.der")" ]; then
		t_pass "$3: it is the new key"
	else
		t_fail "$3: it is the new key"
	fi
}

# --- renewal in place, -l the same file as -O: the token store fails
#     after the new certificate is written; retry, then retry with -R
MODES="plain R"
[ -n "${SCEP_AGENT_WRAP:-}" ] && MODES=R
for mode in $MODES; do
	b=b$mode
	t_ok "$b: an imported RSA key with its certificate" base "$b" "0b$([ $mode = R ] && echo 02 || echo 01)"
	renew_args "$b"
	cp "$b.crt" "$b.old.crt"
	t_expect_exit 7 failing C_CreateObject "${R[@]}" -l "$b.crt"
	t_ok "$b: the new certificate is in -l (= -O)" sh -c "! cmp -s $b.crt $b.old.crt"
	t_is "$(count privkey "$b") $(count cert "$b") $(count privkey "$b~new")" "1 1 1" \
		"$b: the old key and certificate stay, the new key staged"
	t_ok "$b: the old key still has its certificate" holds "$b.old.crt" "$b"
	npki=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
	resume=()
	[ $mode = R ] && resume=(-R)
	t_expect_exit 0 sa "${R[@]}" --module "$MOD" -l "$b.crt" "${resume[@]}"
	t_grep 'enrollment an earlier run started is finished' "$T_OUT" "$b retry: says it finished"
	t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$npki" "$b retry: no new request"
	renewed "$b" "$b.crt" "$b retry"
done

# --- renewal in place: removing the old objects fails (at the first, at
#     the second), relabelling the new ones fails; -l another file
CASES=("C_DestroyObject@1:0b03:cannot remove an old object"
	"C_DestroyObject@2:0b04:cannot remove an old object"
	"C_SetAttributeValue@4:0b05:would not relabel the new key")
[ -n "${SCEP_AGENT_WRAP:-}" ] && CASES=("${CASES[@]:1}")
for c in "${CASES[@]}"; do
	IFS=: read -r f id why <<<"$c"
	b=c$id
	t_ok "$b: an imported RSA key with its certificate" base "$b" "$id"
	renew_args "$b"
	t_expect_exit 7 failing "$f" "${R[@]}" -l "$b-2.crt"
	t_grep "$why" "$T_ERR" "$b ($f): failed where meant: $why"
	t_is "$(count privkey "$b~new")" 1 "$b ($f): the new private key still staged"
	t_ok "$b ($f): the new certificate is written" test -s "$b-2.crt"
	t_ok "$b ($f): never two keys under the label" test "$(count privkey "$b")" -le 1
	npki=$(grep -c '"op":"PKIOperation"' "$CA_LOG")
	t_expect_exit 0 sa "${R[@]}" --module "$MOD" -l "$b-2.crt"
	t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" "$npki" "$b retry: no new request"
	renewed "$b" "$b-2.crt" "$b ($f) retry"
done

done_testing
