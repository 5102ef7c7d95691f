package config

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// proxy reads proxy: (and checks listen.proxy_protocol against it).
func (l *loader) proxy(p *Proxy, ls Listen) {
	val := l.get("proxy.trusted")
	for i, s := range val.list {
		item := value{text: strings.TrimSpace(s), path: val.path, set: true}
		if val.node != nil && val.node.Kind == yaml.SequenceNode && i < len(val.node.Content) {
			item.node, item.path = val.node.Content[i], fmt.Sprintf("%s[%d]", val.path, i)
		}
		if item.text == "" {
			continue
		}
		nets, unix, err := parseTrusted(item.text)
		if err != nil {
			l.c.of(item, "%v", err)
			continue
		}
		p.Trusted = append(p.Trusted, nets...)
		p.TrustUnix = p.TrustUnix || unix
	}
	h := l.get("proxy.headers")
	switch p.Headers = strings.ToLower(strings.TrimSpace(h.text)); p.Headers {
	case "x-forwarded", "forwarded":
	default:
		l.c.of(h, "proxy headers must be x-forwarded or forwarded, got %q", h.text)
	}
	if ls.ProxyProtocol && len(p.Trusted) == 0 {
		// Accepting it from anyone would let any client claim any
		// address; the spec has a receiver expect it from known proxies.
		l.c.of(l.get("listen.proxy_protocol"), "the PROXY protocol needs proxy.trusted: the addresses of the proxies that send it")
	}
}

// parseTrusted reads one entry of proxy.trusted: a CIDR, a single IP (a
// /32 or /128), "unix" (every peer of a unix-socket listener), or "*"
// (everyone: only where nothing but the proxy can reach gw).
func parseTrusted(s string) (nets []netip.Prefix, unix bool, err error) {
	switch strings.ToLower(s) {
	case "unix", "unix:":
		return nil, true, nil
	case "*":
		return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, true, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, false, fmt.Errorf("trusted proxy %q is not a CIDR (like 10.0.0.0/8 or fd00::/8)", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		if p != p.Masked() {
			return nil, false, fmt.Errorf("trusted proxy %q has host bits set; did you mean %s?", s, p.Masked())
		}
		return []netip.Prefix{p}, false, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return nil, false, fmt.Errorf("trusted proxy %q is not an IP address or CIDR (host names are not looked up)", s)
	}
	a = a.Unmap()
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, false, nil
}
