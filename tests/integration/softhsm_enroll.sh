#!/bin/bash
# softhsm suite: enrollment and renewal with keys generated in a SoftHSM2
# token, against the test CA; proof of custody (pkcs11-tool reads the
# attributes back, a pkcs11-spy trace shows C_Sign, C_Decrypt and one
# C_Login, no private key file anywhere); PIN, token, object and module
# errors; the same label in two tokens.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

SPY=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
t_require softhsm2-util pkcs11-tool
if [ ! -f "$SPY" ]; then
	echo "1..0 # SKIP $SPY (opensc) not installed"
	exit 0
fi

softhsm_new t1
softhsm_new t2
pin_file
printf '0000\n' >badpin
MOD=$P11_MODULE

# tool ARGS...: pkcs11-tool on the test tokens
tool() {
	pkcs11-tool --module "$MOD" "$@" 2>/dev/null
}

# token_pub TOKEN LABEL OUT: the public key of LABEL in TOKEN, PEM
token_pub() {
	tool --token-label "$1" --read-object --type pubkey --label "$2" -o "$3.der" &&
		openssl pkey -pubin -inform DER -in "$3.der" -out "$3"
}

# cert_is_token_key CERT TOKEN LABEL: the certificate holds that token key
cert_is_token_key() {
	token_pub "$2" "$3" "$T_WORK/.tpub.pem" &&
		[ "$(pub_of "$1")" = "$(cat "$T_WORK/.tpub.pem")" ]
}

# spy_on LOG / spy_off: route the next commands through pkcs11-spy. The
# spy leaks a little (its own OpenSSL objects); under ASan only the slow
# unwinder sees the spy's frames that lsan.supp names.
T_ASAN_OPTIONS=${ASAN_OPTIONS-}
# A spy trace records C_Login's PIN: it is made owner-only beforehand.
spy_on() {
	(umask 077 && : >"$1")
	export PKCS11SPY=$MOD PKCS11SPY_OUTPUT=$1
	export ASAN_OPTIONS=${T_ASAN_OPTIONS:+$T_ASAN_OPTIONS:}fast_unwind_on_malloc=0
}
spy_off() {
	unset PKCS11SPY PKCS11SPY_OUTPUT
	if [ -n "$T_ASAN_OPTIONS" ]; then
		export ASAN_OPTIONS=$T_ASAN_OPTIONS
	else
		unset ASAN_OPTIONS
	fi
}

# spy_count LOG FUNC: how many times FUNC was called in a pkcs11-spy log
spy_count() {
	grep -cE "^[0-9]+: $2\$" "$1"
}

ca_start -allowrenew 0
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# --- enrollment, RSA-2048 key born in the token, traced by pkcs11-spy
spy_on "$T_WORK/spy.log"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$SPY" --pin-file pin \
	--new-key "pkcs11:token=t1;object=dev1" --key-type rsa:2048 \
	--subject /CN=dev1.example -r dev1.csr -l dev1.crt -v -d
spy_off
t_ok "rsa:2048: issued by the CA" ca_verify ca.crt dev1.crt
t_ok "rsa:2048: the certificate holds the token key" cert_is_token_key dev1.crt t1 dev1
t_is "$(ca_log_field -1 status)" SUCCESS "rsa:2048: CA answered SUCCESS"
t_is "$(ca_log_field -1 stock)" true "rsa:2048: DES-CBC envelope of the stock library decrypted"
cat "$T_OUT" "$T_ERR" >enroll.out
t_grep 'key: pkcs11:.*object=dev1.*type=private' enroll.out "prints the key's URI"
t_grep 'certificate: pkcs11:.*object=dev1.*type=cert' enroll.out "prints the certificate's URI"
t_is "$(spy_count spy.log C_Login)" 1 "spy: exactly one C_Login"
t_between "$(spy_count spy.log C_Sign)" 2 100 "spy: C_Sign in the token (CSR and pkiMessage)"
t_between "$(spy_count spy.log C_Decrypt)" 1 100 "spy: C_Decrypt in the token (CertRep envelope)"
t_is "$(spy_count spy.log C_GenerateKeyPair)" 1 "spy: C_GenerateKeyPair in the token"
t_is "$(spy_count spy.log C_Finalize)" 1 "spy: the module was finalized"
t_is "$(cat "$T_OUT" "$T_ERR" | grep -c -F "$T_PIN")" 0 "the PIN is not in the output, even with -v -d"

# --- proof of custody, read back by pkcs11-tool
tool --token-label t1 -l --pin "$T_PIN" -O >objs.txt
sed -n '/^Private Key Object/,/^[A-Z]/p' objs.txt >priv.txt
t_grep 'label: *dev1' priv.txt "pkcs11-tool: private key dev1"
t_grep 'Access: .*sensitive, always sensitive, never extractable' priv.txt \
	"pkcs11-tool: sensitive, always sensitive, never extractable"
t_grep 'Access: .*local' priv.txt "pkcs11-tool: generated in the token (local)"
if grep 'Access:' priv.txt | sed 's/never extractable//' | grep -q extractable; then
	t_fail "pkcs11-tool: not extractable"
else
	t_pass "pkcs11-tool: not extractable"
fi
kid=$(sed -n '/^Private Key Object/,/^$/s/^ *ID: *//p' objs.txt | head -1)
cid=$(sed -n '/^Certificate Object/,/^$/s/^ *ID: *//p' objs.txt | head -1)
t_like "$kid" '^[0-9a-f]{40}$' "the key has a 20-byte CKA_ID"
t_is "$cid" "$kid" "the certificate object carries the key's CKA_ID"
t_grep 'subject: *DN: CN=dev1.example' objs.txt "the issued certificate is in the token"

# --- RSA-3072
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=dev3k" --key-type rsa:3072 \
	--subject /CN=dev3k.example -r dev3k.csr -l dev3k.crt
t_ok "rsa:3072: the certificate holds the token key" cert_is_token_key dev3k.crt t1 dev3k
t_like "$(openssl x509 -in dev3k.crt -noout -text | grep 'Public-Key')" '3072' "rsa:3072: 3072-bit key"

# --- renewal: RenewalReq signed by the old token key, new key in the token
spy_on "$T_WORK/spy-renew.log"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$SPY" --pin-file pin \
	-K "pkcs11:token=t1;object=dev1" -O dev1.crt \
	--new-key "pkcs11:token=t1;object=dev1-next" --key-type rsa:2048 \
	--subject /CN=dev1.example -r renew.csr -l renew.crt
spy_off
t_is "$(ca_log_field -1 msgType)" 17 "renewal: RenewalReq sent"
t_is "$(ca_log_field -1 signer)" issued "renewal: signed with the old certificate"
t_ok "renewal: new certificate holds the new token key" cert_is_token_key renew.crt t1 dev1-next
t_is "$(spy_count spy-renew.log C_Login)" 1 "renewal: one C_Login for both keys"

# --- renewal keeping the key (RSA-3072, old key = new key)
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:token=t1;object=dev3k" -K "pkcs11:token=t1;object=dev3k" -O dev3k.crt \
	-r dev3k.csr -l dev3k-renewed.crt
t_ok "renewal with the same token key" cert_is_token_key dev3k-renewed.crt t1 dev3k
t_is "$(tool --token-label t1 -O | grep -c '^Certificate Object')" 3 \
	"the renewed certificate replaced the old one in the token (3 keys, 3 certs)"

# --- EC keys: generated in the token, CSR signed there. The token key's
#     CKA_ID is the SHA-1 of its EC point: match it against the CSR's point
#     (pkcs11-tool 0.23 cannot read a P-384 public key object).
for spec in ec:P-256:65 ec:P-384:97; do
	plen=${spec##*:}
	spec=${spec%:*}
	lab=ec-${spec#ec:}
	t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin \
		--new-key "pkcs11:token=t1;object=$lab" --key-type "$spec" \
		--subject "/CN=$lab.example" -r "$lab.csr"
	t_ok "$spec: CSR signature verifies" openssl req -in "$lab.csr" -noout -verify
	want=$(openssl req -in "$lab.csr" -noout -pubkey | openssl pkey -pubin -outform DER |
		tail -c "$plen" | openssl sha1 -r | cut -d' ' -f1)
	got=$(tool --token-label t1 -O | sed -n "/label: *$lab\$/,/ID:/s/^ *ID: *//p" | head -1)
	t_is "$got" "$want" "$spec: CSR holds the token key (CKA_ID = SHA-1 of its point)"
done

# --- the same label in two tokens: token= picks
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=same" --key-type rsa:2048 --subject /CN=same1 -r same1.csr
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t2;object=same" --key-type rsa:2048 --subject /CN=same2 -r same2.csr
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:token=t2;object=same" --subject /CN=same.example -r same.csr -l same.crt
t_ok "token=t2 picked t2's key" cert_is_token_key same.crt t2 same
if cert_is_token_key same.crt t1 same; then
	t_fail "and not t1's key of the same label"
else
	t_pass "and not t1's key of the same label"
fi
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:object=same" --subject /CN=same.example -r amb.csr -l amb.crt
t_grep 'match' "$T_ERR" "a URI matching two tokens is refused, not guessed"
t_no_file amb.crt "no certificate written"

# --- overwrite refusal
t_expect_exit 7 sa mkrequest --module "$MOD" --pin-file pin \
	--new-key "pkcs11:token=t1;object=dev1" --key-type rsa:2048 --subject /CN=x -r x.csr
t_grep "already holds" "$T_ERR" "an existing label is not overwritten"
t_ok "the old key is still there" cert_is_token_key dev1.crt t1 dev1

# --- wrong PIN: one attempt, its own exit code
spy_on "$T_WORK/spy-pin.log"
t_expect_exit 8 sa enroll -u "$CA_URL" -c ca.crt --module "$SPY" --pin-file badpin \
	-k "pkcs11:token=t2;object=same" --subject /CN=x -r pin.csr -l pin.crt
spy_off
t_grep 'wrong user PIN' "$T_ERR" "wrong PIN: says so"
t_grep 'count low' "$T_ERR" "wrong PIN: reports the token's count-low flag"
t_is "$(spy_count spy-pin.log C_Login)" 1 "wrong PIN: tried exactly once"
t_no_file pin.crt "wrong PIN: no certificate written"
t_like "$(tool -L | sed -n '/token label *: t2/,/serial/p')" 'user PIN count low' \
	"the token counts one failed login"
t_expect_exit 0 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:token=t2;object=same" --subject /CN=same.example -r pin.csr -l pin.crt

# --- PIN from the environment and from the URI's pin-source
TOKPIN=$T_PIN t_expect_exit 0 sa mkrequest --module "$MOD" --pin-env TOKPIN \
	-k "pkcs11:token=t2;object=same" --subject /CN=env -r env.csr
t_expect_exit 0 sa mkrequest \
	-k "pkcs11:token=t2;object=same?module-path=$MOD&pin-source=file:$T_WORK/pin" \
	--subject /CN=src -r src.csr

# --- PIN typed at a terminal (a pty from script(1)): prompt, no echo. The
#     prompt flushes typed-ahead input, so type only once it shows.
(
	for _ in $(seq 300); do
		grep -q 'User PIN' tty.log 2>/dev/null && break
		sleep 0.1
	done
	printf '%s\n' "$T_PIN"
	sleep 1
) | script -qfec "${SCEP_AGENT_WRAP:-} $SCEP_AGENT mkrequest --module $MOD \
	-k 'pkcs11:token=t2;object=same' --subject /CN=tty -r tty.csr" tty.log >/dev/null 2>&1
t_grep "User PIN for token 't2'" tty.log "PIN prompt on the terminal"
t_is "$(grep -c -F "$T_PIN" tty.log)" 0 "the typed PIN is not echoed"
t_ok "the PIN from the terminal logged in" openssl req -in tty.csr -noout -verify

# --- Ctrl-C at the PIN prompt stops the run (exit 128+2) with the terminal
#     restored; it used to be swallowed, leaving the prompt waiting
pty_interrupt int.log 'User PIN' mkrequest --module "$MOD" \
	-k 'pkcs11:token=t2;object=same' --subject /CN=int -r int.csr
t_is "$PTY_RC" 130 "SIGINT at the PIN prompt: exit 130"
t_grep "PIN entry for token 't2' stopped by SIGINT" int.log "says the PIN entry was stopped"
t_no_file int.csr "no request written"

# --- token absent, object missing, wrong module
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:token=absent;object=dev1" --subject /CN=x -r x.csr -l x.crt
t_grep "no token" "$T_ERR" "token absent: says so"
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	-k "pkcs11:token=t1;object=missing" --subject /CN=x -r x.csr -l x.crt
t_grep "no private key" "$T_ERR" "object missing: says so"
t_expect_exit 7 sa enroll -u "$CA_URL" -c ca.crt --module /nonexistent/libpkcs11.so \
	--pin-file pin -k "pkcs11:token=t1;object=dev1" --subject /CN=x -r x.csr -l x.crt
t_grep "/nonexistent/libpkcs11.so" "$T_ERR" "wrong module: names the path"
t_no_file x.crt "no certificate written on these errors"

# --- listing
t_expect_exit 0 sa list-tokens --module "$MOD"
t_grep 'token=t1' "$T_OUT" "list-tokens: t1 with its URI"
t_grep 'token=t2' "$T_OUT" "list-tokens: t2 with its URI"
t_expect_exit 0 sa list-objects "pkcs11:token=t1" --module "$MOD" --pin-file pin
t_grep "private key 'dev1'" "$T_OUT" "list-objects: the key"
t_grep 'sensitive=1 extractable=0 never-extractable=1' "$T_OUT" "list-objects: custody attributes"
uri=$(sed -n "/^private key 'dev1-next'/,/uri:/s/^ *uri: *//p" "$T_OUT")
t_like "$uri" '^pkcs11:.*object=dev1-next' "list-objects: a usable URI"
t_expect_exit 0 sa mkrequest --pin-file pin -k "$uri" --subject /CN=fromlist -r fromlist.csr

# --- no private key anywhere in the work dir (outside the token store and
#     the test CA's own directory) or in $HOME
found=
while IFS= read -r f; do
	if grep -q 'PRIVATE KEY' "$f" 2>/dev/null ||
		openssl pkey -in "$f" -inform DER -noout 2>/dev/null ||
		openssl pkey -in "$f" -noout -passin pass: 2>/dev/null; then
		found="$found $f"
	fi
done < <(find "$T_WORK" -type f ! -path "$T_WORK/tokens/*" ! -path "$CA_DIR/*" ! -name 'ca*.log')
t_is "$found" "" "no private key file in the work dir or \$HOME"

ca_stop
done_testing
