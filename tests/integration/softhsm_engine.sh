#!/bin/bash
# softhsm suite: the enrollment engine (agent/engine/) driven as the
# daemon's job drives it: the certificate handed to the caller's disk store
# (store_disk) instead of -l, which is then only read (an earlier run that
# finished is found there). A store that refuses stops the renewal before
# anything in the token changes, and the outcome carries its error and the
# certificate stored nowhere. tests/integration/engine_drive.c runs it.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
: "${ENGINE_DRIVE:?ENGINE_DRIVE: the engine_drive program (meson sets it)}"
softhsm_new t1
pin_file
MOD=$P11_MODULE

# drive MODE STOREFILE ARGS...: engine_drive with the test CA and token t1
drive() {
	_m=$1 _f=$2
	shift 2
	${SCEP_AGENT_WRAP:-} "$ENGINE_DRIVE" "$_m" "$_f" enroll -u "$CA_URL" -c ca.crt \
		--module "$MOD" --pin-file pin "$@"
}
# field NAME: NAME=VALUE of the last drive's output
field() {
	sed -n "s/^$1=//p" "$T_OUT"
}
count() {
	p11_count t1 "$@"
}
pkiops() {
	grep -c '"op":"PKIOperation"' "$CA_LOG"
}
# token_cert LABEL OUT: the certificate object labelled LABEL, PEM
token_cert() {
	pkcs11-tool --module "$MOD" --token-label t1 -l --pin "$T_PIN" --read-object \
		--type cert --label "$1" -o "$2.der" >/dev/null 2>&1 &&
		openssl x509 -inform DER -in "$2.der" -out "$2"
}

ca_start -allowrenew 0
t_expect_exit 0 "$SCEP_AGENT" getca -u "$CA_URL" -c ca.crt

# --- a first enrollment: the store gets the certificate, -l is not written
t_expect_exit 0 drive store disk1.pem --new-key "pkcs11:token=t1;object=ek" \
	--key-type rsa:2048 --subject /CN=engine1 -l local.crt
t_is "$(field status)" SUCCESS "enroll: SUCCESS"
t_is "$(field store_calls)" 1 "enroll: the disk store was called once"
t_is "$(field store_ca_certs)" 1 "enroll: the store was given the CA"
t_is "$(field cert_written)" 1 "enroll: the outcome says the certificate went to disk"
t_no_file local.crt "enroll: -l was not written (the store replaces it)"
t_ok "enroll: the store's file is issued by the CA" ca_verify ca.crt disk1.pem
t_is "$(count privkey ek)" 1 "enroll: the key took its label"
t_is "$(count cert ek)" 1 "enroll: the certificate is in the token"
token_cert ek tok1.pem
t_is "$(openssl x509 -in tok1.pem -noout -serial 2>&1)" \
	"$(openssl x509 -in disk1.pem -noout -serial 2>&1)" \
	"enroll: the token's certificate is the store's"
t_like "$(field key_uri)" 'object=ek' "enroll: outcome names the key"
t_like "$(field cert_uri)" 'object=ek.*type=cert' "enroll: outcome names the certificate object"
t_is "$(field transaction_id)" "$(ca_log_field -1 tid)" "enroll: outcome's transactionID is the one sent"
t_is "$(field sent)" 1 "enroll: sent"
t_is "$(field key_generated)" 1 "enroll: a key generated in this run"
t_is "$(field finished_earlier)" 0 "enroll: not an earlier run's"
t_is "$(grep -c 'certificate written as\|^serial:' "$T_OUT" "$T_ERR" | awk -F: '{s+=$2} END {print s}')" 0 \
	"enroll: the engine prints no result lines"

# --- the same again, -l naming the store's file: finished already, no request
cp disk1.pem local.crt
before=$(pkiops)
t_expect_exit 0 drive store disk2.pem --new-key "pkcs11:token=t1;object=ek" \
	--key-type rsa:2048 --subject /CN=engine1 -l local.crt
t_is "$(field status)" SUCCESS "again: SUCCESS"
t_is "$(field finished_earlier)" 1 "again: an earlier run had finished it (found in -l)"
t_is "$(field store_calls)" 0 "again: nothing to store"
t_is "$(pkiops)" "$before" "again: no request sent"
t_ok "again: -l untouched" cmp -s local.crt disk1.pem

# --- a renewal in place whose store refuses: the token stays as it was
t_expect_exit 0 drive refuse disk3.pem --new-key "pkcs11:token=t1;object=ek" \
	--key-type rsa:2048 --subject /CN=engine1 --overwrite
t_is "$(field status)" ERROR "refused store: ERROR"
t_is "$(field rc)" -4 "refused store: the store's code is returned (SA_EIO)"
t_is "$(field err_code)" -4 "refused store: outcome's error code"
t_like "$(field err_msg)" 'the test store refused .*disk3.pem' "refused store: outcome's message is the store's"
t_is "$(field recorded_msg)" "" "refused store: the error travels in the outcome, not the global message"
t_is "$(field cert)" 1 "refused store: the certificate stored nowhere is handed back"
t_is "$(field cert_written)" 0 "refused store: not written"
t_is "$(field sent)" 1 "refused store: the request was sent"
t_is "$(field key_generated)" 1 "refused store: the new key stays (the CA has its request)"
t_is "$(count cert ek)" 1 "refused store: still one certificate labelled ek"
token_cert ek tok3.pem
t_ok "refused store: the token's certificate is the old one" cmp -s tok3.pem tok1.pem
t_is "$(count privkey ek)" 1 "refused store: the old key keeps its label"
t_is "$(count privkey 'ek~new')" 1 "refused store: the new key stays staged"
t_no_file disk3.pem "refused store: nothing written by the store"
t_ok "refused store: the certificate handed back is the CA's" ca_verify ca.crt disk3.pem.unstored

# --- the retry (-R) finds the transaction and stores it
t_expect_exit 0 drive store disk4.pem --new-key "pkcs11:token=t1;object=ek" \
	--key-type rsa:2048 --subject /CN=engine1 --overwrite -R
t_is "$(field status)" SUCCESS "retry: SUCCESS"
t_is "$(field store_calls)" 1 "retry: stored"
t_is "$(count privkey 'ek~new')" 0 "retry: the staged key took the label"
t_is "$(count privkey ek)" 1 "retry: one key labelled ek (the old one gone: keep_old 0)"
token_cert ek tok4.pem
t_ok "retry: the token's certificate is the store's" cmp -s tok4.pem disk4.pem
t_ok "retry: a new certificate" test "$(openssl x509 -in disk4.pem -noout -serial)" != \
	"$(openssl x509 -in disk1.pem -noout -serial)"

# --- keep_old 1: the previous pair stays, retired under a label of its own
old_hex=$(openssl x509 -in disk4.pem -noout -serial | sed 's/.*=//' | tr 'A-F' 'a-f' | sed 's/^0*//')
ENGINE_KEEP_OLD=1 t_expect_exit 0 drive store disk5.pem --new-key "pkcs11:token=t1;object=ek" \
	--key-type rsa:2048 --subject /CN=engine1 --overwrite
t_is "$(field status)" SUCCESS "keep_old 1: SUCCESS"
t_is "$(count privkey ek)" 1 "keep_old 1: one key labelled ek"
t_is "$(count privkey "ek~old-$old_hex")" 1 "keep_old 1: the previous key retired as ek~old-$old_hex"
t_is "$(count cert "ek~old-$old_hex")" 1 "keep_old 1: with its certificate"
token_cert ek tok5.pem
t_ok "keep_old 1: the token's current certificate is the new one" cmp -s tok5.pem disk5.pem

ca_stop
done_testing
