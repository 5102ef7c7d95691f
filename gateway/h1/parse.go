package h1

import (
	"bytes"
	"net/http"
)

// field is one header field line of a head, as offsets into it: the name
// is head[ns:ne], the value (without surrounding whitespace) head[vs:ve].
type field struct{ ns, ne, vs, ve int }

// head is a request head split into its parts (RFC 9112 §2.1), before any
// field's meaning is looked at. Offsets index the head's bytes.
type head struct {
	ms, me int // method
	ts, te int // request-target
	minor  int // HTTP/1.minor
	fields []field
}

// statusError is a request refused before any handler sees it: the status
// to answer with and a short reason for the body, as net/http words them.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return http.StatusText(e.code) + ": " + e.msg }

func badRequest(msg string) error { return &statusError{http.StatusBadRequest, msg} }

// Errors of the head's syntax. Each answers 400 and closes.
var (
	errBareLF       = badRequest("bare LF line ending")
	errRequestLine  = badRequest("malformed request line")
	errMethod       = badRequest("invalid method")
	errTarget       = badRequest("invalid request target")
	errVersion      = badRequest("malformed HTTP version")
	errObsFold      = badRequest("obsolete line folding in header")
	errFieldLine    = badRequest("malformed header line")
	errFieldName    = badRequest("invalid header name")
	errFieldValue   = badRequest("invalid header value")
	errHeadTooLarge = &statusError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
	errVersionNotOK = &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
)

// tchar is RFC 9110 §5.6.2's token character set.
var tchar = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is the byte set of ASCII letters and digits and extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// headEnd finds the empty line that ends a head starting at b[0]: it
// returns the head's length, or -1 and where to resume scanning once more
// bytes arrived. A bare "\n\n" ends it too, so that parseHead refuses it
// at once instead of waiting for a CRLF that never comes.
func headEnd(b []byte, from int) (end, resume int) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, i
		}
		k := i + j
		switch {
		case k+1 < len(b) && b[k+1] == '\n':
			return k + 2, 0
		case k+2 < len(b) && b[k+1] == '\r' && b[k+2] == '\n':
			return k + 3, 0
		case k+2 >= len(b):
			return -1, k // the next bytes decide
		}
		i = k + 1
	}
}

// cutLine returns the line at the start of b without its CRLF, and the
// length it takes with it. RFC 9112 §2.2 lets a recipient accept a bare LF;
// gw does not (nor does it in chunked bodies): framing that two parsers
// could read differently is what request smuggling is made of.
func cutLine(b []byte) (line []byte, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, errFieldLine
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, errBareLF
	}
	return b[:i-1], i + 1, nil
}

// parseHead splits the complete head b (as headEnd delimits it) into h,
// checking the syntax of RFC 9112 §3 and §5: a token method, single spaces,
// a target of visible bytes, HTTP/1.0 or HTTP/1.1, field names that are
// tokens with no whitespace before the colon, no obs-fold, and no control
// bytes but HTAB in values. Field names are canonicalised in place.
func parseHead(b []byte, h *head) error {
	h.fields = h.fields[:0]
	line, off, err := cutLine(b)
	if err != nil {
		return err
	}
	if err := parseRequestLine(line, h); err != nil {
		return err
	}
	for {
		line, n, err := cutLine(b[off:])
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if off+n != len(b) {
				return errFieldLine
			}
			return nil
		}
		f, err := parseField(line, off)
		if err != nil {
			return err
		}
		canonicalize(b[f.ns:f.ne])
		h.fields = append(h.fields, f)
		off += n
	}
}

func parseRequestLine(line []byte, h *head) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return errRequestLine
	}
	sp2 += sp1 + 1
	if !isToken(line[:sp1]) {
		return errMethod
	}
	target := line[sp1+1 : sp2]
	if len(target) == 0 {
		return errTarget
	}
	for _, c := range target {
		// Visible ASCII, and obs-text as url.ParseRequestURI allows.
		if c <= ' ' || c == 0x7f {
			return errTarget
		}
	}
	h.ms, h.me, h.ts, h.te = 0, sp1, sp1+1, sp2
	return parseVersion(line[sp2+1:], h)
}

// parseVersion accepts HTTP/1.0 and HTTP/1.1; any other well-formed
// version gets 505 (RFC 9110 §15.6.6). net/http serves HTTP/1.2-1.9 as
// 1.1; gw would rather say it does not speak them.
func parseVersion(v []byte, h *head) error {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return errVersion
	}
	if v[5] != '1' || (v[7] != '0' && v[7] != '1') {
		return errVersionNotOK
	}
	h.minor = int(v[7] - '0')
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseField parses one field line (RFC 9112 §5.1) found at off in the
// head. A line that starts with whitespace is obs-fold: RFC 9112 §5.2
// lets a server reject it or unfold it; net/http unfolds, gw rejects (as a
// proxy in front may have read the fold as a field of its own).
func parseField(line []byte, off int) (field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return field{}, errObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return field{}, errFieldLine
	}
	// Whitespace before the colon fails the token check: RFC 9112 §5.1
	// says to reject it with 400.
	if !isToken(line[:colon]) {
		return field{}, errFieldName
	}
	vs, ve := colon+1, len(line)
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	for _, c := range line[vs:ve] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return field{}, errFieldValue
		}
	}
	return field{ns: off, ne: off + colon, vs: off + vs, ve: off + ve}, nil
}

// canonicalize rewrites a token field name in place the way
// textproto.CanonicalMIMEHeaderKey does: upper case at the start and after
// each hyphen, lower case elsewhere.
func canonicalize(name []byte) {
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			name[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}
