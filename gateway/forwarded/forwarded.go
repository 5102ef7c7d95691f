// Package forwarded decides what a request's proxy headers may change: the
// client address, scheme, host and port that X-Forwarded-* or RFC 7239
// Forwarded carry, believed from trusted peers only
// (docs/design/proxy.md). Headers in, a Result out; the gateway applies it.
package forwarded

import (
	"net/http"
	"net/netip"
	"strings"
)

// Mode is the header family a policy believes.
type Mode uint8

const (
	// XForwarded is X-Forwarded-For, -Proto, -Host and -Port.
	XForwarded Mode = iota
	// Forwarded is RFC 7239's Forwarded: for, proto and host.
	Forwarded
)

// Policy says whom to believe and which headers.
type Policy struct {
	nets []netip.Prefix
	unix bool // peers on unix-socket listeners
	mode Mode
}

// New returns the policy, or nil when it trusts nobody: the gateway's one
// nil check then skips everything.
func New(nets []netip.Prefix, unix bool, mode Mode) *Policy {
	if len(nets) == 0 && !unix {
		return nil
	}
	return &Policy{nets: nets, unix: unix, mode: mode}
}

// Trusts reports whether ip is a trusted proxy.
func (p *Policy) Trusts(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// TrustsPeer reports whether the peer at remote (a request's RemoteAddr)
// is trusted. A RemoteAddr that is no "ip:port" is a unix-socket peer's.
func (p *Policy) TrustsPeer(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return p.unix
	}
	return p.Trusts(ap.Addr())
}

// Result is what a trusted peer's headers say; zero fields say nothing.
type Result struct {
	Client netip.AddrPort // port 0 when the header gave none
	Scheme string         // "http" or "https"
	Host   string         // as the client sent it, port included if any
	Port   uint16         // X-Forwarded-Port, else the host's port
}

// Stripped are the headers removed from an untrusted peer's request: the
// ones gw believes and the ones frameworks do (Rails and Symfony read
// X-Forwarded-Ssl and -Scheme, Puma X-Forwarded-Proto from anyone, Django
// X-Forwarded-Host with USE_X_FORWARDED_HOST), so none of them reaches an
// app that would trust it blindly.
var Stripped = []string{
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol",
	"X-Real-Ip", "X-Url-Scheme", "Front-End-Https",
}

// Strip removes the Stripped headers from h.
func Strip(h http.Header) {
	for _, k := range Stripped {
		delete(h, k)
	}
}

// Read returns what h says, in p's mode, from a trusted peer at peer.
func (p *Policy) Read(h http.Header) Result {
	if p.mode == Forwarded {
		return p.forwarded(h["Forwarded"])
	}
	var r Result
	if xff := h["X-Forwarded-For"]; len(xff) > 0 {
		r.Client = p.walk(xff)
	}
	if v := last(h["X-Forwarded-Proto"]); v != "" {
		r.Scheme = scheme(v)
	}
	if v := last(h["X-Forwarded-Host"]); validHost(v) {
		r.Host = v
		r.Port = hostPort(v)
	}
	if v := last(h["X-Forwarded-Port"]); v != "" {
		if n, ok := parsePort(v); ok && n > 0 {
			r.Port = n
		}
	}
	return r
}

// walk takes X-Forwarded-For from the right, skipping trusted proxies, to
// the first address that is not one: nginx's real_ip_recursive on. If
// every address is trusted the leftmost is the client; an entry that is no
// address ends the walk at the hop before it (a trusted proxy's own peer
// is always an address; what lies left of it nobody vouches for).
func (p *Policy) walk(values []string) netip.AddrPort {
	var client netip.AddrPort
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var elem string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				elem, v = v[j+1:], v[:j]
			} else {
				elem, v = v, ""
			}
			elem = strings.TrimSpace(elem)
			if elem == "" {
				continue
			}
			ap, ok := parseNode(elem)
			if !ok {
				return client
			}
			client = ap
			if !p.Trusts(ap.Addr()) {
				return client
			}
		}
	}
	return client
}

// parseNode reads "1.2.3.4", "1.2.3.4:5678", "2001:db8::1" or
// "[2001:db8::1]:5678".
func parseNode(s string) (netip.AddrPort, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0), true
	}
	if s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return netip.AddrPortFrom(a.Unmap(), 0), true
		}
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// last is the rightmost element of a comma list that may span header
// lines: what the nearest (trusted) proxy set.
func last(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	if j := strings.LastIndexByte(v, ','); j >= 0 {
		v = v[j+1:]
	}
	return strings.TrimSpace(v)
}

func scheme(v string) string {
	switch {
	case strings.EqualFold(v, "https"):
		return "https"
	case strings.EqualFold(v, "http"):
		return "http"
	}
	return ""
}

// validHost accepts a reg-name, an IPv4 address or a bracketed IPv6
// address, with an optional port (RFC 9110 §7.2's Host); anything else
// (a path, userinfo, spaces) is not a host and is ignored.
func validHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	host, port := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if a, err := netip.ParseAddr(s[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		host, port = "", s[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		if _, ok := parsePort(port[1:]); !ok {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return s[0] == '[' || host != ""
}

// hostPort is the port of a valid host, 0 without one.
func hostPort(s string) uint16 {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[i:], ']') >= 0 {
		return 0
	}
	n, _ := parsePort(s[i+1:])
	return n
}

func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return uint16(n), n <= 65535
}
