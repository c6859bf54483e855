#!/bin/bash
# station suite (issue 13): provision --watch. Started with one SoftHSM2
# token, it enrolls it; a second token made while it runs (softhsm2-util
# --init-token, moved into the token dir as a card is put in a reader) is
# enrolled too, the report rewritten after each; SIGTERM stops it with
# exit 0 (every token enrolled), the summary printed and the report
# whole; the watcher and its workers are all gone (by pid).
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require softhsm2-util pkcs11-tool python3
softhsm_tokens 1 w k1 || { echo "Bail out! token not made"; exit 1; }
ca_start -challenge "$T_CHAL" -allowrenew 0
station_setup

# until SECS CMD...: CMD every 0.3 s until it succeeds or SECS seconds
# pass (by the clock: a loaded machine makes each try slower)
until_s() {
	local end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.3
	done
	return 1
}
# done_sn SERIAL: the report has a final state for the token
done_sn() {
	case $(rep watch.json "$1" state) in ok|failed|skipped|pending) return 0 ;; esac
	return 1
}

STATION_MARK=$T_WORK ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" provision "${ST_OPTS[@]}" --watch \
	--subject '/CN=w-{n}-{token_serial}' --key-label k1 --use-key --report watch.json \
	>watch.out 2>watch.err &
W=$!
T_PIDS="$T_PIDS $W"
until_s 120 done_sn "${TOK_SERIAL[1]}"
t_is "$(rep watch.json "${TOK_SERIAL[1]}" state)" ok "the first token is enrolled while watching"
t_ok "the watcher still runs" kill -0 "$W"

softhsm_tokens 1 wb k1 || t_fail "second token made"
until_s 120 done_sn "${TOK_SERIAL[2]}"
t_is "$(rep watch.json "${TOK_SERIAL[2]}" state)" ok "a token put in later is enrolled"
t_is "$(rep watch.json "${TOK_SERIAL[2]}" error)" null "... without error"
t_ok "the watcher still runs" kill -0 "$W"
mids=$(marked_pids | tr '\n' ' ')
kill -TERM "$W"
rc=0
wait "$W" || rc=$?
t_canary_keep watch.out watch.err watch.json
t_is "$rc" 0 "SIGTERM: exit 0 (every token enrolled)"
t_grep '2 token\(s\): 2 ok, 0 skipped, 0 pending, 0 failed' watch.out "the summary at the end"
t_is "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' watch.json)" 2 \
	"the report holds both tokens"
for i in 1 2; do
	sn=${TOK_SERIAL[$i]}
	tok_cert "$sn" "w$i.pem" k1
	t_ok "token $i: its certificate verifies under the CA" ca_verify "$CA_CERT" "w$i.pem"
	t_is "$(rep watch.json "$sn" serial)" "$(serial_hex "w$i.pem")" "token $i: the report names it"
	t_like "$(openssl x509 -in "w$i.pem" -noout -subject)" "CN *= *w-$i-$sn" \
		"token $i: {n} counts tokens in the order they appeared"
done
t_ok "the watcher had processes while running (${mids:-none})" test -n "$mids"
left=$(marked_pids | tr '\n' ' ')
t_is "$left" "" "after SIGTERM no process of the run is left (were: $mids)"
done_testing
