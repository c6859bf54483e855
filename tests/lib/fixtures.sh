# fixtures.sh - sourced by the shell integration tests (POSIX sh / bash).
#
# Environment (meson sets it): SCEP_AGENT (the built scep-agent), SCEPCA
# (the built test CA), SRCDIR (source root).  Each test gets a private work
# dir T_WORK (also HOME and the cwd), removed on exit, and every server it
# starts is stopped by pid on exit.
#
# TAP:   t_plan N, t_pass D, t_fail D, t_todo REASON (next one a known bug),
#        t_ok D CMD..., t_is GOT WANT D,
#        t_between N LO HI D,
#        t_like TEXT ERE D, t_grep ERE FILE D, t_no_file PATH D,
#        t_file PATH D, t_expect_exit CODE CMD..., diag MSG, done_testing
# CA:    ca_start [scepca flags], ca_restart [flags], ca_stop, ca_log_field
# Keys:  mkkey FILE [BITS], mkcsr KEY CSR SUBJECT [CHALLENGE]
# Token: softhsm_new LABEL [PIN] [SOPIN], pin_file [PIN],
#        softhsm_tokens N [PREFIX] [KEYLABEL [KEYTYPE]] (N tokens at once:
#        TOK_LABEL[i], TOK_SERIAL[i])
# TPM:   swtpm_launch DIR, tpm_start (a fresh swtpm), tpm_stop, tpm_cmd TOOL ARGS (tpm2-tools on it),
#        tpm_fixture (a TPM test's start), tpm_tool ARGS (pkcs11-tool on it)
# Secrets: T_PIN, T_SOPIN, T_CHAL, T_PROXY_PASS, T_URL_PASS: the suite's secrets, distinctive
#        strings that the canary test (tests/integration/canary.sh) looks for in
#        everything the program printed or wrote; secret_file FILE VALUE writes
#        one owner-only.

set -u

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SCEP_AGENT:=scep-agent}"
: "${SCEPCA:=scepca}"
export SRCDIR SCEP_AGENT SCEPCA

T_N=0
T_FAILED=0
T_PLANNED=
T_PIDS=
T_WORK=$(mktemp -d "${TMPDIR:-/tmp}/scep-agent-test.XXXXXX") || exit 99
mkdir -p "$T_WORK/home"
HOME=$T_WORK/home
export HOME
cd "$T_WORK" || exit 99

# The suite's secrets. Distinctive, with a space (percent-encoded in URIs as
# %20) so that any form of them in an output is found by the canary test.
T_PIN='cnry Pin 4b7d'
T_SOPIN='cnry SoPin 93ab'
T_CHAL='cnryChal6e2f'
T_PROXY_PASS='cnryProxy5c1a'
T_URL_PASS='cnryUrlPass8d0b'
export T_PIN T_SOPIN T_CHAL T_PROXY_PASS T_URL_PASS

# Everything the program printed (t_expect_exit, t_ok) is kept here, and at
# exit it goes with every other readable output of the test to
# SA_CANARY_DIR (set by meson), where the canary test looks for secrets.
: "${SA_CANARY_DIR:=}"
T_CANARY=$T_WORK/.canary.log
: >"$T_CANARY"
t_canary_keep() {
	for _f in "$@"; do
		[ -f "$_f" ] && cat "$_f" >>"$T_CANARY" 2>/dev/null
	done
	return 0
}

# canary_collect: copy what the test produced to SA_CANARY_DIR/<test>.<pid>/:
# every regular file of the work dir that others may read (files holding a
# secret are owner-only, as the program writes them; the tokens and
# configuration files are inputs the test wrote with secrets in them).
canary_collect() {
	[ -n "$SA_CANARY_DIR" ] || return 0
	_dst=$SA_CANARY_DIR/$(basename "$0" .sh).$$
	mkdir -p "$_dst" || return 0
	(cd "$T_WORK" && find . -path ./tokens -prune -o -type f -perm -044 \
		! -name '*.conf' ! -name '*.cnf' -print0 2>/dev/null |
		xargs -0 -r cp --parents -t "$_dst" 2>/dev/null)
	return 0
}

t_cleanup() {
	canary_collect
	for p in $T_PIDS; do
		if kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	T_PIDS=
	cd / && rm -rf "$T_WORK"
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pty_interrupt LOG PATTERN ARGS...: run scep-agent ARGS on a terminal (a
# pty from script(1); under SCEP_AGENT_WRAP too), its output in LOG; once
# LOG shows PATTERN (a prompt), send it SIGINT, as Ctrl-C does. Sets
# PTY_RC to its exit code.
pty_interrupt() {
	_log=$1 _pat=$2
	shift 2
	{
		echo 'echo $$ >"$PTY_PIDFILE"'
		# the wrapper is a command line of its own (split on purpose)
		printf 'exec %s %q' "${SCEP_AGENT_WRAP:-}" "$SCEP_AGENT"
		printf ' %q' "$@"
		echo
	} >"$T_WORK/pty_run.sh"
	rm -f "$T_WORK/pty.pid"
	(
		for _ in $(seq 600); do
			grep -q -e "$_pat" "$_log" 2>/dev/null && break
			sleep 0.1
		done
		kill -INT "$(cat "$T_WORK/pty.pid")"
		sleep 3
	) | PTY_PIDFILE=$T_WORK/pty.pid script -qfec "bash $(printf %q "$T_WORK/pty_run.sh")" \
		"$_log" >/dev/null 2>&1
	PTY_RC=${PIPESTATUS[1]}
}

# --- TAP -------------------------------------------------------------------

diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

t_plan() {
	T_PLANNED=$1
	echo "1..$1"
}

# t_todo REASON: the next assertion is a known bug (TAP "# TODO REASON"): a
# failure is reported but not counted; a pass shows as an unexpected pass
# (meson fails the test then: remove the t_todo with the fix)
T_TODO=
t_todo() {
	T_TODO=$1
}

t_pass() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $*${T_TODO:+ # TODO $T_TODO}"
	T_TODO=
}

t_fail() {
	T_N=$((T_N + 1))
	[ -n "$T_TODO" ] || T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*${T_TODO:+ # TODO $T_TODO}"
	T_TODO=
}

# t_ok DESC CMD...: ok if CMD exits 0 (T_OUT/T_ERR are left alone).
t_ok() {
	_d=$1
	shift
	if "$@" >"$T_WORK/.ok.out" 2>"$T_WORK/.ok.err"; then
		t_canary_keep "$T_WORK/.ok.out" "$T_WORK/.ok.err"
		t_pass "$_d"
	else
		t_fail "$_d (exit $?)"
		t_canary_keep "$T_WORK/.ok.out" "$T_WORK/.ok.err"
		diag "command: $*"
		t_show_output "$T_WORK/.ok.out" "$T_WORK/.ok.err"
	fi
}

t_is() {
	if [ "$1" = "$2" ]; then
		t_pass "$3"
	else
		t_fail "$3"
		diag "got:  '$1'" "want: '$2'"
	fi
}

t_like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		t_pass "$3"
	else
		t_fail "$3"
		diag "'$1'" "does not match /$2/"
	fi
}

t_grep() {
	if grep -Eq -- "$1" "$2" 2>/dev/null; then
		t_pass "$3"
	else
		t_fail "$3"
		diag "/$1/ not found in $2:"
		[ -f "$2" ] && sed 's/^/#   /' "$2" | head -20
	fi
}

t_file() {
	if [ -s "$1" ]; then t_pass "$2"; else t_fail "$2 ($1 missing or empty)"; fi
}

t_no_file() {
	if [ -e "$1" ]; then t_fail "$2 ($1 exists)"; else t_pass "$2"; fi
}

# t_show_output [OUT ERR]: show a command's output as TAP comments
t_show_output() {
	_o=${1:-$T_OUT} _e=${2:-$T_ERR}
	[ -s "$_o" ] && { diag "stdout:"; head -20 "$_o" | sed 's/^/#   /'; }
	[ -s "$_e" ] && { diag "stderr:"; head -20 "$_e" | sed 's/^/#   /'; }
	return 0
}

# t_expect_exit CODE CMD...: ok if CMD exits with CODE.  Afterwards T_RC
# is the exit code and T_OUT, T_ERR the files holding stdout and stderr.
T_OUT=$T_WORK/.out
T_ERR=$T_WORK/.err
T_RC=0
t_expect_exit() {
	_want=$1
	shift
	T_RC=0
	"$@" >"$T_OUT" 2>"$T_ERR" || T_RC=$?
	t_canary_keep "$T_OUT" "$T_ERR"
	if [ "$T_RC" = "$_want" ]; then
		t_pass "exit $_want: $(t_short "$@")"
	else
		t_fail "exit $_want: $(t_short "$@") (got $T_RC)"
		t_show_output
	fi
}

# command line without the long paths, for test descriptions
t_short() {
	printf '%s' "$*" | sed "s#$T_WORK/##g; s#$SCEP_AGENT#scep-agent#g; s#http://127.0.0.1:[0-9]*/scep#URL#g"
}

# t_require CMD...: skip the whole test when a tool is truly absent.
t_require() {
	for _c in "$@"; do
		if ! command -v "$_c" >/dev/null 2>&1 && [ ! -x "$_c" ]; then
			echo "1..0 # SKIP $_c not available"
			exit 0
		fi
	done
}

done_testing() {
	if [ -z "$T_PLANNED" ]; then
		echo "1..$T_N"
	elif [ "$T_PLANNED" != "$T_N" ]; then
		diag "planned $T_PLANNED tests but ran $T_N"
		T_FAILED=$((T_FAILED + 1))
	fi
	if [ "$T_FAILED" -ne 0 ]; then
		diag "$T_FAILED of $T_N failed"
		return 1
	fi
	return 0
}

# --- test CA ---------------------------------------------------------------

T_CA_N=0

# ca_start [scepca flags...]: start a fresh CA in the background.  Exports
# CA_URL, CA_PID, CA_PORT, CA_DIR, CA_LOG (JSON lines), CA_CERT (PEM).
# Set CA_DIR before calling to reuse a CA dir (same CA keys).
ca_start() {
	T_CA_N=$((T_CA_N + 1))
	: "${CA_DIR:=$T_WORK/ca$T_CA_N}"
	: "${CA_LOG:=$T_WORK/ca$T_CA_N.log}"
	_pf=$T_WORK/ca$T_CA_N.port
	_pidf=$T_WORK/ca$T_CA_N.pid
	rm -f "$_pf" "$_pidf"
	"$SCEPCA" -dir "$CA_DIR" -port-file "$_pf" -pid-file "$_pidf" \
		-log "$CA_LOG" -lifetime 1800 "$@" >"$T_WORK/ca$T_CA_N.out" 2>"$T_WORK/ca$T_CA_N.err" &
	CA_PID=$!
	T_PIDS="$T_PIDS $CA_PID"
	_i=0
	while [ ! -s "$_pf" ]; do
		if ! kill -0 "$CA_PID" 2>/dev/null || [ $_i -ge 100 ]; then
			echo "Bail out! test CA did not start: $(cat "$T_WORK/ca$T_CA_N.err")"
			exit 1
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	CA_PORT=$(sed -n 's/^port //p' "$_pf")
	_host=127.0.0.1
	for _a in "$@"; do [ "$_a" = -6 ] && _host='[::1]'; done
	CA_URL=http://$_host:$CA_PORT/scep
	CA_CERT=$CA_DIR/ca.pem
	export CA_URL CA_PID CA_PORT CA_DIR CA_LOG CA_CERT
}

# ca_stop: stop the last CA started (by pid) and wait for it.
ca_stop() {
	if [ -n "${CA_PID:-}" ] && kill -0 "$CA_PID" 2>/dev/null; then
		kill "$CA_PID"
		wait "$CA_PID" 2>/dev/null
	fi
	return 0
}

# ca_restart [flags...]: stop the CA and start it again on the same dir,
# port and log (PENDING state is lost: it lives in memory).
ca_restart() {
	ca_stop
	_dir=$CA_DIR _log=$CA_LOG _port=$CA_PORT
	CA_DIR=$_dir CA_LOG=$_log ca_start -port "$_port" "$@"
}

# ca_new: forget the current CA so the next ca_start makes a new one.
ca_new() {
	ca_stop
	unset CA_DIR CA_LOG CA_URL CA_PID CA_PORT CA_CERT
}

# ca_log_field N FIELD: the FIELD of the N-th PKIOperation line of CA_LOG
# (N=-1: the last one), e.g. ca_log_field -1 tid
ca_log_field() {
	grep '"op":"PKIOperation"' "$CA_LOG" | if [ "$1" = -1 ]; then tail -n 1; else sed -n "$1p"; fi |
		sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" | tr -d '"'
}

# --- keys and requests -------------------------------------------------------

# mkkey FILE [BITS]: an RSA key made now, in the work dir (never committed)
mkkey() {
	openssl genrsa -out "$1" "${2:-2048}" 2>/dev/null
}

# mkcsr KEY CSR SUBJECT [CHALLENGE]: a PKCS#10 request with openssl req.
# SUBJECT is "/CN=x/O=y" (no escaped slashes); OpenSSL only takes the
# challengePassword from a config file without -subj, hence the config.
mkcsr() {
	{
		printf '[req]\ndistinguished_name = dn\nprompt = no\n'
		[ -n "${4:-}" ] && printf 'attributes = attrs\n'
		printf '[dn]\n'
		printf '%s\n' "$3" | tr '/' '\n' | sed '/^$/d'
		[ -n "${4:-}" ] && printf '[attrs]\nchallengePassword = %s\n' "$4"
	} >"$T_WORK/.req.cnf"
	openssl req -new -key "$1" -out "$2" -config "$T_WORK/.req.cnf" -sha256 -batch
	_rc=$?
	rm -f "$T_WORK/.req.cnf"
	return $_rc
}

# secret_file FILE VALUE: a secret input (PIN, challenge) the way a user keeps
# it: owner-only from creation
secret_file() {
	(umask 077 && printf '%s\n' "$2" >"$1")
}

# --- SoftHSM2 ----------------------------------------------------------------

# softhsm_new LABEL [PIN] [SOPIN]: a fresh token in the work dir.  Exports
# SOFTHSM2_CONF and P11_MODULE.
softhsm_new() {
	softhsm_conf
	softhsm2-util --init-token --free --label "$1" --pin "${2:-$T_PIN}" \
		--so-pin "${3:-$T_SOPIN}" >/dev/null
}

# softhsm_tokens N [PREFIX] [KEYLABEL [KEYTYPE]]: N fresh SoftHSM2 tokens
# labelled PREFIX1..PREFIXN (default st1..), user PIN T_PIN, SO PIN T_SOPIN,
# in the work dir's token dir (the one softhsm_new uses; SOFTHSM2_CONF and
# P11_MODULE exported). With KEYLABEL, each holds a key pair of KEYTYPE
# (pkcs11-tool's: rsa:2048, the default, or EC:prime256v1) labelled
# KEYLABEL with CKA_ID 01 (private key sensitive, not extractable).
# Each token is made in a token dir of its own, all at once, then moved
# in (softhsm2-util --free picks the one blank slot: not in parallel on
# one dir). Sets TOK_LABEL[1..N] and TOK_SERIAL[1..N] (the serials as
# CK_TOKEN_INFO has them, without padding); appends to TOK_LABEL and
# TOK_SERIAL when called again (TOK_N: how many so far). Status 1 and a
# line on stderr if a token could not be made.
TOK_N=0
declare -a TOK_LABEL=() TOK_SERIAL=()
softhsm_tokens() {
	local n=$1 prefix=${2:-st} key=${3:-} kt=${4:-rsa:2048} i d lab rc=0
	local -a pids=()
	softhsm_conf
	for i in $(seq "$n"); do
		lab=$prefix$i
		d=$T_WORK/.mk.$lab
		(
			set -e
			mkdir -p "$d/tokens"
			printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
				"$d/tokens" >"$d/conf"
			export SOFTHSM2_CONF=$d/conf
			softhsm2-util --init-token --free --label "$lab" --pin "$T_PIN" \
				--so-pin "$T_SOPIN" >/dev/null
			if [ -n "$key" ]; then
				pkcs11-tool --module "$P11_MODULE" --token-label "$lab" -l \
					--pin "$T_PIN" --keypairgen --key-type "$kt" \
					--label "$key" --id 01 --sensitive >/dev/null 2>&1
			fi
			pkcs11-tool --module "$P11_MODULE" -L 2>/dev/null |
				sed -n 's/^ *serial num *: *\([^ ]\+\) *$/\1/p' | head -n 1 >"$d/serial"
			[ -s "$d/serial" ]
		) &
		pids+=($!)
	done
	for i in $(seq "$n"); do
		wait "${pids[$((i - 1))]}" || rc=1
	done
	for i in $(seq "$n"); do
		lab=$prefix$i
		d=$T_WORK/.mk.$lab
		if [ ! -s "$d/serial" ]; then
			echo "softhsm_tokens: token $lab not made" >&2
			rc=1
			continue
		fi
		mv "$d"/tokens/* "$T_WORK/tokens/" || rc=1
		TOK_N=$((TOK_N + 1))
		TOK_LABEL[$TOK_N]=$lab
		TOK_SERIAL[$TOK_N]=$(cat "$d/serial")
		rm -rf "$d"
	done
	return $rc
}

# softhsm_conf: the work dir's SoftHSM2 configuration (SOFTHSM2_CONF,
# tokens in $T_WORK/tokens) and P11_MODULE, exported; made once
softhsm_conf() {
	SOFTHSM2_CONF=$T_WORK/softhsm2.conf
	if [ ! -f "$SOFTHSM2_CONF" ]; then
		mkdir -p "$T_WORK/tokens"
		printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
			"$T_WORK/tokens" >"$SOFTHSM2_CONF"
	fi
	P11_MODULE=/usr/lib/softhsm/libsofthsm2.so
	export SOFTHSM2_CONF P11_MODULE
}

# swtpm_launch DIR: a swtpm (TPM 2.0, no resource manager) on DIR/state
# (made), logging to DIR/log and DIR/out, listening on two free
# neighbouring ports of 127.0.0.1 (server P, control P+1), our child (not
# -d: its pid is the one to stop). Sets SW_PID and SW_PORT once it
# answers and still runs (one that could not bind is dead: tried again on
# other ports, up to 8 times); returns 1 when it never started.
swtpm_launch() {
	mkdir -p "$1/state"
	for _try in 1 2 3 4 5 6 7 8; do
		SW_PORT=$(python3 -c 'import socket
for _ in range(50):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError: pass
    finally: a.close(); b.close()')
		# fd 9 (a caller's lock) is not swtpm's to keep
		swtpm socket --tpm2 --tpmstate dir="$1/state" \
			--server type=tcp,port="$SW_PORT",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((SW_PORT + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear \
			--log file="$1/log",level=1 >"$1/out" 2>&1 9>&- &
		SW_PID=$!
		_i=0
		while [ $_i -lt 50 ] && kill -0 "$SW_PID" 2>/dev/null; do
			python3 -c 'import socket,sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$SW_PORT" 2>/dev/null && break
			sleep 0.1
			_i=$((_i + 1))
		done
		sleep 0.05
		if [ $_i -lt 50 ] && kill -0 "$SW_PID" 2>/dev/null; then
			return 0
		fi
		kill "$SW_PID" 2>/dev/null
		wait "$SW_PID" 2>/dev/null
	done
	SW_PID=
	return 1
}

# tpm_start: a fresh software TPM (swtpm_launch) in the work dir.
# Exports TPM_TCTI (for --tcti), TPM_STORE (an empty store dir for
# --tpm-store), TPM_PID, TPM_PORT; stopped by pid at exit (or tpm_stop).
T_TPM_N=0
tpm_start() {
	t_require swtpm
	T_TPM_N=$((T_TPM_N + 1))
	_d=$T_WORK/swtpm$T_TPM_N
	mkdir -p "$T_WORK/tpmstore$T_TPM_N"
	if ! swtpm_launch "$_d"; then
		echo "Bail out! swtpm did not start: $(cat "$_d/out" "$_d/log" 2>/dev/null | tail -3)"
		exit 1
	fi
	TPM_PID=$SW_PID
	TPM_PORT=$SW_PORT
	T_PIDS="$T_PIDS $TPM_PID"
	TPM_TCTI=swtpm:host=127.0.0.1,port=$TPM_PORT
	TPM_STORE=$T_WORK/tpmstore$T_TPM_N
	export TPM_TCTI TPM_STORE TPM_PID TPM_PORT
}

# tpm_stop: stop the last swtpm started (by pid) and wait for it.
tpm_stop() {
	if [ -n "${TPM_PID:-}" ] && kill -0 "$TPM_PID" 2>/dev/null; then
		kill "$TPM_PID"
		wait "$TPM_PID" 2>/dev/null
	fi
	return 0
}

# tpm_cmd TOOL ARGS...: a tpm2-tools command on the current swtpm
tpm_cmd() {
	TPM2TOOLS_TCTI=$TPM_TCTI TSS2_LOG=all+NONE "$@"
}

# tpm_fixture: what the tpm suite's tests start with: the tools (skip if
# absent), a fresh swtpm (tpm_start), ./pin (T_PIN) and ./sopin (T_SOPIN),
# TPM=(scep-agent's options for it) and TOK (the token's URI, label gw).
TPM_MOD=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
tpm_fixture() {
	t_require swtpm tpm2_getcap pkcs11-tool
	if [ ! -f "$TPM_MOD" ]; then
		echo "1..0 # SKIP $TPM_MOD (libtpm2-pkcs11-1) not installed"
		exit 0
	fi
	tpm_start
	pin_file
	secret_file sopin "$T_SOPIN"
	TPM=(--tpm --tcti "$TPM_TCTI" --tpm-store "$TPM_STORE")
	TOK='pkcs11:token=gw'
}

# tpm_tool ARGS...: pkcs11-tool on tpm2-pkcs11, the swtpm and the test's
# store (tpm2-pkcs11's variables for pkcs11-tool only: scep-agent gets
# nothing but its options); its stderr dropped
tpm_tool() {
	TPM2_PKCS11_TCTI=$TPM_TCTI TPM2_PKCS11_STORE=$TPM_STORE TPM2_PKCS11_BACKEND=esysdb \
		TSS2_LOG=all+NONE pkcs11-tool --module "$TPM_MOD" "$@" 2>/dev/null
}

# pin_file [PIN]: the user PIN (default 1234) in ./pin, mode 0600 from
# the start
pin_file() {
	(umask 077 && printf '%s\n' "${1:-$T_PIN}" >pin)
}

# p11_count TOKEN CLASS LABEL: how many objects of CLASS (privkey, pubkey,
# cert; "any" for all) labelled LABEL the SoftHSM2 token TOKEN holds
p11_count() {
	if [ "$2" = any ]; then
		pkcs11-tool --module "$P11_MODULE" --token-label "$1" -l --pin "$T_PIN" -O 2>/dev/null
	else
		pkcs11-tool --module "$P11_MODULE" --token-label "$1" -l --pin "$T_PIN" -O \
			--type "$2" 2>/dev/null
	fi | grep -c "^ *label: *$3\$"
}

# --- certificates ------------------------------------------------------------

# sa ARGS...: run the scep-agent under test, under $SCEP_AGENT_WRAP if set
# (tests/run.sh valgrind sets it to a valgrind command line)
sa() {
	${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" "$@"
}

# t_killed STEP CMD...: CMD (scep-agent ARGS) stopped at STEP by the test
# hook SCEP_AGENT_TEST_STOP (agent/util/sa_step.c): it died of SIGKILL
# (137) with the hook's line on stderr
t_killed() {
	_step=$1
	shift
	T_RC=0
	SCEP_AGENT_TEST_STOP=$_step "$@" >"$T_OUT" 2>"$T_ERR" || T_RC=$?
	t_canary_keep "$T_OUT" "$T_ERR"
	if [ "$T_RC" = 137 ] && grep -q "SCEP_AGENT_TEST_STOP: stopped at step $_step\$" "$T_ERR"; then
		t_pass "killed at $_step: $(t_short "$@")"
	else
		t_fail "killed at $_step: $(t_short "$@") (exit $T_RC)"
		t_show_output
	fi
}

# t_between N LO HI DESC: LO <= N <= HI
t_between() {
	if [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; then
		t_pass "$4"
	else
		t_fail "$4"
		diag "$1 not in [$2, $3]"
	fi
}

# pub_of FILE: the public key (PEM) of a certificate, key or CSR
pub_of() {
	openssl x509 -in "$1" -noout -pubkey 2>/dev/null ||
		openssl pkey -in "$1" -pubout 2>/dev/null ||
		openssl req -in "$1" -noout -pubkey 2>/dev/null
}

# cert_has_key CERT KEY: 0 if the certificate's public key is KEY's
cert_has_key() {
	[ -s "$1" ] && [ "$(pub_of "$1")" = "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

# fingerprint CERT [DIGEST]: "AB:CD:..." as sscep prints it
fingerprint() {
	openssl x509 -in "$1" -noout -fingerprint -"${2:-sha256}" | sed 's/.*=//'
}

# wrong_fingerprint CERT [ALG]: CERT's fingerprint with its first byte
# changed, so never the right one (00 becomes 11, anything else 00)
wrong_fingerprint() {
	fingerprint "$@" | sed 's/^00/11/;t;s/^../00/'
}

# serial_of CERT: decimal serial number
serial_of() {
	printf '%d\n' "0x$(openssl x509 -in "$1" -noout -serial | sed 's/.*=//')"
}

# ca_verify CACERT CERT: the certificate chains to the CA (which may be an
# intermediate: -partial_chain)
ca_verify() {
	openssl verify -partial_chain -CAfile "$1" "$2" >/dev/null 2>&1
}

# --- mounts (the suite runs as root in CI) -----------------------------------

# t_mount MOUNT-ARGS... DIR: mount(8) with these arguments on DIR (made if
# missing); every DIR mounted is unmounted when the test exits, last first,
# before the work dir goes (what is in it is collected for the canary test
# first). A read-only bind mount of SRC:
#   t_mount --bind SRC DIR && t_mount -o remount,bind,ro DIR
# Paths must not hold spaces (the work dir's do not).
T_MOUNTS=
t_mount() {
	eval "_mdir=\${$#}"
	mkdir -p "$_mdir" && mount "$@" || return 1
	case " $T_MOUNTS " in
	*" $_mdir "*) ;;
	*) T_MOUNTS="$_mdir $T_MOUNTS" ;;
	esac
	trap 'canary_collect; t_umount_all; t_cleanup' EXIT
}

# t_umount_all: unmount what t_mount mounted (a busy one lazily)
t_umount_all() {
	for _m in $T_MOUNTS; do
		umount "$_m" 2>/dev/null || umount -l "$_m"
	done
	T_MOUNTS=
}

# t_require_root WHY: skip the whole test unless run as root (CI is)
t_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "1..0 # SKIP not root: $1 (CI runs the suite as root)"
		exit 0
	fi
}

# --- the agent (run / check / status, profiles) --------------------------------
#
# agent_profile NAME TOKEN [Key=Value...]: write the profile
# AG_PROFILE=$T_WORK/profiles/NAME.conf for the SoftHSM2 token TOKEN (made with
# softhsm_new) and the current test CA: URL, FingerPrint (the CA's SHA-256
# pin), PKCS11Module, PinFile ./pin (pin_file), NewKey
# pkcs11:token=TOKEN;object=NAME, KeyType rsa:2048, Subject /CN=NAME,
# ChallengePasswordFile ./chal (T_CHAL, written here), StoreDir
# $T_WORK/store/NAME, StateDir $T_WORK/state, PollInterval 1, RetryMin 1.
# Key=Value replaces the default of that key (or adds it); Key= drops it.
# The keys are written in [scep_agent], one per line, in order.
# AG_PROFILE, AG_STORE, AG_STATE: the last profile's file, StoreDir and
# StateDir (call it as is, not in $(...)).
agent_profile() {
	local name=$1 tok=$2 kv k v out
	shift 2
	local -a keys=(URL FingerPrint PKCS11Module PinFile NewKey KeyType Subject
		ChallengePasswordFile StoreDir StateDir PollInterval RetryMin)
	local -A val=([URL]=$CA_URL [FingerPrint]=$(fingerprint "$CA_CERT")
		[PKCS11Module]=/usr/lib/softhsm/libsofthsm2.so [PinFile]=$T_WORK/pin
		[NewKey]="\"pkcs11:token=$tok;object=$name\"" [KeyType]=rsa:2048
		[Subject]=/CN=$name [ChallengePasswordFile]=$T_WORK/chal
		[StoreDir]=$T_WORK/store/$name [StateDir]=$T_WORK/state
		[PollInterval]=1 [RetryMin]=1)
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		[ -n "${val[$k]+x}" ] || keys+=("$k")
		val[$k]=$v
	done
	[ -f "$T_WORK/pin" ] || (cd "$T_WORK" && pin_file)
	[ -f "$T_WORK/chal" ] || secret_file "$T_WORK/chal" "$T_CHAL"
	mkdir -p "$T_WORK/profiles"
	out=$T_WORK/profiles/$name.conf
	{
		echo "# agent profile $name (tests/lib/fixtures.sh agent_profile)"
		echo "[scep_agent]"
		for k in "${keys[@]}"; do
			[ -n "${val[$k]}" ] && printf '%s = %s\n' "$k" "${val[$k]}"
		done
	} >"$out"
	AG_PROFILE=$out
	AG_STORE=${val[StoreDir]}
	AG_STATE=${val[StateDir]}
}

# json_get FILE EXPR: a value of the JSON document in FILE, by a Python
# expression on d (e.g. 'd[0]["serial"]'); None prints as "null"
json_get() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print("null" if v is None else v)' "$1" "$2" 2>/dev/null
}

# agent_status PROFILE...: scep-agent status --json PROFILE... into
# $T_WORK/status.json (its exit code is the function's)
agent_status() {
	sa status --json "$@" >"$T_WORK/status.json" 2>"$T_WORK/status.err"
	_rc=$?
	t_canary_keep "$T_WORK/status.json" "$T_WORK/status.err"
	return $_rc
}

# st FIELD [N]: FIELD of profile N (default 0) in the last agent_status
st() {
	json_get "$T_WORK/status.json" "d[${2:-0}][\"$1\"]"
}

# serial_hex CERT: the serial as the agent names it: lowercase hex, no colons
serial_hex() {
	openssl x509 -in "$1" -noout -serial | sed 's/.*=//' | tr 'A-F' 'a-f'
}

# ca_lines: how many requests (lines) the test CA has logged
ca_lines() {
	[ -f "$CA_LOG" ] && wc -l <"$CA_LOG" || echo 0
}

# p11_ids TOKEN CLASS: the CKA_IDs (hex) of the token's objects of CLASS
# (privkey, pubkey, cert), one a line, sorted
p11_ids() {
	pkcs11-tool --module "$P11_MODULE" --token-label "$1" -l --pin "$T_PIN" -O \
		--type "$2" 2>/dev/null | sed -n 's/^ *ID: *//p' | sort
}

# p11_key_for_cert TOKEN CERT: print the CKA_ID of the key pair of TOKEN
# (a private key and its public key) whose public key is CERT's; status 1
# when the token holds no such pair
p11_key_for_cert() {
	local id want
	want=$(pub_of "$2") || return 1
	[ -n "$want" ] || return 1
	for id in $(p11_ids "$1" privkey); do
		pkcs11-tool --module "$P11_MODULE" --token-label "$1" -l --pin "$T_PIN" \
			--read-object --type pubkey --id "$id" -o "$T_WORK/.p11pub.der" >/dev/null 2>&1 ||
			continue
		if [ "$(openssl pkey -pubin -inform DER -in "$T_WORK/.p11pub.der" 2>/dev/null)" = "$want" ]; then
			rm -f "$T_WORK/.p11pub.der"
			echo "$id"
			return 0
		fi
	done
	rm -f "$T_WORK/.p11pub.der"
	return 1
}

# p11_cert_der TOKEN ID FILE: the token's certificate object with CKA_ID ID,
# as DER in FILE
p11_cert_der() {
	pkcs11-tool --module "$P11_MODULE" --token-label "$1" -l --pin "$T_PIN" \
		--read-object --type cert --id "$2" -o "$3" >/dev/null 2>&1
}

# cert_valid CERT: a whole certificate, valid now
cert_valid() {
	openssl x509 -in "$1" -noout -checkend 0 >/dev/null 2>&1
}

# agent_run LOG ARGS...: start `scep-agent run ARGS` in the background in
# a session (and process group) of its own, its output in LOG. Sets AG_PID
# (the daemon's pid, which is also its process group's id); stopped at
# exit (SIGTERM, then SIGKILL to its group) if still running.
agent_run() {
	local log=$1
	shift
	setsid ${SCEP_AGENT_WRAP:-} "$SCEP_AGENT" run "$@" >"$log" 2>&1 &
	AG_PID=$!
	T_PIDS="$T_PIDS $AG_PID"
	T_AGENT_GROUPS="${T_AGENT_GROUPS:-} $AG_PID"
	trap 'agent_groups_kill; t_cleanup' EXIT
}

# agent_groups_kill: SIGKILL what is left of every daemon's process group
# (its job children), after t_cleanup's SIGTERM to the daemons
agent_groups_kill() {
	local g
	for g in ${T_AGENT_GROUPS:-}; do
		kill -TERM "$g" 2>/dev/null && sleep 0.5
		kill -KILL -- "-$g" 2>/dev/null
	done
	return 0
}

# agent_kill9: SIGKILL the daemon started last and its children (its
# process group, as systemd's KillMode=control-group does), and wait
agent_kill9() {
	kill -KILL -- "-$AG_PID" 2>/dev/null
	wait "$AG_PID" 2>/dev/null
	return 0
}

# wait_for SECS CMD...: poll CMD every 0.1 s until it succeeds (status 0)
# or SECS pass (status 1); five times as long under a wrapper (valgrind:
# an RSA key generation in SoftHSM2 alone takes about 20 s there)
wait_for() {
	local n=$(($1 * 10))
	[ -n "${SCEP_AGENT_WRAP:-}" ] && n=$((n * 5))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# ctxt PID: voluntary + involuntary context switches of PID so far (all
# its threads: /proc/PID/status counts the main thread only, so the tasks
# are summed)
ctxt() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# agent_slow: 1 when scep-agent runs under a wrapper (valgrind), else 0:
# the tests lengthen their certificate lifetimes then
agent_slow() {
	[ -n "${SCEP_AGENT_WRAP:-}" ]
}

# uri_no_pin TEXT: TEXT (a key URI) carries no PIN in any form: no pin-value
# or pin-source attribute, not the suite's PIN itself (plain or %20)
uri_no_pin() {
	! printf '%s\n' "$1" | grep -Eqi 'pin-value|pin-source' &&
		! printf '%s\n' "$1" | grep -qF -e "$T_PIN" -e "${T_PIN// /%20}"
}
