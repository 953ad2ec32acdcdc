package scenarios

// h2-stream-cap: a page (or many tabs of one browser) opens more streams than one
// HTTP/2 connection may carry at once. Servers, proxies and CDNs often allow about 100
// concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS); a browser queues the streams
// beyond that on the same connection, without an error and without a second
// connection, so they just never open: the six-connection limit of HTTP/1.1 again, at
// a higher count.
func h2StreamCap() *Scenario {
	// Every stream must have opened within the limit: a stream still waiting for a
	// stream slot never opened, and the slowest head must be within the limit too.
	streamsOpen := streamsOpenCheck("every stream a browser opens over one HTTP/2 connection is open (status 200, text/event-stream) within")
	return &Scenario{
		Name:       "h2-stream-cap",
		Proves:     "a browser can open 120 streams to the origin over HTTP/2 without any waiting for a free stream slot (SETTINGS_MAX_CONCURRENT_STREAMS above the page's streams)",
		Catches:    []string{"serve --h2-max-streams 100 (run --server-arg=--h2-max-streams=100)"},
		Checks:     []*CheckSpec{streamsOpen},
		ServerArgs: []string{"--tls"},
		Load: []Phase{{Streams: 2 * h2CapPerBrowser, PerBrowser: h2CapPerBrowser, NoReconnect: true, Until: UntilOpen, Within: streamsOpen,
			Describe: "browsers opening streams to one origin over one HTTP/2 connection",
			Missed:   "the origin allows fewer concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) than a browser opens; raise it above the streams a page opens, or share one stream per page"}},
	}
}

// h2CapPerBrowser is how many streams each browser opens: 120, measured with Chromium
// against an origin advertising 100 (100 open, 20 waiting, no second connection).
const h2CapPerBrowser = 120
