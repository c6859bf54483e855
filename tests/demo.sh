#!/bin/sh
# The main job on an embedded default: installs what is missing, builds,
# then in a throwaway directory starts a test SCEP CA on 127.0.0.1 and a
# fresh SoftHSM2 token, generates an RSA-2048 key inside the token, and
# enrolls a certificate for it. Everything is removed at the end (set
# KEEP=1 to keep the directory); the CA is stopped by its pid.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tests/lib/deps.sh test
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null || meson compile -C build
agent=$top/build/agent/scep-agent
scepca=$top/build/tests/servers/scepca

work=$(mktemp -d "${TMPDIR:-/tmp}/scep-agent-demo.XXXXXX")
ca_pid=
cleanup() {
	if [ -n "$ca_pid" ]; then
		kill "$ca_pid" 2>/dev/null || :
		wait "$ca_pid" 2>/dev/null || :
	fi
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
"$scepca" -dir "$work/ca" -port-file "$work/ca.port" >/dev/null 2>"$work/ca.err" &
ca_pid=$!
i=0
while [ ! -s "$work/ca.port" ]; do
	kill -0 "$ca_pid" 2>/dev/null || { cat "$work/ca.err" >&2; exit 1; }
	i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: CA did not start" >&2; exit 1; }
	sleep 0.1
done
url=http://127.0.0.1:$(sed -n 's/^port //p' "$work/ca.port")/scep

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

run() { echo "\$ $*" | sed "s#$top/build/agent/##; s#$work/##g"; "$@"; }
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
