#!/bin/bash
# softhsm suite (token keys): scep-agent killed (SIGKILL, through the test
# hook SCEP_AGENT_TEST_STOP=STEP) at every step of a first enrollment with
# --new-key, a renewal with a new key (-K/-O) and a renewal in place
# (--overwrite). Each step starts from the same token (a copy of its
# directory) holding the old pair "base" (RSA) and its certificate. After
# each kill: the process died at that step, the old objects are intact
# (class, label, CKA_ID, value) and the old key still signs, the
# certificate file is absent or whole, and the retry (with -R once the
# request was sent) completes - polling under the same transactionID, or
# with no request at all once the certificate had arrived - with one key
# and certificate under the label.
#
# Where the certificate had arrived (cert-written, cert-stored,
# key-committed) the retry finishes from what the killed run left (the
# certificate in -l or in the token) without asking the CA again; where
# nothing was sent (key-generated) the same command reuses the staged key.
# New keys are EC P-256 where the CA accepts them (a renewal's request is
# signed by the old RSA key); a first enrollment's key must be RSA (the
# test CA answers only RSA signers). Under valgrind (SCEP_AGENT_WRAP) a
# sample runs (VG_SAMPLE: a renewal in place killed once the certificate
# was stored in the token, and its -R retry): each run takes several
# seconds there, and RSA key generation in SoftHSM2 about 20 s.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
softhsm_new t1
pin_file
MOD=$P11_MODULE
TOK='pkcs11:token=t1'

tool() {
	pkcs11-tool --module "$MOD" --token-label t1 -l --pin "$T_PIN" "$@" 2>/dev/null
}

# enroll ARGS...: scep-agent enroll against the CA with token t1
enroll() {
	sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin "$@"
}

# objects ID: the token's objects with CKA_ID ID, one line each: class,
# label, id, and the SHA-256 of the public key's or certificate's value
objects() {
	tool -O | awk -v id="$1" '
		/Object;/ { cls = $1 " " $2; lab = ""; next }
		/^ *label:/ { sub(/^ *label: */, ""); lab = $0; next }
		/^ *ID:/ { if ($2 == id) print cls "|" lab "|" $2 }' | sort
	for _t in pubkey cert; do
		tool --read-object --type "$_t" --id "$1" -o "$T_WORK/.obj" >/dev/null &&
			echo "$_t value $(sha256sum <"$T_WORK/.obj" | cut -c1-64)"
	done
	rm -f "$T_WORK/.obj"
}

# count CLASS LABEL: objects of a class (privkey, pubkey, cert) with a label
count() {
	p11_count t1 "$@"
}

# old_signs: the old private key (by its id) signs, and the signature
# verifies with the old certificate
old_signs() {
	echo "kill step $RANDOM" >sig.in
	tool --sign --id "$BASE_ID" -m SHA256-RSA-PKCS -i sig.in -o sig.bin >/dev/null &&
		openssl x509 -in base.crt -noout -pubkey >sig.pub &&
		openssl dgst -sha256 -verify sig.pub -signature sig.bin sig.in >/dev/null
}

# holds CERT LABEL: CERT is for the (one) token key LABEL
holds() {
	tool --read-object --type pubkey --label "$2" -o "$T_WORK/.pub.der" >/dev/null &&
		[ "$(pub_of "$1")" = "$(openssl pkey -pubin -inform DER -in "$T_WORK/.pub.der" 2>/dev/null)" ]
}

# whole_or_absent CERT DESC: CERT is absent, or a whole certificate
whole_or_absent() {
	if [ ! -e "$1" ] || openssl x509 -in "$1" -noout 2>/dev/null; then
		t_pass "$2: $1 absent or whole"
	else
		t_fail "$2: $1 is half-written"
	fi
}

no_leftovers() {
	t_is "$(find . -maxdepth 1 -name '*.tmp??????' | sed 's#^\./##')" "" \
		"$1: no temporary file left"
}

# restore: the token and the old certificate file as prepared
restore() {
	rm -rf tokens && cp -a tokens.base tokens && cp base.crt.orig base.crt
	rm -f new.crt
}

# old_intact DESC: the old objects and file as prepared, and the old key signs
old_intact() {
	t_is "$(objects "$BASE_ID")" "$BASE_OBJS" "$1: the old key pair and certificate are intact"
	t_ok "$1: the old certificate file is unchanged" cmp -s base.crt base.crt.orig
	t_ok "$1: the old key still signs for the old certificate" old_signs
}

# pki_ops: how many PKIOperation requests the CA has seen
pki_ops() {
	grep -c '"op":"PKIOperation"' "$CA_LOG"
}

# retried_as STEP DESC: after a retry, the CA saw what STEP calls for: one
# new request (key-generated: the killed run sent none), nothing (the
# certificate had arrived), or a poll of the killed run's transaction
retried_as() {
	case $1 in
	key-generated)
		t_is "$(($(pki_ops) - ops0))" 1 "$2: the retry sent the one request" ;;
	cert-written|cert-stored|key-committed)
		t_is "$(($(pki_ops) - ops0))" 0 "$2: the retry finished without asking the CA" ;;
	*)
		t_is "$(ca_log_field -1 tid):$(ca_log_field -1 msgType)" "$t_tid:20" \
			"$2: the retry polled for the same transaction" ;;
	esac
}

# sample STEP...: the steps to run (all of them, or under valgrind the
# ones in VG_SAMPLE)
sample() {
	for _s in "$@"; do
		if [ -z "${SCEP_AGENT_WRAP:-}" ] || case " $VG_SAMPLE " in *" $_s "*) true ;; *) false ;; esac; then
			echo "$_s"
		fi
	done
}

ca_start -allowrenew 0 -allow-ec
t_expect_exit 0 "$SCEP_AGENT" getca -u "$CA_URL" -c ca.crt

# the prepared token: the old pair "base" (RSA, as the CA needs for a
# request's signer) and its certificate; made without the valgrind wrapper
"$SCEP_AGENT" enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin \
	--new-key "$TOK;object=base" --subject /CN=base -l base.crt >/dev/null 2>&1
BASE_ID=$(tool -O --type privkey | sed -n 's/^ *ID: *//p' | head -n 1)
BASE_OBJS=$(objects "$BASE_ID")
t_is "$(printf '%s\n' "$BASE_OBJS" | wc -l)" 5 \
	"prepared: private key, public key and certificate labelled base, and their values"
diag "the old objects:" "$BASE_OBJS"
cp base.crt base.crt.orig
cp -a tokens tokens.base

# --- first enrollment: a new RSA key per step -------------------------------
VG_SAMPLE=""
n=0
for step in $(sample key-generated request-sent reply-verified cert-written cert-stored); do
	n=$((n + 1))
	restore
	E=(--new-key "$TOK;object=e$n" --subject "/CN=e$n" -l new.crt)
	t_killed "$step" enroll "${E[@]}"
	t_tid=$(ca_log_field -1 tid)
	ops0=$(pki_ops)
	old_intact "enroll $step"
	whole_or_absent new.crt "enroll $step"
	if [ "$step" = key-generated ]; then
		t_expect_exit 0 enroll "${E[@]}" # nothing was sent: no -R
	else
		t_expect_exit 0 enroll "${E[@]}" -R
	fi
	retried_as "$step" "enroll $step"
	t_is "$(count privkey "e$n") $(count cert "e$n")" "1 1" \
		"enroll $step: one key and one certificate labelled e$n"
	t_ok "enroll $step: the certificate is for the token key" holds new.crt "e$n"
	no_leftovers "enroll $step, retried"
done

# --- renewal with a new key under a new label (EC) --------------------------
VG_SAMPLE=""
n=0
for step in $(sample key-generated request-sent reply-verified cert-written cert-stored); do
	n=$((n + 1))
	restore
	R=(-K "$TOK;object=base" -O base.crt --new-key "$TOK;object=r$n" --key-type ec:P-256
		--subject /CN=base -l new.crt)
	t_killed "$step" enroll "${R[@]}"
	t_tid=$(ca_log_field -1 tid)
	ops0=$(pki_ops)
	old_intact "renew $step"
	whole_or_absent new.crt "renew $step"
	if [ "$step" = key-generated ]; then
		t_expect_exit 0 enroll "${R[@]}"
	else
		t_expect_exit 0 enroll "${R[@]}" -R
	fi
	retried_as "$step" "renew $step"
	t_is "$(count privkey "r$n") $(count cert "r$n")" "1 1" \
		"renew $step: one key and one certificate labelled r$n"
	t_ok "renew $step: the certificate is for the new token key" holds new.crt "r$n"
	t_is "$(objects "$BASE_ID")" "$BASE_OBJS" "renew $step, retried: the old objects are intact"
	no_leftovers "renew $step, retried"
done

# --- renewal in place: the new key (EC) takes the label "base" -------------
VG_SAMPLE="cert-stored"
P=(-K "$TOK;object=base" -O base.crt --new-key "$TOK;object=base" --overwrite
	--key-type ec:P-256 --subject /CN=base -l new.crt)
for step in $(sample key-generated request-sent reply-verified cert-written cert-stored key-committed); do
	restore
	t_killed "$step" enroll "${P[@]}"
	t_tid=$(ca_log_field -1 tid)
	ops0=$(pki_ops)
	whole_or_absent new.crt "in place $step"
	if [ "$step" = key-committed ]; then
		# the new pair is complete under the label, the old one gone
		t_is "$(count privkey base) $(count cert base) $(count privkey 'base~new')" "1 1 0" \
			"in place $step: one key and one certificate labelled base"
		t_ok "in place $step: they are the new pair" holds new.crt base
	else
		old_intact "in place $step"
	fi
	if [ "$step" = key-generated ]; then
		# nothing was sent: the same command reuses the staged pair
		t_expect_exit 0 enroll "${P[@]}"
	else
		t_expect_exit 0 enroll "${P[@]}" -R
	fi
	retried_as "$step" "in place $step"
	t_is "$(count privkey base) $(count cert base) $(count privkey 'base~new')" "1 1 0" \
		"in place $step, retried: one key and one certificate labelled base"
	t_ok "in place $step, retried: the certificate is for the key labelled base" holds new.crt base
	t_is "$(objects "$BASE_ID")" "" "in place $step, retried: the old objects are gone"
	no_leftovers "in place $step, retried"
done

# the issue's case: in place with -l = -O, killed once the new
# certificate replaced the old file (and before it reached the token)
if [ -z "${SCEP_AGENT_WRAP:-}" ]; then
	restore
	t_killed cert-written enroll "${P[@]/new.crt/base.crt}"
	ops0=$(pki_ops)
	t_is "$(objects "$BASE_ID")" "$BASE_OBJS" "in place -l = -O, cert-written: the old objects are intact"
	t_expect_exit 0 enroll "${P[@]/new.crt/base.crt}" -R
	retried_as cert-written "in place -l = -O, cert-written"
	t_is "$(count privkey base) $(count cert base) $(count privkey 'base~new')" "1 1 0" \
		"in place -l = -O, retried: one key and one certificate labelled base"
	t_ok "in place -l = -O, retried: base.crt is for the key labelled base" holds base.crt base
	t_is "$(objects "$BASE_ID")" "" "in place -l = -O, retried: the old objects are gone"
	# and the same command later is the next renewal, not "finished
	# already" (which the test CA refuses: the new pair's key is EC, and
	# it encrypts replies to RSA keys only)
	ops0=$(pki_ops)
	t_expect_exit 2 enroll "${P[@]/new.crt/base.crt}"
	t_is "$(($(pki_ops) - ops0))" 1 "in place -l = -O: the next renewal sends a request"
	t_ok "in place -l = -O, refused renewal: base.crt is still for the key labelled base" \
		holds base.crt base
fi

done_testing
