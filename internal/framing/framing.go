// Package framing holds an app's response to HTTP's rules before gw sends
// it, whatever runner it came from (the bridge shims, php-cgi, Go plugins):
// a final status, header fields that cannot split or smuggle a head, and a
// body that is exactly as long as its head says. The runner-side code reads
// its protocol; this package decides what the client may see, so every
// language fails the same way, and the gateway's fail turns the error into
// a 500 (head not sent yet) or a cut connection (head sent).
package framing

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error is an app's response that breaks HTTP framing. Runners report it as
// their app error (pool.AppError): the runner itself is fine.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Status checks an app's final status. 1xx codes are interim (RFC 9110
// §15.2): sent as final, net/http fabricates a "200 OK" after a 100 or 103,
// and a 101 would announce a protocol switch that never happens, so both
// are app errors until gw implements upgrades.
func Status(code int) error {
	if code < 200 || code > 999 {
		return errorf("invalid response status %d: want a final status, 200 to 999", code)
	}
	return nil
}

// Field checks one response header field: the name a token, the value free
// of NUL, CR and LF (RFC 9110 §5.5, RFC 9112 §2.2). net/http turns CR and LF
// into spaces but passes NUL on; the Python, Ruby and Perl shims already
// refuse all three, and every runner is held to the same rule here.
func Field[T string | []byte](name, value T) error {
	if len(name) == 0 {
		return errorf("empty response header name")
	}
	for i := 0; i < len(name); i++ {
		if !isToken(name[i]) {
			return errorf("invalid response header name %q", string(name))
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == 0 || c == '\r' || c == '\n' {
			return errorf("invalid response header %s: value has a NUL, CR or LF: %q", string(name), string(value))
		}
	}
	return nil
}

// Fields checks every field of h, the head about to be sent.
func Fields(h http.Header) error {
	for k, vv := range h {
		for _, v := range vv {
			if err := Field(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func isToken(c byte) bool {
	return c < 0x80 && tokenChars[c]
}

// tokenChars are RFC 9110 §5.6.2's tchar.
var tokenChars = func() (t [128]bool) {
	for _, c := range "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" {
		t[c] = true
	}
	return t
}()

// declaredLength is the Content-Length h declares, -1 for none. Repeated
// equal values count as one (RFC 9110 §8.6); anything else is an error, as
// nginx answers 502 for an upstream's invalid Content-Length.
func declaredLength(h http.Header) (int64, error) {
	vv := h["Content-Length"]
	if len(vv) == 0 {
		return -1, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vv[0]), 10, 64)
	if err != nil || n < 0 || vv[0] == "" || vv[0][0] == '+' {
		return 0, errorf("invalid response Content-Length %q", vv[0])
	}
	for _, v := range vv[1:] {
		if strings.TrimSpace(v) != strings.TrimSpace(vv[0]) {
			return 0, errorf("conflicting response Content-Length values %q", vv)
		}
	}
	h["Content-Length"] = vv[:1]
	return n, nil
}

// chunkedByApp reports whether h's Transfer-Encoding says the app chunked
// its body itself, and removes the field: the front end frames the client
// connection its own way (RFC 9112 §6.1, hop-by-hop).
func chunkedByApp(h http.Header) (bool, error) {
	vv, ok := h["Transfer-Encoding"]
	if !ok {
		return false, nil
	}
	delete(h, "Transfer-Encoding")
	var codings []string
	for _, v := range vv {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, nil
	case len(codings) == 1 && codings[0] == "chunked":
	default:
		// gw could only undo chunked; the others would reach the
		// client undeclared.
		return false, errorf("unsupported response Transfer-Encoding %q", strings.Join(vv, ", "))
	}
	if _, ok := h["Content-Length"]; ok {
		// nginx ≥ 1.23 rejects the same from an upstream: which of
		// the two frames the body is anyone's guess (RFC 9112 §6.3).
		return false, errorf("response has both Content-Length and Transfer-Encoding")
	}
	return true, nil
}
