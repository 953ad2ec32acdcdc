package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// validateTarget checks a target URL given in flag before anything is dialled, so that a
// URL nobody can connect to is a usage error (exit 2) in one line, never a run of errors
// (exit 3) or a silent guess. It wants an absolute http:// or https:// URL with a host
// name: "http://:18090" has a port but no host, which Go would dial as the local host,
// and is refused rather than taken as 127.0.0.1.
func validateTarget(flag, raw string) error {
	switch {
	case strings.TrimSpace(raw) == "":
		return fmt.Errorf("%s is empty: want an http:// or https:// URL", flag)
	case strings.TrimSpace(raw) != raw:
		return fmt.Errorf("%s %q has spaces around the URL", flag, raw)
	case !strings.Contains(raw, "://"):
		return fmt.Errorf("%s %q is not an absolute URL: want http://HOST[:PORT][/PATH] or https://..., e.g. http://127.0.0.1:8080", flag, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s %q is not a URL: %v", flag, raw, err)
	}
	switch {
	case u.Scheme == "":
		return fmt.Errorf("%s %q has no scheme: want http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH]", flag, raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s %q: the scheme must be http:// or https://, not %s://", flag, raw, u.Scheme)
	case u.Host == "":
		return fmt.Errorf("%s %q has no host: want %s://HOST[:PORT][/PATH]", flag, raw, u.Scheme)
	case u.Hostname() == "":
		return fmt.Errorf("%s %q has a port but no host name; write the host, e.g. %s://127.0.0.1%s", flag, raw, u.Scheme, u.Host)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s %q: port %s is not in 1-65535", flag, raw, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%s %q: the port after ':' is empty", flag, raw)
	}
	return nil
}
