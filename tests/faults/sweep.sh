#!/bin/bash
# sweep.sh - what a token that fails mid-run does to scep-agent: each flow
# runs once per PKCS#11 call it makes, with that call failed by the fault
# module (tests/p11shim), then the same command (or it with -R) runs on the
# healthy token. Not a meson test (yet): a measurement, see docs/faults.md.
#
# Usage: tests/faults/sweep.sh [-b BUILD] [-o OUT] [-t SECS] [-j JOBS]
#                              [-p POINTS] [-s] [-e K] [-x K] [-E]
#                              [-a ASAN_BUILD] [FLOW...]
#   FLOW     enroll (first enrollment, --new-key, an RSA-2048 token key:
#            the test CA encrypts its reply to the requester's key), renew
#            (in place: -K/-O --new-key --overwrite, the old key RSA, the
#            new one EC P-256), newlabel (renewal with a new key under a
#            new label, EC P-256; the old pair stays), mkrequest (--new-key,
#            EC P-256), getcert and getcrl (signed with a token key);
#            default: all six. EC keys where the CA allows them: RSA key
#            generation is most of a point's time.
#            On a software TPM (swtpm, through tpm2-pkcs11; only when
#            named): tpm-init (init-token --tpm on tpm2-pkcs11's blank
#            slot: C_InitToken, C_InitPIN) and tpm-enroll (enroll --tpm
#            --new-key, RSA-2048, on a token "gw" that holds an enrolled
#            key and certificate "base"). Each point gets its own swtpm,
#            started on a copy of the prepared TPM state and store (see
#            the TPM section below)
#   -b BUILD the meson build dir (default: build) with scep-agent, the test
#            CA and the shim
#   -o OUT   where the results go (default: ./faults-out): OUT/results.txt
#            (one line per point), OUT/summary.txt, OUT/points/<point>/
#            (stderr, trace, token listings, gdb backtraces)
#   -t SECS  a run that takes longer is a hang (default 20)
#   -j JOBS  points run in parallel (default 2)
#   -p LIST  only these call indexes (e.g. "3 17 40"), for a rerun
#   -f RV:MODE  the fault at every call (default CKR_DEVICE_REMOVED:always)
#   -s       no CKR sample (only CKR_DEVICE_REMOVED from the call on)
#   -e K     the CKR sample at every Kth call (default 8), besides the first
#            call of each kind named below
#   -x K     the CKR_DEVICE_REMOVED points (-f) only at every Kth call and
#            the first call of each kind named below and the first C_Login
#            (default 1: every call)
#   -E       TPM flows: tpm2-pkcs11's own variables (TPM2_PKCS11_TCTI,
#            TPM2_PKCS11_STORE) and --module instead of --tpm, --tcti,
#            --tpm-store (a build without --tpm; tpm-enroll only)
#   -a DIR   a sanitizer build: every crashing point is run again with its
#            scep-agent, the report kept with the point
#   -l DIR   LD_LIBRARY_PATH for the runs (another build of a library
#            the runs load, e.g. OpenSSL or SoftHSM2 with debug symbols)
#   -r       report only: rebuild OUT/results.txt and OUT/summary.txt from
#            the points already in OUT
#
# For each flow: one run with P11SHIM_TRACE counts its calls N; then for
# i in 1..N a point fails call i with CKR_DEVICE_REMOVED from then on
# (P11SHIM_FAIL_MODE=always: a card pulled out), and for every 8th call (-e)
# (and the first C_GenerateKeyPair, C_Sign, C_Decrypt, C_CreateObject,
# C_SetAttributeValue, C_DestroyObject, C_InitToken, C_InitPIN) the
# sample CKRs once (-x: the from-then-on points there, at the first
# C_Login, and every Kth call). Each point
# starts from a copy of the same prepared token. Per point:
#   rc       the exit code; "hang" when it ran past -t (a gdb backtrace of
#            the hung process is kept, then it is killed); "sigN" a crash
#   intact   the objects the token held before (CKA_CLASS, label, CKA_ID,
#            the value of public keys and certificates) are all still there
#            after the failed run: yes, no; "new" (renew) when the old pair
#            was already being replaced, the new certificate stored, and the
#            new pair is whole (base2.crt, its key and certificate object
#            under base or base~new); n/a after a renewal that exited 0
#   retry    the same command on the healthy token: ok, ok-R (only with -R),
#            or stuck:RC (the first error line is kept), hang, sigN
#   final    after the retry: the flow's result is whole (certificate or
#            request for the key labelled as asked, one key pair under it,
#            nothing left under a provisional label)
#
# The TPM flows (tpm-init, tpm-enroll): each point runs on its own swtpm
# (no resource manager, as /dev/tpm0 on a gateway), started on a copy of
# the prepared swtpm state and tpm2-pkcs11 store dir (copied while no
# swtpm runs on them) and stopped by pid when the point ends. What a
# point checks leaves the TPM alone where it can: the token's objects and
# state are read from the store's sqlite file, the handles left loaded
# with tpm2_getcap (which loads nothing). Besides the columns above:
#   intact   tpm-init: what the failed run left in the store: none (no
#            token), whole (token gw, SO and user PIN set), nopin (token
#            gw initialised, no user PIN), no (anything else)
#   retry    tpm-init: the same command, then (when that fails) what its
#            message says to do: it with -R (finish the token an earlier
#            run initialised: its user PIN set, nothing wiped): ok-R
#   leaked   transient objects + loaded sessions in the TPM after the
#            failed run (what a process that died or whose C_Finalize
#            failed left; scep-agent flushes them before its next run)
#   left     the same after the retry (tpm2-pkcs11 itself leaves the
#            primary key it made in C_InitToken loaded); flushed before the
#            final check
#   final    tpm-init: token gw whole in the store, its URI printed by the
#            run that succeeded, and pkcs11-tool logs in with the user PIN
#            and with the SO PIN (which sets the same user PIN again: an
#            SO login needs a read-write session)
set -u

BUILD=build OUT=$PWD/faults-out TMO=20 JOBS=2 POINTS= SAMPLE=1 STRIDE=8 ASAN= LIBDIR= REPORT= FAULT=CKR_DEVICE_REMOVED:always
XSTRIDE=1 TPM_ENV=
while getopts b:o:t:j:p:f:se:x:Ea:l:r opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	o) OUT=$OPTARG ;;
	t) TMO=$OPTARG ;;
	j) JOBS=$OPTARG ;;
	p) POINTS=$OPTARG ;;
	f) FAULT=$OPTARG ;;
	s) SAMPLE= ;;
	e) STRIDE=$OPTARG ;;
	x) XSTRIDE=$OPTARG ;;
	E) TPM_ENV=1 ;;
	a) ASAN=$(cd "$OPTARG" && pwd) ;;
	l) LIBDIR=$(cd "$OPTARG" && pwd) ;;
	r) REPORT=1 ;;
	*) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//'; exit 4 ;;
	esac
done
shift $((OPTIND - 1))
FLOWS=${*:-enroll renew newlabel mkrequest getcert getcrl}
HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd) || exit 4
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 4
SCEP_AGENT=$BUILD/agent/scep-agent
SCEPCA=$BUILD/tests/servers/scepca
P11SHIM=$BUILD/tests/p11shim/p11shim.so
export SRCDIR SCEP_AGENT SCEPCA P11SHIM
for f in "$SCEP_AGENT" "$SCEPCA" "$P11SHIM"; do
	[ -e "$f" ] || { echo "sweep: $f missing: meson compile -C $BUILD" >&2; exit 4; }
done
unset SA_CANARY_DIR
. "$SRCDIR/tests/lib/fixtures.sh"
t_require softhsm2-util pkcs11-tool
if [ -n "$LIBDIR" ]; then
	LD_LIBRARY_PATH=$LIBDIR
	export LD_LIBRARY_PATH
fi
command -v gdb >/dev/null || echo "sweep: no gdb: hangs and crashes without backtraces" >&2

# under tests/run.sh valgrind (vgwrap.sh): every scep-agent run under valgrind
WRAP=${SCEP_AGENT_WRAP:-}
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
RVS_SAMPLE="CKR_SESSION_HANDLE_INVALID CKR_DEVICE_MEMORY CKR_PIN_LOCKED CKR_FUNCTION_FAILED CKR_TOKEN_WRITE_PROTECTED"
TOK=pkcs11:token=t1

# --- the flows: their command lines (run in the point's dir) and checks ---

# flow_cmd FLOW: the command's arguments, one per line
flow_cmd() {
	case $1 in
	enroll) printf '%s\n' enroll -u "$CA_URL" -c ca.crt --module "$P11SHIM" \
		--pin-file pin --new-key "$TOK;object=e1" --subject /CN=e1 -l e1.crt ;;
	renew) printf '%s\n' enroll -u "$CA_URL" -c ca.crt --module "$P11SHIM" \
		--pin-file pin -K "$TOK;object=base" -O base.crt \
		--new-key "$TOK;object=base" --overwrite --key-type ec:P-256 --subject /CN=base \
		-l base2.crt ;;
	mkrequest) printf '%s\n' mkrequest --module "$P11SHIM" --pin-file pin \
		--new-key "$TOK;object=m1" --key-type ec:P-256 --subject /CN=m1 -r m1.csr ;;
	getcert) printf '%s\n' getcert -u "$CA_URL" -c ca.crt --module "$P11SHIM" \
		--pin-file pin -k "$TOK;object=base" -l base.crt -s "$BASE_SERIAL" -w got.crt ;;
	newlabel) printf '%s\n' enroll -u "$CA_URL" -c ca.crt --module "$P11SHIM" \
		--pin-file pin -K "$TOK;object=base" -O base.crt \
		--new-key "$TOK;object=r1" --key-type ec:P-256 --subject /CN=base -l r1.crt ;;
	getcrl) printf '%s\n' getcrl -u "$CA_URL" -c ca.crt --module "$P11SHIM" \
		--pin-file pin -k "$TOK;object=base" -l base.crt -w crl.pem ;;
	tpm-init) printf '%s\n' init-token $(tpm_args) --label gw --so-pin-file sopin \
		--pin-file pin ;;
	tpm-enroll) printf '%s\n' enroll -u "$CA_URL" -c ca.crt $(tpm_args) --pin-file pin \
		--new-key "pkcs11:token=gw;object=e1" --key-type rsa:2048 --subject /CN=e1 \
		-l e1.crt ;;
	esac
}

# tpm_args: how a TPM flow's command names the TPM (in the point's dir,
# its swtpm up): through the shim, which forwards to tpm2-pkcs11
tpm_args() {
	if [ -n "$TPM_ENV" ]; then
		printf '%s\n' --module "$P11SHIM"
	else
		printf '%s\n' --tpm --module "$P11SHIM" --tcti "$PT_TCTI" --tpm-store "$PWD/store"
	fi
}

# snap [DIR]: the token's objects, one sorted line each:
# "CLASS|LABEL|ID|VALUE" (VALUE: SHA-256 of a public key's or certificate's
# CKA_VALUE as pkcs11-tool reads it; a private key's access flags)
snap() {
	pkcs11-tool --module "$SOFTHSM" --token-label t1 -l --pin "$T_PIN" -O 2>/dev/null |
		awk '/^[A-Z]/ { if (c != "") print c "|" l "|" i "|" a
				c = $1; l = ""; i = ""; a = "" }
			$1 == "label:" { l = $2 }
			$1 == "ID:" { i = $2 }
			$1 == "Access:" { sub(/^ *Access: */, ""); a = $0 }
			END { if (c != "") print c "|" l "|" i "|" a }' |
		while IFS='|' read -r c l i a; do
			case $c in
			Public) t=pubkey ;;
			Certificate) t=cert ;;
			*) printf '%s|%s|%s|%s\n' "$c" "$l" "$i" "$a"; continue ;;
			esac
			v=$(pkcs11-tool --module "$SOFTHSM" --token-label t1 -l --pin "$T_PIN" \
				--read-object --type $t --id "$i" 2>/dev/null | sha256sum | cut -c1-16)
			printf '%s|%s|%s|%s\n' "$c" "$l" "$i" "$v"
		done | sort
}

# count SNAP CLASS LABEL: objects of a class (Private, Public, Certificate)
count() {
	grep -c "^$2|$3|" "$1"
}

# final_ok FLOW: the flow's result in this dir is whole (see the header)
final_ok() {
	snap >final.snap
	case $1 in
	enroll)
		[ -s e1.crt ] && [ "$(count final.snap Private e1)$(count final.snap Public e1)$(count final.snap Certificate e1)" = 111 ] &&
			grep -q "^Certificate|e1|$(grep '^Private|e1|' final.snap | cut -d'|' -f3)|" final.snap ;;
	renew)
		[ -s base2.crt ] && [ "$(count final.snap Private base)$(count final.snap Public base)$(count final.snap Certificate base)" = 111 ] &&
			[ "$(grep -c '~' final.snap)" = 0 ] && ! grep -qxF -f base.snapkeys final.snap &&
			[ "$(openssl x509 -in base2.crt -noout -pubkey)" = "$(tok_pub base)" ] ;;
	mkrequest)
		[ -s m1.csr ] && [ "$(count final.snap Private m1)$(count final.snap Public m1)" = 11 ] &&
			[ "$(openssl req -in m1.csr -noout -pubkey)" = "$(tok_pub m1)" ] ;;
	getcert)
		[ -s got.crt ] && cmp -s <(openssl x509 -in got.crt -outform DER) \
			<(openssl x509 -in base.crt -outform DER) ;;
	newlabel)
		[ -s r1.crt ] && [ "$(count final.snap Private r1)$(count final.snap Public r1)$(count final.snap Certificate r1)" = 111 ] &&
			[ "$(grep -c '~' final.snap)" = 0 ] && grep -qxF -f base.snapkeys final.snap &&
			[ "$(grep -cxF -f base.snapkeys final.snap)" = 2 ] &&
			[ "$(openssl x509 -in r1.crt -noout -pubkey)" = "$(tok_pub r1)" ] ;;
	getcrl)
		[ -s crl.pem ] && openssl crl -in crl.pem -noout -CAfile ca.crt 2>&1 | grep -q "verify OK" ;;
	esac
}

# --- the TPM flows ----------------------------------------------------------

TPM2_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so

is_tpm() {
	case $1 in tpm-*) return 0 ;; esac
	return 1
}

# tpm_up DIR: a swtpm on DIR/state (swtpm_launch of the fixtures: no
# resource manager, two free neighbouring ports of 127.0.0.1, our child);
# sets PT_PID and PT_TCTI. Ports are picked under a lock (fd 9), so
# parallel points never pick the same. Stop it with tpm_down.
tpm_up() {
	flock 9
	if swtpm_launch "$1"; then
		PT_PID=$SW_PID
		PT_TCTI=swtpm:host=127.0.0.1,port=$SW_PORT
		flock -u 9
		return 0
	fi
	flock -u 9
	PT_PID=
	echo "sweep: swtpm did not start: $(tail -2 "$1/out" "$1/log" 2>/dev/null)" >&2
	return 1
}

# tpm_down: stop the swtpm tpm_up started, by its pid
tpm_down() {
	if [ -n "${PT_PID:-}" ]; then
		kill "$PT_PID" 2>/dev/null
		wait "$PT_PID" 2>/dev/null
		PT_PID=
	fi
	return 0
}

# tpm_env: tpm2-pkcs11's variables for tools that load it (pkcs11-tool),
# and for the runs with -E
tpm_env() {
	TPM2_PKCS11_TCTI=$PT_TCTI TPM2_PKCS11_STORE=$PWD/store TPM2_PKCS11_BACKEND=esysdb \
		TSS2_LOG=all+NONE "$@"
}

# tpm_handles: "transient objects+loaded sessions" in the point's TPM
tpm_handles() {
	_t=$(TPM2TOOLS_TCTI=$PT_TCTI TSS2_LOG=all+NONE tpm2_getcap handles-transient 2>/dev/null | grep -c 0x)
	_s=$(TPM2TOOLS_TCTI=$PT_TCTI TSS2_LOG=all+NONE tpm2_getcap handles-loaded-session 2>/dev/null | grep -c 0x)
	echo "$_t+$_s"
}

# tpm_flush: flush every transient object and session of the point's TPM
tpm_flush() {
	for _f in -t -l -s; do
		TPM2TOOLS_TCTI=$PT_TCTI TSS2_LOG=all+NONE tpm2_flushcontext $_f >/dev/null 2>&1
	done
}

# tpm_db WHAT [ARG]: read tpm2-pkcs11's store (./store) without the TPM.
#   snap       the objects, one sorted line each, as snap does:
#              "CLASS|LABEL|ID|H" (H: SHA-256 of all its stored attributes)
#   tokens     the tokens: none, or "whole:LABEL" / "nopin:LABEL" each
#   pub LABEL  the modulus (hex, upper case) of the public key LABEL
#   cert LABEL the CKA_VALUE (hex) of the certificate LABEL
tpm_db() {
	python3 - "$PWD/store/tpm2_pkcs11.sqlite3" "$@" <<'EOF'
import hashlib, os, re, sqlite3, sys
db, what, arg = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
rows, toks = [], []
if os.path.exists(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        toks = c.execute("select t.id, t.label, s.userpub is not null from tokens t"
                         " left join sealobjects s on s.tokid = t.id").fetchall()
        rows = c.execute("select attrs from tobjects order by id").fetchall()
    except sqlite3.Error:
        pass
if what == "tokens":
    print(" ".join(sorted("%s:%s" % ("whole" if u else "nopin", l) for _, l, u in toks)) or "none")
    sys.exit(0)
pair = re.compile(r'\?\s*!!\w+\s+"(\d+)"\s*:\s*!!\w+\s+"([^"]*)"')
out = []
for (attrs,) in rows:
    a = {}
    for k, v in pair.findall(attrs):
        a.setdefault(int(k), v)
    cls = {"1": "Certificate", "2": "Public", "3": "Private"}.get(a.get(0), "Class" + a.get(0, "?"))
    try:
        label = bytes.fromhex(a.get(3, "")).decode()
    except ValueError:
        label = a.get(3, "")
    if what == "snap":
        out.append("%s|%s|%s|%s" % (cls, label, a.get(258, ""),
                                    hashlib.sha256(attrs.encode()).hexdigest()[:16]))
    elif what == "pub" and cls == "Public" and label == arg:
        out.append(a.get(288, "").upper())
    elif what == "cert" and cls == "Certificate" and label == arg:
        out.append(a.get(17, "").lower())
print("\n".join(sorted(out)))
EOF
}

# tpm_final_ok FLOW: the TPM flow's result in this dir is whole (the
# point's swtpm up, flushed)
tpm_final_ok() {
	case $1 in
	tpm-init)
		[ "$(tpm_db tokens)" = whole:gw ] &&
			cat run.out retry.out retryR.out 2>/dev/null | grep -q '^scep-agent: token: pkcs11:.*token=gw' &&
			tpm_env pkcs11-tool --module "$TPM2_MODULE" --token-label gw -l --pin "$T_PIN" -O >final.log 2>&1 &&
			tpm_env pkcs11-tool --module "$TPM2_MODULE" --token-label gw --init-pin --login \
				--login-type so --so-pin "$T_SOPIN" --new-pin "$T_PIN" >>final.log 2>&1 ;;
	tpm-enroll)
		tpm_db snap >final.snap
		[ -s e1.crt ] && [ "$(count final.snap Private e1)$(count final.snap Public e1)$(count final.snap Certificate e1)" = 111 ] &&
			grep -q "^Certificate|e1|$(grep '^Private|e1|' final.snap | cut -d'|' -f3)|" final.snap &&
			[ "$(grep -c '~' final.snap)" = 0 ] && ! grep -qvxF -f final.snap base.snap &&
			[ "$(tpm_db pub e1)" = "$(openssl x509 -in e1.crt -noout -modulus | sed 's/^Modulus=//')" ] &&
			[ "$(tpm_db cert e1)" = "$(openssl x509 -in e1.crt -outform DER | od -An -tx1 | tr -d ' \n')" ] ;;
	esac
}

# tpm_point_dir FLOW NAME: a fresh dir holding a copy of the flow's
# prepared TPM (state, store) and files
tpm_point_dir() {
	_d=$OUT/points/$1-$2
	rm -rf "$_d"
	mkdir -p "$_d"
	_p=$T_WORK/prep/$1
	cp -a "$_p/state" "$_p/store" "$_d/"
	cp "$T_WORK/prep/ca.crt" "$_d/"
	[ -f "$_p/base.snap" ] && cp "$_p/base.snap" "$_d/"
	(umask 077 && cp "$T_WORK/pin" "$_d/pin" && printf '%s\n' "$T_SOPIN" >"$_d/sopin")
	echo "$_d"
}

# tpm_run LOG [VAR=VALUE...]: run_cmd of the flow's command (cmd, then
# more) in the point's dir, through the shim to tpm2-pkcs11, with these
# variables (the fault)
tpm_run() {
	_log=$1
	shift
	if [ -n "$TPM_ENV" ]; then
		set -- "$@" TPM2_PKCS11_TCTI="$PT_TCTI" TPM2_PKCS11_STORE="$PWD/store" \
			TPM2_PKCS11_BACKEND=esysdb TSS2_LOG=all+NONE
	fi
	run_cmd "$_log" env P11SHIM_MODULE="$TPM2_MODULE" "$@" $WRAP "$SCEP_AGENT" "${cmd[@]}" "${more[@]}"
}

# tpm_point FLOW I RV MODE: one point of a TPM flow, on its own swtpm
tpm_point() {
	_flow=$1 _i=$2 _rv=$3 _mode=$4
	_d=$(tpm_point_dir "$_flow" "$_i-$_rv-$_mode")
	(
		cd "$_d" || exit 1
		trap tpm_down EXIT
		tpm_up "$_d" 9>>"$OUT/.tpm-ports.lock" || exit 1
		mapfile -t cmd < <(flow_cmd "$_flow")
		more=()
		rc=$(tpm_run run P11SHIM_FAIL_AT="$_i" P11SHIM_FAIL_RV="$_rv" \
			P11SHIM_FAIL_MODE="$_mode" P11SHIM_TRACE="$_d/trace")
		func=$(awk '/ injected$/ { print $2; exit }' trace 2>/dev/null)
		ncalls=$(wc -l <trace 2>/dev/null || echo 0)
		leaked=$(tpm_handles)
		case $_flow in
		tpm-init)
			case $(tpm_db tokens) in
			none) intact=none ;;
			whole:gw) intact=whole ;;
			nopin:gw) intact=nopin ;;
			*) intact=no ;;
			esac
			extra=0 ;;
		*)
			tpm_db snap >after.snap
			if grep -qvxF -f after.snap base.snap; then intact=no; else intact=yes; fi
			extra=$(grep -cvxF -f base.snap after.snap) ;;
		esac
		retry=-
		if [ "$rc" != 0 ]; then
			r=$(tpm_run retry)
			if [ "$r" = 0 ]; then
				retry=ok
			else
				more=(-R)
				r2=$(tpm_run retryR)
				if [ "$r2" = 0 ]; then retry=ok-R; else retry="stuck:$r,-R:$r2"; fi
			fi
		fi
		left=$(tpm_handles)
		tpm_flush
		if tpm_final_ok "$_flow"; then final=ok; else final=BAD; fi
		tpm_down
		printf '%-9s %4s %-26s %-5s %-22s rc=%-5s intact=%-3s extra=%-2s retry=%-14s final=%-3s calls=%s leaked=%s left=%s\n' \
			"$_flow" "$_i" "$_rv" "$_mode" "${func:--}" "$rc" "$intact" "$extra" "$retry" "$final" \
			"$ncalls" "$leaked" "$left" >result
		result_line .
	)
}

# new_pair_whole: (renew, in a point's dir) base2.crt holds the new
# certificate, and a private key labelled base or base~new has a
# certificate object and the public key of base2.crt
new_pair_whole() {
	[ -s base2.crt ] || return 1
	for _id in $(grep -E '^Private\|base(~new)?\|' after.snap | cut -d'|' -f3); do
		grep -q "^Certificate|[^|]*|$_id|" after.snap || continue
		[ "$(openssl x509 -in base2.crt -noout -pubkey)" = "$(pkcs11-tool --module "$SOFTHSM" \
			--token-label t1 -l --pin "$T_PIN" --read-object --type pubkey --id "$_id" \
			2>/dev/null | openssl pkey -pubin -inform DER 2>/dev/null)" ] && return 0
	done
	return 1
}

# tok_pub LABEL: the PEM public key of the token's key LABEL
tok_pub() {
	pkcs11-tool --module "$SOFTHSM" --token-label t1 -l --pin "$T_PIN" --read-object \
		--type pubkey --label "$1" 2>/dev/null | openssl pkey -pubin -inform DER 2>/dev/null
}

# run_cmd LOG BIN ARGS...: run BIN with ARGS in the background, at most
# TMO seconds; prints its exit code, "hang" (a gdb backtrace in LOG.bt,
# then SIGKILL) or "sigN"
run_cmd() {
	_log=$1
	shift
	"$@" >"$_log.out" 2>"$_log.err" &
	_pid=$!
	_t=0
	while kill -0 $_pid 2>/dev/null; do
		if [ $_t -ge $((TMO * 10)) ]; then
			if command -v gdb >/dev/null; then
				timeout 60 gdb -p $_pid -batch -ex 'thread apply all bt' >"$_log.bt" 2>&1
			fi
			kill -KILL $_pid 2>/dev/null
			wait $_pid 2>/dev/null
			echo hang
			return
		fi
		sleep 0.1
		_t=$((_t + 1))
	done
	wait $_pid
	_rc=$?
	if [ $_rc -ge 128 ]; then echo "sig$((_rc - 128))"; else echo $_rc; fi
}

# first_err LOG: the first line of LOG.err that says what failed (not a
# progress line, a warning or the note about a key left), short
first_err() {
	grep -v -e '^scep-agent: \(requesting\|sending\|valid response\|pkistatus:\|generating\|resuming\|warning:\|the key generated\|certificate written\|subject:\|serial:\|key:\|certificate:\|the new key is labelled\|renewal:\)' \
		"$1.err" 2>/dev/null | head -n 1 | sed "s#$OUT/points/##g; s#$BUILD/##g" | cut -c1-220
}

# point_dir FLOW NAME: a fresh dir holding a copy of the prepared token
point_dir() {
	_d=$OUT/points/$1-$2
	rm -rf "$_d"
	mkdir -p "$_d"
	cp -a "$T_WORK/prep/tokens" "$_d/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$_d/tokens" >"$_d/softhsm2.conf"
	cp "$T_WORK/prep/ca.crt" "$T_WORK/prep/base.crt" "$T_WORK/prep/base.snapkeys" "$_d/"
	(umask 077 && cp "$T_WORK/pin" "$_d/pin")
	echo "$_d"
}

# point FLOW I RV MODE: one point; prints its result line
point() {
	if is_tpm "$1"; then
		tpm_point "$@"
		return
	fi
	_flow=$1 _i=$2 _rv=$3 _mode=$4
	_d=$(point_dir "$_flow" "$_i-$_rv-$_mode")
	(
		cd "$_d" || exit 1
		export SOFTHSM2_CONF=$_d/softhsm2.conf P11SHIM_MODULE=$SOFTHSM
		mapfile -t cmd < <(flow_cmd "$_flow")
		rc=$(P11SHIM_FAIL_AT=$_i P11SHIM_FAIL_RV=$_rv P11SHIM_FAIL_MODE=$_mode \
			P11SHIM_TRACE=$_d/trace run_cmd run $WRAP "$SCEP_AGENT" "${cmd[@]}")
		func=$(awk '/ injected$/ { print $2; exit }' trace 2>/dev/null)
		ncalls=$(wc -l <trace 2>/dev/null || echo 0)
		snap >after.snap
		if grep -qvxF -f after.snap "$T_WORK/prep/base.snap"; then
			intact=no
		else
			intact=yes
		fi
		[ "$rc" = 0 ] && [ "$_flow" = renew ] && intact=n/a
		# a renewal interrupted once its certificate was stored may have
		# removed the old pair: the new one must then be whole
		[ "$intact" = no ] && [ "$_flow" = renew ] && new_pair_whole && intact=new
		extra=$(grep -cvxF -f "$T_WORK/prep/base.snap" after.snap)
		retry=-
		if [ "$rc" != 0 ]; then
			r=$(run_cmd retry $WRAP "$SCEP_AGENT" "${cmd[@]}")
			if [ "$r" = 0 ]; then
				retry=ok
			else
				retry="stuck:$r"
				if [ "$_flow" = enroll ] || [ "$_flow" = renew ]; then
					r2=$(run_cmd retryR $WRAP "$SCEP_AGENT" "${cmd[@]}" -R)
					if [ "$r2" = 0 ]; then retry=ok-R; else
						retry="stuck:$r,-R:$r2"
					fi
				fi
			fi
		fi
		if final_ok "$_flow"; then final=ok; else final=BAD; fi
		if [ "${rc#sig}" != "$rc" ] && [ "$rc" != sig9 ]; then
			crash_bt "$_flow" "$_i" "$_rv" "$_mode"
		fi
		printf '%-9s %4s %-26s %-5s %-22s rc=%-5s intact=%-3s extra=%-2s retry=%-14s final=%-3s calls=%s\n' \
			"$_flow" "$_i" "$_rv" "$_mode" "${func:--}" "$rc" "$intact" "$extra" "$retry" "$final" \
			"$ncalls" >result
		result_line .
	)
}

# result_line DIR: the point's result with what the program said: the
# first error line of the faulty run, of the retry and of the retry with -R
result_line() {
	printf '%s | %s' "$(sed 's/ | .*//' "$1/result")" "$(first_err "$1/run")"
	[ -f "$1/retry.err" ] && grep -q ' retry=stuck' "$1/result" &&
		printf ' || retry: %s' "$(first_err "$1/retry")"
	[ -f "$1/retryR.err" ] && grep -q ' retry=stuck' "$1/result" &&
		printf ' / -R: %s' "$(first_err "$1/retryR")"
	echo
}

# crash_bt FLOW I RV MODE: the point again under gdb (and the sanitizer
# build, -a), from a fresh copy of the token; the reports next to it
crash_bt() {
	_cd=$(point_dir "$1" "$2-$3-$4-again")
	(
		cd "$_cd" || exit 1
		export SOFTHSM2_CONF=$_cd/softhsm2.conf P11SHIM_MODULE=$SOFTHSM \
			P11SHIM_FAIL_AT=$2 P11SHIM_FAIL_RV=$3 P11SHIM_FAIL_MODE=$4
		mapfile -t cmd < <(flow_cmd "$1")
		command -v gdb >/dev/null &&
			timeout 120 gdb -batch -ex run -ex 'thread apply all bt' \
				--args "$SCEP_AGENT" "${cmd[@]}" >"$OUT/points/$1-$2-$3-$4/crash.bt" 2>&1
		if [ -n "$ASAN" ]; then
			rm -rf tokens && cp -a "$T_WORK/prep/tokens" tokens
			ASAN_OPTIONS=detect_leaks=0 timeout "$TMO" "$ASAN/agent/scep-agent" "${cmd[@]}" \
				>/dev/null 2>"$OUT/points/$1-$2-$3-$4/asan.txt"
		fi
	)
	rm -rf "$_cd"
}

if [ -z "$REPORT" ]; then
# --- the prepared token: t1 with an enrolled RSA key and certificate "base"

SH_FLOWS= TPM_FLOWS=
for flow in $FLOWS; do
	if is_tpm "$flow"; then TPM_FLOWS="$TPM_FLOWS $flow"; else SH_FLOWS="$SH_FLOWS $flow"; fi
done
pin_file
ca_start -allowrenew 0 -allow-ec
mkdir -p prep
sa getca -u "$CA_URL" -c prep/ca.crt >/dev/null 2>&1 || { echo "sweep: getca failed" >&2; exit 1; }
if [ -n "$SH_FLOWS" ]; then
	softhsm_new t1
	(cd prep && cp ../pin . && sa enroll -u "$CA_URL" -c ca.crt --module "$SOFTHSM" --pin-file pin \
		--new-key "$TOK;object=base" --subject /CN=base -l base.crt >/dev/null 2>&1) ||
		{ echo "sweep: the base enrollment failed" >&2; exit 1; }
	rm -f prep/pin
	BASE_SERIAL=$(serial_of prep/base.crt)
	snap >prep/base.snap
	grep -E '^(Private|Public)\|base\|' prep/base.snap >prep/base.snapkeys
	cp -a "$T_WORK/tokens" prep/tokens
fi

# --- the prepared TPMs: tpm-init a blank one (no state, an empty store);
# tpm-enroll one with token gw (SO and user PIN set with pkcs11-tool) that
# holds an RSA-2048 key and certificate "base" enrolled by scep-agent
if [ -n "$TPM_FLOWS" ]; then
	t_require swtpm tpm2_getcap tpm2_flushcontext flock
	[ -e "$TPM2_MODULE" ] || { echo "sweep: no tpm2-pkcs11 ($TPM2_MODULE)" >&2; exit 4; }
	[ -n "$TPM_ENV" ] || unset TPM2_PKCS11_TCTI TPM2_PKCS11_STORE TPM2_PKCS11_BACKEND
	mkdir -p prep/tpm-init/state prep/tpm-init/store prep/tpm-enroll/state prep/tpm-enroll/store
	case " $TPM_FLOWS " in
	*" tpm-enroll "*)
		(
			cd prep/tpm-enroll || exit 1
			trap tpm_down EXIT
			tpm_up "$PWD" 9>>"$OUT/.tpm-ports.lock" || exit 1
			cp ../../pin ../ca.crt .
			tpm_env pkcs11-tool --module "$TPM2_MODULE" --init-token --label gw \
				--so-pin "$T_SOPIN" >prep.log 2>&1 &&
				tpm_env pkcs11-tool --module "$TPM2_MODULE" --token-label gw --init-pin \
					--login --login-type so --so-pin "$T_SOPIN" --new-pin "$T_PIN" >>prep.log 2>&1 ||
				{ echo "sweep: cannot make token gw on the TPM: $(tail -2 prep.log)" >&2; exit 1; }
			if [ -n "$TPM_ENV" ]; then
				set -- --module "$TPM2_MODULE"
			else
				set -- --tpm --tcti "$PT_TCTI" --tpm-store "$PWD/store"
			fi
			# setup, not a point: not under valgrind (SCEP_AGENT_WRAP)
			tpm_env "$SCEP_AGENT" enroll "$@" -u "$CA_URL" -c ca.crt --pin-file pin --new-key "pkcs11:token=gw;object=base" \
				--key-type rsa:2048 --subject /CN=base -l base.crt >>prep.log 2>&1 ||
				{ echo "sweep: the base enrollment on the TPM failed: $(tail -2 prep.log)" >&2; exit 1; }
			rm -f pin ca.crt
			tpm_down
			tpm_db snap >base.snap
			[ "$(wc -l <base.snap)" = 3 ] || { echo "sweep: the TPM's base token: $(cat base.snap)" >&2; exit 1; }
		) || exit 1 ;;
	esac
fi
rm -rf "$OUT/points" "$OUT/results.txt"
mkdir -p "$OUT/points"
{
	echo "# scep-agent fault sweep, $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$SRCDIR" describe --always --dirty 2>/dev/null)"
	echo "# softhsm2 $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null), openssl $(openssl version | cut -d' ' -f2), timeout ${TMO}s${LIBDIR:+, LD_LIBRARY_PATH=$LIBDIR}"
	[ -n "$TPM_FLOWS" ] &&
		echo "# tpm2-pkcs11 $(dpkg-query -W -f '${Version}' libtpm2-pkcs11-1 2>/dev/null), swtpm $(dpkg-query -W -f '${Version}' swtpm 2>/dev/null), one swtpm per point (no resource manager)${TPM_ENV:+, -E: the variables of tpm2-pkcs11, no --tpm}"
	[ -n "$SH_FLOWS" ] && echo "# base token: $(tr '\n' ' ' <prep/base.snap)"
	[ -f prep/tpm-enroll/base.snap ] && echo "# TPM token gw: $(tr '\n' ' ' <prep/tpm-enroll/base.snap)"
} >"$OUT/header.txt"
cat "$OUT/header.txt"

# --- the sweep ------------------------------------------------------------

# nrunning: how many points are still running (the CA is a job too).
# jobs must run in this shell: in a pipeline's subshell it sees no jobs,
# and the sweep would start every point at once.
nrunning() {
	_n=0
	for _p in $(jobs -rp); do
		[ "$_p" = "$CA_PID" ] || _n=$((_n + 1))
	done
	echo $_n
}

for flow in $FLOWS; do
	# the healthy run, traced: N and the name of each call
	if is_tpm "$flow"; then
		d=$(tpm_point_dir "$flow" trace)
		rc=$(cd "$d" && tpm_up "$d" 9>>"$OUT/.tpm-ports.lock" && mapfile -t cmd < <(flow_cmd "$flow") &&
			more=() && tpm_run run P11SHIM_TRACE="$d/trace"; tpm_down)
	else
		d=$(point_dir "$flow" trace)
		rc=$(cd "$d" && mapfile -t cmd < <(flow_cmd "$flow") &&
			SOFTHSM2_CONF=$d/softhsm2.conf P11SHIM_MODULE=$SOFTHSM P11SHIM_TRACE=$d/trace \
			run_cmd run $WRAP "$SCEP_AGENT" "${cmd[@]}")
	fi
	n=$(wc -l <"$d/trace")
	echo "# $flow: healthy run exit $rc, $n PKCS#11 calls: $(cut -d' ' -f2 "$d/trace" | sed 's/^C_//' | uniq -c | awk '{ printf "%s%s", $2, ($1 > 1 ? "x" $1 : ""); printf " " }')" |
		tee -a "$OUT/header.txt"
	[ "$rc" = 0 ] || { echo "sweep: $flow fails without a fault: $(first_err "$d/run")" >&2; exit 1; }
	# the points: every call with CKR_DEVICE_REMOVED always, a sample once
	list=
	all=$(seq 1 "$n")
	if [ "$XSTRIDE" != 1 ]; then
		all=$(awk -v k="$XSTRIDE" '$1 % k == 0 { print $1 } /C_(GenerateKeyPair|Sign|Decrypt|CreateObject|SetAttributeValue|DestroyObject|InitToken|InitPIN|Login) / && !seen[$2]++ { print $1 }' \
			"$d/trace" | sort -nu)
	fi
	for i in ${POINTS:-$all}; do
		list="$list $i:$FAULT"
	done
	if [ -n "$SAMPLE" ] && [ -z "$POINTS" ]; then
		sample=$(awk -v k="$STRIDE" '$1 % k == 0 { print $1 } /C_(GenerateKeyPair|Sign|Decrypt|CreateObject|SetAttributeValue|DestroyObject|InitToken|InitPIN) / && !seen[$2]++ { print $1 }' \
			"$d/trace" | sort -nu)
		for i in $sample; do
			for rv in $RVS_SAMPLE; do
				list="$list $i:$rv:once"
			done
		done
	fi
	for p in $list; do
		IFS=: read -r i rv mode <<<"$p"
		while [ "$(nrunning)" -ge "$JOBS" ]; do
			wait -n
		done
		point "$flow" "$i" "$rv" "$mode" &
	done
	for p in $(jobs -rp); do
		[ "$p" = "$CA_PID" ] || wait "$p"
	done
done
ca_stop
fi

# --- results and summary ----------------------------------------------------

# norm: messages without what differs from run to run (URL, transaction)
norm() {
	sed -E -e 's|http://127\.0\.0\.1:[0-9]+/scep|URL|g' -e 's/[0-9A-F]{64}/TID/g' \
		-e 's/[0-9a-f]{40}/ID/g' -e 's/serial=[0-9a-f]+/serial=S/g'
}
for flow in $FLOWS; do
	for d in "$OUT"/points/"$flow"-*/; do
		[ -f "$d/result" ] && result_line "$d"
	done | sort -k2,2n -k3,3 -k4,4
done >"$OUT/results.txt"
R=$OUT/results.txt
{
	echo "points: $(wc -l <"$R")"
	for flow in $FLOWS; do
		f=$(grep -c "^$flow " "$R")
		[ "$f" = 0 ] && continue
		printf '%-9s points %3d: exit 0 %3d, hang %3d, crash %3d, old objects touched %3d, retry stuck %3d, final state bad %3d\n' \
			"$flow" "$f" "$(grep "^$flow " "$R" | grep -c ' rc=0 ')" \
			"$(grep "^$flow " "$R" | grep -c ' rc=hang')" \
			"$(grep "^$flow " "$R" | grep ' rc=sig' | grep -vc ' rc=sig9 ')" \
			"$(grep "^$flow " "$R" | grep -c ' intact=no ')" \
			"$(grep "^$flow " "$R" | grep -c ' retry=stuck')" \
			"$(grep "^$flow " "$R" | grep -c ' final=BAD')"
	done
	if grep -q '^tpm-init ' "$R"; then
		echo "tpm-init, what the failed runs left: $(grep '^tpm-init ' "$R" | grep -v ' rc=0 ' |
			awk '{ for (k = 1; k <= NF; k++) if ($k ~ /^intact=/) print substr($k, 8) }' |
			sort | uniq -c | awk '{ printf "%s%s %d", (n++ ? ", " : ""), $2, $1 }'); finished only with -R: $(grep -c '^tpm-init .* retry=ok-R ' "$R")"
	fi
	if grep -q '^tpm-' "$R"; then
		echo "TPM, handles (transient+sessions) left loaded by the failed run: $(grep '^tpm-' "$R" |
			awk '{ for (k = 1; k <= NF; k++) if ($k ~ /^leaked=/) print substr($k, 8) }' |
			sort | uniq -c | awk '{ printf "%s%s %d", (n++ ? ", " : ""), $2, $1 }')"
	fi
	echo "exit codes of the failed runs:"
	awk '{ for (k = 1; k <= NF; k++) if ($k ~ /^rc=/) print $k }' "$R" | sort | uniq -c | sort -rn
	echo "hangs by failed call:"
	grep ' rc=hang' "$R" | awk '{ print $1, $5 }' | sort | uniq -c
	echo "crashes by failed call:"
	grep ' rc=sig' "$R" | awk '{ print $1, $5 }' | sort | uniq -c
	echo "stuck retries by message:"
	grep ' retry=stuck' "$R" | sed 's/.*|| retry: //' | norm | sort | uniq -c | sort -rn
} | tee "$OUT/summary.txt"
