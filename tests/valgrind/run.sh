#!/usr/bin/env bash
# run.sh - `make valgrind`: small real pexec jobs under valgrind memcheck, the
# parent and every forked worker checked for memory errors and for definite or
# indirect leaks.
#
# Usage: tests/valgrind/run.sh BUILD_DIR OUT_DIR
#
# valgrind follows fork() by itself and, with %p in --log-file, gives each
# process its own log, so OUT_DIR/CASE/PID.log holds one process each.  The
# exit status (--error-exitcode) only speaks for the parent: a worker's is
# seen, if at all, by pexec.  So every log is read: it must end with
# "ERROR SUMMARY: 0 errors" (which counts definite and indirect leaks, see
# --errors-for-leak-kinds) and a leak summary with nothing definitely or
# indirectly lost.
#
# The crash case is apart: the worker that takes the segfault on purpose ends
# under valgrind's "Process terminating with default action of signal 11"
# (with the invalid write as an error, and what it held as leaks).  Its log
# is set aside, and only the parent and the workers that ended normally are
# held to the rule; at least one such crashed log must exist, or the case
# did not test what it says.  A process that leaves no summary at all (killed
# by SIGKILL, e.g. by pexec at the end of its shutdown grace) fails the run.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR OUT_DIR}
out=${2:?usage: run.sh BUILD_DIR OUT_DIR}
pexec=$build/pexec
faults=$build/tests/plugins/faults.so

if ! command -v valgrind >/dev/null; then
	echo "valgrind: not installed (apt-get install valgrind)" >&2
	exit 1
fi

failed=0
fail() {
	echo "valgrind: FAIL: $*" >&2
	failed=1
}

# run_case NAME WANT_STATUS CRASH_SIGNAL EXPECTED_OUTPUT PEXEC_ARGS...
# CRASH_SIGNAL: "" when no worker may crash, else the signal number of the
# crash fixture.
run_case() {
	local name=$1 want=$2 crash_sig=$3 expected=$4
	shift 4
	local dir=$out/$name status clean=0 crashed=0 log
	rm -rf "$dir"
	mkdir -p "$dir"
	valgrind --tool=memcheck --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--trace-children=yes --child-silent-after-fork=no \
		--log-file="$dir/%p.log" \
		"$pexec" "$@" >"$dir/stdout" 2>"$dir/stderr"
	status=$?
	if [ "$status" != "$want" ]; then
		fail "$name: pexec exited $status, expected $want (99: valgrind found errors in the parent); see $dir"
	fi
	if ! cmp -s "$dir/stdout" "$expected"; then
		fail "$name: output differs from a run without valgrind ($dir/stdout vs $expected)"
	fi
	for log in "$dir"/*.log; do
		[ -e "$log" ] || { fail "$name: no valgrind log in $dir"; break; }
		if [ -n "$crash_sig" ] &&
		   grep -q "Process terminating with default action of signal $crash_sig " "$log"; then
			crashed=$((crashed + 1))
			continue
		fi
		if ! grep -q "ERROR SUMMARY: " "$log"; then
			fail "$name: $log has no summary (the process was killed before it could end)"
			continue
		fi
		if ! grep -q "ERROR SUMMARY: 0 errors" "$log" ||
		   { ! grep -q "All heap blocks were freed -- no leaks are possible" "$log" &&
		     ! { grep -q "definitely lost: 0 bytes in 0 blocks" "$log" &&
		         grep -q "indirectly lost: 0 bytes in 0 blocks" "$log"; }; }; then
			fail "$name: $log: $(grep -E 'ERROR SUMMARY|(definitely|indirectly) lost:' "$log" |
				sed 's/^==[0-9]*== *//; s/ from .*//' | tr -s ' ' | paste -sd ';')"
			continue
		fi
		clean=$((clean + 1))
	done
	if [ -n "$crash_sig" ] && [ "$crashed" -eq 0 ]; then
		fail "$name: no worker was seen to crash with signal $crash_sig"
	fi
	# The parent and at least one worker.
	if [ "$clean" -lt 2 ]; then
		fail "$name: only $clean process(es) ended with a clean summary"
	fi
	echo "valgrind: $name: exit $status, $clean process(es) clean${crash_sig:+, $crashed crashed on purpose (not checked)}"
}

mkdir -p "$out"

# 1. The demo job, as a user runs it.
"$pexec" --plugin factorial -j2 examples/factorial/inputs.json >"$out/factorial.want"
run_case factorial 0 "" "$out/factorial.want" \
	--plugin factorial -j2 examples/factorial/inputs.json

# 2. Items that fail by an error return, at each stage that frees a value.
printf '[1, {"fault":"error","stage":"deserialize"}, 2, {"fault":"error","stage":"map"}, 3, {"fault":"error","stage":"serialize"}, 4]\n' \
	>"$out/failing.json"
printf '[\n2,\nnull,\n4,\nnull,\n6,\nnull,\n8\n]\n' >"$out/failing.want"
run_case failing 1 "" "$out/failing.want" \
	--plugin "$faults" -j2 --chunksize 1 -q "$out/failing.json"

# 3. A worker that segfaults early: it is replaced, the other items are kept.
printf '[1, {"fault":"segv","stage":"map"}, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n' \
	>"$out/crash.json"
printf '[\n2,\nnull,\n4,\n6,\n8,\n10,\n12,\n14,\n16,\n18,\n20,\n22,\n24,\n26,\n28,\n30,\n32\n]\n' \
	>"$out/crash.want"
run_case crash 1 11 "$out/crash.want" \
	--plugin "$faults" -j2 --chunksize 1 -q "$out/crash.json"

if [ "$failed" -ne 0 ]; then
	echo "valgrind: FAILED (logs under $out)" >&2
	exit 1
fi
echo "valgrind: OK (logs under $out)"
