package reqid

import "math/rand/v2"

// The traceparent header, W3C Trace Context (https://www.w3.org/TR/trace-context/):
//
//	version "-" trace-id "-" parent-id "-" trace-flags
//	00      -   32 hex   -   16 hex    -   2 hex       (55 characters)
//
// All hex is lower case. Version ff is invalid; an all-zero trace-id or
// parent-id is invalid. A version above 00 may append fields after a
// further "-", which are kept as they came.
const (
	traceLen   = 55
	traceIDEnd = 35 // s[3:35] is the trace-id
	parentEnd  = 52 // s[36:52] is the parent-id
)

// ValidTraceparent reports whether s is a traceparent gw passes through
// unchanged.
func ValidTraceparent(s string) bool {
	if len(s) < traceLen || s[2] != '-' || s[traceIDEnd] != '-' || s[parentEnd] != '-' {
		return false
	}
	version := s[:2]
	switch {
	case !isHex(version) || version == "ff":
		return false
	case version == "00" && len(s) != traceLen:
		return false
	case len(s) > traceLen && s[traceLen] != '-':
		return false
	}
	traceID, parentID, flags := s[3:traceIDEnd], s[traceIDEnd+1:parentEnd], s[parentEnd+1:traceLen]
	return isHex(traceID) && !allZero(traceID) && isHex(parentID) && !allZero(parentID) && isHex(flags)
}

// NewTraceparent starts a trace: a new trace-id, with a new span id as the
// parent-id (gw's own hop). The sampled flag is set, failing open: an
// unsampled parent would make a parent-based sampler (OpenTelemetry's
// default) drop every trace the app records; a sampled one at worst
// records more than the app's own ratio would.
func NewTraceparent() string {
	var b [traceLen]byte
	copy(b[:], "00-")
	putHex(b[3:19], nonZero())
	putHex(b[19:35], rand.Uint64())
	b[traceIDEnd] = '-'
	putHex(b[36:52], nonZero())
	copy(b[parentEnd:], "-01")
	return string(b[:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
