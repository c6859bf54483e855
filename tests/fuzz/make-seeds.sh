#!/bin/bash
# shellcheck disable=SC2012,SC2059 # ls of our own files; printf of an octal escape
# make-seeds.sh [BUILDDIR] - regenerate the seed corpora of the fuzz
# targets that read replies (tests/fuzz/corpus/{caps,getcacert,certrep,
# getcert,nextca,http}/) from real replies of the test CA
# (tests/servers/scepca), recorded by tests/fuzz/record.py between
# scep-agent and the CA. BUILDDIR (default: build) holds scep-agent and
# scepca (any build: plain, ASan, or the fuzz build). The corpora of
# p11uri, csr and esc are written by hand (their inputs are command-line
# strings); fuzz_conf reads conf/examples. See docs/fuzzing.md.
#
# The seeds of certrep, getcert and nextca are in the targets' own formats
# (see the comment at the top of each fuzz_*.c): the content of each reply
# (the decrypted degenerate PKCS#7, the attribute values), which the
# targets sign and envelope again with their own CA; the raw reply is kept
# beside them (certrep and nextca also parse their whole input as a reply).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
export SCEP_AGENT=$build/agent/scep-agent SCEPCA=$build/tests/servers/scepca SRCDIR=$top
for f in "$SCEP_AGENT" "$SCEPCA"; do
	[ -x "$f" ] || { echo "make-seeds: $f missing; build $build first" >&2; exit 1; }
done
# shellcheck source=../lib/fixtures.sh
. "$top/tests/lib/fixtures.sh"
# the cleanup kills the recorders: their exit status must not stop it
trap 'set +e; t_cleanup' EXIT
out=$top/tests/fuzz/corpus
ossl() { openssl "$@" -provider default -provider legacy; }
oct() { printf "\\$(printf %03o "$1")"; } # one byte of value $1

# rec_start: the recorder in front of the current CA; REC_URL, REC_DIR
REC_N=0
rec_start() {
	REC_N=$((REC_N + 1))
	REC_DIR=$T_WORK/rec$REC_N
	mkdir -p "$REC_DIR"
	python3 "$top/tests/fuzz/record.py" "$T_WORK/rec$REC_N.port" "$CA_URL" "$REC_DIR" &
	T_PIDS="$T_PIDS $!"
	for _ in $(seq 100); do [ -s "$T_WORK/rec$REC_N.port" ] && break; sleep 0.1; done
	REC_URL=http://127.0.0.1:$(sed -n 's/^port //p' "$T_WORK/rec$REC_N.port")/scep
}
# last OP: the body file of the last reply recorded for operation OP
last() { ls "$REC_DIR"/*-"$1".body | tail -1; }
run() { "$SCEP_AGENT" "$@" >"$T_WORK/agent.out" 2>&1 || true; }

# field VALUE: a type byte (0: PrintableString), a length byte, the value
field() { printf '\000'; oct "${#1}"; printf '%s' "$1"; }
# certrep_seed NAME FLAGS STATUS FAILINFO TEXT TID [BODY]: absent fields "-"
certrep_seed() {
	{
		oct "$2"; printf '\001' # flags; SHA-256
		field 3
		field "$3"
		if [ "$4" = - ]; then printf '\000\377'; else field "$4"; fi
		if [ "$5" = - ]; then printf '\003\377'; else printf '\003'; oct "${#5}"; printf '%s' "$5"; fi
		field "$6"
		if [ -n "${7:-}" ]; then cat "$7"; fi
	} >"$out/certrep/$1"
}
# content REPLY: the signed content of a SignedData (signature checked)
content() { openssl cms -verify -noverify -binary -inform DER -in "$1" -out "$2" 2>/dev/null; }
# degenerate REPLY OUT: the decrypted bag of a SUCCESS CertRep to local.key
degenerate() {
	content "$1" "$T_WORK/env.der"
	ossl cms -decrypt -binary -inform DER -in "$T_WORK/env.der" -inkey local.key \
		-out "$2" 2>/dev/null
}

rm -rf "$out"/{caps,getcacert,certrep,getcert,nextca,http}
mkdir -p "$out"/{caps,getcacert,certrep,getcert,nextca,http}
mkkey local.key 1024
mkcsr local.key local.csr "/CN=seed.example/O=Example"
tid=$(openssl pkey -in local.key -pubout -outform DER | sha256sum | cut -c1-64 | tr a-f A-F)

# 1. a stock CA with a rollover CA: every operation
ca_start -next-ca -allowrenew 0
rec_start
run getcaps -u "$REC_URL"
run getca -u "$REC_URL" -c ca.crt
run enroll -u "$REC_URL" -c ca.crt -k local.key -r local.csr -l local.crt
serial=$(openssl x509 -in local.crt -noout -serial | cut -d= -f2)
run getcert -u "$REC_URL" -c ca.crt -k local.key -l local.crt -s "$serial" -w got.crt
getcert_rep=$(last PKIOperation)
run getcrl -u "$REC_URL" -c ca.crt -k local.key -l local.crt -w got.crl
getcrl_rep=$(last PKIOperation)
run getnextca -u "$REC_URL" -c ca.crt -w next.crt
cp "$(last GetCACaps)" "$out/caps/stock"
cp "$(last GetCACert)" "$out/getcacert/der-cert"
enroll_rep=$(ls "$REC_DIR"/*-PKIOperation.body | head -1)
cp "$enroll_rep" "$out/certrep/raw-success"
degenerate "$enroll_rep" "$T_WORK/enroll.p7"
certrep_seed success 12 0 - - "$tid" "$T_WORK/enroll.p7"
degenerate "$getcert_rep" "$out/getcert/cert.p7"
{ printf '\000'; cat "$out/getcert/cert.p7"; } >"$out/getcert/cert"
{ printf '\003'; cat "$out/getcert/cert.p7"; } >"$out/getcert/cert-resigned"
degenerate "$getcrl_rep" "$T_WORK/crl.p7"
{ printf '\000'; cat "$T_WORK/crl.p7"; } >"$out/getcert/crl"
{ printf '\003'; cat "$T_WORK/crl.p7"; } >"$out/getcert/crl-resigned"
rm -f "$out/getcert/cert.p7"
cp "$(last GetNextCACert)" "$out/nextca/raw"
content "$(last GetNextCACert)" "$T_WORK/next.p7"
{ printf '\000'; cat "$T_WORK/next.p7"; } >"$out/nextca/bag"
for f in "$REC_DIR"/*-GetCACaps.http; do { printf '\000'; cat "$f"; } >"$out/http/caps"; done
{ printf '\000'; cat "$(ls "$REC_DIR"/*-GetCACert.http | tail -1)"; } >"$out/http/getca-der"
{ printf '\001'; cat "$(ls "$REC_DIR"/*-PKIOperation.http | head -1)"; } >"$out/http/certrep-post"
ca_new

# 2. an RA, PENDING once, a caps string without POST (GET PKIOperation)
ca_start -ra -pending 1 -allowrenew 0 -reply-cipher aes128 -caps 'AES\nSHA-256\nGetNextCACert'
rec_start
run getca -u "$REC_URL" -c ra.crt
run enroll -u "$REC_URL" -c ra.crt -k local.key -r local.csr -l local2.crt -t 1 -n 3
run getnextca -u "$REC_URL" -c ra.crt -w next2.crt # no rollover CA: 404
cp "$(last GetCACert)" "$out/getcacert/ra-p7"
pend=$(ls "$REC_DIR"/*-PKIOperation.body | head -1)
cp "$pend" "$out/certrep/raw-pending"
certrep_seed pending 8 3 - - "$tid"
{ printf '\010'; cat "$(ls "$REC_DIR"/*-PKIOperation.http | head -1)"; } >"$out/http/certrep-get"
{ printf '\000'; cat "$(last GetNextCACert | sed 's/body$/http/')"; } >"$out/http/status-404"
ca_new

# 3. FAILURE with a failInfoText; 4. an HTML error page
ca_start -fail badRequest -fail-text 'challenge password wrong' -allowrenew 0
rec_start
run getca -u "$REC_URL" -c ca3.crt
run enroll -u "$REC_URL" -c ca3.crt -k local.key -r local.csr -l local3.crt
cp "$(last PKIOperation)" "$out/certrep/raw-failure"
certrep_seed failure 8 2 2 'challenge password wrong' "$tid"
ca_new
ca_start -html -html-status 503
rec_start
run getca -u "$REC_URL" -c ca4.crt
run enroll -u "$REC_URL" -c ca4.crt -k local.key -r local.csr -l local4.crt
{ printf '\001'; cat "$(last PKIOperation | sed 's/body$/http/')"; } >"$out/http/html-503"
ca_new

for d in caps getcacert certrep getcert nextca http; do
	printf '%-10s' "$d:"; ls "$out/$d" | tr '\n' ' '; echo
done
