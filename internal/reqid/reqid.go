// Package reqid gives every request the identity that the app, gw's access
// log and the client share: an X-Request-Id, taken from the client when it
// is sane and made here otherwise, and a W3C traceparent, passed through
// when valid and started here otherwise.
//
// Random values come from math/rand/v2's top-level functions: the
// runtime's per-thread ChaCha8 generator, seeded from the OS. That costs no
// syscall and no lock per request, and ids need to be unique, not secret
// (they are echoed to the client).
package reqid

import (
	"math/rand/v2"
	"net/http"
)

// Header names, in canonical form: net/http and gw's uwsgi and FastCGI
// front ends canonicalize incoming names, so the maps are indexed directly.
const (
	Header      = "X-Request-Id"
	Traceparent = "Traceparent"
	tracestate  = "Tracestate"
)

// maxLen bounds a client's id: longer ones are replaced, so no client can
// fill the access log through it.
const maxLen = 128

// Apply makes sure the request header h carries exactly one valid
// X-Request-Id and one valid traceparent, keeping the client's where they
// pass, and returns the request id. Apps then see them as
// HTTP_X_REQUEST_ID and HTTP_TRACEPARENT.
func Apply(h http.Header) string {
	var id string
	if v := h[Header]; len(v) == 1 && Valid(v[0]) {
		id = v[0]
	} else {
		id = New()
		h[Header] = []string{id}
	}
	if v := h[Traceparent]; len(v) != 1 || !ValidTraceparent(v[0]) {
		h[Traceparent] = []string{NewTraceparent()}
		// A tracestate belongs to the trace its traceparent named: it
		// means nothing in a new trace, and the processing model of W3C
		// Trace Context forbids reading it beside an invalid traceparent.
		delete(h, tracestate)
	}
	return id
}

// Valid reports whether a client's X-Request-Id may be kept: 1 to 128
// printable ASCII characters, no spaces. Anything else (control
// characters, spaces, non-ASCII) could split or forge access log lines and
// is replaced.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// New returns a fresh request id: 16 random bytes as 32 hex digits.
func New() string {
	var b [32]byte
	putHex(b[:16], nonZero())
	putHex(b[16:], rand.Uint64())
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// putHex writes v as 16 lower-case hex digits into dst[:16].
func putHex(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// nonZero is a random uint64 other than 0: all-zero trace and span ids are
// invalid, and so would be one in 2^64 of ours.
func nonZero() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}
