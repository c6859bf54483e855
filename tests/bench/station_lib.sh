# station_lib.sh - sourced by the station benchmarks (station.sh,
# throughput.sh) after tests/lib/fixtures.sh: token sets, the provision
# command line, wall clock, memory sampling and the shim's timing file.
#
# tokens_new NAME N [KEYLABEL]: a SoftHSM2 token dir of its own
#     ($BENCH_TD/tok-NAME) with N
#     tokens (labels NAME-01..NAME-N (NAME-100 past 99), PIN $T_PIN), and with KEYLABEL an
#     RSA-2048 key pair made in each (pkcs11-tool, two at a time), before
#     any timing. Sets TOK_CONF (its SOFTHSM2_CONF).
# provision LOG ARGS...: scep-agent provision against the current CA with
#     the bench's common options; stdout+stderr in LOG; sets PROV_RC,
#     PROV_MS (wall, ms), PROV_CPU (user+system seconds of it and all its
#     processes: SoftHSM2's work in them included) and, with BENCH_RSS=1, RSS_MAX_KB (largest
#     process), RSS_SUM_KB (sum of each process's peak), RSS_NOW_KB (largest
#     total seen at one sample) and RSS_PROCS (processes seen).
# shim_times FILE: P11SHIM_TIMES lines (PID NAME CALLS TOTAL_US MAX_US)
#     summed over processes, one line per function: NAME CALLS TOTAL_US
#     MAX_US, the costliest first; shim_total_us FILE: all of them;
#     shim_pids FILE: how many processes wrote.
# stats V...: "median M (min A, max B)" of numbers.

BENCH_SHIM=${P11SHIM:-$(dirname "$SCEP_AGENT")/../tests/p11shim/p11shim.so}
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so

# BENCH_TOKDIR=DIR: the token sets go under DIR (e.g. /dev/shm: tmpfs)
# instead of the work dir; removed at exit all the same
BENCH_TD=$T_WORK
if [ -n "${BENCH_TOKDIR:-}" ]; then
	BENCH_TD=$(mktemp -d "$BENCH_TOKDIR/scep-agent-bench.XXXXXX") || exit 99
	trap 'rm -rf "$BENCH_TD"; t_cleanup' EXIT
fi
# where the tokens are, for the figures: the file system type
bench_tokfs() {
	findmnt -n -o FSTYPE -T "$BENCH_TD" | head -n 1
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }

tokens_new() {
	_dir=$BENCH_TD/tok-$1
	mkdir -p "$_dir/t" "$_dir/new"
	TOK_CONF=$_dir/softhsm2.conf
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$_dir/t" >"$TOK_CONF"
	# each token is made alone in a dir of its own, then moved in: SoftHSM2
	# reads every token of its dir at C_Initialize, so making them in place
	# costs N squared (100 tokens with keys: 69 s that way, on a busy machine)
	seq -f "$1-%02g" 1 "$2" | xargs -P 2 -I{} sh -c '
		d=$0/new/$1
		mkdir -p "$d/t"
		printf "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n" "$d/t" >"$d/conf"
		SOFTHSM2_CONF=$d/conf softhsm2-util --init-token --free --label "$1" \
			--pin "$T_PIN" --so-pin "$T_SOPIN" >/dev/null || exit 255
		if [ -n "$2" ]; then
			SOFTHSM2_CONF=$d/conf pkcs11-tool --module "$3" --token-label "$1" --login \
				--pin "$T_PIN" --keypairgen --key-type rsa:2048 --label "$2" --id 01 \
				>/dev/null 2>&1 || exit 255
		fi
		mv "$d"/t/* "$0/t/" && rm -rf "$d"' "$_dir" {} "${3:-}" "$SOFTHSM" ||
		{ echo "bench: making the tokens $1 failed" >&2; exit 1; }
}

# the command line every station run shares; PROVISION_ARGS adds to it
provision() {
	_log=$1
	shift
	times >"$T_WORK/.times0"
	_t0=$(ms_now)
	SOFTHSM2_CONF=$TOK_CONF P11SHIM_MODULE=$SOFTHSM "$SCEP_AGENT" provision \
		--module "$BENCH_SHIM" -u "$CA_URL" -c "$T_WORK/ca.crt" \
		--pin-file "$T_WORK/pin" ${PROVISION_ARGS:-} "$@" >"$_log" 2>&1 &
	_pid=$!
	[ "${BENCH_RSS:-0}" = 1 ] && rss_sample "$_pid"
	PROV_RC=0
	wait "$_pid" || PROV_RC=$?
	PROV_MS=$(($(ms_now) - _t0))
	times >"$T_WORK/.times1"
	PROV_CPU=$(cpu_delta "$T_WORK/.times0" "$T_WORK/.times1")
	[ "${BENCH_RSS:-0}" = 1 ] && rss_sum
	return 0
}

# rss_sample PID: every 20 ms until PID is gone, the VmHWM of PID and of
# every descendant (workers, scanners) into $T_WORK/rss.samples as
# "PID KB", and the total VmRSS of the tree per sample into rss.totals.
# Builtins only (no fork per sample), so it disturbs little what it watches.
rss_sample() {
	: >"$T_WORK/rss.samples"
	: >"$T_WORK/rss.totals"
	while kill -0 "$1" 2>/dev/null; do
		RSS_PIDS=
		rss_tree "$1"
		_tot=0
		for _p in $1 $RSS_PIDS; do
			_h=
			while read -r _k _v _; do
				case $_k in
				VmHWM:) _h=$_v ;;
				VmRSS:) _tot=$((_tot + _v)) ;;
				esac
			done 2>/dev/null <"/proc/$_p/status"
			[ -n "$_h" ] && echo "$_p $_h" >>"$T_WORK/rss.samples"
		done
		echo "$_tot" >>"$T_WORK/rss.totals"
		sleep 0.02
	done
}

# rss_tree PID: adds every descendant of PID to RSS_PIDS
rss_tree() {
	local _c _kids _t
	for _t in /proc/"$1"/task/*; do
		_kids=(); read -r -a _kids 2>/dev/null <"$_t/children" || true
		for _c in "${_kids[@]}"; do
			RSS_PIDS="$RSS_PIDS $_c"
			rss_tree "$_c"
		done
	done
}

rss_sum() {
	RSS_MAX_KB=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (p in m) if (m[p] > x) x = m[p]; print x + 0 }' "$T_WORK/rss.samples")
	RSS_SUM_KB=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (p in m) s += m[p]; print s + 0 }' "$T_WORK/rss.samples")
	RSS_PROCS=$(awk '{ print $1 }' "$T_WORK/rss.samples" | sort -u | wc -l)
	RSS_NOW_KB=$(sort -n "$T_WORK/rss.totals" | tail -n 1)
}

# cpu_delta TIMES0 TIMES1: children user+system seconds between two
# outputs of bash's `times` (its second line: the children's)
cpu_delta() {
	awk -v a="$(tail -n 1 "$1")" -v b="$(tail -n 1 "$2")" 'BEGIN {
	split(a, x, /[ ms]+/); split(b, y, /[ ms]+/)
	printf "%.2f", (y[1] * 60 + y[2]) + (y[3] * 60 + y[4]) - (x[1] * 60 + x[2]) - (x[3] * 60 + x[4]) }'
}

# report_secs REPORT: "median M s, max X s" of the report's seconds
report_secs() {
	python3 -c 'import json,sys
s = sorted(t["seconds"] for t in json.load(open(sys.argv[1])))
print("median %.2f s, max %.2f s" % (s[len(s) // 2], s[-1]))' "$1"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

shim_times() {
	awk 'NF == 5 && $2 ~ /^C_/ { c[$2] += $3; t[$2] += $4; if ($5 > m[$2]) m[$2] = $5 }
		END { for (f in c) print f, c[f], t[f], m[f] }' "$1" | sort -k3,3nr
}

shim_pids() {
	awk 'NF == 5 { print $1 }' "$1" | sort -u | wc -l
}

shim_total_us() {
	shim_times "$1" | awk '{ s += $3 } END { print s + 0 }'
}

stats() {
	printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
		printf "median %s (min %s, max %s)", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
