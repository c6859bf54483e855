#!/bin/bash
# softhsm suite: sscep's engine key ids (libp11's engine syntax:
# <slot>:<hexid>, slot_<n>-id_<hex>, id_<hex>, label_<label>,
# slot_<n>-label_<label>, and with an engine a plain hex id) name the key
# in the token, through the equivalent pkcs11: URI on the configured
# module; they never become key files. Untranslatable ones are usage
# errors naming the URI to write; every other name stays a file path.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new eng1
pin_file
MOD=$P11_MODULE
SLOT=$(sa list-tokens --module "$MOD" |
	awk '/^Slot /{s=$2} /^  token: *eng1$/{sub(":", "", s); print s}')
SERIAL=$(sa list-tokens --module "$MOD" | sed -n 's/^  serial: *//p' | head -n 1)
t_like "$SLOT" '^[0-9]+$' "the token's slot id"

# the key, made in the token as sscep users make it: id 01, label engkey
pkcs11-tool --module "$MOD" --token-label eng1 --login --pin "$T_PIN" \
	--keypairgen --key-type rsa:1024 --id 01 --label engkey >/dev/null 2>&1
pkcs11-tool --module "$MOD" --token-label eng1 --read-object --type pubkey \
	--id 01 -o tok.pub.der >/dev/null 2>&1
TOKPUB=$(openssl pkey -pubin -inform DER -in tok.pub.der 2>/dev/null)
t_like "$TOKPUB" 'BEGIN PUBLIC KEY' "the key is in the token"

ca_start
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt

# conf KEY [MODULE_PATH]: an sscep.conf for the pkcs11 engine
conf() {
	cat >eng.conf <<CONF
[sscep]
engine = sscep_engine_pkcs11
URL = $CA_URL
CACertFile = ca.crt

[sscep_engine_pkcs11]
engine_id = pkcs11
${2+MODULE_PATH = $2}

[sscep_enroll]
PrivateKeyFile = $1
CertReqFile = eng.csr
LocalCertFile = eng.crt
CONF
}

# the bug: mkrequest -f wrote a new file key named "$SLOT:01"
conf "$SLOT:01" "$MOD"
t_expect_exit 0 sa mkrequest -v -f eng.conf --pin-file pin --subject /CN=eng.example
t_no_file "$SLOT:01" "$SLOT:01: no key file of that name"
t_grep "engine key id: using the key pkcs11:serial=$SERIAL;token=eng1;id=%01;type=private" \
	"$T_ERR" "-v says which URI $SLOT:01 became (token and serial of the slot)"
t_grep "^scep-agent: key in the token: pkcs11:.*id=%01" "$T_OUT" "mkrequest names the token key"
t_is "$(pub_of eng.csr)" "$TOKPUB" "the request is for the key in the token"
t_expect_exit 0 sa enroll -f eng.conf --pin-file pin
t_is "$(pub_of eng.crt)" "$TOKPUB" "enroll -f with $SLOT:01: the certificate is for the token key"
t_expect_exit 0 sa list-objects --module "$MOD" --pin-file pin 'pkcs11:token=eng1'
t_grep "^certificate 'engkey' id 01" "$T_OUT" "the certificate is stored in the token next to the key"
t_no_file "$SLOT:01" "$SLOT:01: still no key file"

# every other syntax of libp11's engine, and a plain hex id with an engine
for k in "slot_$SLOT-id_01" id_01 label_engkey "slot_$SLOT-label_engkey" 01; do
	conf "$k" "$MOD"
	rm -f eng.csr
	t_expect_exit 0 sa mkrequest -v -f eng.conf --pin-file pin --subject /CN=eng.example
	t_is "$(pub_of eng.csr)" "$TOKPUB" "$k: the request is for the key in the token"
	t_no_file "$k" "$k: no key file of that name"
	t_grep 'engine key id: using the key pkcs11:' "$T_ERR" "$k: -v names the URI"
done

# the token holds no key of that id: exit 7, nothing generated, no file
conf id_ff "$MOD"
t_expect_exit 7 sa mkrequest -f eng.conf --pin-file pin --subject /CN=eng.example
t_grep 'pkcs11-tool --keypairgen|--new-key' "$T_ERR" "id_ff not in the token: says how to make the key"
t_no_file id_ff "id_ff: no key file of that name"

# no module configured: exit 4, naming the URI to write; no file
conf 0:01
t_expect_exit 4 sa mkrequest -f eng.conf --pin-file pin --subject /CN=eng.example
t_grep 'engine key id.*pkcs11:token=LABEL;id=%01;type=private' "$T_ERR" \
	"0:01, no module: names the URI to write"
t_no_file 0:01 "0:01, no module: no key file"
t_expect_exit 4 sa enroll -u "$CA_URL" -c ca.crt -k label_engkey -r eng.csr -l x.crt
t_grep 'pkcs11:object=engkey;type=private' "$T_ERR" "label_engkey, no engine, no module: names the URI"
t_expect_exit 4 sa mkrequest -k id_01 --subject /CN=x -r x.csr
t_no_file id_01 "id_01, no engine, no module: no key file"

# a slot without a token: exit 4, naming the slots there are
conf 424242:01 "$MOD"
t_expect_exit 4 sa mkrequest -f eng.conf --pin-file pin --subject /CN=eng.example
t_grep "slot 424242.*$SLOT \\('eng1'\\)" "$T_ERR" "no such slot: lists the slots with tokens"
t_no_file 424242:01 "no such slot: no key file"

# with a module given on the command line instead (no engine): translated
t_expect_exit 0 sa mkrequest -v --module "$MOD" --pin-file pin -k "$SLOT:01" \
	--subject /CN=eng.example -r cli.csr
t_is "$(pub_of cli.csr)" "$TOKPUB" "-k $SLOT:01 --module: the token key"

# every other name stays a file path, module and engine configured or not
conf local.key "$MOD"
t_expect_exit 0 sa mkrequest -f eng.conf --pin-file pin --subject /CN=file.example
t_file local.key "mkrequest -k local.key with the engine configured: a file key"
t_expect_exit 0 sa mkrequest -k local2.key --module "$MOD" --subject /CN=file.example -r l2.csr
t_file local2.key "mkrequest -k local2.key with a module: a file key"
# a plain hex name without an engine is a file name, as in sscep
t_expect_exit 0 sa mkrequest -k 0102 --subject /CN=file.example -r hex.csr
t_file 0102 "a plain hex name without an engine: a file key"
# a key file of such a name made earlier stays usable without an engine
mkkey 5:01 1024
t_expect_exit 0 sa mkrequest -k 5:01 --subject /CN=file.example -r old.csr
t_is "$(pub_of old.csr)" "$(pub_of 5:01)" "an existing file named 5:01, no engine: that file"

done_testing
