#!/bin/sh
# Install the Debian 12 packages scep-agent needs to build and test, when
# they are missing. Needs root (or sudo) only when something is missing.
# Usage: tests/lib/deps.sh [build|test]   (default: test = build + test tools)
set -eu

build_pkgs="gcc meson ninja-build pkg-config libssl-dev libp11-kit-dev
libcurl4-openssl-dev openssl ca-certificates"
# The TPM tests: swtpm, tpm2-tools (tpm2_getcap), tpm2-pkcs11 and the TSS's
# swtpm TCTI; python3 for tpm_start's free ports; mount for the tests that
# bind-mount (required priority, yet not essential); systemd for
# systemd-analyze (agent_units), util-linux for flock and setsid (agent tests);
# strongswan-pki (pki --scep): a peer in tests/bench/oneshot.sh (sscep, the
# other, is not in Debian 12: the benchmark takes one built by hand, see there)
test_pkgs="softhsm2 opensc golang-go golang-github-micromdm-scep-dev faketime
valgrind time clang libclang-rt-14-dev swtpm swtpm-tools tpm2-tools
libtpm2-pkcs11-1 libtss2-tcti-swtpm0 python3 mount systemd util-linux
strongswan-pki"

case "${1:-test}" in
build) want=$build_pkgs ;;
*) want="$build_pkgs $test_pkgs" ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "deps: these Debian packages are missing:$missing" >&2
		echo "deps: run this script as root, or install them with apt-get" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once if needed.
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
