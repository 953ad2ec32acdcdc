package runner

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// MaxSourceAddrs bounds a source-address list, so that a typo in a range
// (127.0.0.2-127.255.0.1) is refused instead of allocating millions of addresses.
const MaxSourceAddrs = 65536

// ParseSourceAddrs parses a list of local source addresses: comma-separated
// addresses and inclusive ranges "first-last" of one family, e.g.
// "127.0.0.2-127.0.0.40", "127.0.0.2,127.0.0.3" or "::1". Every problem is reported
// at once, in one line. The addresses keep the order given; duplicates, unspecified,
// multicast and zoned addresses, and a list mixing IPv4 and IPv6 are refused.
func ParseSourceAddrs(s string) ([]netip.Addr, error) {
	var (
		addrs []netip.Addr
		probs []string
		seen  = make(map[netip.Addr]bool)
	)
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("source addresses: empty list")
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			probs = append(probs, "empty item")
			continue
		}
		first, last, isRange := strings.Cut(item, "-")
		lo, err := parseSourceAddr(first)
		if err != nil {
			probs = append(probs, err.Error())
			continue
		}
		hi := lo
		if isRange {
			if hi, err = parseSourceAddr(last); err != nil {
				probs = append(probs, err.Error())
				continue
			}
			if lo.Is4() != hi.Is4() {
				probs = append(probs, fmt.Sprintf("range %q mixes IPv4 and IPv6", item))
				continue
			}
			if hi.Less(lo) {
				probs = append(probs, fmt.Sprintf("range %q ends before it starts", item))
				continue
			}
		}
		for a := lo; ; a = a.Next() {
			if len(addrs) >= MaxSourceAddrs {
				probs = append(probs, fmt.Sprintf("more than %d addresses", MaxSourceAddrs))
				return nil, sourceAddrsError(probs)
			}
			if seen[a] {
				probs = append(probs, fmt.Sprintf("%s is listed twice", a))
			} else {
				seen[a] = true
				addrs = append(addrs, a)
			}
			if a == hi {
				break
			}
		}
	}
	if len(addrs) > 0 {
		v4 := addrs[0].Is4()
		for _, a := range addrs[1:] {
			if a.Is4() != v4 {
				probs = append(probs, "the list mixes IPv4 and IPv6 addresses")
				break
			}
		}
	}
	if len(probs) > 0 {
		return nil, sourceAddrsError(probs)
	}
	return addrs, nil
}

func sourceAddrsError(probs []string) error {
	return fmt.Errorf("source addresses: %s", strings.Join(probs, "; "))
}

// parseSourceAddr parses one address; an IPv4-mapped IPv6 address counts as IPv4.
func parseSourceAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s: zoned addresses are not supported", a)
	case a.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("%s is the unspecified address", a)
	case a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%s is a multicast address", a)
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("%s is the broadcast address", a)
	}
	return a, nil
}

// SourceAddrs hands out local source addresses round-robin, one per connection. The
// browser's dialer binds each new connection to the next address; with
// IP_BIND_ADDRESS_NO_PORT (Linux) the kernel picks the local port when connecting,
// per destination, so every (source, destination) pair has the whole ephemeral port
// range. One SourceAddrs is shared by all browsers of a run so that the spread is
// even across them. Next is safe for concurrent use.
type SourceAddrs struct {
	addrs []netip.Addr
	next  atomic.Uint64
}

// NewSourceAddrs returns a round-robin over addrs (as ParseSourceAddrs returns them).
func NewSourceAddrs(addrs []netip.Addr) (*SourceAddrs, error) {
	if len(addrs) == 0 {
		return nil, errors.New("source addresses: empty list")
	}
	v4 := addrs[0].Is4()
	for _, a := range addrs {
		if !a.IsValid() || a.Is4() != v4 {
			return nil, errors.New("source addresses: invalid or mixed-family list")
		}
	}
	return &SourceAddrs{addrs: append([]netip.Addr(nil), addrs...)}, nil
}

// Addrs returns the addresses in round-robin order.
func (s *SourceAddrs) Addrs() []netip.Addr { return append([]netip.Addr(nil), s.addrs...) }

// Next returns the address for the next connection.
func (s *SourceAddrs) Next() netip.Addr {
	i := s.next.Add(1) - 1
	return s.addrs[i%uint64(len(s.addrs))]
}

// CheckTarget reports when host, an IP literal of the other family than the source
// addresses, can never be reached from them. A host name is not resolved here: the
// dialer keeps only the resolved addresses of the sources' family.
func (s *SourceAddrs) CheckTarget(host string) error {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return nil
	}
	a = a.Unmap()
	if a.Is4() != s.addrs[0].Is4() {
		fam := "IPv6"
		if s.addrs[0].Is4() {
			fam = "IPv4"
		}
		return fmt.Errorf("target %s cannot be reached from %s source addresses", a, fam)
	}
	return nil
}

// dialer returns the net.Dialer for one connection: bound to the next source address
// (no port yet) and with the receive buffer set when recvBuf > 0.
func (s *SourceAddrs) dialer(recvBuf int) net.Dialer {
	d := net.Dialer{}
	var src netip.Addr
	if s != nil {
		src = s.Next()
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	if recvBuf > 0 || s != nil {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if recvBuf > 0 {
					serr = setRecvBuffer(fd, recvBuf)
				}
				if serr == nil && src.IsValid() {
					serr = setBindNoPort(fd)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// ErrPortsExhaustedAdvice is what a ports-exhausted error tells the user to do.
const ErrPortsExhaustedAdvice = "no free local port towards this destination: " +
	"spread connections over more source addresses (--source-addrs 127.0.0.2-127.0.0.40), " +
	"widen net.ipv4.ip_local_port_range, or split the run into shards on more machines"

// classifyDial gives a dial error its class: running out of local ports (connect
// EADDRNOTAVAIL, or bind EADDRINUSE where the port is chosen at bind time) is
// ErrPortsExhausted with advice; a source address that is not one of this host's
// (bind EADDRNOTAVAIL) says so; everything else is ErrDial (or ErrTimeout).
func classifyDial(err error, src net.Addr) error {
	var sce *os.SyscallError
	if errors.As(err, &sce) {
		switch {
		case sce.Syscall == "connect" && errors.Is(sce.Err, syscall.EADDRNOTAVAIL),
			sce.Syscall == "bind" && errors.Is(sce.Err, syscall.EADDRINUSE):
			return &classedError{class: ErrPortsExhausted, err: fmt.Errorf("%w (%s)", err, ErrPortsExhaustedAdvice)}
		case sce.Syscall == "bind" && errors.Is(sce.Err, syscall.EADDRNOTAVAIL) && src != nil:
			host := src.String()
			if ta, ok := src.(*net.TCPAddr); ok {
				host = ta.IP.String()
			}
			return classify(ErrDial, fmt.Errorf("%w (source address %s is not an address of this host)", err, host))
		}
	}
	return classify(ErrDial, err)
}

// PortBudget is how many connections one (source address, destination) pair can
// hold: the ephemeral port range less the reserved ports in it.
type PortBudget struct {
	Low, High int // ip_local_port_range, inclusive
	Reserved  int // ports of ip_local_reserved_ports inside the range
}

// Ports is the number of usable ephemeral ports.
func (b PortBudget) Ports() int {
	n := b.High - b.Low + 1 - b.Reserved
	if n < 0 {
		return 0
	}
	return n
}

// PerAddr is how many streams AutoSourceAddrs puts on one source address: nine
// tenths of the ports, because connections that closed keep their port in TIME_WAIT
// for a minute and the probe and ordinary requests need some as well.
func (b PortBudget) PerAddr() int { return b.Ports() * 9 / 10 }

// ParsePortBudget reads the contents of /proc/sys/net/ipv4/ip_local_port_range
// ("32768\t60999") and ip_local_reserved_ports ("", "8080,9000-9010").
func ParsePortBudget(portRange, reserved string) (PortBudget, error) {
	f := strings.Fields(portRange)
	if len(f) != 2 {
		return PortBudget{}, fmt.Errorf("ip_local_port_range %q: want two numbers", strings.TrimSpace(portRange))
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
		return PortBudget{}, fmt.Errorf("ip_local_port_range %q: want two ports, low <= high", strings.TrimSpace(portRange))
	}
	b := PortBudget{Low: lo, High: hi}
	for _, item := range strings.Split(strings.TrimSpace(reserved), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		first, last, isRange := strings.Cut(item, "-")
		rlo, err := strconv.Atoi(first)
		rhi := rlo
		if err == nil && isRange {
			rhi, err = strconv.Atoi(last)
		}
		if err != nil || rhi < rlo {
			return PortBudget{}, fmt.Errorf("ip_local_reserved_ports: bad item %q", item)
		}
		rlo, rhi = max(rlo, lo), min(rhi, hi)
		if rhi >= rlo {
			b.Reserved += rhi - rlo + 1
		}
	}
	return b, nil
}

// LocalPortBudget reads this machine's port budget from /proc/sys/net/ipv4 (the
// same range serves IPv6). Where that is not readable it returns the Linux default
// 32768-60999 with the error, so a caller can go on and say so.
func LocalPortBudget() (PortBudget, error) {
	def := PortBudget{Low: 32768, High: 60999}
	rng, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return def, fmt.Errorf("read ephemeral port range: %w", err)
	}
	res, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports")
	if err != nil {
		res = nil // older kernels have no such file
	}
	b, err := ParsePortBudget(string(rng), string(res))
	if err != nil {
		return def, err
	}
	return b, nil
}

// maxAutoSourceAddrs bounds what AutoSourceAddrs picks (about 26 million streams at
// the default budget: far beyond one machine).
const maxAutoSourceAddrs = 1024

// AutoSourceAddrs picks loopback source addresses for streams connections to one
// loopback destination (host is an IP literal or "localhost"; "localhost" counts as
// 127.0.0.1, the dialer keeping only IPv4 answers once it binds to IPv4). It returns
// nil when the streams fit in one address's budget (the default source serves) or
// when host is not loopback (the user must name addresses, --source-addrs). Otherwise
// it returns ceil(streams / budget.PerAddr()) addresses from 127.0.0.2 upward,
// skipping the destination itself, which the probe and ordinary requests keep using.
// IPv6 loopback has one address, ::1, so more streams than its budget are an error.
func AutoSourceAddrs(host string, streams int, budget PortBudget) ([]netip.Addr, error) {
	per := budget.PerAddr()
	if per <= 0 {
		return nil, fmt.Errorf("no ephemeral ports available (range %d-%d, %d reserved)", budget.Low, budget.High, budget.Reserved)
	}
	if streams <= per {
		return nil, nil
	}
	var dst netip.Addr
	if strings.EqualFold(host, "localhost") {
		dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	} else {
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil || !a.Unmap().IsLoopback() {
			return nil, nil
		}
		dst = a.Unmap()
	}
	need := (streams + per - 1) / per
	if dst.Is6() {
		return nil, fmt.Errorf("%d streams to [%s] need %d source addresses of %d ports each, but IPv6 loopback has only ::1: "+
			"target 127.0.0.1, or add IPv6 addresses to lo and pass them with --source-addrs", streams, dst, need, per)
	}
	if need > maxAutoSourceAddrs {
		return nil, fmt.Errorf("%d streams need %d source addresses, more than the %d the harness picks by itself", streams, need, maxAutoSourceAddrs)
	}
	addrs := make([]netip.Addr, 0, need)
	for a := netip.AddrFrom4([4]byte{127, 0, 0, 2}); len(addrs) < need; a = a.Next() {
		if a != dst {
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}
