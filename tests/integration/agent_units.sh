#!/bin/bash
# agent suite (issue 12): the shipped systemd units (conf/systemd, as
# meson configured them: UNITDIR) pass `systemd-analyze verify` (the
# ExecStart binary is the one built here, the only change), and say what
# the issue asks: the daemon Type=simple, Restart=on-failure, the
# hardening (ProtectSystem, PrivateTmp, NoNewPrivileges, StateDirectory);
# the check timer Persistent=true with RandomizedDelaySec; the check
# service accepts exit 3 (pending). The example SoftHSM2 profile loads.
. "${SRCDIR:-$(dirname "$0")/../..}/tests/lib/fixtures.sh"

t_require systemd-analyze
: "${UNITDIR:?UNITDIR not set (meson sets it)}"
mkdir units
for u in scep-agent.service scep-agent-check.service scep-agent-check.timer; do
	t_file "$UNITDIR/$u" "$u configured"
	sed "s#^\(ExecStart=\)[^ ]*/scep-agent #\1$SCEP_AGENT #" "$UNITDIR/$u" >"units/$u"
done
# the profile directory named in ExecStart exists on a real system
t_grep '^ExecStart=/.*/scep-agent run /.*/scep-agent/profiles$' "$UNITDIR/scep-agent.service" \
	"scep-agent.service runs the daemon on the profile directory"
t_grep '^ExecStart=/.*/scep-agent check /.*/scep-agent/profiles$' "$UNITDIR/scep-agent-check.service" \
	"scep-agent-check.service runs check on the profile directory"

# verify: the units and the ones they name (the timer's service); no
# warnings at all
(cd units && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
	./scep-agent.service ./scep-agent-check.service ./scep-agent-check.timer) >verify.out 2>&1
rc=$?
t_is "$rc" 0 "systemd-analyze verify exits 0"
t_is "$(grep -v '^$' verify.out | grep -cv 'Failed to \(connect\|open\|get\).*bus\|private bus')" 0 \
	"systemd-analyze verify says nothing about the units"
sed 's/^/#   /' verify.out | head -20

d=units/scep-agent.service c=units/scep-agent-check.service tm=units/scep-agent-check.timer
for kv in Type=simple Restart=on-failure ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes \
	StateDirectory=scep-agent 'ExecReload=/bin/kill -HUP $MAINPID'; do
	t_ok "scep-agent.service: $kv" grep -qxF "$kv" "$d"
done
for kv in Type=oneshot SuccessExitStatus=3 ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes \
	StateDirectory=scep-agent; do
	t_ok "scep-agent-check.service: $kv" grep -qxF "$kv" "$c"
done
t_ok "the timer: Persistent=true" grep -qxF Persistent=true "$tm"
t_grep '^RandomizedDelaySec=[1-9]' "$tm" "the timer: RandomizedDelaySec"
t_grep '^WantedBy=timers.target$' "$tm" "the timer installs into timers.target"

# the example SoftHSM2 profile loads (status reads its state and nothing
# else; never enrolled, it exits 1)
sa status --json "$SRCDIR/conf/examples/softhsm-test.conf" >ex.json 2>ex.err
t_is "$(json_get ex.json 'd[0]["profile"]')" softhsm-test "conf/examples/softhsm-test.conf loads as a profile"
t_grep 'pkcs11:token=test;object=softhsm-test' ex.json "its key URI"

# the security exposure systemd reports for the daemon (a number, shown)
if systemd-analyze security --offline=yes ./units/scep-agent.service >security.out 2>&1; then
	diag "$(tail -n 1 security.out)"
fi

done_testing
