#!/bin/sh
# include_rule.sh NAME SRCROOT DIRS FORBIDDEN ALLOWED CC...
# The architecture rule, as the build enforces it: a file compiled with a
# library's include folders (DIRS, colon-separated, relative to SRCROOT:
# the same lists meson.build gives the library) cannot include the headers
# of a layer it must not see (FORBIDDEN, comma-separated), and can include
# its own (ALLOWED, the control: the probe itself works). TAP output.
set -u
name=$1 root=$2 dirs=$3 forbidden=$4 allowed=$5
shift 5
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
incs=
old_ifs=$IFS
IFS=:
for d in $dirs; do
	incs="$incs -I$root/$d"
done
IFS=$old_ifs
n=0 fail=0
probe() { # header CC... -> exit status of the compiler, messages in $tmp/err
	printf '#include "%s"\nint probe_dummy(void);\n' "$1" >"$tmp/probe.c"
	shift
	# shellcheck disable=SC2086 # $incs: one word per folder
	"$@" $incs -fsyntax-only -x c "$tmp/probe.c" >"$tmp/err" 2>&1
}
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err"; }
IFS=,
for h in $allowed; do
	IFS=$old_ifs
	if probe "$h" "$@"; then
		ok "$name: \"$h\" compiles with its folders ($dirs)"
	else
		not_ok "$name: \"$h\" compiles with its folders ($dirs)"
	fi
done
IFS=,
for h in $forbidden; do
	IFS=$old_ifs
	if probe "$h" "$@"; then
		not_ok "$name: \"$h\" is refused (it compiled)"
	elif grep -q "$h" "$tmp/err" && grep -qi "no such file" "$tmp/err"; then
		ok "$name: \"$h\" is refused: not found in its folders"
	else
		not_ok "$name: \"$h\" is refused for not being found (another error)"
	fi
done
echo "1..$n"
exit $fail
