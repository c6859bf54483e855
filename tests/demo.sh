#!/bin/sh
# The main job on an embedded default: installs what is missing, builds,
# then in a throwaway directory starts a test SCEP CA on 127.0.0.1 and a
# fresh SoftHSM2 token, generates an RSA-2048 key inside the token, and
# enrolls a certificate for it; then the agent (`scep-agent check` on a
# profile) enrolls a second certificate and renews it. Everything is removed at the end (set
# KEEP=1 to keep the directory); the CA is stopped by its pid.
# With --tpm: the same main job on a software TPM instead of SoftHSM2: a
# fresh swtpm on 127.0.0.1 (a port chosen at random, its state in the
# throwaway directory, stopped by its pid), a token made in it with
# init-token, the key generated in the TPM (docs/tpm.md).
set -eu
tpm=0
case "${1:-}" in
"") ;;
--tpm) tpm=1 ;;
*) echo "usage: tests/demo.sh [--tpm]" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tests/lib/deps.sh test
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null || meson compile -C build
agent=$top/build/agent/scep-agent
scepca=$top/build/tests/servers/scepca

work=$(mktemp -d "${TMPDIR:-/tmp}/scep-agent-demo.XXXXXX")
ca_pid=
tpm_pid=
cleanup() {
	for pid in $ca_pid $tpm_pid; do
		kill "$pid" 2>/dev/null || :
		wait "$pid" 2>/dev/null || :
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "demo: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

# A test SCEP CA (micromdm's library) on loopback, ephemeral port.
# (-allowrenew 0: the agent's forced renewal below asks for the same name again)
"$scepca" -dir "$work/ca" -allowrenew 0 -port-file "$work/ca.port" >/dev/null 2>"$work/ca.err" &
ca_pid=$!
i=0
while [ ! -s "$work/ca.port" ]; do
	kill -0 "$ca_pid" 2>/dev/null || { cat "$work/ca.err" >&2; exit 1; }
	i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: CA did not start" >&2; exit 1; }
	sleep 0.1
done
url=http://127.0.0.1:$(sed -n 's/^port //p' "$work/ca.port")/scep

run() { echo "\$ $*" | sed "s#$top/build/agent/##; s#$work/##g"; "$@"; }

if [ $tpm = 1 ]; then
	# A fresh software TPM on 127.0.0.1: ports picked at random (server P,
	# control P+1) until swtpm binds both and answers on its control port.
	mkdir "$work/swtpm"
	try=0
	while :; do
		try=$((try + 1))
		[ $try -le 20 ] || { echo "demo: swtpm did not start" >&2; cat "$work/swtpm.err" >&2; exit 1; }
		port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
		swtpm socket --tpm2 --tpmstate dir="$work/swtpm" \
			--server type=tcp,port=$port,bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear >"$work/swtpm.err" 2>&1 &
		tpm_pid=$!
		i=0
		while kill -0 "$tpm_pid" 2>/dev/null && [ $i -lt 50 ] &&
			! swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -g >/dev/null 2>&1; do
			i=$((i + 1))
			sleep 0.1
		done
		if kill -0 "$tpm_pid" 2>/dev/null && [ $i -lt 50 ]; then
			break
		fi
		kill "$tpm_pid" 2>/dev/null || :
		wait "$tpm_pid" 2>/dev/null || :
		tpm_pid=
	done
	# The TPM as scep-agent sees it: the TCTI to reach it, tpm2-pkcs11's
	# store (made by scep-agent, mode 0700). The SO PIN and user PIN in
	# files only we can read.
	set -- --tpm --tcti "swtpm:host=127.0.0.1,port=$port" --tpm-store "$work/tpm2"
	umask 077
	od -An -N8 -tx8 /dev/urandom | tr -d ' ' >"$work/so-pin"
	od -An -N4 -tu4 /dev/urandom | tr -d ' ' >"$work/pin"
	run "$agent" init-token "$@" --label demo --so-pin-file "$work/so-pin" \
		--pin-file "$work/pin"
	run "$agent" getcaps -u "$url"
	run "$agent" getca -u "$url" -c ca.crt -F sha256
	run "$agent" enroll -u "$url" -c ca.crt "$@" --pin-file "$work/pin" \
		--new-key "pkcs11:token=demo;object=demo-key" --key-type rsa:2048 \
		--subject "/CN=demo.scep-agent.test/O=scep-agent demo" \
		--san DNS:demo.scep-agent.test -l demo.crt
	run "$agent" list-objects "$@" --pin-file "$work/pin" "pkcs11:token=demo"
	echo
	echo "demo: the key was generated in the TPM and never left it (the store"
	echo "demo: tpm2/ holds it wrapped by that TPM); the certificate is in the"
	echo "demo: token (same CKA_ID) and in demo.crt:"
	openssl x509 -in demo.crt -noout -subject -serial -issuer -dates
	exit 0
fi

# A throwaway SoftHSM2 token; its user PIN in a file only we can read.
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$work/tokens" >"$work/softhsm2.conf"
SOFTHSM2_CONF=$work/softhsm2.conf
export SOFTHSM2_CONF
umask 077
pin=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
printf '%s\n' "$pin" >"$work/pin"
softhsm2-util --init-token --free --label demo --pin "$pin" --so-pin "$pin$pin" >/dev/null
module=/usr/lib/softhsm/libsofthsm2.so

run "$agent" getcaps -u "$url"
run "$agent" getca -u "$url" -c ca.crt -F sha256
run "$agent" enroll -u "$url" -c ca.crt --module "$module" --pin-file "$work/pin" \
	--new-key "pkcs11:token=demo;object=demo-key" --key-type rsa:2048 \
	--subject "/CN=demo.scep-agent.test/O=scep-agent demo" \
	--san DNS:demo.scep-agent.test -l demo.crt
run "$agent" list-objects --module "$module" --pin-file "$work/pin" "pkcs11:token=demo"
echo
echo "demo: the key was generated in the token and never left it; the"
echo "demo: certificate is in the token (same CKA_ID) and in demo.crt:"
openssl x509 -in demo.crt -noout -subject -serial -issuer -dates

# The agent (docs/agent.md): one profile per certificate; `check` enrolls
# what has none, renews what is due (--force: now), `status` reads only
# the state and the files. The CA is pinned by its fingerprint.
echo
fp=$(openssl x509 -in ca.crt -noout -fingerprint -sha256 | sed 's/.*=//')
mkdir profiles
cat >profiles/gateway.conf <<EOF
[scep_agent]
URL = $url
FingerPrint = $fp
PKCS11Module = $module
PinFile = $work/pin
NewKey = "pkcs11:token=demo;object=gateway"
Subject = "/CN={hostname}/O=scep-agent demo"
StoreDir = $work/store/gateway
StateDir = $work/state
EOF
run "$agent" check profiles
run "$agent" check --force profiles
run "$agent" status profiles
ls -l "$work/store/gateway" | sed "s#$work/##g"
echo "demo: the agent enrolled, then renewed with a new key in the token; the"
echo "demo: previous key and certificate are kept (KeepOld = 1)."
