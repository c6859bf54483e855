#!/bin/bash
# The one-shot path as sscep users run it, against the test CA on
# loopback, each case a fresh process (or two), the cases interleaved
# round by round so that a drifting machine hits all alike:
#   sa-file     scep-agent enroll, file key, CA file from getca
#   sa-token    the same with the key in a SoftHSM2 token (--module)
#   sa-bare     CA URL + pinned fingerprint to a certificate for the token
#               key, one process (no CA file: enroll fetches and pins it)
#   sscep-file, sscep-token (pkcs11 engine), sscep-bare (getca + enroll,
#               two processes): sscep 0.10, when one is found (below)
#   pki-file    strongSwan's pki --scepca + pki --scep, file key (two
#               processes; see the note printed about the test CA)
# For each: median wall and CPU (user+sys) time in ms with min and max,
# and the ratios and differences taken round by round (median [min-max]):
# token - file (the cost of a token key), sa-bare / sscep-bare. Peak RSS
# (largest process) of one run of each case.
#
# sscep is not in Debian 12. Give one with SSCEP=/path/to/sscep (0.10,
# built with cmake -DENABLE_ENGINES=ON; its token path also needs the
# pkcs11 engine, Debian's libengine-pkcs11-openssl); without it those
# cases are left out, said so. sscep reads the test CA's DES-CBC replies
# only with OpenSSL's legacy provider forced through OPENSSL_CONF.
#
# Usage: oneshot.sh [ROUNDS]   (default 20; 1 is the smoke run of the
# meson test bench_oneshot, which asserts only that every case that runs
# produces a certificate and a figure)
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"
rounds=${1:-20}
MOD=/usr/lib/softhsm/libsofthsm2.so
ENGINE=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
SSCEP=${SSCEP:-$(command -v sscep || true)}
PKI=$(command -v pki || true)
BENCH_PIN=4711

die() {
	echo "Bail out! oneshot: $*"
	exit 1
}

# --- set-up: CA (one DN may be issued again), token and file keys
ca_start -allowrenew 0
FP=$(fingerprint "$CA_CERT" sha256)
softhsm_new bench "$BENCH_PIN" 5678
printf '%s\n' "$BENCH_PIN" >pin
chmod 600 pin
sa mkrequest --module "$MOD" --pin-file pin --new-key "pkcs11:token=bench;object=k" \
	--key-type rsa:2048 --subject /CN=bench-token.example -r token.csr >/dev/null 2>&1 ||
	die "token key generation failed"
mkkey file.key
sa mkrequest -k file.key --subject /CN=bench-file.example -r file.csr >/dev/null 2>&1 ||
	die "file key request failed"
sa getca -u "$CA_URL" -c ca.crt >/dev/null 2>&1 || die "getca failed"

# legacy provider for sscep (DES-CBC replies)
printf 'openssl_conf = init\n[init]\nproviders = prov\n[prov]\ndefault = d\nlegacy = l\n[d]\nactivate = 1\n[l]\nactivate = 1\n' >legacy.cnf
if [ -n "$SSCEP" ]; then
	if [ ! -f "$ENGINE" ]; then
		echo "# sscep-token left out: no pkcs11 engine at $ENGINE (libengine-pkcs11-openssl)"
	fi
	printf '[sscep]\nengine = e\n[e]\nengine_id = pkcs11\ndynamic_path = %s\nMODULE_PATH = %s\n[sscep_engine_pkcs11]\nPIN = %s\n' \
		"$ENGINE" "$MOD" "$BENCH_PIN" >sscep-engine.conf
	chmod 600 sscep-engine.conf
	OPENSSL_CONF=$PWD/legacy.cnf "$SSCEP" getca -u "$CA_URL" -c sca.crt >/dev/null 2>&1 ||
		die "sscep getca failed"
else
	echo "# sscep cases left out: no sscep (not in Debian 12; SSCEP=/path/to/sscep 0.10)"
fi

# --- the cases: NAME and one or two command lines (words split on ' ')
CASES=(sa-file sa-token sa-bare)
declare -A CMD1 CMD2 OUT
TOKEN_KEY="pkcs11:token=bench;object=k"
CMD1[sa-file]="$SCEP_AGENT enroll -u $CA_URL -c ca.crt -k file.key -r file.csr -l sa-file.crt"
CMD1[sa-token]="$SCEP_AGENT enroll -u $CA_URL -c ca.crt --module $MOD --pin-file pin -k $TOKEN_KEY -r token.csr -l sa-token.crt"
CMD1[sa-bare]="$SCEP_AGENT enroll -u $CA_URL -F $FP --module $MOD --pin-file pin -k $TOKEN_KEY -r token.csr -l sa-bare.crt"
OUT[sa-file]=sa-file.crt OUT[sa-token]=sa-token.crt OUT[sa-bare]=sa-bare.crt
if [ -n "$SSCEP" ]; then
	CASES+=(sscep-file)
	CMD1[sscep-file]="$SSCEP enroll -u $CA_URL -c sca.crt -k file.key -r file.csr -l sscep-file.crt"
	OUT[sscep-file]=sscep-file.crt
	if [ -f "$ENGINE" ]; then
		CASES+=(sscep-token sscep-bare)
		CMD1[sscep-token]="$SSCEP enroll -f sscep-engine.conf -u $CA_URL -c sca.crt -k $TOKEN_KEY -r token.csr -l sscep-token.crt"
		CMD1[sscep-bare]="$SSCEP getca -u $CA_URL -c sbare.crt"
		CMD2[sscep-bare]="$SSCEP enroll -f sscep-engine.conf -u $CA_URL -c sbare.crt -k $TOKEN_KEY -r token.csr -l sscep-bare.crt"
		OUT[sscep-token]=sscep-token.crt OUT[sscep-bare]=sscep-bare.crt
	fi
fi
if [ -n "$PKI" ]; then
	CASES+=(pki-file)
	CMD1[pki-file]="$PKI --scepca --url $CA_URL --caout pca.crt --force"
	CMD2[pki-file]="$PKI --scep --url $CA_URL --in file.key --dn CN=bench-file.example --cacert-enc pca.crt --cacert-sig pca.crt --cipher des3 --outform pem"
	OUT[pki-file]=pki-file.crt
else
	echo "# pki-file left out: no pki (Debian: strongswan-pki)"
fi

# run1 CMDLINE [OUTFILE]: one process (sscep with the legacy provider
# forced); appends "wall_ms cpu_ms" to $T_WORK/one
run1() {
	local TIMEFORMAT='%3R %3U %3S' t conf=
	[ -n "$SSCEP" ] && [ "${1%% *}" = "$SSCEP" ] && conf=$PWD/legacy.cnf
	# shellcheck disable=SC2086
	if [ -n "$conf" ]; then
		t=$( { time OPENSSL_CONF=$conf $1 >"${2:-/dev/null}" 2>>"$T_WORK/case.err"; } 2>&1 )
	else
		t=$( { time $1 >"${2:-/dev/null}" 2>>"$T_WORK/case.err"; } 2>&1 )
	fi
	echo "$t" | tail -n 1 | awk '{printf "%.1f %.1f\n", $1 * 1000, ($2 + $3) * 1000}' >>"$T_WORK/one"
}

# run_case NAME: one run of the case; "wall cpu" summed over its
# processes appended to $T_WORK/NAME.times; 1 if no certificate came
run_case() {
	local n=$1 out=${OUT[$1]}
	rm -f "$out" "$T_WORK/one"
	: >"$T_WORK/case.err"
	if [ "$n" = pki-file ]; then
		run1 "${CMD1[$n]}"
		run1 "${CMD2[$n]}" "$out"
	else
		run1 "${CMD1[$n]}"
		[ -n "${CMD2[$n]:-}" ] && run1 "${CMD2[$n]}"
	fi
	awk '{w += $1; c += $2} END {printf "%.1f %.1f\n", w, c}' "$T_WORK/one" >>"$T_WORK/$n.times"
	if ! openssl x509 -in "$out" -noout 2>/dev/null; then
		[ "$n" = pki-file ] || { echo "# $n: no certificate:"; sed 's/^/#   /' "$T_WORK/case.err" | tail -n 5; }
		return 1
	fi
	return 0
}

# stats FILE COLUMN: "median min max" of a column
stats() {
	awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR] = $1}
		END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
		     printf "%.1f %.1f %.1f\n", m, a[1], a[NR]}'
}

# pair A B COLUMN OP: round by round A-B (OP -) or A/B (OP /), "median min max"
pair() {
	paste "$T_WORK/$1.times" "$T_WORK/$2.times" | awk -v c="$3" -v op="$4" '
		{ a = $c; b = $(c + 2); print (op == "-") ? a - b : (b > 0 ? a / b : 0) }' |
		sort -g | awk '{a[NR] = $1}
		END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
		     printf "%.2f [%.2f-%.2f]\n", m, a[1], a[NR]}'
}

# --- warm-up (not counted), then the rounds
pki_ok=1
for n in "${CASES[@]}"; do
	: >"$T_WORK/$n.times"
	if ! run_case "$n"; then
		[ "$n" = pki-file ] || die "$n produced no certificate"
		pki_ok=0
	fi
	: >"$T_WORK/$n.times"
done
failed=0
for r in $(seq "$rounds"); do
	for n in "${CASES[@]}"; do
		run_case "$n" || { [ "$n" = pki-file ] || failed=1; }
	done
done

echo "# scep-agent: $("$SCEP_AGENT" --version 2>&1 | head -n 1)"
[ -n "$SSCEP" ] && echo "# sscep: $("$SSCEP" 2>&1 | sed -n 's/^sscep version //p' | head -n 1) ($SSCEP)"
echo "# $rounds rounds, interleaved; ms, median [min-max]; cpu = user + sys"
for n in "${CASES[@]}"; do
	read -r wm wl wh <<<"$(stats "$T_WORK/$n.times" 1)"
	read -r cm cl ch <<<"$(stats "$T_WORK/$n.times" 2)"
	printf '%-12s wall %7.1f [%6.1f-%6.1f]   cpu %6.1f [%5.1f-%5.1f]\n' "$n" \
		"$wm" "$wl" "$wh" "$cm" "$cl" "$ch"
done
echo "# round by round:"
printf 'token cost, scep-agent (sa-token - sa-file): wall %s  cpu %s\n' \
	"$(pair sa-token sa-file 1 -)" "$(pair sa-token sa-file 2 -)"
if [ -s "$T_WORK/sscep-token.times" ]; then
	printf 'token cost, sscep (sscep-token - sscep-file): wall %s  cpu %s\n' \
		"$(pair sscep-token sscep-file 1 -)" "$(pair sscep-token sscep-file 2 -)"
	printf 'bare to certificate, sa-bare / sscep-bare: wall %s  cpu %s\n' \
		"$(pair sa-bare sscep-bare 1 /)" "$(pair sa-bare sscep-bare 2 /)"
fi
printf 'bare (fetch + pin) over a CA file, sa-bare - sa-token: wall %s  cpu %s\n' \
	"$(pair sa-bare sa-token 1 -)" "$(pair sa-bare sa-token 2 -)"
if [ -s "$T_WORK/pki-file.times" ]; then
	printf 'sa-file / pki-file: wall %s  cpu %s\n' \
		"$(pair sa-file pki-file 1 /)" "$(pair sa-file pki-file 2 /)"
	[ "$pki_ok" = 0 ] &&
		echo "# pki-file: no certificate: strongSwan 5.9.8 refuses the test CA's reply (\"only RSA digest encryption supported\": its SignerInfo names sha1WithRSAEncryption); timed up to that point, after the request and the reply"
fi

# peak RSS (KiB, the largest process) of one run of each
echo "# peak RSS, one run:"
for n in "${CASES[@]}"; do
	rss=0
	for c in "${CMD1[$n]}" "${CMD2[$n]:-}"; do
		[ -n "$c" ] || continue
		# shellcheck disable=SC2086
		r=$(OPENSSL_CONF=$PWD/legacy.cnf /usr/bin/time -f %M $c 2>&1 >/dev/null | tail -n 1)
		[ "$r" -gt "$rss" ] 2>/dev/null && rss=$r
	done
	printf '%-12s %6.1f MB\n' "$n" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
	[ "$rss" -gt 0 ] || failed=1
done
ca_stop
[ "$failed" = 0 ] || die "a case produced no certificate or no figure"
echo "ok: every case produced a certificate and a figure"
