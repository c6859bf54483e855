#!/bin/bash
# server suite (file keys): scep-agent killed (SIGKILL, through the test
# hook SCEP_AGENT_TEST_STOP=STEP) at every step of mkrequest, a first
# enrollment and a renewal with a new key (-K/-O). After each kill: the
# process died at that step (exit 137 and the hook's line), the old key
# and certificate are byte-identical and still sign, no file is
# half-written, and the retry (with -R once the request was sent)
# completes under the same transactionID and leaves no NAME.tmpXXXXXX
# behind. Under valgrind (SCEP_AGENT_WRAP, about 1.2 s per run) a sample
# of the steps runs (VG_SAMPLE, and mkrequest with a leftover), each with
# its retry.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

# no_leftovers: no temporary file of an atomic write in the work dir
no_leftovers() {
	_l=$(find . -maxdepth 1 -name '*.tmp??????' | sed 's#^\./##')
	t_is "$_l" "" "$1: no temporary file left"
}

# whole_or_absent CERT DESC: CERT is absent, or a whole certificate
whole_or_absent() {
	if [ ! -e "$1" ] || openssl x509 -in "$1" -noout 2>/dev/null; then
		t_pass "$2: $1 absent or whole"
	else
		t_fail "$2: $1 is half-written"
	fi
}

# signs KEY CERT: KEY signs, and the signature verifies with CERT's key
signs() {
	echo "kill step $RANDOM" >sig.in
	openssl dgst -sha256 -sign "$1" -out sig.bin sig.in &&
		openssl x509 -in "$2" -noout -pubkey >sig.pub &&
		openssl dgst -sha256 -verify sig.pub -signature sig.bin sig.in >/dev/null
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

# full: not under valgrind
full() {
	[ -z "${SCEP_AGENT_WRAP:-}" ]
}

# the tid of the N-th PKIOperation of the CA log (-1: the last)
tid() {
	ca_log_field "$1" tid
}

# --- mkrequest: the key file (EC: quick), then the request ---------------
MK="--key-type ec:P-256 --subject /CN=mk.example"
if full; then
t_killed key-generated sa mkrequest -k mk1.key $MK -r mk1.csr
t_ok "key-generated: the key file is whole" openssl pkey -in mk1.key -noout
t_no_file mk1.csr "key-generated: no request written"
# a known limit (no -R for mkrequest): the same command refuses to replace
# the key it made; without --key-type it makes the request for that key
t_expect_exit 9 sa mkrequest -k mk1.key $MK -r mk1.csr
t_grep 'mk1.key already exists; not replacing it' "$T_ERR" \
	"key-generated: the retry says the key file is there"
t_expect_exit 0 sa mkrequest -k mk1.key --subject /CN=mk.example -r mk1.csr
t_is "$(pub_of mk1.csr)" "$(pub_of mk1.key)" "key-generated: request for the key of the killed run"
fi

t_killed file-staged:mk2.key sa mkrequest -k mk2.key $MK -r mk2.csr
t_no_file mk2.key "key staged: no key file yet"
t_is "$(find . -maxdepth 1 -name 'mk2.key.tmp??????' | wc -l)" 1 \
	"key staged: its temporary file is left (owner-only: $(stat -c %a mk2.key.tmp* 2>/dev/null))"
t_expect_exit 0 sa mkrequest -k mk2.key $MK -r mk2.csr
t_grep 'removed mk2.key.tmp[A-Za-z0-9]{6}, a temporary file left by an earlier run' "$T_ERR" \
	"key staged: the retry says it removed the leftover"
no_leftovers "key staged, retried"
t_is "$(pub_of mk2.csr)" "$(pub_of mk2.key)" "key staged: the retry made key and request"
if full; then

t_killed file-staged:mk3.csr sa mkrequest -k mk3.key $MK -r mk3.csr
t_no_file mk3.csr "request staged: no request file"
t_expect_exit 0 sa mkrequest -k mk3.key --subject /CN=mk.example -r mk3.csr
no_leftovers "request staged, retried"
t_is "$(pub_of mk3.csr)" "$(pub_of mk3.key)" "request staged: the retry made the request"
# a leftover of the pattern that is not ours to remove: a directory, a
# symbolic link, another name
mkdir mk3.csr.tmpAAAAAA
ln -s mk3.key mk3.csr.tmpBBBBBB
: >mk3.csr.tmpCCCCC
t_expect_exit 0 sa mkrequest -k mk3.key --subject /CN=mk.example -r mk3.csr
t_ok "only regular files of the exact pattern are removed" \
	test -d mk3.csr.tmpAAAAAA -a -L mk3.csr.tmpBBBBBB -a -e mk3.csr.tmpCCCCC
rm -rf mk3.csr.tmp*
fi

# --- enroll and renew against one CA (same DN renewed: -allowrenew 0) ----
ca_start -allowrenew 0
# setup, not under test: without the valgrind wrapper
t_expect_exit 0 "$SCEP_AGENT" getca -u "$CA_URL" -c ca.crt
E="-u $CA_URL -c ca.crt"

# first enrollment, one fresh key per step (the transactionID is derived
# from the public key); after the request went out, the retry is -R
VG_SAMPLE=""
n=0
for step in $(sample request-sent reply-verified file-staged:e.crt file-renamed:e.crt cert-written); do
	n=$((n + 1))
	mkkey e$n.key 1024
	mkcsr e$n.key e$n.csr "/CN=e$n.example"
	rm -f e.crt
	t_killed "$step" sa enroll $E -k e$n.key -r e$n.csr -l e.crt
	t_tid=$(tid -1)
	whole_or_absent e.crt "enroll $step"
	t_expect_exit 0 sa enroll $E -k e$n.key -r e$n.csr -l e.crt -R
	t_ok "enroll $step: the retry's certificate is for the key" cert_has_key e.crt e$n.key
	t_is "$(tid -1):$(ca_log_field -1 msgType)" "$t_tid:20" \
		"enroll $step: the retry polled for the same transaction"
	no_leftovers "enroll $step, retried"
done

# the old pair, and copies to compare it with
mkkey old.key 1024
mkcsr old.key old.csr "/CN=renew.example"
t_expect_exit 0 "$SCEP_AGENT" enroll $E -k old.key -r old.csr -l old.crt
cp old.key old.key.orig
cp old.crt old.crt.orig

VG_SAMPLE="request-sent"
n=0
for step in $(sample request-sent reply-verified file-staged:new.crt file-renamed:new.crt cert-written); do
	n=$((n + 1))
	mkkey n$n.key 1024
	mkcsr n$n.key n$n.csr "/CN=renew.example"
	rm -f new.crt
	t_killed "$step" sa enroll $E -k n$n.key -r n$n.csr -K old.key -O old.crt -l new.crt
	t_tid=$(tid -1)
	t_is "$(ca_log_field -1 msgType)" 17 "renew $step: a RenewalReq was sent"
	t_ok "renew $step: the old key file is unchanged" cmp -s old.key old.key.orig
	t_ok "renew $step: the old certificate file is unchanged" cmp -s old.crt old.crt.orig
	t_ok "renew $step: the old key still signs for the old certificate" signs old.key old.crt
	whole_or_absent new.crt "renew $step"
	t_expect_exit 0 sa enroll $E -k n$n.key -r n$n.csr -K old.key -O old.crt -l new.crt -R
	t_ok "renew $step: the retry's certificate is for the new key" cert_has_key new.crt n$n.key
	t_is "$(tid -1):$(ca_log_field -1 msgType)" "$t_tid:20" \
		"renew $step: the retry polled for the same transaction"
	no_leftovers "renew $step, retried"
done

# the CA certificate written by getca: a kill between staging and rename
# keeps the old file, and the retry leaves no temporary file
if full; then
cp ca.crt ca.crt.orig
t_killed file-staged:ca.crt sa getca -u "$CA_URL" -c ca.crt
t_ok "getca staged: the old CA file is unchanged" cmp -s ca.crt ca.crt.orig
t_expect_exit 0 sa getca -u "$CA_URL" -c ca.crt
no_leftovers "getca staged, retried"
fi
rm -f ca.crt.orig old.key.orig old.crt.orig

done_testing
