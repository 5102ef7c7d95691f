// Package cgi builds the CGI/1.1 meta-variables (RFC 3875) that every
// runner protocol carries: the bridge head for Python/Ruby/Perl and, later,
// FastCGI params for php-cgi. One builder, so every language sees the same
// request the same way.
package cgi

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Sink receives the variables. AddHeader gets the canonical header name
// (e.g. "User-Agent") and writes it as HTTP_USER_AGENT itself, so building
// the name costs no allocation.
type Sink interface {
	Add(name, value string)
	AddHeader(canonical, value string)
}

// Mount is the part of the route the app is mounted at.
type Mount struct {
	// ScriptName is the mount prefix ("" for "/"); PATH_INFO is the rest.
	ScriptName string
}

// skip lists request headers that never become HTTP_* variables: framing
// and hop-by-hop headers belong to the gateway's connection (RFC 9110
// §7.6.1), CONTENT_* have their own variables (all three lints reject
// HTTP_CONTENT_*), and Proxy is the httpoxy hole (CVE-2016-5385).
var skip = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Expect": true, "Proxy": true, "Content-Type": true, "Content-Length": true,
	"Http2-Settings": true,
}

// Build sends r's variables to s. The first ten, in this order, are what
// gw_asgi.py's build_scope reads by position (its LEAD); another order
// stays correct there but takes its slower general path.
func Build(s Sink, r *http.Request, m Mount) {
	s.Add("REQUEST_METHOD", r.Method)
	s.Add("SCRIPT_NAME", m.ScriptName)
	s.Add("PATH_INFO", strings.TrimPrefix(r.URL.Path, m.ScriptName))
	s.Add("QUERY_STRING", r.URL.RawQuery)
	s.Add("REQUEST_URI", requestURI(r))
	s.Add("SERVER_PROTOCOL", r.Proto)
	host, port := serverHostPort(r)
	s.Add("SERVER_NAME", host)
	s.Add("SERVER_PORT", port)
	if ra, rp, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		s.Add("REMOTE_ADDR", ra)
		s.Add("REMOTE_PORT", rp)
	} else {
		// A unix-socket client has no address; CGI wants one.
		s.Add("REMOTE_ADDR", "127.0.0.1")
		s.Add("REMOTE_PORT", "0")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		s.Add("CONTENT_TYPE", ct)
	}
	if _, ok := r.Header["Content-Length"]; ok && r.ContentLength >= 0 {
		s.Add("CONTENT_LENGTH", itoa(r.ContentLength))
	}
	if r.Host != "" {
		s.AddHeader("Host", r.Host)
	}
	for name, values := range r.Header {
		if skip[name] || strings.IndexByte(name, '_') >= 0 {
			// Underscored names would collide with dashed ones
			// (X_Forwarded_For vs X-Forwarded-For); nginx drops them
			// too (underscores_in_headers off).
			continue
		}
		switch len(values) {
		case 0:
		case 1:
			s.AddHeader(name, values[0])
		default:
			sep := ", "
			if name == "Cookie" {
				sep = "; " // RFC 6265 §5.4
			}
			s.AddHeader(name, strings.Join(values, sep))
		}
	}
	for name, value := range Params(r.Context()) {
		if forwarded(name) {
			s.Add(name, value)
		}
	}
}

// requestURI is REQUEST_URI: the target as the client sent it (raw, not
// decoded or cleaned), except that an absolute-form target
// ("http://host/x?y", RFC 9112 §3.2.2) loses its scheme and authority, as
// nginx's $request_uri does: apps take REQUEST_URI for a path.
func requestURI(r *http.Request) string {
	u := r.RequestURI
	if u == "" {
		return r.URL.RequestURI()
	}
	i := strings.Index(u, "://")
	if u[0] == '/' || i < 0 {
		return u // origin-form, "*", or CONNECT's authority-form
	}
	rest := u[i+len("://"):]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[i:]
	} else {
		rest = ""
	}
	if rest == "" || rest[0] != '/' {
		rest = "/" + rest // "http://host?x" is "/?x"
	}
	return rest
}

type paramsKey struct{}

// WithParams attaches the variables a front server (nginx over uwsgi or
// FastCGI) sent with a request, as they came, for Build to forward.
func WithParams(ctx context.Context, params map[string]string) context.Context {
	return context.WithValue(ctx, paramsKey{}, params)
}

// Params returns what WithParams attached to ctx (nil if nothing). The map
// is shared; do not modify it.
func Params(ctx context.Context) map[string]string {
	p, _ := ctx.Value(paramsKey{}).(map[string]string)
	return p
}

// computed lists the variables Build derives itself. A front server's
// param of the same name never replaces them: SCRIPT_NAME and PATH_INFO
// come from gw's mount, CONTENT_LENGTH is the framing of the body gw
// sends, and the rest already carry the front server's value through the
// request (cgireq builds r from them).
var computed = map[string]bool{
	"REQUEST_METHOD": true, "SCRIPT_NAME": true, "PATH_INFO": true, "QUERY_STRING": true,
	"REQUEST_URI": true, "SERVER_PROTOCOL": true, "SERVER_NAME": true, "SERVER_PORT": true,
	"REMOTE_ADDR": true, "REMOTE_PORT": true, "CONTENT_TYPE": true, "CONTENT_LENGTH": true,
}

// forwarded reports whether a front server's param reaches the app as it
// came: REMOTE_USER (nginx auth_basic), DOCUMENT_ROOT, HTTPS, any custom
// uwsgi_param or fastcgi_param. Not HTTP_* (the headers come from
// r.Header, which has dropped the hop-by-hop ones nginx forwards, trap 2),
// not UWSGI_* (uWSGI 2.0 loads code they name; gw gives them no meaning,
// trap 1), not what Build computes, and only CGI-shaped names (RFC 3875
// §4.1: letters, digits, "_"), so no param can set an app server's own
// key such as wsgi.input, rack.input or psgi.errors.
func forwarded(name string) bool {
	if computed[name] || strings.HasPrefix(name, "HTTP_") || strings.HasPrefix(name, "UWSGI_") || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// serverHostPort takes SERVER_NAME from the Host header (lower-cased, no
// port) and SERVER_PORT from it too, else from the listener's own address.
func serverHostPort(r *http.Request) (string, string) {
	host, port := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	if port == "" {
		switch la := r.Context().Value(http.LocalAddrContextKey).(type) {
		case *net.TCPAddr:
			// The number itself: TCPAddr.String formats the IP too,
			// 6% of gw's CPU behind nginx uwsgi_pass (pprof).
			port = strconv.Itoa(la.Port)
		case net.Addr:
			if _, p, err := net.SplitHostPort(la.String()); err == nil {
				port = p
			}
		}
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	if host == "" {
		host = "localhost"
	}
	return strings.ToLower(host), port
}

// AppendName appends the CGI name of a canonical header name
// ("User-Agent" -> "HTTP_USER_AGENT").
func AppendName(dst []byte, canonical string) []byte {
	dst = append(dst, "HTTP_"...)
	for i := 0; i < len(canonical); i++ {
		c := canonical[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func itoa(n int64) string {
	if n >= 0 && n < 10 {
		return string(rune('0' + n))
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
