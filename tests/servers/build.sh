#!/bin/sh
# build.sh [--test] OUT_BINARY - build the test SCEP CA offline from Debian's Go
# packages (golang-go, golang-github-micromdm-scep-dev), in GOPATH mode.
# Everything it writes (GOPATH links, GOCACHE) lives next to OUT_BINARY.
set -eu
mode=build
if [ "${1:-}" = --test ]; then
	# run the Go self-test instead; OUT_BINARY only places the work dir
	mode=test
	shift
fi
if [ $# -ne 1 ]; then
	echo "usage: $0 [--test] OUT_BINARY" >&2
	exit 2
fi
out=$1
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
src=$(cd "$(dirname "$0")" && pwd)/scepca
work=$(dirname "$out")/scepca.gopath
gocode=/usr/share/gocode/src
if [ ! -d "$gocode/github.com/micromdm/scep" ]; then
	echo "$0: $gocode/github.com/micromdm/scep missing: apt-get install golang-github-micromdm-scep-dev" >&2
	exit 1
fi
mkdir -p "$work/src/github.com/micromdm/scep" "$work/cache"
# the library imports itself as github.com/micromdm/scep/v2
ln -sfn "$gocode/github.com/micromdm/scep" "$work/src/github.com/micromdm/scep/v2"
ln -sfn "$src" "$work/src/scepca"
cd "$work/src/scepca"
export GOPATH="$work:/usr/share/gocode" GO111MODULE=off GOCACHE="$work/cache" \
	GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 HOME="$work"
if [ $mode = test ]; then
	exec go test -count=1 .
fi
go build -o "$out.tmp" .
mv "$out.tmp" "$out"
