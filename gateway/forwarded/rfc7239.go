package forwarded

import (
	"net/netip"
	"strings"
)

// element is one hop of a Forwarded header: the parameters gw reads.
type element struct {
	for_, proto, host string
}

// forwarded reads RFC 7239 Forwarded headers from a trusted peer. Hops are
// walked from the right as in walk; the hop the walk stops at was written
// by a trusted proxy (the one that received the client's connection), so
// its proto= and host= are what the client used. A for= that names no
// address ("unknown", an obfuscated "_hidden", §6.2-6.3) stops the walk:
// the client address stays that of the last hop that had one (REMOTE_ADDR
// is an address for every app), the scheme and host are still that hop's.
func (p *Policy) forwarded(values []string) Result {
	var buf [8]element
	els, ok := parseElements(buf[:0], values)
	if !ok {
		return Result{} // malformed: a header gw cannot read says nothing
	}
	var r Result
	for i := len(els) - 1; i >= 0; i-- {
		e := els[i]
		r.Scheme = scheme(e.proto)
		r.Host, r.Port = "", 0
		if validHost(e.host) {
			r.Host, r.Port = e.host, hostPort(e.host)
		}
		ap, ok := parseFor(e.for_)
		if !ok {
			break
		}
		r.Client = ap
		if !p.Trusts(ap.Addr()) {
			break
		}
	}
	return r
}

// parseFor reads a node (§6): an IPv4 address or a quoted "[IPv6]", each
// with an optional ":port" (quoted then); ok is false for "unknown", an
// obfuscated identifier or an obfuscated port.
func parseFor(s string) (netip.AddrPort, bool) {
	if s == "" || s == "unknown" || s[0] == '_' {
		return netip.AddrPort{}, false
	}
	if s[0] != '[' && strings.Count(s, ":") > 1 {
		return netip.AddrPort{}, false // IPv6 must be bracketed (§6)
	}
	return parseNode(s)
}

// parseElements splits Forwarded values into hops: elements by ",", pairs
// by ";", each pair token=token or token="quoted string". Keys are
// case-insensitive (§4); unknown ones are skipped.
func parseElements(els []element, values []string) ([]element, bool) {
	for _, v := range values {
		var e element
		empty := true
		for i := 0; ; {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i == len(v) {
				break
			}
			switch v[i] {
			case ',':
				if !empty {
					els = append(els, e)
				}
				e, empty = element{}, true
				i++
				continue
			case ';':
				i++
				continue
			}
			k := i
			for i < len(v) && isToken(v[i]) {
				i++
			}
			if i == k || i == len(v) || v[i] != '=' {
				return nil, false
			}
			key := v[k:i]
			i++
			var val string
			var ok bool
			if val, i, ok = value(v, i); !ok {
				return nil, false
			}
			switch {
			case strings.EqualFold(key, "for"):
				e.for_ = val
			case strings.EqualFold(key, "proto"):
				e.proto = val
			case strings.EqualFold(key, "host"):
				e.host = val
			}
			empty = false
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i < len(v) && v[i] != ';' && v[i] != ',' {
				return nil, false
			}
		}
		if !empty {
			els = append(els, e)
		}
	}
	return els, true
}

// value reads a token or a quoted-string at v[i:].
func value(v string, i int) (string, int, bool) {
	if i < len(v) && v[i] == '"' {
		i++
		start, esc := i, false
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' {
				esc = true
				i++
			}
		}
		if i >= len(v) {
			return "", 0, false
		}
		s := v[start:i]
		if esc {
			var b strings.Builder
			for j := 0; j < len(s); j++ {
				if s[j] == '\\' {
					j++
				}
				b.WriteByte(s[j])
			}
			s = b.String()
		}
		return s, i + 1, true
	}
	k := i
	for i < len(v) && isToken(v[i]) {
		i++
	}
	return v[k:i], i, i > k
}

// isToken is RFC 9110's tchar.
func isToken(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
