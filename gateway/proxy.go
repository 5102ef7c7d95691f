package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gwhq/gw/gateway/forwarded"
	"github.com/gwhq/gw/gateway/proxyproto"
	"github.com/gwhq/gw/internal/config"
)

// proxyPolicy is cfg's trust in the proxies in front, nil when it trusts
// none.
func proxyPolicy(cfg config.Proxy) *forwarded.Policy {
	mode := forwarded.XForwarded
	if cfg.Headers == "forwarded" {
		mode = forwarded.Forwarded
	}
	return forwarded.New(cfg.Trusted, cfg.TrustUnix, mode)
}

// httpEntry is the handler of the HTTP and HTTPS listeners: their
// requests' proxy headers are judged before anything else looks at them.
// The uwsgi and FastCGI listeners skip this: the front server's params
// already carry REMOTE_ADDR, HTTPS and the host (cgireq), so gw passes
// the headers on as they came, as uWSGI and php-fpm do.
//
// On the plain HTTP listener with listen.redirect_https, redirect holds
// the HTTPS listener's port (":8443", "" for 443) and every request a
// trusted proxy did not receive over TLS gets a 308 there instead.
type httpEntry struct {
	g        *Gateway
	redirect *string
}

func (e httpEntry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := e.g.proxy.Load(); p != nil { // the one check when no proxy is trusted
		r = applyProxy(p, r)
	}
	if e.redirect != nil && r.TLS == nil {
		redirectHTTPS(w, r, *e.redirect)
		return
	}
	e.g.ServeHTTP(w, r)
}

// plainHandler is the handler of an HTTP (or HTTPS) listener: httpEntry,
// with the redirect to HTTPS on the HTTP listener when configured, behind
// the ACME HTTP-01 challenge answers (which must not be redirected: a CA
// validating a first certificate has no HTTPS to follow to).
func (g *Gateway) plainHandler(ln listener) http.Handler {
	e := httpEntry{g: g}
	if ln.proto != "http" {
		return e
	}
	if g.cfg.Listen.RedirectHTTPS {
		port := ""
		for _, l := range g.lns {
			if ta, ok := l.Addr().(*net.TCPAddr); ok && l.proto == "https" && ta.Port != 443 {
				port = ":" + strconv.Itoa(ta.Port)
			}
		}
		e.redirect = &port
	}
	if g.acme != nil {
		return g.acme.HTTPHandler(e)
	}
	return e
}

// redirectHTTPS answers 308 (RFC 9110 §15.4.9: the method and body are
// kept, unlike 301) to the request's URL over HTTPS on port.
func redirectHTTPS(w http.ResponseWriter, r *http.Request, port string) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if host == "" {
		http.Error(w, "Host header needed to redirect to HTTPS", http.StatusBadRequest)
		return
	}
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	w.Header().Set("Location", "https://"+host+port+uri)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// forwardedTLS marks a request a trusted proxy received over TLS: every
// runner (and cgireq, for uwsgi and FastCGI) reads the scheme from r.TLS,
// so this is the one place the scheme comes from. Shared and never
// written: an empty state is all handlers test.
var forwardedTLS = &tls.ConnectionState{HandshakeComplete: true}

// Shared SERVER_PORT sources for the default ports, so the common case
// (a scheme forwarded, no port) allocates no address.
var (
	port80  = &net.TCPAddr{Port: 80}
	port443 = &net.TCPAddr{Port: 443}
)

// applyProxy rewrites r as its trusted proxy says, or strips the proxy
// headers of a peer that is not one, so no app believes them by mistake.
// r is changed in place (RemoteAddr, TLS, Host, Header: fields both front
// ends set afresh for each request); only a forwarded port, which lives
// in the context, costs a shallow copy.
func applyProxy(p *forwarded.Policy, r *http.Request) *http.Request {
	if !p.TrustsPeer(r.RemoteAddr) {
		forwarded.Strip(r.Header)
		return r
	}
	res := p.Read(r.Header)
	if res.Client.IsValid() {
		r.RemoteAddr = res.Client.String()
	}
	switch res.Scheme {
	case "https":
		r.TLS = forwardedTLS
	case "http":
		r.TLS = nil
	}
	if res.Host != "" {
		r.Host = res.Host
	}
	if res.Scheme == "" && res.Port == 0 {
		return r
	}
	// SERVER_PORT: what the client connected to, not gw's port. A port
	// the Host lacks goes into it when it is not the scheme's default,
	// as the client's URL had it (Werkzeug's ProxyFix does the same).
	port := res.Port
	if port == 0 {
		port = 80
		if r.TLS != nil {
			port = 443
		}
	}
	if _, _, err := net.SplitHostPort(r.Host); err == nil {
		return r // the Host's own port is SERVER_PORT
	}
	if def := (r.TLS == nil && port == 80) || (r.TLS != nil && port == 443); !def {
		r.Host = net.JoinHostPort(r.Host, strconv.Itoa(int(port)))
		return r
	}
	la := port80
	if port == 443 {
		la = port443
	}
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
}

// proxyListener wraps a TCP listener for listen.proxy_protocol; the raw
// listener stays in g.lns, so an upgrade hands on the socket itself.
func (g *Gateway) proxyListener(ln net.Listener, proto string) net.Listener {
	if !g.cfg.Listen.ProxyProtocol {
		return ln
	}
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		return ln // unix sockets: the peer is local, its address is not an IP
	}
	return &proxyproto.Listener{
		Listener: ln,
		Timeout:  g.cfg.Limits.ReadHeaderTimeout,
		// The current policy, so a reload's proxy.trusted applies to
		// new connections.
		Trusted: func(a netip.Addr) bool {
			p := g.proxy.Load()
			return p != nil && p.Trusts(a)
		},
		OnError: func(peer net.Addr, err error) {
			g.proxyRefused.Add(1)
			g.log.Debug("PROXY protocol: connection closed", "proto", proto, "peer", peer.String(), "err", err)
		},
	}
}
