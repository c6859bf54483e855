#!/bin/bash
# tpm suite: from a bare software TPM (swtpm, no resource manager) to an
# enrolled certificate with scep-agent alone. init-token --tpm makes the
# token (C_InitToken, C_InitPIN on tpm2-pkcs11's empty slot) and prints its
# URI, its store in --tpm-store (never the current directory); a second
# init-token is refused and the token keeps its objects; enroll
# --new-key generates an RSA-2048 key in the TPM and gets a certificate
# from the test CA (pinned by fingerprint) for it; pkcs11-tool on
# tpm2-pkcs11 reads back the custody attributes (sensitive, never
# extractable, generated in the TPM) and the certificate object; a
# renewal in place (--overwrite) replaces key and certificate; EC P-256
# keys are generated in the TPM too (a request, and an enrollment signed by
# the RSA key: two keys in one run, over swtpm's 3 object slots); the
# default store is
# $XDG_DATA_HOME/scep-agent/tpm2 (~/.local/share/... without it) for a
# user, /var/lib/scep-agent/tpm2 for root. Under valgrind
# (SCEP_AGENT_WRAP), where each run takes about 5 s, a sample: the
# refusal of a taken label and the XDG_DATA_HOME store are left out.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"


# SLOW_UNWIND: ASAN_OPTIONS for the runs that sign with an EC key, where
# tpm2-pkcs11 leaks (C_SignInit): LeakSanitizer sees the module's frames
# that tests/lib/lsan.supp names only with the slow unwinder (which
# multiplies a run's time under ASan by 5, hence not for every run)
SLOW_UNWIND=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0

tpm_fixture

# tool ARGS...: pkcs11-tool on the test's TPM (tpm_tool)
tool() {
	tpm_tool "$@"
}
ltool() {
	tool --token-label gw -l --pin "$T_PIN" "$@"
}

# enroll ARGS...: scep-agent enroll against the CA with the TPM token
enroll() {
	sa enroll -u "$CA_URL" -c ca.crt "${TPM[@]}" --pin-file pin "$@"
}

# count CLASS LABEL: objects of CLASS (privkey, pubkey, cert) labelled LABEL
count() {
	ltool -O --type "$1" | grep -c "^ *label: *$2\$"
}

# nobjects: every object of the token
nobjects() {
	ltool -O | grep -c 'Object;'
}

# holds CERT LABEL: CERT is for the token key LABEL (its public key object)
holds() {
	rm -f "$T_WORK/.pub.der"
	tool --token-label gw --read-object --type pubkey --label "$2" -o "$T_WORK/.pub.der" >/dev/null &&
		[ "$(pub_of "$1")" = "$(openssl pkey -pubin -inform DER -in "$T_WORK/.pub.der" 2>/dev/null)" ]
}

# --- the bare TPM: only tpm2-pkcs11's empty slot
t_is "$(tool -L | grep -c 'token state: *uninitialized')" 1 "bare swtpm: one uninitialised slot"

# --- init-token from the bare TPM
t_expect_exit 0 sa init-token "${TPM[@]}" --label gw --so-pin-file sopin --pin-file pin
t_grep '^scep-agent: token: pkcs11:.*token=gw' "$T_OUT" "init-token prints the new token's URI"
uri=$(sed -n 's/^scep-agent: token: //p' "$T_OUT")
t_like "$(tool -L | sed -n '/token label *: gw$/,/serial/p')" \
	'token initialized, PIN initialized' "pkcs11-tool: token gw initialised with a user PIN"
t_file "$TPM_STORE/tpm2_pkcs11.sqlite3" "the store is in --tpm-store"
t_no_file tpm2_pkcs11.sqlite3 "no store in the current directory"
t_expect_exit 0 sa list-objects "$uri" "${TPM[@]}" --pin-file pin
t_is "$(grep -c "^private key" "$T_OUT")" 0 "the printed URI logs in with the user PIN: no key yet"

# --- the test CA, pinned by fingerprint
ca_start -allowrenew 0 -allow-ec
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt -F "$(fingerprint "$CA_CERT")"

# --- enrollment with an RSA-2048 key generated in the TPM
t_expect_exit 0 enroll --new-key "$TOK;object=device" --key-type rsa:2048 \
	--subject /CN=gw.example -r dev.csr -l dev.crt
t_ok "rsa:2048: issued by the CA" ca_verify ca.crt dev.crt
t_ok "rsa:2048: the certificate holds the TPM key" holds dev.crt device
t_like "$(openssl x509 -in dev.crt -noout -text | grep 'Public-Key')" '2048' "rsa:2048: a 2048-bit key"
t_is "$(ca_log_field -1 status)" SUCCESS "rsa:2048: the CA answered SUCCESS"
t_no_file tpm2_pkcs11.sqlite3 "enroll: no store in the current directory"

# --- proof of custody, read back by pkcs11-tool on tpm2-pkcs11
ltool -O >objs.txt
sed -n '/^Private Key Object/,/^[A-Z]/p' objs.txt >priv.txt
t_grep 'label: *device' priv.txt "pkcs11-tool: private key device"
t_grep 'Access: *sensitive, always sensitive, never extractable, local' priv.txt \
	"pkcs11-tool: sensitive, always sensitive, never extractable, generated in the TPM"
if grep 'Access:' priv.txt | sed 's/never extractable//' | grep -q extractable; then
	t_fail "pkcs11-tool: not extractable"
else
	t_pass "pkcs11-tool: not extractable"
fi
t_grep 'subject: *DN: CN=gw.example' objs.txt "the issued certificate is in the token"
kid=$(sed -n '/^Private Key Object/,/^$/s/^ *ID: *//p' objs.txt | head -1)
cid=$(sed -n '/^Certificate Object/,/^$/s/^ *ID: *//p' objs.txt | head -1)
t_like "$kid" '^[0-9a-f]+$' "the key has a CKA_ID"
t_is "$cid" "$kid" "the certificate object carries the key's CKA_ID"
t_expect_exit 0 sa list-objects "$TOK" "${TPM[@]}" --pin-file pin
t_grep "private key 'device'" "$T_OUT" "list-objects: the key"
t_grep 'sensitive=1 extractable=0 never-extractable=1' "$T_OUT" \
	"list-objects: CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_NEVER_EXTRACTABLE true"
# no private key in any file outside the TPM's store (which holds the
# key only wrapped by the TPM) and the CA's own directory
found=
while IFS= read -r f; do
	if grep -q 'PRIVATE KEY' "$f" 2>/dev/null ||
		openssl pkey -in "$f" -inform DER -noout 2>/dev/null ||
		openssl pkey -in "$f" -noout -passin pass: 2>/dev/null; then
		found="$found $f"
	fi
done < <(find "$T_WORK" -type f ! -path "$TPM_STORE/*" ! -path "$CA_DIR/*" ! -path "$T_WORK/swtpm*" \
	! -name 'ca*.log')
t_is "$found" "" "no private key file in the work dir or \$HOME"

# --- a second init-token is refused; the token keeps its objects
n0=$(nobjects)
t_is "$n0" 3 "the token holds the key pair and the certificate"
t_expect_exit 4 sa init-token "$TOK" "${TPM[@]}" --label gw --so-pin-file sopin --pin-file pin
t_grep 'force-reinit' "$T_ERR" "init-token on the initialised token: refused, names --force-reinit"
if [ -z "${SCEP_AGENT_WRAP:-}" ]; then
	t_expect_exit 4 sa init-token "${TPM[@]}" --label gw --so-pin-file sopin --pin-file pin
	t_grep "label 'gw' is taken" "$T_ERR" "init-token with gw's label on the empty slot: refused"
fi
t_is "$(nobjects)" "$n0" "the refusals kept the token's objects"
t_ok "and the key still matches its certificate" holds dev.crt device

# --- renewal in place: a new key under the same label, the old pair gone
t_expect_exit 0 enroll -K "$TOK;object=device" -O dev.crt --new-key "$TOK;object=device" \
	--overwrite --key-type rsa:2048 --subject /CN=gw.example -l dev2.crt
t_is "$(ca_log_field -1 msgType)" 17 "in place: RenewalReq sent"
t_is "$(ca_log_field -1 signer)" issued "in place: signed by the old key and certificate"
t_ok "in place: issued by the CA" ca_verify ca.crt dev2.crt
t_ok "in place: the new certificate holds the key now labelled device" holds dev2.crt device
if [ "$(pub_of dev2.crt)" != "$(pub_of dev.crt)" ]; then
	t_pass "in place: it is a new key"
else
	t_fail "in place: it is a new key"
fi
t_is "$(count privkey device) $(count pubkey device) $(count cert device)" "1 1 1" \
	"in place: one key pair and one certificate labelled device (the old ones are gone)"
t_is "$(nobjects)" 3 "in place: nothing else left in the token"

# --- EC P-256 generated in the TPM: a request
ASAN_OPTIONS=$SLOW_UNWIND t_expect_exit 0 sa mkrequest "${TPM[@]}" --pin-file pin \
	--new-key "$TOK;object=ec1" \
	--key-type ec:P-256 --subject /CN=ec1.example -r ec1.csr
t_ok "ec:P-256: the request's signature verifies" openssl req -in ec1.csr -noout -verify
t_ok "ec:P-256: the request holds the TPM key" holds ec1.csr ec1
t_like "$(openssl req -in ec1.csr -noout -text | grep -E 'ASN1 OID|NIST CURVE')" \
	'prime256v1|P-256' "ec:P-256: on P-256"
sed -n '/^Private Key Object; EC/,/^[A-Z]/p' <(ltool -O) >ecpriv.txt
t_grep 'Access: *sensitive, always sensitive, never extractable, local' ecpriv.txt \
	"ec:P-256: sensitive, never extractable, generated in the TPM"
# an enrollment with an EC key: the request signed by the RSA key (the CA
# envelopes its reply to RSA keys)
ASAN_OPTIONS=$SLOW_UNWIND t_expect_exit 0 enroll -K "$TOK;object=device" -O dev2.crt \
	--new-key "$TOK;object=ec2" \
	--key-type ec:P-256 --subject /CN=ec2.example -l ec2.crt
t_ok "ec:P-256: issued by the CA" ca_verify ca.crt ec2.crt
t_ok "ec:P-256: the certificate holds the TPM key" holds ec2.crt ec2
t_no_file tpm2_pkcs11.sqlite3 "still no store in the current directory"

# --- the default store, without --tpm-store: a user's is
#     $XDG_DATA_HOME/scep-agent/tpm2, or ~/.local/share/scep-agent/tpm2
#     without XDG_DATA_HOME; root's /var/lib/scep-agent/tpm2. The store is
#     made when the module starts (list-tokens is enough).
if [ "$(id -u)" -eq 0 ]; then
	# a user: nobody, with a home in the work dir
	chmod 711 "$T_WORK"
	mkdir -p u1 u2/xdg
	chown nobody u1 u2 u2/xdg
	# as_user HOME [XDG_DATA_HOME]: list-tokens as nobody
	as_user() {
		env -u XDG_DATA_HOME HOME="$T_WORK/$1" ${2:+XDG_DATA_HOME="$T_WORK/$2"} \
			setpriv --reuid=nobody --regid=nogroup --clear-groups \
			${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" list-tokens --tpm --tcti "$TPM_TCTI"
	}
	cd u1 && t_expect_exit 0 as_user u1; cd "$T_WORK"
	t_file u1/.local/share/scep-agent/tpm2/tpm2_pkcs11.sqlite3 \
		"a user without XDG_DATA_HOME: the store is ~/.local/share/scep-agent/tpm2"
	t_is "$(stat -c '%a %U' u1/.local/share/scep-agent/tpm2)" "700 nobody" \
		"made owner-only"
	t_no_file u1/tpm2_pkcs11.sqlite3 "and not in the current directory"
	if [ -z "${SCEP_AGENT_WRAP:-}" ]; then
		cd u2 && t_expect_exit 0 as_user u2 u2/xdg; cd "$T_WORK"
		t_file u2/xdg/scep-agent/tpm2/tpm2_pkcs11.sqlite3 \
			"a user with XDG_DATA_HOME: the store is \$XDG_DATA_HOME/scep-agent/tpm2"
		t_no_file u2/.local "and not ~/.local/share"
	fi
	# root: /var/lib/scep-agent/tpm2, in a mount namespace of its own
	# where /var/lib is an empty directory of the work dir
	mkdir -p varlib root
	cd root && t_expect_exit 0 unshare -m sh -c \
		'mount --bind "$1" /var/lib && shift && exec "$@"' sh "$T_WORK/varlib" \
		${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" list-tokens --tpm --tcti "$TPM_TCTI"; cd "$T_WORK"
	t_file varlib/scep-agent/tpm2/tpm2_pkcs11.sqlite3 "root: the store is /var/lib/scep-agent/tpm2"
	t_is "$(stat -c '%a' varlib/scep-agent/tpm2)" 700 "made owner-only"
	t_no_file root/tpm2_pkcs11.sqlite3 "and not in the current directory"
	t_no_file "$HOME/.local/share/scep-agent" "nor in root's home"
else
	unset XDG_DATA_HOME
	mkdir -p u1 && cd u1 && t_expect_exit 0 sa list-tokens --tpm --tcti "$TPM_TCTI"; cd "$T_WORK"
	t_file "$HOME/.local/share/scep-agent/tpm2/tpm2_pkcs11.sqlite3" \
		"without XDG_DATA_HOME: the store is ~/.local/share/scep-agent/tpm2"
	t_is "$(stat -c '%a' "$HOME/.local/share/scep-agent/tpm2")" 700 "made owner-only"
	t_no_file u1/tpm2_pkcs11.sqlite3 "and not in the current directory"
	if [ -z "${SCEP_AGENT_WRAP:-}" ]; then
		mkdir -p u2/xdg && cd u2 && XDG_DATA_HOME=$T_WORK/u2/xdg t_expect_exit 0 sa list-tokens \
			--tpm --tcti "$TPM_TCTI"; cd "$T_WORK"
		t_file u2/xdg/scep-agent/tpm2/tpm2_pkcs11.sqlite3 \
			"with XDG_DATA_HOME: the store is \$XDG_DATA_HOME/scep-agent/tpm2"
	fi
fi

ca_stop
done_testing
