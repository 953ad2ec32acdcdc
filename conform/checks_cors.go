package conform

import (
	"fmt"
	"strings"
)

// corsOffer is what one response says to a cross-origin request.
type corsOffer struct {
	values []string // Access-Control-Allow-Origin values, as sent
	allow  string   // the single value, when there is exactly one
}

func offerOf(e *exchange) corsOffer {
	if !e.gotResponse() {
		return corsOffer{}
	}
	var c corsOffer
	for _, v := range e.Header.Values("Access-Control-Allow-Origin") {
		for _, part := range strings.Split(v, ",") {
			c.values = append(c.values, strings.TrimSpace(part))
		}
	}
	if len(c.values) == 1 {
		c.allow = c.values[0]
	}
	return c
}

// malformed says why a browser rejects the header whatever the origin, or "".
func (c corsOffer) malformed() string {
	if len(c.values) > 1 {
		return fmt.Sprintf("Access-Control-Allow-Origin has %d values (%s): browsers accept exactly one", len(c.values), strings.Join(c.values, ", "))
	}
	return ""
}

// allows reports whether the offer lets origin read the response anonymously.
func (c corsOffer) allows(origin string) bool { return c.allow == "*" || c.allow == origin }

// corsOffered reports whether the anonymous probe showed the server offering CORS to
// the configured origin; when not, why (the reason for n/a).
func (o *observations) corsOffered() (bool, string) {
	if why := o.unusable(); why != "" {
		return false, why
	}
	c := offerOf(o.corsAnon)
	switch {
	case !o.corsAnon.isStream():
		return false, "the request with Origin got " + describeResponse(o.corsAnon)
	case len(c.values) == 0:
		return false, fmt.Sprintf("no Access-Control-Allow-Origin for Origin %s: the server offers no cross-origin use", o.cfg.Origin)
	case c.malformed() != "":
		return false, c.malformed()
	case !c.allows(o.cfg.Origin):
		return false, fmt.Sprintf("Origin %s is not allowed (Access-Control-Allow-Origin: %s); give an allowed one with --origin", o.cfg.Origin, c.allow)
	}
	return true, ""
}

// --- 14: anonymous --------------------------------------------------------------------

func checkCORSAnonymous(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	c := offerOf(o.corsAnon)
	if m := c.malformed(); m != "" {
		return fail("%s", m)
	}
	if ok, why := o.corsOffered(); !ok {
		return na("%s", why)
	}
	if c.allow == o.cfg.Origin && !varyHas(o.corsAnon, "origin") {
		return warn("Access-Control-Allow-Origin echoes %s without Vary: Origin: a cache may hand it to another origin", c.allow)
	}
	return pass("Access-Control-Allow-Origin: %s", c.allow)
}

func varyHas(e *exchange, name string) bool {
	for _, v := range e.Header.Values("Vary") {
		for _, part := range strings.Split(v, ",") {
			p := strings.TrimSpace(part)
			if strings.EqualFold(p, name) || p == "*" {
				return true
			}
		}
	}
	return false
}

// --- 15: with credentials -------------------------------------------------------------

func checkCORSCredentials(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	e := o.corsCred
	c := offerOf(e)
	if m := c.malformed(); m != "" {
		return fail("with credentials: %s", m)
	}
	if ok, why := o.corsOffered(); !ok {
		return na("%s", why)
	}
	acac, hasACAC := "", false
	if vs := e.Header.Values("Access-Control-Allow-Credentials"); len(vs) > 0 {
		acac, hasACAC = strings.Join(vs, ","), true
	}
	switch {
	case !e.isStream():
		return fail("the request with Origin and a cookie got %s", describeResponse(e))
	case c.allow == "*" && hasACAC:
		return fail("Access-Control-Allow-Origin * with Allow-Credentials %q: browsers reject * for credentialed requests; echo the origin", acac)
	case c.allow == "*":
		return na("credentials not offered (Access-Control-Allow-Origin *, anonymous only)")
	case c.allow != o.cfg.Origin:
		return fail("with credentials Access-Control-Allow-Origin is %q, not the origin %s", c.allow, o.cfg.Origin)
	case !hasACAC:
		return warn("no Access-Control-Allow-Credentials: true: an EventSource with withCredentials is refused")
	case acac != "true":
		return fail("Access-Control-Allow-Credentials %q: only the exact value true counts", acac)
	}
	return pass("Access-Control-Allow-Origin %s, Access-Control-Allow-Credentials: true", c.allow)
}

// --- 16: preflight for Last-Event-ID --------------------------------------------------

func checkCORSPreflight(o *observations) outcome {
	if ok, why := o.corsOffered(); !ok {
		return na("%s", why)
	}
	p := o.preflight
	if !p.gotResponse() {
		return fail("OPTIONS preflight got no response (%s)", describeErr(p.Err))
	}
	if p.Status < 200 || p.Status > 299 {
		return fail("OPTIONS preflight answered %s: a cross-origin reconnect with a Last-Event-ID outside the safelist is blocked", statusText(p.Status))
	}
	c := offerOf(p)
	if m := c.malformed(); m != "" {
		return fail("preflight: %s", m)
	}
	if !c.allows(o.cfg.Origin) {
		return fail("preflight lacks Access-Control-Allow-Origin for %s (got %q)", o.cfg.Origin, c.allow)
	}
	var allowed []string
	for _, v := range p.Header.Values("Access-Control-Allow-Headers") {
		for _, part := range strings.Split(v, ",") {
			allowed = append(allowed, strings.ToLower(strings.TrimSpace(part)))
		}
	}
	for _, a := range allowed {
		if a == "last-event-id" || a == "*" {
			return pass("OPTIONS %d, Allow-Origin %s, Allow-Headers %s", p.Status, c.allow, strings.Join(allowed, ", "))
		}
	}
	return fail("preflight Access-Control-Allow-Headers %q does not include last-event-id", strings.Join(allowed, ", "))
}

// --- 17: CORS on the resumed request ---------------------------------------------------

func checkCORSResume(o *observations) outcome {
	if ok, why := o.corsOffered(); !ok {
		return na("%s", why)
	}
	e := o.corsResume
	if !e.isStream() {
		return fail("reconnect with Origin and Last-Event-ID got %s", describeResponse(e))
	}
	c := offerOf(e)
	if m := c.malformed(); m != "" {
		return fail("reconnect: %s", m)
	}
	if !c.allows(o.cfg.Origin) {
		return fail("reconnect with Last-Event-ID lacks Access-Control-Allow-Origin for %s (got %q): the browser drops the resumed stream", o.cfg.Origin, c.allow)
	}
	return pass("reconnect with Last-Event-ID: Access-Control-Allow-Origin %s", c.allow)
}
