#!/usr/bin/env bash
# fuzz.sh TARGET PKG FUZZTIME: run one fuzz target from the committed seeds.
#
# Go's fuzzing coordinator sometimes loses a worker on these 2-core
# machines ("fuzzing process hung or terminated unexpectedly", golang/go
# #52569 and kin) and writes the input that worker had, which then passes
# when replayed. Such a run is retried, after the written input has
# been replayed (a real crasher fails the replay, and the run) and removed;
# five attempts in all (two flakes in a row were seen on one target).
# Any other failure fails at once.
set -uo pipefail
target=$1 pkg=$2 fuzztime=$3
go=${GO:-go}
for attempt in 1 2 3 4 5; do
	$go clean -fuzzcache
	log=$(mktemp)
	$go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 0 "$pkg" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		rm -f "$log"
		exit 0
	fi
	input=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | head -1)
	hung=$(grep -c 'fuzzing process hung or terminated unexpectedly' "$log")
	rm -f "$log"
	if [ "$attempt" -eq 5 ] || [ "$hung" -eq 0 ] || [ -z "$input" ]; then
		exit "$rc"
	fi
	name=$(basename "$input")
	echo "fuzz.sh: the coordinator lost a worker; replaying ${target}/${name}"
	$go test -count=1 -run "^${target}\$/^${name}\$" "$pkg" || exit 1
	rm -f "${pkg%/}/${input}"
	echo "fuzz.sh: the input passes when replayed; retrying ${target}"
done
