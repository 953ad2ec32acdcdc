package runner

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sseharness/sseharness/eventstream"
)

// EventLoops is a set of event loops reading stream bodies (see SourceConfig.EventLoops).
// Its methods are safe for concurrent use. Close it once every source using it has
// ended.
type EventLoops struct {
	loops []*evloop
	next  atomic.Uint32

	mu     sync.RWMutex // held for reading while a stream is handed over
	closed bool
}

// loopReadBuffer is each loop's one read buffer: every ready socket is read into it,
// its chunked framing removed in place and its bytes parsed before the next is read.
const loopReadBuffer = 64 << 10

// NewEventLoops starts n event loops (n <= 0: one per GOMAXPROCS), each a goroutine
// waiting in epoll.
func NewEventLoops(n int) (*EventLoops, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	g := &EventLoops{}
	for range n {
		l, err := newEvloop()
		if err != nil {
			g.Close()
			return nil, err
		}
		g.loops = append(g.loops, l)
		go l.run()
	}
	return g, nil
}

// Close stops the loops and waits for them. A stream still on a loop ends with a
// network error.
func (g *EventLoops) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	for _, l := range g.loops {
		l.post(loopCmd{op: opQuit})
	}
	for _, l := range g.loops {
		<-l.done
		l.mu.Lock()
		l.gone = true
		l.mu.Unlock()
		l.bellf.Close()
		unix.Close(l.epfd)
		unix.Close(l.wakefd)
		unix.Close(l.timerfd)
	}
}

// evloop is one loop: an epoll set of stream sockets (epfd) and a second set, the
// bell (bellfd), holding the eventfd that wakes it for commands and, while the loop
// waits for events, epfd itself.
//
// The loop does not block in epoll_wait: a goroutine blocked in a system call keeps
// the runtime's sysmon polling every 20 us (it takes the P back from every long
// call), which at a few hundred wake-ups a second cost more than the loop saved. The
// bell is itself pollable, so it goes into the runtime's netpoller and the loop parks
// there like any socket reader, then collects its ready streams with a non-blocking
// epoll_wait.
//
// Two modes (issue 14). Waiting on the bell costs a thread wake-up per arrival, which
// at one event per stream per second is one per event: on this project's 2-core
// machine about three quarters of the CPU per event went to sleeping and waking
// threads. So after a round that found bytes the loop disables epfd's entry in the
// bell and starts a timer (a timerfd, also in the bell) ringing every pollEvery, and
// on each ring reads whatever arrived meanwhile, several streams per wake-up;
// arrivals wake nothing while the entry is disabled. A round that finds nothing
// stops the timer and enables the entry again. (A kernel timer rather than
// time.Sleep: it rings once per period, exactly, where the runtime's timers wake its
// poller in whole milliseconds, often twice per sleep; measured at 10,000 streams the
// two cost about the same CPU per event.) Reads are timed by the kernel
// (SO_TIMESTAMPNS), so the sleep delays the runner's reading, not the times it
// measures: delivery latency, gaps and silences are the same either way.
type evloop struct {
	epfd, wakefd int
	timerfd      int      // rings the bell every pollEvery while the loop polls
	bellfd       int      // the bell: wakefd, timerfd, and epfd (enabled while armed)
	bellf        *os.File // bellfd, registered with the runtime's netpoller
	armed        bool     // epfd's entry in the bell is enabled (the loop waits for events)
	polling      bool     // the timer is ringing
	mu           sync.Mutex
	cmds         []loopCmd
	posted       atomic.Bool // cmds is not empty
	gone         bool        // Close closed the descriptors
	done         chan struct{}

	// Owned by the loop's goroutine.
	streams []*loopStream // by descriptor: a lookup per ready socket, no hashing
	buf     []byte
	plain   []byte        // TLS plaintext of the read in buf, made for the loop's first TLS stream
	oob     []byte        // recvmsg's control buffer: the kernel's receive time
	recs    []loopRecord  // records of this wake-up, sent by flush
	again   []*loopStream // streams left with bytes unread (readMax full reads), read next round
	spare   []*loopStream // again's previous backing array
	sent    atomic.Int64  // records flush has sent, for tests
	rounds  atomic.Int64  // rounds run, for tests
	ticks   atomic.Int64  // rounds the timer started, for tests
}

// loopRecord is a record a loop holds until the end of its wake-up.
type loopRecord struct {
	es *EventSource
	r  Record
}

// Batched hand-off (issue 14). A loop holds the records it makes during a wake-up
// and sends them in one burst at its end (or on the way, loopBatchMax at a time, and
// before anything else of a stream that leaves the loop): a receiver parked on the
// channel is woken once per burst, not once per record, and each record is copied
// once into the loop's buffer. WaitEvents counts an event once its record is sent.
//
// The time of a read is the kernel's (SO_TIMESTAMPNS: when its last segment arrived)
// rather than when the loop got to it, so delivery latency, gaps and silences do not
// include the runner's own scheduling delay.
//
// An earlier attempt at fewer wake-ups (a loop sleeping a millisecond with
// time.Sleep between polls, epfd still in the runtime's netpoller) saved little:
// every arrival still woke the runtime's poller, since a registered epoll set rings
// whoever waits on it. The polling mode (see evloop) takes the set's entry out of
// what wakes anyone, and times its rounds with a kernel timer.
const (
	// loopBatchMax bounds the records held: a wake-up that parses more sends them
	// on the way (a read of tiny events holds thousands).
	loopBatchMax = 1024
)

// batch holds r for the end of the wake-up. Called by es.emit on the loop; not
// inlined, so that its copy of r is not in emit's frame, which is on HTTP/2 readers'
// stacks too (runner.Sink).
//
//go:noinline
func (l *evloop) batch(es *EventSource, r *Record) {
	l.recs = append(l.recs, loopRecord{es: es, r: *r})
	if len(l.recs) >= loopBatchMax {
		l.flush()
	}
}

// flush sends the records held, in order, each event counted once it is out.
func (l *evloop) flush() {
	for i := range l.recs {
		lr := &l.recs[i]
		lr.es.out.Put(&lr.r)
		if lr.r.Kind == RecordEvent {
			lr.es.counted()
		}
		*lr = loopRecord{} // do not keep the strings alive
	}
	if len(l.recs) > 0 {
		l.sent.Add(int64(len(l.recs)))
	}
	l.recs = l.recs[:0]
}

type loopOp uint8

const (
	opAdd loopOp = iota
	opInterrupt
	opQuit
)

type loopCmd struct {
	op  loopOp
	s   *loopStream
	rst bool
}

// loopStream is one body on a loop.
type loopStream struct {
	loop         *evloop
	es           *EventSource
	x            *exchange
	attempt      int
	fd           int
	body         bodyReader // its framing state; src and flow unused
	laddr, raddr net.Addr   // for read errors worded as net's
	since        time.Time  // when the loop took it over (after the bytes that came with the head)
	hup          bool       // epoll reported the peer's FIN, a hang-up or an error: read to the end
	tls          *tls.Conn  // over TLS: the connection the plaintext comes from
	lc           *loopConn  // over TLS: the transport under tls
}

// pollEvery is the period of a loop's rounds while bytes keep arriving (see evloop).
const pollEvery = 2 * time.Millisecond

func newEvloop() (*evloop, error) {
	var fds []int
	fail := func(what string, err error) (*evloop, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("event loop: %s: %w", what, err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fail("epoll_create1", err)
	}
	fds = append(fds, epfd)
	bellfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fail("epoll_create1", err)
	}
	fds = append(fds, bellfd)
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fail("eventfd", err)
	}
	fds = append(fds, wakefd)
	timerfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fail("timerfd_create", err)
	}
	fds = append(fds, timerfd)
	for _, ev := range []unix.EpollEvent{
		{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(wakefd)},
		{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(timerfd)},
		{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(epfd)},
	} {
		if err := unix.EpollCtl(bellfd, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			return fail("epoll_ctl", err)
		}
	}
	if err := unix.SetNonblock(bellfd, true); err != nil {
		return fail("set non-blocking", err)
	}
	return &evloop{epfd: epfd, wakefd: wakefd, timerfd: timerfd, bellfd: bellfd, bellf: os.NewFile(uintptr(bellfd), "epoll"), armed: true,
		done: make(chan struct{}), buf: make([]byte, loopReadBuffer), oob: make([]byte, unix.CmsgSpace(16))}, nil
}

// post queues a command and wakes the loop; after Close it does nothing (a flush
// timer may fire late).
func (l *evloop) post(c loopCmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return
	}
	l.cmds = append(l.cmds, c)
	if len(l.cmds) == 1 {
		l.posted.Store(true)
		one := [8]byte{1}
		unix.Write(l.wakefd, one[:])
	}
}

// interrupt ends the stream on its loop (Close, Reset, Leave, the engine's stop):
// the loop closes the socket, with SO_LINGER 0 when rst, and ends the attempt. Called
// under es.mu.
func (s *loopStream) interrupt(rst bool) { s.loop.post(loopCmd{op: opInterrupt, s: s, rst: rst}) }

// handOff gives the body of x to a loop; false means it stays with the caller (the
// source was interrupted meanwhile, or the socket could not be taken over).
func (g *EventLoops) handOff(es *EventSource, attempt int, x *exchange) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	br := x.body.(*bodyReader)
	l := g.loops[int(g.next.Add(1))%len(g.loops)]
	s := &loopStream{loop: l, es: es, x: x, attempt: attempt, body: *br}
	s.body.src, s.body.flow = nil, nil
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.final != "" || es.leaving || es.conn == nil {
		return false
	}
	// The loop reads a duplicate of the socket; closing the runtime's own takes the
	// socket out of the runtime's netpoller (no FIN: the duplicate keeps it open).
	rc, err := x.lease.tcp.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if cerr := rc.Control(func(raw uintptr) { fd, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil || err != nil {
		return false
	}
	s.fd = fd
	s.laddr, s.raddr = x.lease.tcp.LocalAddr(), x.lease.tcp.RemoteAddr()
	if tc, ok := x.lease.conn.(*tls.Conn); ok {
		s.tls, s.lc = tc, tc.NetConn().(*loopConn) // loopable checked it
		s.lc.mu.Lock()
		s.lc.looped, s.lc.fd = true, fd
		s.lc.mu.Unlock()
	}
	x.lease.tcp.Close()
	es.conn, es.tcp = nil, nil
	es.looped = s
	x.body = nil // the loop has its state; drop the bytes read with the head
	l.post(loopCmd{op: opAdd, s: s})
	return true
}

// epollPoll and rawRecv are epoll_wait with timeout 0 and read on a non-blocking
// socket as raw system calls: neither blocks, so the runtime's entersyscall and
// exitsyscall are not needed around them, nor the sysmon wake-up entersyscall makes
// when every P is idle (sysmon then polls every 20 us for a millisecond or more:
// measured, a system call per round this way cost more CPU than the rounds saved).
// The loop's other calls per round (rawRead8, timerfd_settime, epoll_ctl on the
// bell) are raw for the same reason.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// writeAll writes p to a non-blocking socket, waiting up to a second each time its
// send buffer is full: a looped TLS connection's few writes (an alert, a key update).
func writeAll(fd int, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(fd, p[done:])
		if n > 0 {
			done += n
		}
		switch {
		case errors.Is(err, unix.EAGAIN):
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if k, perr := unix.Poll(pfd, 1000); perr != nil && !errors.Is(perr, unix.EINTR) {
				return done, os.NewSyscallError("poll", perr)
			} else if k == 0 {
				return done, os.ErrDeadlineExceeded
			}
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return done, os.NewSyscallError("write", err)
		}
	}
	return done, nil
}

// rawRead8 reads an eventfd's or a timerfd's 8-byte counter (non-blocking), as a
// raw system call for the same reason.
func rawRead8(fd int) {
	var b [8]byte
	unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 8)
}

// rawRecv is recvmsg into p, with the kernel's receive time of the last byte read
// (SO_TIMESTAMPNS, set by add) in oob; at is zero when the kernel gave none.
func rawRecv(fd int, p, oob []byte) (n int, at time.Time, err error) {
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return 0, time.Time{}, e
	}
	return int(r), recvTime(oob[:msg.Controllen]), nil
}

// recvTime finds the SCM_TIMESTAMPNS message in a recvmsg control buffer.
func recvTime(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && int(h.Len) >= unix.CmsgLen(16) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return time.Unix(ts.Sec, ts.Nsec)
		}
		oob = oob[unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)):]
	}
	return time.Time{}
}

func (l *evloop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 256)
	var bell [3]unix.EpollEvent
	rc, err := l.bellf.SyscallConn()
	if err != nil {
		l.quit(fmt.Errorf("event loop: %w", err))
		return
	}
	for {
		if len(l.again) == 0 {
			// Park until the bell rings: bytes (armed), the timer (polling) or a
			// command.
			var n int
			var werr error
			err := rc.Read(func(fd uintptr) bool {
				n, werr = epollPoll(int(fd), bell[:])
				return n > 0 || (werr != nil && !errors.Is(werr, unix.EINTR))
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				l.quit(fmt.Errorf("event loop: epoll_wait: %w", err))
				return
			}
			for _, ev := range bell[:n] {
				switch int(ev.Fd) {
				case l.epfd:
					l.armed = false // one-shot: the bell disarmed it as it rang
				case l.timerfd:
					// A periodic timerfd starts its next period when read.
					rawRead8(l.timerfd)
					l.ticks.Add(1)
				}
			}
		}
		l.rounds.Add(1)
		if l.posted.Load() && !l.commands() {
			l.flush()
			l.quit(errLoopClosed)
			return
		}
		n, werr := epollPoll(l.epfd, events)
		if werr != nil && !errors.Is(werr, unix.EINTR) {
			l.quit(fmt.Errorf("event loop: epoll_wait: %w", werr))
			return
		}
		for _, ev := range events[:n] {
			if s := l.stream(int(ev.Fd)); s != nil {
				if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					s.hup = true
				}
				l.readable(s)
			}
		}
		// Streams a previous round left with bytes to read: epoll reports a socket
		// once per arrival (edge-triggered), so they are read without it.
		busy := n > 0 || len(l.again) > 0
		if again := l.again; len(again) > 0 {
			l.again = l.spare[:0]
			for i, s := range again {
				if l.stream(s.fd) == s {
					l.readable(s)
				}
				again[i] = nil
			}
			l.spare = again
		}
		l.flush()
		if err := l.arm(!busy); err != nil {
			l.quit(err)
			return
		}
	}
}

// arm sets the loop's mode: waiting for bytes (on: epfd's entry in the bell enabled,
// the timer stopped) or polling (the entry disabled, the timer ringing every
// pollEvery). The entry is one-shot, so ringing the bell disables it too; a disabled
// entry wakes nothing when bytes arrive, and enabling it while a socket is ready
// rings the bell at once. (Taking epfd out of the bell and putting it back instead
// would cost the kernel's loop checks, a walk over every socket, on each
// EPOLL_CTL_ADD.)
func (l *evloop) arm(on bool) error {
	if on == l.armed && on != l.polling {
		return nil
	}
	var period unix.ItimerSpec
	if !on {
		period.Interval = unix.NsecToTimespec(int64(pollEvery))
		period.Value = period.Interval
	}
	if on == l.polling {
		if _, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(l.timerfd), 0, uintptr(unsafe.Pointer(&period)), 0, 0, 0); e != 0 {
			return fmt.Errorf("event loop: timerfd_settime: %w", e)
		}
		l.polling = !on
	}
	if on != l.armed {
		ev := unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: int32(l.epfd)}
		if on {
			ev.Events |= unix.EPOLLIN
		}
		if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.bellfd), unix.EPOLL_CTL_MOD, uintptr(l.epfd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
			return fmt.Errorf("event loop: epoll_ctl: %w", e)
		}
		l.armed = on
	}
	return nil
}

// stream returns the stream of descriptor fd, nil when none.
func (l *evloop) stream(fd int) *loopStream {
	if fd < 0 || fd >= len(l.streams) {
		return nil
	}
	return l.streams[fd]
}

// commands runs the queued commands; false means quit.
func (l *evloop) commands() bool {
	rawRead8(l.wakefd)
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.posted.Store(false)
	l.mu.Unlock()
	quit := false
	for _, c := range cmds {
		switch c.op {
		case opAdd:
			l.add(c.s)
		case opInterrupt:
			if l.stream(c.s.fd) == c.s {
				if c.rst {
					unix.SetsockoptLinger(c.s.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				} else if c.s.tls != nil {
					c.s.tls.CloseWrite() // close_notify, as closing the TLS connection sends
				}
				l.end(c.s, net.ErrClosed)
			}
		case opQuit:
			quit = true
		}
	}
	return !quit
}

func (l *evloop) add(s *loopStream) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(s.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		unix.Close(s.fd)
		s.detach()
		s.es.afterBody(s.attempt, s.x, fmt.Errorf("event loop: epoll_ctl: %w", err))
		return
	}
	if s.fd >= len(l.streams) {
		l.streams = append(l.streams, make([]*loopStream, s.fd+1-len(l.streams))...)
	}
	l.streams[s.fd] = s
	// The kernel's receive time on every read; without it (an error, never seen)
	// reads are timed when the loop gets to them.
	unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	// Body bytes that came with the head, timed now.
	if p := s.body.pending; len(p) > 0 {
		s.body.pending = nil
		if !l.consume(s, p, time.Time{}) {
			return
		}
	} else if s.body.finished() {
		l.end(s, io.EOF)
		return
	}
	// Over TLS, what the TLS connection read past the head and holds (records the
	// socket will not report again).
	if s.tls != nil && !l.consumeTLS(s, nil, time.Time{}) {
		return
	}
	s.since = time.Now()
}

// quit ends every stream still on the loop.
func (l *evloop) quit(err error) {
	for _, s := range l.streams {
		if s != nil {
			l.end(s, err)
		}
	}
}

// readMax bounds the full reads of one socket per round, so that a stream sending
// faster than the loop reads does not starve the others on its loop.
const readMax = 4

// readable reads a ready socket until it is drained (a read shorter than the
// buffer; after a FIN or hang-up, until the read that reports it) or readMax
// reads; a socket left with bytes goes on l.again, read next round. Sockets are edge-triggered (EPOLLET): epoll reports one once per
// arrival and does not requeue it after each report, which with the loop's own
// epoll set inside the runtime's netpoller would wake the runtime's poller again
// for every event (measured: about 1 us of CPU per event at 10,000 streams).
func (l *evloop) readable(s *loopStream) {
	if s.es.paused.Load() || s.es.readRate.Load() > 0 {
		l.handBack(s)
		return
	}
	for range readMax {
		n, at, err := rawRecv(s.fd, l.buf, l.oob)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return
		case err != nil:
			l.end(s, &net.OpError{Op: "read", Net: "tcp", Source: s.laddr, Addr: s.raddr, Err: os.NewSyscallError("read", err)})
			return
		case n == 0:
			if s.tls != nil {
				s.lc.mu.Lock()
				s.lc.end = io.EOF
				s.lc.mu.Unlock()
				l.consumeTLS(s, nil, time.Time{}) // what TLS still holds, then its end
				return
			}
			l.eof(s)
			return
		}
		// Bytes that waited in the socket from before the hand-off count from it
		// (Quiet and gaps never run backwards).
		if at.Before(s.since) {
			at = s.since
		}
		if s.tls != nil {
			if !l.consumeTLS(s, l.buf[:n], at) {
				return // s has ended
			}
		} else if !l.consume(s, l.buf[:n], at) {
			return // s has ended
		}
		if n < len(l.buf) && !s.hup {
			return // drained: the next arrival is reported
		}
		if s.es.paused.Load() || s.es.readRate.Load() > 0 {
			l.handBack(s)
			return
		}
	}
	l.again = append(l.again, s)
}

// eof ends s at the end of its socket (or of its TLS stream): a clean end when its
// framing says the body is complete or runs to the connection's end, else a body
// cut short.
func (l *evloop) eof(s *loopStream) {
	if s.body.finished() || s.body.mode == bodyUntilClose {
		l.end(s, io.EOF)
		return
	}
	l.end(s, io.ErrUnexpectedEOF)
}

// consumeTLS gives ciphertext read from s's socket (nil after its end) to s's TLS
// connection and consumes the plaintext it yields, until TLS needs more bytes than
// were read (errWouldBlock); at the TLS stream's end (close_notify, or the socket's
// end at a record boundary) it ends s as eof does, on a TLS error with that error,
// as a goroutine's read of the TLS connection would. It reports whether s is still
// on the loop.
func (l *evloop) consumeTLS(s *loopStream, raw []byte, at time.Time) bool {
	if l.plain == nil {
		l.plain = make([]byte, 16<<10) // TLS's largest record
	}
	s.lc.mu.Lock()
	s.lc.in = raw
	s.lc.mu.Unlock()
	defer func() {
		s.lc.mu.Lock()
		s.lc.in = nil // the loop's buffer, reused by the next read
		s.lc.mu.Unlock()
	}()
	for {
		n, err := s.tls.Read(l.plain)
		if n > 0 && !l.consume(s, l.plain[:n], at) {
			return false
		}
		switch {
		case err == nil:
		case errors.Is(err, errWouldBlock):
			return true
		case errors.Is(err, io.EOF):
			l.eof(s)
			return false
		default:
			l.end(s, err)
			return false
		}
	}
}

// consume removes the framing from raw bytes of s's body, as bodyReader.Read does,
// and parses them; it ends s at the end of the body or on an error. at is when the
// bytes were received (zero: now, item by item). Their records go to the loop's
// batch; once s has ended its source may be on another goroutine, so nothing of it
// is touched after end. It reports whether s is still on the loop.
func (l *evloop) consume(s *loopStream, raw []byte, at time.Time) bool {
	b := &s.body
	var derr error
	switch b.mode {
	case bodyLength:
		if int64(len(raw)) > b.remaining {
			raw = raw[:b.remaining] // bytes after the body are ignored
		}
		b.remaining -= int64(len(raw))
	case bodyChunked:
		var n int
		n, derr = b.decode(raw)
		raw = raw[:n]
	}
	es := s.es
	if len(raw) > 0 {
		es.batch, es.readAt = l, at
		es.parser.Feed(raw)
		for {
			var err error
			es.item, err = es.parser.Next()
			if errors.Is(err, eventstream.ErrPending) {
				break
			}
			if err != nil {
				l.end(s, err) // a size limit: the parser's error is sticky
				return false
			}
			es.handle(s.attempt)
		}
		es.batch, es.readAt = nil, time.Time{}
	}
	switch {
	case derr != nil:
		l.end(s, derr)
	case b.finished():
		l.end(s, io.EOF)
	default:
		return true
	}
	return false
}

// end takes s off the loop, closes its socket and ends the attempt with err as the
// body's end (io.EOF: clean).
func (l *evloop) end(s *loopStream, err error) {
	s.es.batch, s.es.readAt = nil, time.Time{}
	l.flush() // the attempt's records before its last ones
	l.remove(s)
	if s.lc != nil {
		s.lc.mu.Lock()
		s.lc.fd = -1 // its number may be reused at once: TLS writes nothing more
		s.lc.mu.Unlock()
	}
	unix.Close(s.fd)
	s.detach()
	s.es.afterBody(s.attempt, s.x, err)
}

func (l *evloop) remove(s *loopStream) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	l.streams[s.fd] = nil
}

// detach makes the source's interrupts no longer go to the loop.
func (s *loopStream) detach() {
	s.es.mu.Lock()
	s.es.looped = nil
	s.es.mu.Unlock()
}

// handBack gives a paused or rate-limited stream back to a goroutine: the socket
// returns to the runtime's netpoller and the body carries on through bodyReader
// and flowReader, with the framing state the loop had reached.
func (l *evloop) handBack(s *loopStream) {
	l.flush()
	l.remove(s)
	f := os.NewFile(uintptr(s.fd), "")
	c, err := net.FileConn(f) // a duplicate, in the netpoller
	f.Close()
	tcp, _ := c.(*net.TCPConn)
	if err != nil || tcp == nil {
		if c != nil {
			c.Close()
		}
		s.detach()
		s.es.afterBody(s.attempt, s.x, &net.OpError{Op: "read", Net: "tcp", Source: s.laddr, Addr: s.raddr, Err: err})
		return
	}
	es := s.es
	body := s.body
	var conn net.Conn = c
	if s.tls != nil {
		// The TLS connection carries on over the socket back in the netpoller.
		s.lc.mu.Lock()
		s.lc.looped, s.lc.fd, s.lc.Conn = false, -1, c
		s.lc.mu.Unlock()
		conn = s.tls
	}
	body.src = conn
	body.flow = &flowReader{es: es, ctx: es.actx, r: conn}
	s.x.body = &body
	s.x.lease.conn, s.x.lease.tcp = conn, tcp
	es.mu.Lock()
	es.looped = nil
	es.conn, es.tcp = conn, tcp
	interrupted, rst := es.final != "" || es.leaving, es.rst
	es.mu.Unlock()
	if interrupted {
		// The interrupt went to the loop before the hand-back: do what it would have.
		if rst {
			tcp.SetLinger(0)
		}
		c.Close()
	}
	go es.continueBody(s.attempt, s.x)
}
