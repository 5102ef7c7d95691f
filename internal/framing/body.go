package framing

import (
	"net/http"
)

// Body is the way an app's response body goes to the client: exactly the
// bytes its head declared. Runners copy the app's body into it and call
// Close at the end of the response. Framing errors never stop the copying
// (the runner's stream must still be read to its end); Close reports them.
type Body struct {
	w        http.ResponseWriter
	discard  bool     // HEAD, 204, 304: no body goes out
	declared int64    // the app's Content-Length, -1 for none
	got      int64    // body bytes the app produced (de-chunked)
	sent     int64    // of those, bytes passed to w
	chunks   *decoder // the app chunked its body itself
	long     bool     // the app went past its Content-Length
	err      error    // the first framing error
}

// A Replacer is a writer that puts another body in place of the app's
// for some heads (X-Sendfile: the gateway's sendfile.go). For such a head
// Head checks the status and fields but not the framing, and the app's
// body is dropped.
type Replacer interface{ Replaces(h http.Header) bool }

// Head checks an app's final status and head, which the runner has put in
// w.Header() but not sent, and returns the Body for its body. dechunk is for
// runners whose apps write raw HTTP bodies (WSGI, Rack, PSGI, CGI): an app
// that says "Transfer-Encoding: chunked" there has framed its body itself,
// and gw undoes that framing, since the front end frames the client
// connection its own way; otherwise the body would reach the client chunked
// twice. Go plugins write through an http.ResponseWriter, which does the
// chunking, so they pass false and Transfer-Encoding is left to net/http.
//
// It returns a value, so a runner can keep it in its per-slot state and
// send a response without allocating.
func Head(w http.ResponseWriter, method string, status int, dechunk bool) (Body, error) {
	if err := Status(status); err != nil {
		return Body{}, err
	}
	h := w.Header()
	if err := Fields(h); err != nil {
		return Body{}, err
	}
	if rp, ok := w.(Replacer); ok && rp.Replaces(h) {
		// The app's Content-Length or chunking describes the body it
		// sends, which goes nowhere: nothing to check it against.
		return Body{w: w, declared: -1, discard: true}, nil
	}
	b := Body{w: w, declared: -1}
	if dechunk {
		chunked, err := chunkedByApp(h)
		if err != nil {
			return Body{}, err
		}
		if chunked {
			b.chunks = new(decoder)
		}
	}
	n, err := declaredLength(h)
	if err != nil {
		return Body{}, err
	}
	// RFC 9110 §6.4.1: no body for these, whatever the head says (a 304's
	// or a HEAD's Content-Length describes the body a GET would get).
	b.discard = method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified
	b.declared = n
	return b, nil
}

// Write takes the next bytes of the app's body; it returns only the
// client's write errors (after which the caller stops writing).
func (b *Body) Write(p []byte) (int, error) {
	if b.chunks != nil {
		if err := b.chunks.feed(p, b.emit); err != nil {
			return len(p), err
		}
		if b.chunks.err != nil && b.err == nil {
			b.err = b.chunks.err
		}
		return len(p), nil
	}
	return len(p), b.emit(p)
}

// emit sends body bytes, up to the declared length; nginx does the same
// with an upstream's excess (since 1.19.1: "drop extra data instead, as it
// naturally happens in most clients").
func (b *Body) emit(p []byte) error {
	b.got += int64(len(p))
	if b.discard || b.err != nil {
		return nil
	}
	if b.declared >= 0 && b.sent+int64(len(p)) > b.declared {
		p = p[:b.declared-b.sent]
		b.long = true
		b.err = errorf("response body is longer than its Content-Length %d", b.declared)
	}
	if len(p) == 0 {
		return nil
	}
	b.sent += int64(len(p))
	_, err := b.w.Write(p)
	return err
}

// Close ends the body and reports how it broke its head's framing: too
// long (the declared bytes went out, the rest was dropped), too short, or
// unfinished chunking. Either way the client did not get the response the
// app meant; the caller returns the error, which cuts the connection (a
// short body must not leave the client waiting for bytes that never come,
// as nginx closes the client connection when an upstream ends early).
// What went out is flushed first, so the declared bytes of a long body
// reach the client before the cut.
func (b *Body) Close() error {
	if b.discard {
		return nil // nothing was to go out: nothing can be wrong with it
	}
	if b.err == nil && b.chunks != nil && !b.chunks.done() {
		b.err = errorf("chunked response body ended before its last chunk")
	}
	if b.err == nil && !b.discard && b.declared >= 0 && b.got < b.declared {
		b.err = errorf("response body of %d bytes is shorter than its Content-Length %d", b.got, b.declared)
	}
	if b.long {
		b.err = errorf("response body of %d bytes is longer than its Content-Length %d; sent the first %d",
			b.got, b.declared, b.declared)
	}
	if b.err != nil {
		http.NewResponseController(b.w).Flush()
	}
	return b.err
}
