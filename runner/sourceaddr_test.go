package runner

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func addrList(t *testing.T, ss ...string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseSourceAddrs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []netip.Addr
	}{
		{"127.0.0.2", addrList(t, "127.0.0.2")},
		{"127.0.0.2-127.0.0.4", addrList(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")},
		{" 127.0.0.9 , 127.0.0.3-127.0.0.3 ", addrList(t, "127.0.0.9", "127.0.0.3")},
		{"127.0.0.254-127.0.1.1", addrList(t, "127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1")},
		{"::1", addrList(t, "::1")},
		{"[::1]", addrList(t, "::1")},
		{"fd00::1-fd00::3", addrList(t, "fd00::1", "fd00::2", "fd00::3")},
		{"::ffff:127.0.0.2", addrList(t, "127.0.0.2")},
	} {
		got, err := ParseSourceAddrs(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
				break
			}
		}
	}
}

func TestParseSourceAddrsRefusesBadInputInOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // every one must be in the error
	}{
		{"", []string{"empty list"}},
		{"127.0.0.2,,127.0.0.3", []string{"empty item"}},
		{"localhost", []string{`"localhost" is not an IP address`}},
		{"127.0.0.4-127.0.0.2", []string{"ends before it starts"}},
		{"127.0.0.2-::1", []string{"mixes IPv4 and IPv6"}},
		{"127.0.0.2,::1", []string{"mixes IPv4 and IPv6"}},
		{"0.0.0.0", []string{"unspecified"}},
		{"224.0.0.1", []string{"multicast"}},
		{"255.255.255.255", []string{"broadcast"}},
		{"fe80::1%lo", []string{"zoned"}},
		{"127.0.0.2-127.0.0.3,127.0.0.3", []string{"127.0.0.3 is listed twice"}},
		{"10.0.0.0-10.255.255.255", []string{"more than 65536 addresses"}},
		// Every problem at once.
		{"127.0.0.300,127.0.0.9-127.0.0.1,nope", []string{`"127.0.0.300" is not an IP address`, "ends before it starts", `"nope" is not an IP address`}},
	} {
		got, err := ParseSourceAddrs(tc.in)
		if err == nil {
			t.Errorf("%q: accepted as %v", tc.in, got)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "source addresses: ") {
			t.Errorf("%q: error not one prefixed line: %q", tc.in, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q lacks %q", tc.in, msg, w)
			}
		}
	}
}

func TestSourceAddrsNextIsRoundRobin(t *testing.T) {
	s, err := NewSourceAddrs(addrList(t, "127.0.0.2", "127.0.0.3", "127.0.0.4"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 7 {
		got = append(got, s.Next().String())
	}
	want := "127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.2"
	if strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
	if _, err := NewSourceAddrs(nil); err == nil {
		t.Error("an empty list was accepted")
	}
	if _, err := NewSourceAddrs(addrList(t, "127.0.0.2", "::1")); err == nil {
		t.Error("a mixed list was accepted")
	}
	if err := s.CheckTarget("::1"); err == nil {
		t.Error("IPv4 sources accepted an IPv6 target")
	}
	for _, h := range []string{"127.0.0.1", "localhost", "example.test"} {
		if err := s.CheckTarget(h); err != nil {
			t.Errorf("target %s: %v", h, err)
		}
	}
}

// remoteHosts is a server-side tally of the remote addresses of accepted connections.
type remoteHosts struct {
	mu    sync.Mutex
	hosts map[string]int
	ports map[string]bool
}

func (r *remoteHosts) connState(c net.Conn, st http.ConnState) {
	if st != http.StateNew {
		return
	}
	ap := netip.MustParseAddrPort(c.RemoteAddr().String())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hosts == nil {
		r.hosts, r.ports = make(map[string]int), make(map[string]bool)
	}
	r.hosts[ap.Addr().String()]++
	r.ports[ap.String()] = true
}

func (r *remoteHosts) snapshot() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(map[string]int, len(r.hosts))
	total := 0
	for h, n := range r.hosts {
		c[h] = n
		total += n
	}
	return c, total
}

// spreadServer is an SSE server on ln that sends one event per stream and holds it.
func spreadServer(t *testing.T, ln net.Listener, tlsH2 bool) (*httptest.Server, *remoteHosts) {
	t.Helper()
	seen := &remoteHosts{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		writeEvent(w, "data: x\n\n")
		<-r.Context().Done()
	}))
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Config.ConnState = seen.connState
	serve(t, srv, tlsH2)
	return srv, seen
}

func TestSourceAddrsSpreadConnectionsRoundRobinSeenByServer(t *testing.T) {
	srv, seen := spreadServer(t, nil, false)
	if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
		t.Fatalf("server on %s, want 127.0.0.1", srv.Listener.Addr())
	}
	addrs, err := ParseSourceAddrs("127.0.0.2-127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSourceAddrs(addrs)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	// Three browsers share the addresses, as the browsers of a run do; some streams set
	// a receive buffer, so both socket options are applied on one socket.
	var browsers []*Browser
	for i := range 3 {
		browsers = append(browsers, NewBrowser(BrowserConfig{ID: i, SourceAddrs: src}))
	}
	const streams = 12
	for i := range streams {
		cfg := SourceConfig{URL: srv.URL + "/events", Stream: i}
		if i%2 == 1 {
			cfg.RecvBuffer = 8192
		}
		startSource(t, browsers[i%3], cfg, rec.ch)
	}
	rec.waitKind(t, RecordEvent, streams)
	hosts, total := seen.snapshot()
	if total != streams {
		t.Fatalf("server accepted %d connections, want %d: %v", total, streams, hosts)
	}
	for _, a := range addrs {
		if hosts[a.String()] != streams/3 {
			t.Errorf("server saw %v, want %d connections from each of 127.0.0.2-127.0.0.4", hosts, streams/3)
			break
		}
	}
	if errs := rec.kind(RecordError); len(errs) != 0 {
		t.Errorf("errors: %+v", errs)
	}
}

func TestSourceAddrsBindHTTP2Connections(t *testing.T) {
	srv, seen := spreadServer(t, nil, true)
	src, err := NewSourceAddrs(addrList(t, "127.0.0.5", "127.0.0.6"))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	// Four browsers, two streams each: one h2 connection per browser.
	for id := range 4 {
		b := NewBrowser(BrowserConfig{ID: id, SourceAddrs: src, RootCAs: pool})
		startSource(t, b, SourceConfig{URL: srv.URL + "/events", Stream: 2 * id}, rec.ch)
		startSource(t, b, SourceConfig{URL: srv.URL + "/events", Stream: 2*id + 1}, rec.ch)
	}
	rec.waitKind(t, RecordEvent, 8)
	hosts, total := seen.snapshot()
	if total != 4 || hosts["127.0.0.5"] != 2 || hosts["127.0.0.6"] != 2 {
		t.Errorf("server saw %v, want 2 connections from each of 127.0.0.5 and 127.0.0.6", hosts)
	}
	for _, h := range rec.kind(RecordHeaders) {
		if h.Proto != "HTTP/2.0" {
			t.Fatalf("stream %d used %s, want HTTP/2.0", h.Stream, h.Proto)
		}
	}
}

func TestSourceAddrsIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	srv, seen := spreadServer(t, ln, false)
	src, err := NewSourceAddrs(addrList(t, "::1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	b := NewBrowser(BrowserConfig{SourceAddrs: src})
	for i := range 2 {
		startSource(t, b, SourceConfig{URL: srv.URL + "/events", Stream: i}, rec.ch)
	}
	rec.waitKind(t, RecordEvent, 2)
	if hosts, _ := seen.snapshot(); hosts["::1"] != 2 {
		t.Errorf("server saw %v, want 2 connections from ::1", hosts)
	}
}

func TestSourceAddrsForeignAddressIsAClearDialError(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Skip("binding to foreign addresses may be allowed here")
	}
	srv, _ := spreadServer(t, nil, false)
	// 192.0.2.1 (TEST-NET-1) is no address of this host: bind fails before any packet.
	src, err := NewSourceAddrs(addrList(t, "192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	b := NewBrowser(BrowserConfig{SourceAddrs: src})
	startSource(t, b, SourceConfig{URL: srv.URL + "/events", NoReconnect: true}, rec.ch)
	errs := rec.waitKind(t, RecordError, 1)
	if errs[0].Class != ErrDial || !strings.Contains(errs[0].Err, "source address 192.0.2.1 is not an address of this host") {
		t.Errorf("error %s: %q, want a dial error naming the foreign source address", errs[0].Class, errs[0].Err)
	}
}

func TestClassifyDialPortExhaustion(t *testing.T) {
	opErr := func(call string, errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError(call, errno)}
	}
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	for _, tc := range []struct {
		err    error
		src    net.Addr
		class  ErrorClass
		advice bool
	}{
		{opErr("connect", syscall.EADDRNOTAVAIL), nil, ErrPortsExhausted, true},
		{opErr("connect", syscall.EADDRNOTAVAIL), src, ErrPortsExhausted, true},
		{opErr("bind", syscall.EADDRINUSE), src, ErrPortsExhausted, true},
		{opErr("bind", syscall.EADDRNOTAVAIL), src, ErrDial, false},
		{opErr("connect", syscall.ECONNREFUSED), src, ErrDial, false},
		{errors.New("dns failure"), nil, ErrDial, false},
	} {
		err := classifyDial(tc.err, tc.src)
		if got := errorClass(err, ErrRead); got != tc.class {
			t.Errorf("%v: class %s, want %s", tc.err, got, tc.class)
		}
		if has := strings.Contains(err.Error(), ErrPortsExhaustedAdvice); has != tc.advice {
			t.Errorf("%v: advice in %q is %v, want %v", tc.err, err, has, tc.advice)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: the original error is lost", tc.err)
		}
	}
}

func TestParsePortBudget(t *testing.T) {
	b, err := ParsePortBudget("32768\t60999\n", "\n")
	if err != nil || b.Ports() != 28232 || b.PerAddr() != 25408 {
		t.Errorf("default range: %+v ports %d per address %d, %v", b, b.Ports(), b.PerAddr(), err)
	}
	b, err = ParsePortBudget("1000 1999", "80,1000-1009, 1500 ,1990-2100")
	if err != nil || b.Reserved != 10+1+10 || b.Ports() != 1000-21 {
		t.Errorf("reserved ports: %+v ports %d, %v", b, b.Ports(), err)
	}
	for _, bad := range [][2]string{{"", ""}, {"1 2 3", ""}, {"60999 32768", ""}, {"0 100", ""}, {"1 70000", ""}, {"x 9", ""}, {"1000 2000", "5-3"}, {"1000 2000", "a"}} {
		if _, err := ParsePortBudget(bad[0], bad[1]); err == nil {
			t.Errorf("%q %q accepted", bad[0], bad[1])
		}
	}
	// This machine's budget is what the kernel says.
	b, err = LocalPortBudget()
	if err != nil {
		t.Skipf("no port range here: %v", err)
	}
	raw, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	want, _ := ParsePortBudget(string(raw), "")
	if b.Low != want.Low || b.High != want.High || b.Ports() <= 0 {
		t.Errorf("local budget %+v, want the range %d-%d", b, want.Low, want.High)
	}
}

func TestAutoSourceAddrs(t *testing.T) {
	budget := PortBudget{Low: 32768, High: 60999} // 25,408 streams per address
	for _, tc := range []struct {
		host    string
		streams int
		want    string // addresses joined by ",", "" for none
		err     string
	}{
		{"127.0.0.1", 25408, "", ""},
		{"127.0.0.1", 25409, "127.0.0.2,127.0.0.3", ""},
		{"127.0.0.1", 100000, "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5", ""},
		{"localhost", 60000, "127.0.0.2,127.0.0.3,127.0.0.4", ""},
		{"127.0.0.3", 60000, "127.0.0.2,127.0.0.4,127.0.0.5", ""}, // skips the destination
		{"192.0.2.7", 100000, "", ""},                             // not loopback: the user's choice
		{"example.test", 100000, "", ""},
		{"::1", 25000, "", ""},
		{"[::1]", 30000, "", "IPv6 loopback has only ::1"},
		{"127.0.0.1", 1024*25408 + 1, "", "more than the 1024"},
	} {
		got, err := AutoSourceAddrs(tc.host, tc.streams, budget)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %d: error %v, want %q", tc.host, tc.streams, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %d: %v", tc.host, tc.streams, err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if strings.Join(s, ",") != tc.want {
			t.Errorf("%s %d: got %v, want %q", tc.host, tc.streams, s, tc.want)
		}
	}
	if _, err := AutoSourceAddrs("127.0.0.1", 10, PortBudget{Low: 1000, High: 1000, Reserved: 1}); err == nil {
		t.Error("an empty budget was accepted")
	}
}

// The dialer with no source addresses is the system's: no local address bound.
func TestNilSourceAddrsDialerBindsNothing(t *testing.T) {
	var s *SourceAddrs
	d := s.dialer(0)
	if d.LocalAddr != nil || d.Control != nil {
		t.Errorf("nil source addresses gave a dialer %+v", d)
	}
	if d := s.dialer(4096); d.LocalAddr != nil || d.Control == nil {
		t.Errorf("receive buffer lost: %+v", d)
	}
}
