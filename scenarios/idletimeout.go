package scenarios

import (
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
)

// idle-timeout: quiet streams through proxies that cut a stream silent for longer than
// their idle timeout (nginx's proxy_read_timeout, a load balancer's idle timeout).
// Heartbeats shorter than the timeout keep a quiet stream alive; without them every
// quiet stream is cut and reconnects once per timeout. The built-in proxy and a real
// nginx (docker/nginx/idle-timeout.conf) both get the idle timeout of the
// longest-silence check, so `--threshold idle-timeout/longest-silence=55s` replays a
// load balancer with a 55s idle timeout.
func idleTimeout() *Scenario {
	longestSilence := &CheckSpec{Name: "longest-silence", Default: "60s", Embedded: "2s", Means: "the path's idle timeout (the built-in proxy's and nginx's proxy_read_timeout): the longest silence on the wire, heartbeats included, must stay below it by 5% at least (the path's jitter)",
		// The longest silence of any stream on any path, its end by the harness
		// included: what the path's idle timeout saw. A stream the path cuts for its
		// silence was silent for the timeout give or take the path's jitter (a few ms
		// either way here), so the bar is 5% under it: a silence that near the
		// timeout is one the path cuts, or all but.
		Rule:  &report.Rule{Metric: "silence_max", Op: "<", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceOpened}},
		Scale: 0.95}
	return &Scenario{
		Name:    "idle-timeout",
		Proves:  "quiet streams survive proxies' idle timeouts (the built-in proxy and a real nginx) without a reconnect: heartbeats come more often than the timeout",
		Catches: []string{"no-heartbeat"},
		Checks: []*CheckSpec{
			longestSilence,
			{Name: "builtin-proxy-kept-open", Default: "0", Means: "streams through the built-in proxy with the idle timeout that ended (cut or closed) while quiet, at most", Rule: keptOpen("builtin")},
			{Name: "nginx-kept-open", Default: "0", Means: "streams through nginx with proxy_read_timeout at the idle timeout that ended (cut or closed) while quiet, at most", Rule: keptOpen("nginx")},
		},
		ServerArgs: []string{"--tick", "0", "--heartbeat", "1s"},
		Load: []Phase{
			{Group: "builtin", Streams: 5, Through: &proxy.Config{Listen: "127.0.0.1:0", NoBuffering: true}, ThroughIdle: longestSilence,
				Until: UntilOpen, Describe: "quiet streams through the built-in proxy with the idle timeout"},
			{Group: "nginx", Streams: 5, Nginx: &NginxPath{Conf: "idle-timeout.conf", ReadTimeout: longestSilence},
				Until: UntilOpen, Describe: "quiet streams through nginx with proxy_read_timeout at the idle timeout"},
		},
		// Several idle timeouts, so a heartbeat that comes just too late is caught too.
		HoldOf: longestSilence, HoldTimes: 3.5,
	}
}

// keptOpen is the rule of a path's streams surviving: a stream the path ended while it
// was held (a clean end or a cut, so a reconnect follows) did not, and every stream of
// the path must have opened as well.
func keptOpen(group string) *report.Rule {
	return &report.Rule{Metric: "close.eof", Group: group, Plus: []report.Term{{Metric: "close.network-error", Group: group}},
		Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceOpened},
		And: []report.Rule{{Metric: "unopened_streams", Group: group, Op: "<=", Limit: 0}, {Metric: "reconnects", Group: group, Op: "<=", Limit: AtThreshold}}}
}
