// Package cgi builds the CGI/1.1 meta-variables (RFC 3875) that every
// runner protocol carries: the bridge head for Python/Ruby/Perl and, later,
// FastCGI params for php-cgi. One builder, so every language sees the same
// request the same way.
package cgi

import (
	"net"
	"net/http"
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

// Build sends r's variables to s.
func Build(s Sink, r *http.Request, m Mount) {
	s.Add("REQUEST_METHOD", r.Method)
	s.Add("SCRIPT_NAME", m.ScriptName)
	s.Add("PATH_INFO", strings.TrimPrefix(r.URL.Path, m.ScriptName))
	s.Add("QUERY_STRING", r.URL.RawQuery)
	s.Add("REQUEST_URI", r.RequestURI)
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
}

// serverHostPort takes SERVER_NAME from the Host header (lower-cased, no
// port) and SERVER_PORT from it too, else from the listener's own address.
func serverHostPort(r *http.Request) (string, string) {
	host, port := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	if port == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
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
