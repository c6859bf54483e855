#!/bin/bash
# station suite (issue 13): what provision refuses, and --dry-run. An
# unknown option and an option naming one key (-k) are usage errors (exit
# 4); a CSV without the token_serial column is refused before any token
# is touched; a filter no token matches exits 7 saying so; --dry-run lists
# each token with the subject it would get and changes nothing. The
# suite's secrets (PIN, challenge) appear in no output.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_tokens 2 in || { echo "Bail out! tokens not made"; exit 1; }
ca_start -challenge "$T_CHAL"
station_setup

t_expect_exit 4 prov --subject '/CN=x' --bogus-option
t_grep 'bogus-option' "$T_ERR" "unknown option: named"
t_expect_exit 4 prov --subject '/CN=x' -k key.pem
t_grep '(^|[^a-z-])-k([^a-z]|$)' "$T_ERR" "-k: refused, named"
(umask 077 && printf 'serial,host\n%s,a\n' "${TOK_SERIAL[1]}" >nokey.csv)
t_expect_exit 4 prov --subject '/CN={csv:host}' --csv nokey.csv
t_grep 'token_serial' "$T_ERR" "a CSV without token_serial: the missing column named"
t_expect_exit 7 prov 'pkcs11:token=no-such-token' --subject '/CN=x' --report none.json
t_grep '[Nn]o token' "$T_ERR" "a filter matching nothing: said so"
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" 0 "nothing sent to the CA so far"

t_expect_exit 0 prov --dry-run --subject '/CN={token_label}/serialNumber={token_serial}'
for i in 1 2; do
	t_grep "${TOK_SERIAL[$i]}.*CN=${TOK_LABEL[$i]}/serialNumber=${TOK_SERIAL[$i]}" "$T_OUT" \
		"--dry-run lists ${TOK_LABEL[$i]} with its subject"
	t_ok "--dry-run: ${TOK_LABEL[$i]} got no key" eval \
		"[ \"\$(tok_tool '${TOK_SERIAL[$i]}' -O | grep -c 'Object;')\" = 0 ]"
done
t_is "$(grep -c '"op":"PKIOperation"' "$CA_LOG")" 0 "--dry-run sent nothing to the CA"
t_ok "no secret in any output" eval "! cat '$T_CANARY' | grep -qF -e '$T_PIN' -e '$T_CHAL'"
done_testing
