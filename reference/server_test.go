package reference_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// listening runs ListenAndServe on a real loopback listener (the production path, with
// TCP_USER_TIMEOUT) and returns its URL and a stop function reporting how long the
// shutdown took.
func listening(t *testing.T, cfg reference.Config) (string, func() (time.Duration, error)) {
	t.Helper()
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urlCh := make(chan string, 1)
	errCh := make(chan error, 1)
	go func() { errCh <- srv.ListenAndServe(ctx, func(u string) { urlCh <- u }) }()
	var url string
	select {
	case url = <-urlCh:
	case err := <-errCh:
		cancel()
		t.Fatalf("ListenAndServe: %v", err)
	}
	stopped := false
	var took time.Duration
	var serr error
	stop := func() (time.Duration, error) {
		if stopped {
			return took, serr
		}
		stopped = true
		t0 := time.Now()
		cancel()
		select {
		case serr = <-errCh:
		case <-time.After(10 * time.Second):
			serr = fmt.Errorf("ListenAndServe did not return 10s after cancel")
		}
		took = time.Since(t0)
		return took, serr
	}
	t.Cleanup(func() { _, _ = stop() })
	return url, stop
}

func TestListenAndServePrintsTheRealURL(t *testing.T) {
	t.Parallel()
	url, _ := listening(t, testConfig())
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("url %q, want http://127.0.0.1:<port>", url)
	}
	open(t, url+"/sessions/u/events", nil).awaitEvents(wait, "tick", 1)
}

func TestShutdownEndsEveryStreamWithAFinalComment(t *testing.T) {
	t.Parallel()
	url, stop := listening(t, testConfig())
	var cs []*client
	for i := range 50 {
		cs = append(cs, open(t, fmt.Sprintf("%s/sessions/down-%d/events", url, i), nil))
	}
	awaitMetrics(t, url, wait, "50 streams open", func(m map[string]float64) bool { return m["sseref_senders_active"] == 50 })
	took, err := stop()
	if err != nil {
		t.Fatalf("ListenAndServe: %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("shutdown took %v, want under 5s", took)
	}
	for i, c := range cs {
		fs := c.awaitEOF(wait)
		last := fs[len(fs)-1]
		if len(last.Comments) != 1 || last.Comments[0] != "shutdown" || last.Event != "" {
			t.Fatalf("stream %d: last frame %+v, want the comment ': shutdown'", i, last)
		}
	}
	if _, err := testHTTP.Get(url + "/healthz"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

func TestTLSServesHTTP2(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLS = true
	url, _ := listening(t, cfg)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("url %q, want https", url)
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the server's certificate is self-signed
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(hc.CloseIdleConnections)
	c := openWith(t, hc, url+"/sessions/h2/events", nil)
	if c.resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", c.resp.Proto)
	}
	c.awaitEvents(wait, "tick", 2)
	// Many streams share the one connection: more than a browser's 6 per host.
	for i := range 8 {
		openWith(t, hc, fmt.Sprintf("%s/sessions/h2-%d/events", url, i), nil).awaitEvents(wait, "connected", 1)
	}
}

func TestTLSWithCertAndKeyFiles(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := testConfig()
	cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cfg.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _ := listening(t, cfg)
	// The client trusts exactly this certificate: the server really serves the files.
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(hc.CloseIdleConnections)
	c := openWith(t, hc, url+"/sessions/files/events", nil)
	if c.resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", c.resp.Proto)
	}
	c.awaitEvents(wait, "connected", 1)

	bad := testConfig()
	bad.CertFile, bad.KeyFile = filepath.Join(dir, "missing.pem"), cfg.KeyFile
	if _, err := reference.New(bad); err == nil {
		t.Fatal("New accepted a missing certificate file")
	}
}

func TestTopicFanOutWithIDsAndReplay(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.Replay = 3 })
	a := open(t, base+"/topics/news/events", nil)
	b := open(t, base+"/topics/news/events", nil)
	a.awaitEvents(wait, "connected", 1)
	b.awaitEvents(wait, "connected", 1)
	for i := 1; i <= 5; i++ {
		if code, body := post(t, base+"/topics/news", fmt.Sprintf("payload %d", i), nil); code != http.StatusOK {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	for _, c := range []*client{a, b} {
		fs := events(c.awaitEvents(wait, "message", 5), "message")
		for i, f := range fs {
			d := f.data(t)
			if f.ID != fmt.Sprint(i+1) || d.Seq != uint64(i+1) || d.Payload == nil || *d.Payload != fmt.Sprintf("payload %d", i+1) ||
				d.Topic != "news" || d.SentUnixNs == 0 || d.Sender == "" {
				t.Fatalf("message %d = id %s %+v", i, f.ID, d)
			}
		}
	}
	// Resume within the retained window: exactly the missed ones, then live.
	r := open(t, base+"/topics/news/events", map[string]string{"Last-Event-ID": "2"})
	r.awaitEvents(wait, "message", 3)
	post(t, base+"/topics/news", "payload 6", nil)
	fs := events(r.awaitEvents(wait, "message", 4), "message")
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	if strings.Join(ids, ",") != "3,4,5,6" {
		t.Fatalf("resumed ids %v, want 3,4,5,6", ids)
	}
	if !fs[0].data(t).Replayed && scrape(t, base)["sseref_events_replayed_total"] < 3 {
		t.Fatalf("replayed events not counted")
	}
	// Too old: a lost comment, then live only.
	old := open(t, base+"/topics/news/events", map[string]string{"Last-Event-ID": "1"})
	old.awaitEvents(wait, "connected", 1)
	post(t, base+"/topics/news", "payload 7", nil)
	fs = old.awaitEvents(wait, "message", 1)
	lost := false
	for _, f := range fs {
		lost = lost || len(f.Comments) > 0 && strings.Contains(f.Comments[0], "lost")
	}
	if m := events(fs, "message"); !lost || len(m) != 1 || m[0].ID != "7" {
		t.Fatalf("expired resume: %s", summary(fs))
	}
}

// dialNotReading opens a session stream on a socket with a tiny receive buffer, reads
// until the connected event, and then never reads again: a client that vanished
// without closing.
func dialNotReading(t *testing.T, base, id string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /sessions/%s/events HTTP/1.1\r\nHost: test\r\n\r\n", id)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "event: connected") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the stream start: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	return conn
}

// fillBuffers posts large progress events so that a non-reading client's socket
// buffers fill up.
func fillBuffers(t *testing.T, base, id string) {
	t.Helper()
	msg := strings.Repeat("z", 60<<10)
	for i := range 8 {
		progress(t, base, id, i+1, msg)
	}
}

func TestHalfOpenClientIsReapedWithinHeartbeatPlusWriteTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Tick = 0
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.WriteTimeout = 500 * time.Millisecond
	url, _ := listening(t, cfg)
	dialNotReading(t, url, "half")
	fillBuffers(t, url, "half")
	t0 := time.Now()
	bound := cfg.Heartbeat + cfg.WriteTimeout + 1500*time.Millisecond // margin for a busy machine
	awaitMetrics(t, url, bound, "the half-open stream reaped as write_error", func(m map[string]float64) bool {
		return m[closed("write_error")] == 1 && m["sseref_streams_open"] == 0 && m["sseref_senders_active"] == 0
	})
	t.Logf("reaped %v after the buffers were filled", time.Since(t0).Round(time.Millisecond))
}

func TestBlockedWriteEndsAfterWriteTimeout(t *testing.T) {
	t.Parallel()
	// httptest's listener sets no TCP user timeout: only the per-write deadline can end
	// this stream, once the server's send buffer is full and a write blocks.
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.Tick = 0
		cfg.WriteTimeout = 300 * time.Millisecond
	})
	dialNotReading(t, base, "blocked")
	msg := strings.Repeat("w", 60<<10)
	reaped := func() bool { return scrape(t, base)[closed("write_error")] == 1 }
	for i := 0; !reaped(); i++ {
		if i == 300 { // 18 MB, far beyond loopback socket buffers
			t.Log(sseref(scrape(t, base)))
			t.Fatal("300 large events written to a client that does not read, and the stream still open")
		}
		code, _ := post(t, base+"/sessions/blocked/progress", `{"progress":1,"message":"`+msg+`"}`, nil)
		if code != http.StatusOK {
			t.Fatalf("progress: %d", code)
		}
	}
	awaitMetrics(t, base, wait, "sender stopped", func(m map[string]float64) bool {
		return m["sseref_senders_active"] == 0 && m["sseref_streams_open"] == 0
	})
}
