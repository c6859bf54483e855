#!/bin/bash
# softhsm suite: init-token on SoftHSM2 (C_InitToken with the SO PIN, then
# C_InitPIN with the user PIN). SoftHSM2 always shows one free,
# uninitialised slot: without a URI init-token takes it, and prints the new
# token's URI, which then works (with the user PIN) for mkrequest and
# list-objects. A URI picks the slot (slot-id=), or with token=L alone
# the blank slot under that label; a URI matching nothing is refused with
# the slots listed. An initialised token is refused (exit 4) unless
# --force-reinit, which destroys its objects; a label another token has is
# refused; a wrong SO PIN is exit 8 and changes nothing; the SO PIN from
# --so-pin-env; no SO PIN source and no terminal is exit 8 with a message.
# A token an interrupted init-token left without its user PIN is finished
# by the same command (user PIN set, nothing wiped); -R sets the user PIN of
# a whole token with the SO PIN and keeps its objects.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool setsid

# an empty token directory: one free slot, no token
mkdir -p tokens
SOFTHSM2_CONF=$T_WORK/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$T_WORK/tokens" >"$SOFTHSM2_CONF"
MOD=/usr/lib/softhsm/libsofthsm2.so
export SOFTHSM2_CONF
pin_file
secret_file sopin "$T_SOPIN"
secret_file badsopin "${T_SOPIN}x"

tool() {
	pkcs11-tool --module "$MOD" "$@" 2>/dev/null
}
# objects LABEL: how many objects token LABEL holds (logged in)
objects() {
	tool --token-label "$1" -l --pin "$T_PIN" -O | grep -c 'Object;'
}
# tokens: the initialised tokens' labels, sorted, on one line
tokens() {
	tool -L | sed -n 's/^ *token label *: *//p' | sort | tr '\n' ' ' | sed 's/ $//'
}
# blank_slot_id: the CK_SLOT_ID (decimal) of the uninitialised slot
blank_slot_id() {
	tool -L | awk '/^Slot /{ s = $3 } /token state: *uninitialized/{ print s }' |
		tr -d '():' | head -1 | xargs printf '%d\n'
}
initok() {
	sa init-token --module "$MOD" "$@"
}

t_is "$(tokens)" "" "no token yet"
t_is "$(tool -L | grep -c 'token state: *uninitialized')" 1 "one uninitialised slot"

# --- no URI: the only blank slot
t_expect_exit 0 initok --label t1 --so-pin-file sopin --pin-file pin
t_grep '^scep-agent: token: pkcs11:.*token=t1' "$T_OUT" "prints the new token's URI"
uri=$(sed -n 's/^scep-agent: token: //p' "$T_OUT")
# the key's URI: object= in the path, before the query (?module-path=...)
upath=${uri%%\?*}
kuri="$upath;object=k1${uri#"$upath"}"
t_is "$(tokens)" t1 "token t1 initialised"
t_like "$(tool -L | sed -n '/token label *: t1$/,/serial/p')" 'PIN initialized' "with a user PIN"

# the printed URI works, with the user PIN
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin --new-key "$kuri" \
	--key-type ec:P-256 --subject /CN=k1 -r k1.csr
t_ok "mkrequest with the printed URI: the request verifies" openssl req -in k1.csr -noout -verify
t_expect_exit 0 sa list-objects "$uri" --module "$MOD" --pin-file pin
t_grep "private key 'k1'" "$T_OUT" "list-objects with the printed URI"
n1=$(objects t1)
t_is "$n1" 2 "t1 holds the key pair"

# --- refusals: a label taken, an initialised token, a URI matching nothing
t_expect_exit 4 initok --label t1 --so-pin-file sopin --pin-file pin
t_grep "label 't1' is taken" "$T_ERR" "no URI, label t1 taken: refused, says so"
t_expect_exit 4 initok "$uri" --label t1 --so-pin-file sopin --pin-file pin
t_grep 'force-reinit' "$T_ERR" "the initialised token: refused, names --force-reinit"
t_grep 'destroy' "$T_ERR" "and says that it destroys the token's keys"
t_expect_exit 4 initok 'pkcs11:token=t1' --so-pin-file sopin --pin-file pin
t_grep 'force-reinit' "$T_ERR" "token=t1 (initialised): refused, names --force-reinit"
t_expect_exit 4 initok 'pkcs11:serial=0123456789abcdef' --label t9 --so-pin-file sopin --pin-file pin
t_grep 'slot' "$T_ERR" "a URI matching no slot: refused, lists the slots"
t_grep "token 't1'.*blank|blank.*token 't1'" "$T_ERR" "the list names the token t1 and the blank slot"
t_is "$(tokens)" t1 "the refusals made no token"
t_is "$(objects t1)" "$n1" "the refusals kept t1's objects"

# --- --force-reinit with a wrong SO PIN: exit 8, nothing changed
t_expect_exit 8 initok "$uri" --label t1 --force-reinit --so-pin-file badsopin --pin-file pin
t_grep 'SO PIN' "$T_ERR" "wrong SO PIN: says so"
t_is "$(objects t1)" "$n1" "wrong SO PIN: t1 keeps its objects"

# --- --force-reinit: the token is made anew, its objects destroyed
t_expect_exit 0 initok "$uri" --label t1 --force-reinit --so-pin-file sopin --pin-file pin
t_grep '^scep-agent: token: pkcs11:.*token=t1' "$T_OUT" "--force-reinit: prints the token's URI"
t_is "$(objects t1)" 0 "--force-reinit: t1's objects are destroyed"
t_is "$(tokens)" t1 "--force-reinit: on the same slot (no new token)"
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin --new-key "pkcs11:token=t1;object=k2" \
	--key-type ec:P-256 --subject /CN=k2 -r k2.csr
t_ok "the reinitialised token takes keys with the new user PIN" openssl req -in k2.csr -noout -verify

# --- token=L alone, no initialised token of that label: the blank slot,
#     labelled L; SO and user PIN from the environment
SOP=$T_SOPIN UP=$T_PIN t_expect_exit 0 initok 'pkcs11:token=t2' --so-pin-env SOP --pin-env UP
t_grep '^scep-agent: token: pkcs11:.*token=t2' "$T_OUT" "token=t2, --so-pin-env: prints t2's URI"
t_is "$(tokens)" "t1 t2" "token t2 initialised"
t_expect_exit 0 sa list-objects 'pkcs11:token=t2' --module "$MOD" --pin-file pin
t_is "$(grep -c '^private key' "$T_OUT")" 0 "t2 logs in with the user PIN"

# --- slot-id= picks the slot
sid=$(blank_slot_id)
t_expect_exit 0 initok "pkcs11:slot-id=$sid" --label t3 --so-pin-file sopin --pin-file pin
t_grep '^scep-agent: token: pkcs11:.*token=t3' "$T_OUT" "slot-id=$sid: prints t3's URI"
t_is "$(tokens)" "t1 t2 t3" "token t3 initialised in that slot"

# --- no SO PIN source and no terminal (a new session, stdin not a tty)
t_expect_exit 8 setsid -w ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" init-token --module "$MOD" \
	--label t4 --pin-file pin </dev/null
t_grep 'SO PIN' "$T_ERR" "no SO PIN: says so"
t_grep 'so-pin-file|so-pin-env' "$T_ERR" "no SO PIN: names the options"
t_is "$(tokens)" "t1 t2 t3" "no SO PIN: no token made"

# --- an init-token that stopped after C_InitToken (made here by
#     pkcs11-tool without --init-pin): the token has its label but no user
#     PIN; the same command finishes it (the user PIN set, nothing wiped)
tool --init-token --label t5 --so-pin "$T_SOPIN" >/dev/null
t_like "$(tool -L | grep -A8 'token label *: t5' | grep 'token flags')" \
	'token initialized' "t5 made without a user PIN (the interrupted run's state)"
t_expect_exit 0 initok --label t5 --so-pin-file sopin --pin-file pin
t_grep 'setting its user PIN' "$T_ERR" "the same command finishes t5 (says so)"
t_grep '^scep-agent: token: pkcs11:.*token=t5' "$T_OUT" "and prints its URI"
t_expect_exit 0 sa mkrequest --module "$MOD" --pin-file pin --new-key "pkcs11:token=t5;object=k5" \
	--key-type ec:P-256 --subject /CN=k5 -r k5.csr
t_ok "t5 takes keys with the user PIN" openssl req -in k5.csr -noout -verify
# -R on a whole token: its user PIN set again with the SO PIN; its objects stay
n5=$(objects t5)
pin_file2() { (umask 077 && printf '%s\n' "${T_PIN}2" >pin2); }
pin_file2
t_expect_exit 4 initok --label t5 --so-pin-file sopin --pin-file pin2
t_grep 'with -R finishes it' "$T_ERR" "without -R, an initialised t5 is refused, naming -R"
t_expect_exit 0 initok --label t5 --so-pin-file sopin --pin-file pin2 -R
t_is "$(tool --token-label t5 -l --pin "${T_PIN}2" -O | grep -c 'Object;')" "$n5" \
	"-R: t5's objects stay, and the user PIN is the new one"

done_testing
