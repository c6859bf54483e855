#!/bin/sh
# meson test --wrapper for `tests/run.sh valgrind`: C test programs run
# under valgrind; shell tests run as they are, with SCEP_AGENT_WRAP set so
# that every scep-agent they start runs under valgrind.
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$(cd "$(dirname "$0")" && pwd)/valgrind.supp"
case $1 in
*/bash | */sh | bash | sh)
	SCEP_AGENT_WRAP=$vg
	export SCEP_AGENT_WRAP
	exec "$@" ;;
*)
	exec $vg "$@" ;;
esac
