package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/internal/tailbuf"
)

// ConfUpstream is the upstream address written in the configs of proxy/nginx/ (docker/nginx links there): the
// reference server as compose runs it, in the network namespace nginx shares with it.
// StartNginx replaces every occurrence with NginxConfig.Upstream.
//
// The placeholder scheme of proxy/nginx/*.conf, which lets one file serve compose and a
// local run unchanged:
//   - exactly one `listen` directive; StartNginx replaces its address (the first argument)
//     with NginxConfig.Listen and keeps any parameters after it;
//   - the upstream written as 127.0.0.1:8080 (ConfUpstream);
//   - a location /.sseharness/nginx-ready answering 204, which tells that this nginx is up;
//   - no `user`, `pid` or `daemon` directive and only relative paths, so that
//     `nginx -p DIR -c FILE -g 'daemon off; pid ...;'` runs it without root.
//
// With NginxConfig.ReadTimeout, the value of every proxy_read_timeout is replaced too.
const ConfUpstream = "127.0.0.1:8080"

// NginxReadyPath is the location every config answers with 204 without forwarding.
const NginxReadyPath = "/.sseharness/nginx-ready"

// DefaultNginxStartTimeout bounds how long StartNginx waits for nginx to answer.
const DefaultNginxStartTimeout = 15 * time.Second

// nginxStopGrace is how long nginx gets to exit after SIGTERM (fast shutdown: it drops
// open connections) before its whole process group is killed.
const nginxStopGrace = 5 * time.Second

// NginxConfig configures StartNginx.
type NginxConfig struct {
	// ConfFile is the nginx configuration to run: one of proxy/nginx/*.conf (NginxConf), or any file
	// following the placeholder scheme of ConfUpstream. Required.
	ConfFile string
	// Listen is the address nginx listens on. Default "": 127.0.0.1 with a free port; a
	// port 0 also picks a free port.
	Listen string
	// Upstream is where nginx forwards to: host:port, or an http URL whose host:port is
	// used. Required.
	Upstream string
	// TempDir is where nginx's private prefix directory (rewritten config, temp files,
	// pid file) is created and removed again by Stop. Default "": os.TempDir(). When
	// running as root, nginx's workers run as nobody and need to traverse it.
	TempDir string
	// Binary is the nginx executable. Default "": found by NginxAvailable.
	Binary string
	// StartTimeout bounds the wait for nginx to answer. 0 means DefaultNginxStartTimeout.
	StartTimeout time.Duration
	// ReadTimeout, when > 0, replaces the value of every proxy_read_timeout directive
	// of the config (nginx's idle timeout on the upstream: a stream silent for that long
	// is cut), in whole milliseconds; the config must have one. Default 0: as written
	// (docker/nginx/idle-timeout.conf has a short one).
	ReadTimeout time.Duration
}

// Validate reports every problem of c at once.
func (c *NginxConfig) Validate() error {
	var errs []error
	if c.ConfFile == "" {
		errs = append(errs, errors.New("nginx config file is required"))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("nginx listen address %q: want host:port", c.Listen))
		}
	}
	if _, err := upstreamHostPort(c.Upstream); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsAny(c.TempDir, `";'`) {
		errs = append(errs, fmt.Errorf("temp dir %q: must not contain quotes or semicolons (it goes into nginx's -g)", c.TempDir))
	}
	if c.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("nginx start timeout %v: must not be negative", c.StartTimeout))
	}
	if c.ReadTimeout < 0 || c.ReadTimeout > 0 && c.ReadTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("nginx read timeout %v: want 0 (as in the config) or at least 1ms", c.ReadTimeout))
	}
	return errors.Join(errs...)
}

func upstreamHostPort(s string) (string, error) {
	if s == "" {
		return "", errors.New("nginx upstream address is required")
	}
	hp := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return "", fmt.Errorf("nginx upstream %q: want host:port or an http URL", s)
		}
		hp = u.Host
	}
	if _, port, err := net.SplitHostPort(hp); err != nil || port == "" {
		return "", fmt.Errorf("nginx upstream %q: want host:port or an http URL with a port", s)
	}
	return hp, nil
}

// NginxAvailable finds the nginx executable (in PATH, then the usual sbin directories,
// which a non-root PATH often lacks) and checks that it runs.
func NginxAvailable() (path string, err error) {
	path, err = exec.LookPath("nginx")
	if err != nil {
		path = ""
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				path = p
				break
			}
		}
	}
	if path == "" {
		return "", errors.New("nginx not found in PATH or /usr/sbin (Debian/Ubuntu: apt-get install nginx-light)")
	}
	out, err := exec.Command(path, "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nginx version") {
		return "", fmt.Errorf("%s -v does not run: %v %s", path, err, strings.TrimSpace(string(out)))
	}
	return path, nil
}

var (
	listenDirective      = regexp.MustCompile(`(?m)^([ \t]*listen[ \t]+)([^;\s]+)`)
	readTimeoutDirective = regexp.MustCompile(`(?m)^([ \t]*proxy_read_timeout[ \t]+)([^;\s]+)`)
)

// setReadTimeout replaces the value of every proxy_read_timeout directive with d.
func setReadTimeout(conf []byte, d time.Duration) ([]byte, error) {
	if !readTimeoutDirective.Match(conf) {
		return nil, errors.New("no proxy_read_timeout directive to set")
	}
	return readTimeoutDirective.ReplaceAll(conf, []byte(fmt.Sprintf("${1}%dms", d.Milliseconds()))), nil
}

// rewriteConf applies the placeholder scheme: the address of the one listen directive
// becomes listen, every ConfUpstream becomes upstream.
func rewriteConf(conf []byte, listen, upstream string) ([]byte, error) {
	if n := len(listenDirective.FindAllIndex(conf, -1)); n != 1 {
		return nil, fmt.Errorf("%d listen directives, want exactly 1", n)
	}
	if !strings.Contains(string(conf), ConfUpstream) {
		return nil, fmt.Errorf("no upstream written as %s", ConfUpstream)
	}
	out := listenDirective.ReplaceAll(conf, []byte("${1}"+strings.ReplaceAll(listen, "$", "$$")))
	return []byte(strings.ReplaceAll(string(out), ConfUpstream, upstream)), nil
}

// Nginx is a running nginx started by StartNginx. Its methods are safe for concurrent use.
type Nginx struct {
	cmd    *exec.Cmd
	dir    string
	listen string
	log    *tailbuf.Buffer

	exited  chan struct{} // closed once the master process has been waited for
	waitErr error         // the master's exit status, valid after exited

	stopOnce sync.Once
	stopErr  error
}

// StartNginx runs nginx with cfg.ConfFile rewritten by the placeholder scheme, as
// `nginx -p DIR/ -c DIR/nginx.conf -g 'daemon off; pid DIR/nginx.pid;'` in a new private
// directory, and returns once it answers on its ready location. nginx runs in its own
// process group and, on Linux, gets SIGTERM if this process dies; Stop, or ctx ending,
// stops it and waits for every nginx process to exit.
func StartNginx(ctx context.Context, cfg NginxConfig) (*Nginx, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	upstream, _ := upstreamHostPort(cfg.Upstream) // validated above
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = NginxAvailable(); err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(cfg.ConfFile)
	if err != nil {
		return nil, fmt.Errorf("nginx config: %w", err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultNginxStartTimeout
	}
	host, port := "127.0.0.1", "0"
	if cfg.Listen != "" {
		host, port, _ = net.SplitHostPort(cfg.Listen)
	}
	// A port picked here may be taken by someone else before nginx binds it: retry then.
	attempts := 1
	if port == "0" {
		attempts = 3
	}
	var lastErr error
	for range attempts {
		listen := net.JoinHostPort(host, port)
		if port == "0" {
			if listen, err = freePort(host); err != nil {
				return nil, err
			}
		}
		conf, err := rewriteConf(raw, listen, upstream)
		if err == nil && cfg.ReadTimeout > 0 {
			conf, err = setReadTimeout(conf, cfg.ReadTimeout)
		}
		if err != nil {
			return nil, fmt.Errorf("nginx config %s: %w", cfg.ConfFile, err)
		}
		n, err := launchNginx(ctx, bin, conf, listen, cfg.TempDir, timeout)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("nginx: find a free port on %s: %w", host, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func launchNginx(ctx context.Context, bin string, conf []byte, listen, tempDir string, timeout time.Duration) (*Nginx, error) {
	dir, err := os.MkdirTemp(tempDir, "sseharness-nginx-")
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	// Workers run as nobody when nginx starts as root: they must reach their temp files.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	n := &Nginx{dir: dir, listen: listen, log: tailbuf.New(16 << 10), exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "-p", dir+string(filepath.Separator), "-c", confPath,
		"-g", fmt.Sprintf(`daemon off; pid "%s";`, filepath.Join(dir, "nginx.pid")))
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.log
	n.cmd.SysProcAttr = nginxSysProcAttr()
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: start %s: %w", bin, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	if err := n.awaitReady(ctx, timeout); err != nil {
		_ = n.Stop()
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = n.Stop()
		case <-n.exited:
		}
	}()
	return n, nil
}

func (n *Nginx) awaitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   time.Second,
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(n.URL() + NginxReadyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("nginx exited at start (%v): %s", n.waitErr, n.log.LastLines(3))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not answer on %s within %v: %s", n.listen, timeout, n.log.LastLines(3))
		}
	}
}

// URL is nginx's base URL, e.g. http://127.0.0.1:40123.
func (n *Nginx) URL() string { return "http://" + n.listen }

// Addr is the host:port nginx listens on.
func (n *Nginx) Addr() string { return n.listen }

// Pid is the process id of the nginx master process (its process group id too).
func (n *Nginx) Pid() int { return n.cmd.Process.Pid }

// Log returns the end of what nginx wrote to stdout and stderr (its error log).
func (n *Nginx) Log() string { return n.log.String() }

// Exited is closed once the nginx master process has exited, whether stopped or not.
func (n *Nginx) Exited() <-chan struct{} { return n.exited }

// Stop stops nginx (SIGTERM, its fast shutdown; after a grace period SIGKILL to its whole
// process group), waits until it has exited, makes sure no worker survives, and removes
// its directory. It is safe to call more than once; later calls return the first result.
func (n *Nginx) Stop() error {
	n.stopOnce.Do(func() {
		select {
		case <-n.exited:
			n.stopErr = fmt.Errorf("nginx had exited by itself (%v): %s", n.waitErr, n.log.LastLines(3))
		default:
			_ = signalNginx(n.cmd.Process, false)
			select {
			case <-n.exited:
			case <-time.After(nginxStopGrace):
				_ = signalNginx(n.cmd.Process, true)
				<-n.exited
				n.stopErr = fmt.Errorf("nginx ignored SIGTERM for %v and was killed", nginxStopGrace)
			}
		}
		// Workers of a master that died abruptly would be orphans: end the group.
		_ = signalNginx(n.cmd.Process, true)
		if err := os.RemoveAll(n.dir); err != nil && n.stopErr == nil {
			n.stopErr = fmt.Errorf("nginx: remove %s: %w", n.dir, err)
		}
	})
	return n.stopErr
}
