package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// listenerKeys are the keys of the listeners that serve apps; stats is not
// one, so a stats listener alone still gets the default HTTP listener.
var listenerKeys = []string{"listen.http", "listen.https", "listen.uwsgi", "listen.fastcgi"}

// defaultHTTP is the HTTP listener used when no listener is given.
var defaultHTTP = Addr{Network: "tcp", Address: ":8080"}

func (l *loader) listen(ls *Listen) {
	addrs := map[string]*Addr{
		"listen.http":    &ls.HTTP,
		"listen.https":   &ls.HTTPS,
		"listen.uwsgi":   &ls.UWSGI,
		"listen.fastcgi": &ls.FastCGI,
		"listen.stats":   &ls.Stats,
		"listen.control": &ls.Control,
	}
	byAddr := map[Addr]value{}
	for _, key := range append(listenerKeys, "listen.stats", "listen.control") {
		for i, val := range l.addrValues(key) {
			a, err := ParseAddr(val.text)
			if err != nil {
				l.c.of(val, "%v", err)
				continue
			}
			if key == "listen.control" && a.Network != "unix" {
				// Only a socket file has an owner and a mode to guard it; a TCP
				// port would let any local user reload or drain gw.
				l.c.of(val, "control socket %q: want unix:/path (the control socket is a unix socket only)", val.text)
				continue
			}
			// Two listeners on one address would fail at bind time with a
			// less helpful "address already in use". Port 0 asks the kernel
			// for a fresh port each time, so it never collides.
			if first, dup := byAddr[a]; dup && !strings.HasSuffix(a.Address, ":0") {
				l.c.of(val, "same address as %s", first.path)
				continue
			}
			byAddr[a] = val
			if i == 0 {
				*addrs[key] = a
			} else {
				ls.More = append(ls.More, MoreAddr{Proto: strings.TrimPrefix(key, "listen."), Addr: a})
			}
		}
	}
	if !l.anyListenerGiven() {
		ls.HTTP = defaultHTTP
	}

	if mode := l.get("listen.chmod_socket"); mode.text != "" {
		m, err := parseMode(mode.text)
		if err != nil {
			l.c.of(mode, "%v", err)
		}
		ls.ChmodSocket = m
	}

	if own := l.get("listen.chown_socket"); own.text != "" {
		o, err := parseOwner(own.text)
		if err != nil {
			l.c.of(own, "%v", err)
		}
		ls.ChownSocket = o
	}

	l.http3(ls)
	ls.H2C = l.boolean(l.get("listen.h2c"))
	ls.ProxyProtocol = l.boolean(l.get("listen.proxy_protocol"))

	ls.RedirectHTTPS = l.boolean(l.get("listen.redirect_https"))
	if ls.RedirectHTTPS && (ls.HTTP.IsZero() || ls.HTTPS.IsZero()) {
		l.c.of(l.get("listen.redirect_https"), "redirect_https needs both an HTTP and an HTTPS listener (listen.http and listen.https)")
	}
	l.tls(ls)
}

// tls reads listen.tls: a certificate and key, or acme, exactly one of the
// two whenever there is an HTTPS listener.
func (l *loader) tls(ls *Listen) {
	cert, key := l.get("listen.tls.cert"), l.get("listen.tls.key")
	if cert.text != "" {
		ls.TLS.Cert = l.tlsFile(cert)
	}
	if key.text != "" {
		ls.TLS.Key = l.tlsFile(key)
	}
	ls.TLS.ACME = l.acme()
	https := l.addrValues("listen.https")
	files := cert.text != "" || key.text != ""
	switch {
	case ls.TLS.ACME != nil && files:
		l.c.of(cert, "tls.cert and tls.key, or tls.acme: set one of the two, not both")
	case ls.TLS.ACME != nil && len(https) == 0:
		l.c.of(l.get("listen.tls.acme.domains"), "tls.acme needs an HTTPS listener: set listen.https (e.g. :443)")
	case ls.TLS.ACME == nil && len(https) > 0 && (cert.text == "" || key.text == ""):
		l.c.of(https[0], "an HTTPS listener needs a certificate and key: set tls.cert and tls.key under listen:, or --cert and --key; or tls.acme with domains for automatic HTTPS")
	}
}

// acme reads listen.tls.acme, nil when none of it is set.
func (l *loader) acme() *ACME {
	doms, ca, root, store := l.get("listen.tls.acme.domains"), l.get("listen.tls.acme.ca"),
		l.get("listen.tls.acme.ca_root"), l.get("listen.tls.acme.storage")
	email, every := l.get("listen.tls.acme.email"), l.get("listen.tls.acme.renew_interval")
	if !doms.set && !ca.set && !root.set && !store.set && !email.set && !every.set {
		return nil
	}
	a := &ACME{Email: strings.TrimSpace(email.text), CA: strings.TrimSpace(ca.text), RenewInterval: l.duration(every)}
	for _, d := range doms.list {
		if d = strings.ToLower(strings.TrimSpace(d)); d == "" {
			continue
		}
		if err := checkDomain(d); err != nil {
			l.c.of(doms, "%v", err)
			continue
		}
		a.Domains = append(a.Domains, d)
	}
	if len(a.Domains) == 0 {
		l.c.of(doms, "tls.acme needs domains: the names to get a certificate for, like [example.org]")
	}
	if u, err := url.Parse(a.CA); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		l.c.of(ca, "tls.acme.ca %q: want the CA's ACME directory URL, like https://acme-v02.api.letsencrypt.org/directory", a.CA)
	}
	if root.text != "" {
		a.CARoot = l.path(root)
		l.mustExist(root, a.CARoot, false)
	}
	if a.RenewInterval <= 0 {
		l.c.of(every, "tls.acme.renew_interval must be above 0")
	}
	a.Storage = l.path(store)
	if a.Storage == "" {
		a.Storage = defaultACMEStorage()
	}
	return a
}

// checkDomain refuses names no ACME CA issues for over HTTP-01 or
// TLS-ALPN-01, the challenges gw answers: a wildcard needs DNS-01.
func checkDomain(d string) error {
	switch {
	case strings.HasPrefix(d, "*."):
		return fmt.Errorf("domain %q: a wildcard needs the DNS-01 challenge, which gw does not answer; list the names", d)
	case strings.ContainsAny(d, "/: \t"):
		return fmt.Errorf("domain %q: want a host name, without scheme, port or path", d)
	}
	return nil
}

// defaultACMEStorage is where certificates are kept when tls.acme.storage
// is not set: /var/lib/gw/acme for root (as /var/lib/caddy), the XDG data
// directory otherwise (as Caddy's ~/.local/share/caddy).
func defaultACMEStorage() string {
	if os.Geteuid() == 0 {
		return "/var/lib/gw/acme"
	}
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "gw", "acme")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "gw", "acme")
	}
	return filepath.Join(os.TempDir(), "gw-acme")
}

// http3 reads listen.http3, a UDP address. It needs the HTTPS listener:
// it serves HTTPS's certificate, and clients learn of it from the Alt-Svc
// header of HTTPS answers. The same port as HTTPS is the usual choice
// (UDP and TCP ports do not collide).
func (l *loader) http3(ls *Listen) {
	val := l.get("listen.http3")
	if val.text == "" {
		return
	}
	a, err := ParseAddr(val.text)
	if err != nil {
		l.c.of(val, "%v", err)
		return
	}
	if a.Network == "unix" {
		l.c.of(val, "HTTP/3 listener %q: want host:port or :port (HTTP/3 runs over UDP)", val.text)
		return
	}
	if len(l.addrValues("listen.https")) == 0 {
		l.c.of(val, "an HTTP/3 listener needs the HTTPS listener: set listen.https (--https) with its certificate; HTTP/3 shares it and is advertised on its answers")
		return
	}
	ls.HTTP3 = Addr{Network: "udp", Address: a.Address}
}

// tlsFile resolves a certificate or key path and checks it exists. One
// this process may not even look at is left for the reader to judge: keys
// live in root's 0700 directories (certbot's live/), which gw reads as root
// at start and, once it has dropped root, at SIGHUP through its privileged
// helper (internal/privsep); `gw check` is often run by another user too.
func (l *loader) tlsFile(val value) string {
	p := l.path(val)
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrPermission) {
		l.mustExist(val, p, false)
	}
	return p
}

// addrValues are the addresses given for a listener key, one value each:
// the app listeners take a list (a YAML list, the flag repeated, commas in
// the variable), stats and control one address. Empty items are skipped.
func (l *loader) addrValues(key string) []value {
	val := l.get(key)
	if len(val.list) == 0 {
		if val.text == "" {
			return nil
		}
		return []value{val}
	}
	var out []value
	for i, s := range val.list {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v := val
		v.text, v.list = s, nil
		if len(val.list) > 1 {
			v.path = fmt.Sprintf("%s[%d]", val.path, i)
		}
		if val.node != nil && val.node.Kind == yaml.SequenceNode {
			v.node = deref(val.node.Content[i])
		}
		out = append(out, v)
	}
	return out
}

// anyListenerGiven reports whether the user set an app listener at all,
// even a bad one: a typo in --uwsgi must not quietly open :8080 instead.
func (l *loader) anyListenerGiven() bool {
	for _, key := range listenerKeys {
		if len(l.addrValues(key)) > 0 {
			return true
		}
	}
	return false
}

func (l *loader) limits(lm *Limits) {
	lm.MaxHeader = l.size(l.get("limits.max_header"), 1)
	lm.MaxBody = l.size(l.get("limits.max_body"), 1)
	lm.ReadHeaderTimeout = l.duration(l.get("limits.read_header_timeout"))
	lm.IdleTimeout = l.duration(l.get("limits.idle_timeout"))
	lm.ShutdownTimeout = l.duration(l.get("limits.shutdown_timeout"))
	lm.ShutdownDelay = l.durationOff(l.get("limits.shutdown_delay"))
	lm.ResponseBuffer = l.size(l.get("limits.response_buffer"), 0)
	lm.ResponseTempMax = l.size(l.get("limits.response_temp_max"), 0)
	lm.SendTimeout = l.durationOff(l.get("limits.send_timeout"))
	lm.BodyBufferSize = l.size(l.get("limits.body_buffer_size"), 1)
	lm.BodyTimeout = l.duration(l.get("limits.body_timeout"))
	lm.LingeringTime = l.durationOff(l.get("limits.lingering_time"))
	lm.LingeringTimeout = l.duration(l.get("limits.lingering_timeout"))
	lm.WebSocketMaxMessage = l.size(l.get("limits.websocket_max_message"), 1)
	lm.WebSocketPing = l.durationOff(l.get("limits.websocket_ping"))
	wc := l.get("limits.websocket_compression")
	switch lm.WebSocketCompression = strings.ToLower(strings.TrimSpace(wc.text)); lm.WebSocketCompression {
	case WSCompressionOff, WSCompressionOn, WSCompressionContextTakeover:
	case "false", "no":
		lm.WebSocketCompression = WSCompressionOff
	case "true", "yes":
		lm.WebSocketCompression = WSCompressionOn
	default:
		l.c.of(wc, "websocket compression must be off, on or context-takeover, got %q", wc.text)
	}
}

// Equal reports whether l and o configure the same listeners (a reload
// keeps the bound ones when they differ). Deep: each load makes its own
// TLS.ACME and More.
func (l Listen) Equal(o Listen) bool { return reflect.DeepEqual(l, o) }
