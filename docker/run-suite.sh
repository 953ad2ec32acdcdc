#!/bin/sh
# The compose runner: the scenario suite directly against the reference server, then through
# the stock-buffering nginx, then through the streaming nginx. One after the other, since
# concurrent runs would disturb each other's server figures (goroutines, memory). One result
# file per target in $RESULTS. Exit status: the worst of the three runs (0 pass, 1 a check
# failed, 2 usage error, 3 target unreachable or harness error).
#
# Environment: DIRECT_URL, NGINX_BUFFERED_URL, NGINX_UNBUFFERED_URL (targets), METRICS_URL
# (the reference server's /metrics, probed directly even when the streams go through nginx),
# RESULTS (output directory), SSEHARNESS_RUN_ARGS (extra arguments for every run, e.g.
# scenario names; split on spaces).
set -u

worst=0
suite() {
	name=$1
	target=$2
	echo "== $name: sseharness run --target $target"
	# shellcheck disable=SC2086 # SSEHARNESS_RUN_ARGS is split on purpose
	sseharness run --target "$target" --metrics-url "$METRICS_URL" --out "$RESULTS/$name.json" ${SSEHARNESS_RUN_ARGS:-}
	rc=$?
	echo "== $name: exit $rc, result in $RESULTS/$name.json"
	if [ "$rc" -gt "$worst" ]; then
		worst=$rc
	fi
}

suite direct "$DIRECT_URL"
suite nginx-buffered "$NGINX_BUFFERED_URL"
suite nginx-unbuffered "$NGINX_UNBUFFERED_URL"
exit "$worst"
