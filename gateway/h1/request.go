package h1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// framing is what a head says about the body and the connection.
type framing struct {
	length    int64 // Content-Length; -1 when chunked
	chunked   bool
	expect    bool // Expect: 100-continue on HTTP/1.1 with a body
	keepAlive bool // RFC 9112 §9.3: 1.1 unless "close", 1.0 only with "keep-alive"
}

// Errors of a head's meaning.
var (
	errNoHost      = badRequest("missing required Host header")
	errTwoHosts    = badRequest("too many Host headers")
	errBadHost     = badRequest("malformed Host header")
	errConnect     = &statusError{http.StatusNotImplemented, "CONNECT is not supported"}
	errAsterisk    = badRequest("asterisk-form target is only for OPTIONS")
	errCL          = badRequest("bad Content-Length")
	errCLs         = badRequest("conflicting Content-Length headers")
	errCLAndTE     = badRequest("both Content-Length and Transfer-Encoding")
	errTE10        = badRequest("Transfer-Encoding on HTTP/1.0")
	errTENotChunk  = badRequest("chunked must be the final transfer coding, once")
	errTERepeated  = badRequest("Transfer-Encoding sent more than once")
	errTEUnknown   = &statusError{http.StatusNotImplemented, "unsupported transfer encoding"}
	errExpectation = &statusError{http.StatusExpectationFailed, "unsupported Expect"}
)

var (
	proto10, proto11 = "HTTP/1.0", "HTTP/1.1"
	chunkedTE        = []string{"chunked"}
	// methods saves a string per request for the usual methods.
	methods = map[string]string{}
)

func init() {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
		methods[m] = m
	}
}

// build fills r, its URL u and its header hdr (emptied first) from the head
// h parsed from s (one string of the head's bytes, which every string of r
// shares). strs is scratch for header values, returned for reuse.
func build(h *head, s string, r *http.Request, u *url.URL, hdr http.Header, strs []string) (framing, []string, error) {
	clear(hdr)
	strs = fillHeader(h, s, hdr, strs[:0])
	method := s[h.ms:h.me]
	if m, ok := methods[method]; ok {
		method = m
	}
	*r = http.Request{Method: method, URL: u, Header: hdr, RequestURI: s[h.ts:h.te], ProtoMajor: 1, ProtoMinor: h.minor}
	r.Proto = proto11
	if h.minor == 0 {
		r.Proto = proto10
	}
	if method == "CONNECT" {
		// gw is no forward proxy. nginx answers 405; 501 is RFC 9110
		// §15.6.2's code for a method the server never supports.
		return framing{}, strs, errConnect
	}
	if err := parseTarget(r.RequestURI, method, u); err != nil {
		return framing{}, strs, err
	}
	if err := setHost(r, hdr); err != nil {
		return framing{}, strs, err
	}
	// net/http's fixPragmaCacheControl (RFC 7234 §5.4).
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" && hdr["Cache-Control"] == nil {
		hdr["Cache-Control"] = []string{"no-cache"}
	}
	fr, err := bodyFraming(r, hdr)
	if err != nil {
		return fr, strs, err
	}
	conn := hdr["Connection"]
	fr.keepAlive = !hasToken(conn, "close") && (h.minor == 1 || hasToken(conn, "keep-alive"))
	r.Close = !fr.keepAlive
	if e := hdr["Expect"]; len(e) > 0 {
		// net/http: 100-continue is honoured on 1.1 with a body and
		// ignored otherwise (RFC 9110 §10.1.1); anything else is 417.
		if !hasToken(e[:1], "100-continue") {
			return fr, strs, errExpectation
		}
		fr.expect = h.minor == 1 && fr.length != 0
	}
	return fr, strs, nil
}

// fillHeader adds h's fields to hdr. Values slice one shared backing array
// (as textproto's reader does), so a request's header costs no allocation
// once hdr and strs have grown to its size.
func fillHeader(h *head, s string, hdr http.Header, strs []string) []string {
	if cap(strs) < len(h.fields) {
		strs = make([]string, 0, len(h.fields))
	}
	for _, f := range h.fields {
		k, v := s[f.ns:f.ne], s[f.vs:f.ve]
		if vv, ok := hdr[k]; ok {
			hdr[k] = append(vv, v)
			continue
		}
		strs = append(strs, v)
		hdr[k] = strs[len(strs)-1 : len(strs) : len(strs)]
	}
	return strs
}

// parseTarget reads the request-target (RFC 9112 §3.2) into u the way
// url.ParseRequestURI does, without its allocation for the usual
// origin-form target with no percent-escapes.
func parseTarget(t, method string, u *url.URL) error {
	if t == "*" {
		if method != "OPTIONS" {
			return errAsterisk // RFC 9112 §3.2.4; net/http allows any method
		}
		*u = url.URL{Path: "*"}
		return nil
	}
	if t[0] == '/' && strings.IndexByte(t, '%') < 0 {
		path, query, hasQuery := strings.Cut(t, "?")
		*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		if !pathIsEscaped(path) {
			u.RawPath = path // what url.URL.setPath keeps when escaping changes it
		}
		return nil
	}
	p, err := url.ParseRequestURI(t)
	if err != nil {
		return errTarget
	}
	if t[0] != '/' && (p.Host == "" || p.Opaque != "") {
		// absolute-form needs an authority (RFC 9112 §3.2.2); net/http
		// takes "GET mailto:x" too.
		return errTarget
	}
	*u = *p
	return nil
}

// pathIsEscaped reports whether url.PathEscape-style escaping (encodePath
// in net/url) leaves p unchanged.
func pathIsEscaped(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		switch c {
		case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
			continue
		}
		return false
	}
	return true
}

// setHost applies RFC 9112 §3.2: a 1.1 request has exactly one Host field
// (a 1.0 request at most one); an absolute-form target's authority wins
// over it. As in net/http, Host leaves r.Header for r.Host.
func setHost(r *http.Request, hdr http.Header) error {
	hosts, ok := hdr["Host"]
	switch {
	case len(hosts) > 1:
		return errTwoHosts
	case !ok && r.ProtoMinor == 1:
		return errNoHost
	case ok && !validHost(hosts[0]):
		return errBadHost
	}
	delete(hdr, "Host")
	r.Host = r.URL.Host
	if r.Host == "" && ok {
		r.Host = hosts[0]
	}
	return nil
}

// validHost is net/http's lenient Host check (httpguts.ValidHostHeader):
// only bytes that may appear in a uri-host and port.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostByte[h[i]] {
			return false
		}
	}
	return true
}

var hostByte = alnumAnd("!$%&'()*+,-.:;=[]_~")

// bodyFraming applies RFC 9112 §6: how long the body is, or a refusal.
func bodyFraming(r *http.Request, hdr http.Header) (framing, error) {
	te, hasTE := hdr["Transfer-Encoding"]
	cl, hasCL := hdr["Content-Length"]
	if hasTE {
		switch {
		case r.ProtoMinor == 0:
			// RFC 9112 §6.1: framing is faulty; net/http ignores
			// the field (Go issue 12785), which a front proxy that
			// honours it would read differently.
			return framing{}, errTE10
		case hasCL:
			// RFC 9112 §6.1 allows rejecting or reading by TE and
			// closing after; gw answers 400 as nginx does (net/http
			// drops Content-Length and keeps the connection).
			return framing{}, errCLAndTE
		}
		if err := checkTE(te); err != nil {
			return framing{}, err
		}
		delete(hdr, "Transfer-Encoding")
		r.TransferEncoding, r.ContentLength = chunkedTE, -1
		return framing{length: -1, chunked: true}, nil
	}
	if !hasCL {
		r.Body = http.NoBody
		return framing{}, nil
	}
	n, err := contentLength(cl)
	if err != nil {
		return framing{}, err
	}
	if len(cl) > 1 {
		hdr["Content-Length"] = cl[:1] // identical values, kept once as net/http does
	}
	r.ContentLength = n
	if n == 0 {
		r.Body = http.NoBody
	}
	return framing{length: n}, nil
}

// checkTE accepts exactly one Transfer-Encoding field whose value is
// "chunked" (case-insensitive), as net/http does: RFC 9112 §7 would allow
// the list across field lines and with empty elements, but a front proxy
// that reads such a list differently is how requests get smuggled, so gw
// is no laxer than net/http (FuzzParseRequest holds it to that). Chunked
// not last, or twice, is 400 (§6.3); another coding is one gw does not
// decode: 501 (§6.1).
func checkTE(te []string) error {
	if len(te) != 1 {
		return errTERepeated
	}
	if strings.EqualFold(textproto.TrimString(te[0]), "chunked") {
		return nil
	}
	var n int
	var last string
	for e := range strings.SplitSeq(te[0], ",") {
		if e = textproto.TrimString(e); e == "" {
			continue
		}
		if strings.EqualFold(last, "chunked") {
			return errTENotChunk
		}
		n, last = n+1, e
	}
	if !strings.EqualFold(last, "chunked") {
		return errTENotChunk
	}
	return errTEUnknown // another coding first, or empty list elements
}

// contentLength checks every Content-Length value is the same 1*DIGIT
// (RFC 9110 §8.6) that fits an int64, as net/http does.
func contentLength(vals []string) (int64, error) {
	for _, v := range vals[1:] {
		if v != vals[0] {
			return 0, errCLs
		}
	}
	v := vals[0]
	if v == "" || len(v) > 18 { // 18 digits always fit an int64
		return 0, errCL
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, errCL
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, nil
}

// hasToken reports whether the comma-separated lists in vals hold tok,
// compared case-insensitively (RFC 9110 §5.6.1).
func hasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for len(v) > 0 {
			var e string
			e, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(e), tok) {
				return true
			}
		}
	}
	return false
}
