// Package cgireq is the handler side of a CGI-style exchange, shared by the
// uwsgi and FastCGI servers: it turns the CGI/1.1 variables a front end such
// as nginx sends (RFC 3875 §4.1, protocols.md §1.4 and §2.4) into the
// *http.Request a gw handler sees, and writes the handler's response back
// with the head each protocol wants. One conversion, so a request looks the
// same whichever protocol carried it.
//
// It is the mirror of internal/cgi, which builds the variables from an
// *http.Request for the runners.
package cgireq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gwhq/gw/internal/cgi"
)

// Vars holds the CGI variables of one request, as the front end sent them.
type Vars map[string]string

// Add records one variable. A repeated HTTP_* name is joined with ", "
// (HTTP_COOKIE with "; "): nginx ≤1.22 sends one variable per header line
// and 1.23 joins them this way (trap 4; RFC 9110 §5.3, RFC 6265 §5.4).
// Any other repeated name keeps the last value, as php-cgi and uWSGI do, so
// a `fastcgi_param` after an include overrides the included one.
func (v Vars) Add(name, value string) {
	old, dup := v[name]
	if !dup || !strings.HasPrefix(name, "HTTP_") {
		v[name] = value
		return
	}
	sep := ", "
	if name == "HTTP_COOKIE" {
		sep = "; "
	}
	v[name] = old + sep + value
}

// ContentLength parses CONTENT_LENGTH: -1 when absent or empty (nginx sends
// an empty CONTENT_LENGTH on every GET, trap 3), else its digits.
func (v Vars) ContentLength() (int64, error) {
	s := v["CONTENT_LENGTH"]
	if s == "" {
		return -1, nil
	}
	// Digits only: strconv would take "+5", and RFC 9110 §8.6 wants 1*DIGIT.
	if len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad CONTENT_LENGTH %.32q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// dropped lists headers that never reach r.Header. Framing and hop-by-hop
// headers describe the client's connection to nginx, not this hop (RFC 9110
// §7.6.1); nginx forwards them anyway (trap 2). Content-Type and
// Content-Length come from CONTENT_TYPE and CONTENT_LENGTH instead, Host
// becomes r.Host, and Proxy is the httpoxy hole (CVE-2016-5385).
var dropped = map[string]bool{
	"Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Http2-Settings": true,
	"Expect": true, "Proxy": true, "Host": true,
}

// Params returns every variable the front end sent for the request ctx
// belongs to: also those http.Request has no field for (DOCUMENT_ROOT,
// SCRIPT_NAME, REMOTE_USER, custom uwsgi_param/fastcgi_param lines), as
// net/http/fcgi.ProcessEnv does. It is nil outside such a request. The map
// is shared; do not modify it. It still holds the HTTP_* variables that
// r.Header drops (trap 2), so never copy it wholesale into an environment:
// internal/cgi.Build forwards what an app may see.
func Params(ctx context.Context) map[string]string { return cgi.Params(ctx) }

// Request builds the request a handler sees; ctx becomes its context, with
// v reachable through Params. body is the stream that follows the
// variables, or nil if there is none. With a CONTENT_LENGTH the request body
// is exactly that many bytes of it (a stream that ends early gives
// ErrShortBody, RFC 3875 §4.2); without one it is all of body, or empty
// when body is nil.
func Request(ctx context.Context, v Vars, body io.Reader) (*http.Request, error) {
	r := &http.Request{Method: v["REQUEST_METHOD"], Header: http.Header{}}
	if !validToken(r.Method) {
		return nil, fmt.Errorf("bad REQUEST_METHOD %.32q", r.Method)
	}
	r.Proto = v["SERVER_PROTOCOL"]
	if r.Proto == "" {
		r.Proto = "HTTP/1.0" // RFC 3875 §4.1.16 requires it; be lenient.
	}
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(r.Proto); !ok {
		return nil, fmt.Errorf("bad SERVER_PROTOCOL %.32q", r.Proto)
	}
	if err := setURL(r, v); err != nil {
		return nil, err
	}
	if err := setHeader(r, v); err != nil {
		return nil, err
	}
	if err := setBody(r, v, body); err != nil {
		return nil, err
	}
	if s := v["HTTPS"]; strings.EqualFold(s, "on") || s == "1" || v["REQUEST_SCHEME"] == "https" {
		// The front end terminated TLS; an empty state is enough for
		// handlers (and internal/cgi) to see scheme https.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	if a := v["REMOTE_ADDR"]; a != "" {
		r.RemoteAddr = net.JoinHostPort(a, portOr0(v["REMOTE_PORT"]))
	}
	ctx = cgi.WithParams(ctx, v)
	if p, err := strconv.ParseUint(v["SERVER_PORT"], 10, 16); err == nil {
		// What http.Server puts here is the address the client reached;
		// for us that is nginx's listener, not our socket.
		la := &net.TCPAddr{IP: net.ParseIP(v["SERVER_ADDR"]), Port: int(p)}
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, la)
	}
	return r.WithContext(ctx), nil
}

// setURL routes on what the front server resolved, as uWSGI does:
// r.URL.Path is SCRIPT_NAME+PATH_INFO (RFC 3875 §4.1.5, §4.1.13), which
// nginx fills from $document_uri or $fastcgi_script_name, already decoded,
// with dot segments removed and any `rewrite ... break` applied
// (protocols.md §1.4, §2.4); the query is QUERY_STRING ($args, which a
// rewrite may change too). r.RequestURI stays REQUEST_URI, the raw target
// the client sent. Only without SCRIPT_NAME and PATH_INFO does the path
// come from REQUEST_URI.
func setURL(r *http.Request, v Vars) error {
	r.URL = &url.URL{}
	if raw := v["REQUEST_URI"]; raw != "" {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return fmt.Errorf("bad REQUEST_URI: %w", err)
		}
		r.URL, r.RequestURI = u, raw
	}
	if p := v["SCRIPT_NAME"] + v["PATH_INFO"]; p != "" {
		if p[0] != '/' {
			p = "/" + p
		}
		if p != r.URL.Path {
			r.URL.Path, r.URL.RawPath = p, ""
		}
	} else if r.URL.Path == "" && r.URL.Opaque == "" {
		r.URL.Path = "/"
	}
	if q, ok := v["QUERY_STRING"]; ok {
		r.URL.RawQuery = q
	}
	if r.RequestURI == "" {
		r.RequestURI = r.URL.RequestURI()
	}
	// As http.Server does: an absolute-form target's host wins.
	switch {
	case r.URL.Host != "":
		r.Host = r.URL.Host
	case v["HTTP_HOST"] != "":
		r.Host = v["HTTP_HOST"]
	default:
		r.Host = v["SERVER_NAME"]
		if p := v["SERVER_PORT"]; r.Host != "" && p != "" && p != "80" && p != "443" {
			r.Host = net.JoinHostPort(r.Host, p)
		}
	}
	return nil
}

func setHeader(r *http.Request, v Vars) error {
	for k, val := range v {
		after, ok := strings.CutPrefix(k, "HTTP_")
		if !ok || !cgiName(after) {
			// Only what nginx can produce (upper case, digits, "_"), so
			// HTTP_x_a and HTTP_X_A never race for the same header.
			continue
		}
		name := http.CanonicalHeaderKey(strings.ReplaceAll(after, "_", "-"))
		if dropped[name] || !validToken(name) {
			continue
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			// nginx never sends these; a raw client could, to split
			// headers in whatever the handler forwards to.
			return fmt.Errorf("CR, LF or NUL in %s", k)
		}
		r.Header[name] = []string{val}
	}
	if ct := v["CONTENT_TYPE"]; ct != "" { // trap 3: '' means none
		r.Header["Content-Type"] = []string{ct}
	}
	return nil
}

func setBody(r *http.Request, v Vars, stream io.Reader) error {
	n, err := v.ContentLength()
	if err != nil {
		return err
	}
	switch {
	case n > 0:
		if stream == nil {
			stream = strings.NewReader("")
		}
		r.Body = &body{r: stream, n: n}
	case n < 0 && stream != nil:
		r.Body = &body{r: stream, n: -1}
	default:
		r.Body = http.NoBody
	}
	r.ContentLength = max(n, 0)
	if n < 0 && stream != nil {
		r.ContentLength = -1
	}
	if n >= 0 {
		// http.Server keeps Content-Length in r.Header; so do we, so
		// internal/cgi rebuilds CONTENT_LENGTH for the runners.
		r.Header["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	}
	return nil
}

func portOr0(p string) string {
	if p == "" {
		return "0"
	}
	return p
}

func cgiName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validToken reports whether s is an RFC 9110 §5.6.2 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ErrShortBody is what reading a body returns when the stream ended before
// CONTENT_LENGTH bytes: a FastCGI STDIN closed early, or a uwsgi peer that
// half-closed after too few bytes. The peer may still be there to read an
// answer, and the answer is 400: nginx's own for a body that ends early
// ("client prematurely closed connection"), where uWSGI raises an error
// into the app (protocols.md §1.3). It wraps io.ErrUnexpectedEOF.
var ErrShortBody = fmt.Errorf("request body shorter than its CONTENT_LENGTH: %w", io.ErrUnexpectedEOF)

// errBodyClosed mirrors net/http's "invalid Read on closed Body".
var errBodyClosed = errors.New("cgireq: read on closed body")

// body is a request body of n bytes (n < 0: until the stream ends).
type body struct {
	r      io.Reader
	n      int64
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	if b.n > 0 && int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	if b.n < 0 {
		return k, err
	}
	b.n -= int64(k)
	switch {
	case b.n == 0:
		err = io.EOF
	case err == io.EOF:
		err = ErrShortBody
	}
	return k, err
}

func (b *body) Close() error {
	b.closed = true
	return nil
}
