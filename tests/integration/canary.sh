#!/bin/bash
# canary suite: the suite's secrets (T_PIN, T_SOPIN, T_CHAL, T_PROXY_PASS, T_URL_PASS in
# tests/lib/fixtures.sh: distinctive strings every test uses) must appear
# nowhere in what the program printed or wrote during the whole run. The
# other tests leave their outputs in SA_CANARY_DIR (tests/run.sh empties it
# first); this test runs after all of them (not parallel, lowest priority).
#
# What is looked at: every scep-agent stdout and stderr that went through
# t_expect_exit or t_ok, and every file of a test's work dir that others may
# read (a file holding a secret must be owner-only, as the program writes
# them). Each secret is looked for as it is, percent-encoded (as in a URI),
# with '+' for spaces (form encoding) and with \x20 or \040 for spaces (as an
# escaping function would write it).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

dir=${SA_CANARY_DIR:-}
t_plan 5

pats=$T_WORK/patterns
for s in "$T_PIN" "$T_SOPIN" "$T_CHAL" "$T_PROXY_PASS" "$T_URL_PASS"; do
	printf '%s\n' "$s"
	printf '%s\n' "$s" | sed 's/ /%20/g'
	printf '%s\n' "$s" | sed 's/ /+/g'
	printf '%s\n' "$s" | sed 's/ /\\x20/g'
	printf '%s\n' "$s" | sed 's/ /\\040/g'
done | sort -u >"$pats"

# scan DIR: FILE:LINE of each line holding a secret (never the line itself)
scan() {
	grep -r -a -n -i -F -f "$pats" "$1" 2>/dev/null | cut -d: -f1,2
}

# the scanner finds each form (so a clean result means something)
mkdir -p "$T_WORK/self/a"
enc=$(printf '%s' "$T_PIN" | sed 's/ /%20/g')
printf 'using the key pkcs11:token=t;object=k;pin-value=%s\n' "$enc" >"$T_WORK/self/a/1"
printf 'token %s\n' "$(printf '%s' "$T_SOPIN" | sed 's/ /\\x20/g')" >"$T_WORK/self/a/2"
printf 'proxy http://u:%s@127.0.0.1:1\n' "$T_PROXY_PASS" >"$T_WORK/self/a/3"
t_is "$(scan "$T_WORK/self" | wc -l)" 3 "the scan finds a secret percent-encoded, escaped and in a proxy URL"

if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	t_fail "no outputs collected (SA_CANARY_DIR=${dir:-unset}): run the suites first"
	t_fail "skipped: nothing to scan"
	t_fail "skipped: nothing to scan"
	t_fail "skipped: nothing to scan"
	done_testing
	exit
fi
n=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | wc -l)
t_between "$n" 10 100000 "outputs of at least 10 test scripts collected ($n)"
# the collection holds what matters: token key URIs and debug output
t_ok "the outputs include key URIs (softhsm tests ran)" grep -r -q -a 'pkcs11:' "$dir"
t_ok "the outputs include debug output (-d)" grep -r -q -a -E 'GET |POST ' "$dir"
found=$(scan "$dir")
if [ -z "$found" ]; then
	t_pass "no secret in $(find "$dir" -type f | wc -l) output files"
else
	t_fail "secrets found in outputs"
	printf '%s\n' "$found" | sed "s#$dir/##" | head -40 | sed 's/^/# /'
fi
done_testing
