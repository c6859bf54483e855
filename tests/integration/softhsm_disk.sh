#!/bin/bash
# softhsm suite (as root, as CI runs it: mounts a small tmpfs and a
# read-only bind mount in the work dir): disks that fail while scep-agent
# writes. The output directory read-only, or the file system full, while
# writing the certificate (-l), the CA chain (getca -c) and the request and
# key files (mkrequest -r, -k): exit 9, the error names the path, the old
# files keep their content, no temporary file is left, and what the retry
# needs is left: a certificate the CA issued is fetched again by the same
# command with -R (the test CA answers a CertPoll for a transaction it
# already answered with the same certificate), for a key file, a new token
# key (--new-key) and a renewal in place (--overwrite), whose old key and
# certificate stay usable meanwhile.
# Under valgrind (SCEP_AGENT_WRAP) the first enrollment with a new RSA
# token key runs without the wrapper (its keygen costs ~25 s there); its
# retry with -R, and the same failure with a key file and with a new EC
# key (the renewal in place), run under valgrind.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool
t_require_root "mounts a tmpfs and a read-only bind mount"
softhsm_new t1
pin_file
MOD=$P11_MODULE

# enroll ARGS...: scep-agent enroll against the test CA with token t1
enroll() {
	sa enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin "$@"
}

# bare ARGS...: scep-agent without the valgrind wrapper, for the steps that
# only set up or check (the runs under test use sa/enroll)
bare() {
	"$SCEP_AGENT" "$@"
}

# count CLASS LABEL: objects of CLASS (privkey, pubkey, cert, any) labelled LABEL
count() {
	p11_count t1 "$@"
}

# fill_up [PAGES]: fill the tmpfs full/ up to PAGES free 4 KiB pages (0: none)
fill_up() {
	rm -f full/fill
	dd if=/dev/zero of=full/fill bs=4096 2>/dev/null
	if [ "${1:-0}" -gt 0 ]; then
		_sz=$(stat -c %s full/fill)
		truncate -s $(((_sz + 4095) / 4096 * 4096 - $1 * 4096)) full/fill
	fi
	_free=$(stat -f -c '%a*%S' full)
	if [ $((_free)) -ne $((${1:-0} * 4096)) ]; then
		echo "Bail out! full/ has $((_free)) bytes free, wanted $((${1:-0} * 4096))"
		exit 1
	fi
}

# no_tmp DIR DESC: no temporary file (NAME.tmpXXXXXX) left in DIR
no_tmp() {
	_left=$(find "$1" -name '*.tmp*')
	t_is "$_left" "" "$2"
}

# sum FILE: its SHA-256
sum() {
	sha256sum <"$1" | cut -d' ' -f1
}

# key_signs LABEL CERT: the token key LABEL is the key of CERT (a request
# made with it carries CERT's public key)
key_signs() {
	rm -f ks.csr
	bare mkrequest --module "$MOD" --pin-file pin -k "pkcs11:token=t1;object=$1" \
		--subject /CN=ks -r ks.csr >/dev/null 2>&1 &&
		[ "$(pub_of ks.csr)" = "$(pub_of "$2")" ]
}

# token_serial LABEL: the serial of the certificate object LABEL in t1
token_serial() {
	pkcs11-tool --module "$MOD" --token-label t1 --read-object --type cert \
		--label "$1" -o tok.der 2>/dev/null &&
		openssl x509 -inform DER -in tok.der -noout -serial
}

pki_ops() {
	grep -c '"op":"PKIOperation"' "$CA_LOG"
}

# a chain of two (GetCACert: issuing CA and root), so getca writes two files
ca_start -allowrenew 0 -allow-ec -intermediate
t_expect_exit 0 bare getca -u "$CA_URL" -c ca.crt
t_file ca.crt-1 "getca: the chain of two written"

# --- the output directory on a read-only mount --------------------------------
mkdir rosrc
printf 'old ca.crt-0\n' >rosrc/ca.crt-0
printf 'old ca.crt-1\n' >rosrc/ca.crt-1
mkkey k1.key 1024
t_expect_exit 0 bare enroll -u "$CA_URL" -c ca.crt -k k1.key --subject /CN=k1 -l rosrc/k1.crt
if ! t_mount --bind rosrc ro || ! t_mount -o remount,bind,ro ro; then
	echo "Bail out! cannot make a read-only bind mount"
	exit 1
fi
ro_k1=$(sum ro/k1.crt)

t_expect_exit 9 sa getca -u "$CA_URL" -c ro/ca.crt
t_grep 'ro/ca\.crt-0.*Read-only file system' "$T_ERR" "read-only getca: the error names the file"
t_is "$(cat ro/ca.crt-0; cat ro/ca.crt-1)" "$(printf 'old ca.crt-0\nold ca.crt-1')" \
	"read-only getca: the old CA files are intact"

t_expect_exit 9 enroll -k k1.key --subject /CN=k1 -l ro/k1.crt
t_grep 'ro/k1\.crt.*Read-only file system' "$T_ERR" "read-only -l: the error names the file"
t_grep 'same command with -R' "$T_ERR" "read-only -l: says how to get the certificate again"
t_is "$(ca_log_field -1 status)" SUCCESS "read-only -l: the CA issued the certificate"
tid=$(ca_log_field -1 tid)
serial=$(ca_log_field -1 serial)
t_is "$(serial_of "$T_OUT")" "$(printf %d "0x$serial")" \
	"read-only -l: the issued certificate is printed rather than lost"
t_is "$(sum ro/k1.crt)" "$ro_k1" "read-only -l: the old certificate is intact"
t_mount -o remount,bind,rw ro
t_expect_exit 0 enroll -k k1.key --subject /CN=k1 -l ro/k1.crt -R
t_is "$(ca_log_field -1 tid) $(ca_log_field -1 msgType)" "$tid 20" \
	"writable again, the same command with -R: CertPoll, the same transaction"
t_ok "writable again: the certificate of the key is written" cert_has_key ro/k1.crt k1.key
t_is "$(ca_log_field -1 serial)" "$serial" "writable again: the certificate the CA issued before"
t_mount -o remount,bind,ro ro
t_expect_exit 9 sa mkrequest -k ro/new.key --key-type ec:P-256 --subject /CN=m -r m.csr
t_grep 'ro/new\.key.*Read-only file system' "$T_ERR" "read-only -k: the error names the key file"
t_no_file m.csr "read-only -k: no request written"
no_tmp rosrc "read-only: no temporary file left"

# --- a full file system ------------------------------------------------------
t_mount -t tmpfs -o size=64k tmpfs "$T_WORK/full" || { echo "Bail out! cannot mount a tmpfs"; exit 1; }

# getca: a CA that sent one certificate now sends a chain of two, and
# there is room for one new file only: nothing is replaced or removed
# until the whole chain is written (a new ca.crt-0 next to the old ca.crt
# would be loaded alone: the newer of the two wins)
printf 'old ca.crt\n' >full/ca.crt
printf 'old ca.crt-2\n' >full/ca.crt-2
fill_up 1
t_expect_exit 9 sa getca -u "$CA_URL" -c full/ca.crt
t_grep 'full/ca\.crt-1.*No space left on device' "$T_ERR" "full getca: the error names the file"
t_is "$(cat full/ca.crt full/ca.crt-2)" "$(printf 'old ca.crt\nold ca.crt-2')" \
	"full getca: the old CA files intact (none replaced, none removed)"
t_no_file full/ca.crt-0 "full getca: no part of the new chain written"
no_tmp full "full getca: no temporary file left"
rm full/fill
t_expect_exit 0 sa getca -u "$CA_URL" -c full/ca.crt
t_is "$(sum full/ca.crt-0) $(sum full/ca.crt-1)" "$(sum ca.crt-0) $(sum ca.crt-1)" \
	"space freed, getca again: the chain written"
t_no_file full/ca.crt "space freed, getca again: the stale ca.crt removed"
t_no_file full/ca.crt-2 "space freed, getca again: the stale ca.crt-2 removed"

# a first enrollment with a new token key (RSA: the CA wants PKCSReq signed
# by RSA; the one RSA key generated in the token here)
N1=(--new-key 'pkcs11:token=t1;object=n1' --subject /CN=n1 -l full/n1.crt)
fill_up 0
if [ -n "${SCEP_AGENT_WRAP:-}" ]; then
	t_expect_exit 9 bare enroll -u "$CA_URL" -c ca.crt --module "$MOD" --pin-file pin "${N1[@]}"
else
	t_expect_exit 9 enroll "${N1[@]}"
fi
t_grep 'full/n1\.crt.*No space left on device' "$T_ERR" "full -l, new key: the error names the file"
t_grep 'same command with -R' "$T_ERR" "full -l, new key: says to retry with -R"
t_is "$(ca_log_field -1 status)" SUCCESS "full -l, new key: the CA issued the certificate"
tid=$(ca_log_field -1 tid)
t_is "$(serial_of "$T_OUT")" "$(printf %d "0x$(ca_log_field -1 serial)")" \
	"full -l, new key: the issued certificate is printed rather than lost"
t_grep 'not stored in the token either' "$T_ERR" "full -l, new key: says the token has no certificate yet"
t_is "$(count privkey 'n1~new') $(count cert n1)" "1 0" \
	"full -l, new key: the key stays in the token (staged), no certificate stored yet"
t_no_file full/n1.crt "full -l, new key: no certificate file"
no_tmp full "full -l, new key: no temporary file left"
rm full/fill
t_expect_exit 0 enroll "${N1[@]}" -R
t_is "$(ca_log_field -1 tid) $(ca_log_field -1 msgType)" "$tid 20" \
	"space freed, the same command with -R: CertPoll, the same transaction"
t_is "$(count privkey n1) $(count cert n1)" "1 1" "-R: key and certificate in the token"
t_ok "-R: the certificate written is the token key's" key_signs n1 full/n1.crt

# renewal in place (-K/-O the label of --new-key, --overwrite; -l over -O),
# the new key EC (the request is signed by the old RSA key)
R1=(-K 'pkcs11:token=t1;object=n1' -O full/n1.crt --new-key 'pkcs11:token=t1;object=n1'
	--key-type ec:P-256 --overwrite --subject /CN=n1 -l full/n1.crt)
cp full/n1.crt n1.old
old_serial=$(token_serial n1)
fill_up 0
t_expect_exit 9 enroll "${R1[@]}"
t_grep 'full/n1\.crt.*No space left on device' "$T_ERR" "full -l, renewal in place: the error names the file"
t_is "$(ca_log_field -1 status) $(ca_log_field -1 msgType)" "SUCCESS 17" \
	"full -l, renewal in place: the CA issued the certificate (RenewalReq)"
tid=$(ca_log_field -1 tid)
t_grep 'the old key and certificate stay as they were' "$T_ERR" \
	"full -l, renewal in place: says the old pair is untouched"
t_is "$(sum full/n1.crt)" "$(sum n1.old)" "full -l, renewal in place: the old certificate file is intact"
no_tmp full "full -l, renewal in place: no temporary file left"
t_is "$(count privkey n1) $(count cert n1) $(count privkey 'n1~new')" "1 1 1" \
	"full -l, renewal in place: old key and certificate kept, the new key waits as n1~new"
t_is "$(token_serial n1)" "$old_serial" "full -l, renewal in place: the token's certificate is the old one"
t_ok "full -l, renewal in place: the key labelled n1 is still the old certificate's" \
	key_signs n1 n1.old
rm full/fill
t_expect_exit 0 enroll "${R1[@]}" -R
t_is "$(ca_log_field -1 tid) $(ca_log_field -1 msgType)" "$tid 20" \
	"space freed, renewal with -R: CertPoll, the same transaction"
t_ok "renewal with -R: the new certificate is the key now labelled n1" key_signs n1 full/n1.crt
t_like "$(openssl x509 -in full/n1.crt -noout -text)" 'ASN1 OID: prime256v1' \
	"renewal with -R: the new (EC) key's certificate"
t_is "$(count privkey n1) $(count cert n1) $(count privkey 'n1~new')" "1 1 0" \
	"renewal with -R: the old objects went only now"

# the request and a new key file (mkrequest), and a request of enroll
printf 'old request\n' >full/m.csr
fill_up 0
t_expect_exit 9 sa mkrequest -k m.key --key-type ec:P-256 --subject /CN=m -r full/m.csr
t_grep 'full/m\.csr.*No space left on device' "$T_ERR" "full -r: the error names the request file"
t_is "$(cat full/m.csr)" "old request" "full -r: the old request is intact"
t_no_file m.key "full -r: the key file written for it is removed again"
t_expect_exit 9 sa mkrequest -k full/m2.key --key-type ec:P-256 --subject /CN=m -r m2.csr
t_grep 'full/m2\.key.*No space left on device' "$T_ERR" "full -k: the error names the key file"
t_no_file full/m2.key "full -k: no key file"
t_no_file m2.csr "full -k: no request"
t_expect_exit 9 sa mkrequest --module "$MOD" --pin-file pin --new-key 'pkcs11:token=t1;object=n1' \
	--overwrite --key-type ec:P-256 --subject /CN=n1 -r full/m.csr
t_grep 'full/m\.csr.*No space left on device' "$T_ERR" "full -r, mkrequest --new-key --overwrite: the error names the file"
t_is "$(count privkey n1) $(count cert n1) $(count privkey 'n1~new')" "1 1 0" \
	"full -r, mkrequest --new-key --overwrite: the new key removed, the old objects kept"
t_ok "full -r, mkrequest --new-key --overwrite: the key labelled n1 is still the certified one" \
	key_signs n1 full/n1.crt
npki=$(pki_ops)
t_expect_exit 9 enroll --new-key 'pkcs11:token=t1;object=e1' --key-type ec:P-256 \
	--subject /CN=e1 -r full/e1.csr -l e1.crt
t_grep 'full/e1\.csr.*No space left on device' "$T_ERR" "full -r (enroll): the error names the file"
t_is "$(pki_ops) $(count any e1)" "$npki 0" \
	"full -r (enroll): nothing sent, the key generated for it removed from the token"
no_tmp full "full: no temporary file left"
rm full/fill

ca_stop
done_testing
