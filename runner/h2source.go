package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// roundTripH2 sends the stream request on the lease's HTTP/2 connection and waits for
// the response head. A stream the server did not process (REFUSED_STREAM, GOAWAY) is
// sent again on the pool's next connection, as browsers do, a few times at most.
func (es *EventSource) roundTripH2(ctx context.Context, l *lease, u *url.URL, sr streamRequest) (*exchange, error) {
	x := &exchange{ttHeaders: -1}
	h := make(http.Header, len(es.cfg.Header)+6)
	for k, vs := range es.cfg.Header {
		h[k] = vs
	}
	h.Set("User-Agent", es.b.cfg.UserAgent)
	h.Set("Accept", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Accept-Encoding", es.cfg.AcceptEncoding)
	if id := es.LastEventID(); id != "" {
		h.Set("Last-Event-ID", id)
	}
	r := &h2Request{method: sr.method, authority: u.Host, path: u.RequestURI(), header: h, body: []byte(sr.body)}
	for try := 0; ; try++ {
		start := time.Now()
		s, wrote, err := l.h2.open(ctx, r)
		if err == nil {
			// The headers are written once the connection has a stream slot: the time
			// before is the wait under the server's SETTINGS_MAX_CONCURRENT_STREAMS.
			x.slotWait += wrote.Sub(start)
			var head *h2Head
			head, err = s.awaitHead(ctx, es.cfg.HeaderTimeout)
			if err == nil {
				x.ttHeaders = time.Since(wrote)
				x.status, x.proto = head.status, "HTTP/2.0"
				x.contentType, x.location = head.header.Get("Content-Type"), head.header.Get("Location")
				x.encoding = head.header.Get("Content-Encoding")
				x.body = &flowReader{es: es, ctx: ctx, r: h2Body{s: s, ctx: ctx}}
				x.h2s, x.cleanup = s, s.close
				return x, nil
			}
			s.close()
		} else {
			x.slotWait += time.Since(start)
		}
		if !errors.Is(err, errH2Unprocessed) || try+1 >= h2MaxRetries || ctx.Err() != nil {
			if errors.Is(err, errHeadTooLarge) {
				return x, err
			}
			return x, classify(ErrRead, err)
		}
		next, err := l.pool.acquire(ctx, es.cfg.RecvBuffer)
		if err != nil {
			return x, err
		}
		if next.h2 == nil {
			// The origin answered the new handshake without h2: the attempt ends and
			// the next one goes over HTTP/1.1.
			next.release()
			return x, classify(ErrProtocol, errors.New("http2 retry: the origin no longer offers h2"))
		}
		l.h2 = next.h2
	}
}

// h2Body reads a stream's response body until ctx ends.
type h2Body struct {
	s   *h2Stream
	ctx context.Context
}

func (b h2Body) Read(p []byte) (int, error) { return b.s.read(b.ctx, p) }

// h2RespBody is the body of an ordinary request's response: closing it ends the stream.
type h2RespBody struct{ h2Body }

func (b h2RespBody) Close() error { b.s.close(); return nil }

// maxH2RequestBody bounds the body of an ordinary request sent over HTTP/2: it is
// read whole before the stream opens.
const maxH2RequestBody = 1 << 20

// roundTrip sends an ordinary request on the connection; waited is the time spent
// waiting for a stream slot under the server's limit.
func (c *h2Conn) roundTrip(req *http.Request) (resp *http.Response, waited time.Duration, err error) {
	ctx := req.Context()
	r := &h2Request{method: req.Method, authority: req.Host, path: req.URL.RequestURI(), header: req.Header}
	if r.authority == "" {
		r.authority = req.URL.Host
	}
	if r.method == "" {
		r.method = http.MethodGet
	}
	if req.Body != nil {
		body, err := io.ReadAll(io.LimitReader(req.Body, maxH2RequestBody+1))
		req.Body.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("request body: %w", err)
		}
		if len(body) > maxH2RequestBody {
			return nil, 0, fmt.Errorf("request body over %d KiB", maxH2RequestBody>>10)
		}
		r.body = body
	}
	start := time.Now()
	s, wrote, err := c.open(ctx, r)
	if err != nil {
		return nil, time.Since(start), err
	}
	waited = wrote.Sub(start)
	head, err := s.awaitHead(ctx, 0)
	if err != nil {
		s.close()
		return nil, waited, err
	}
	cl := int64(-1)
	if v := head.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			cl = n
		}
	}
	state := c.tc.ConnectionState()
	return &http.Response{
		Status:     strconv.Itoa(head.status) + " " + http.StatusText(head.status),
		StatusCode: head.status, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: head.header, Body: h2RespBody{h2Body{s: s, ctx: ctx}}, ContentLength: cl,
		Request: req, TLS: &state,
	}, waited, nil
}
