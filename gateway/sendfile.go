package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gwhq/gw/internal/files"
)

// Headers by which an app hands gw a file to send in its place: X-Sendfile
// (Apache's mod_xsendfile, lighttpd; Flask's use_x_sendfile, Rack::Sendfile)
// and X-Accel-Redirect (nginx). gw takes both as an absolute file path
// under one of the app's sendfile roots; nginx maps X-Accel-Redirect's URI
// to a location instead, which gw has no use for: a PHP app writes the
// file's path there, percent-encoded or not, and a query is dropped.
const (
	hdrSendfile      = "X-Sendfile"
	hdrAccelRedirect = "X-Accel-Redirect"
	// hdrSendfileType tells Rack::Sendfile (and Django's and Flask's
	// helpers that read it) which header the server takes: nginx
	// setups set it with proxy_set_header.
	hdrSendfileType = "X-Sendfile-Type"
	// hdrAccelMapping would let a client remap Rack::Sendfile's paths
	// (CVE-2025-27610): only a server config may set it, and gw's none.
	hdrAccelMapping = "X-Accel-Mapping"
)

// sendfileError is an X-Sendfile answer gw could not serve: the path is
// outside the roots, refused by the file policy, or missing. fail answers
// a plain 500 and logs the path.
type sendfileError struct {
	path string
	err  error
}

func (e *sendfileError) Error() string { return fmt.Sprintf("sendfile %q: %v", e.path, e.err) }
func (e *sendfileError) Unwrap() error { return e.err }

// sendfileWriter stands between an app with sendfile roots and its answer:
// a head carrying X-Sendfile or X-Accel-Redirect is held back and the body
// dropped; once the runner's slot is free, serveRoute sends the file.
// Other answers pass through untouched.
type sendfileWriter struct {
	http.ResponseWriter
	target string // the path the app's head named; "" for any other answer
	accel  bool   // named by X-Accel-Redirect
	headed bool
}

// Replaces tells framing.Head that h's body framing is moot.
func (w *sendfileWriter) Replaces(h http.Header) bool {
	return len(h[hdrSendfile]) > 0 || len(h[hdrAccelRedirect]) > 0
}

func (w *sendfileWriter) WriteHeader(code int) {
	if code >= http.StatusOK && !w.headed {
		w.headed = true
		h := w.Header()
		if v := h[hdrSendfile]; len(v) > 0 {
			w.target = v[0]
		} else if v := h[hdrAccelRedirect]; len(v) > 0 {
			w.target, w.accel = v[0], true
		}
		if w.target != "" {
			delete(h, hdrSendfile)
			delete(h, hdrAccelRedirect)
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sendfileWriter) Write(p []byte) (int, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if w.target != "" {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps the writer's sendfile(2) for PHP's static files.
func (w *sendfileWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if w.target != "" {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

func (w *sendfileWriter) Flush() {
	if w.target == "" {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *sendfileWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// asksSendfile readies r for an app with sendfile roots: it is told the
// header gw takes, and no client may pick Rack::Sendfile's path mapping.
func asksSendfile(r *http.Request) {
	r.Header[hdrSendfileType] = []string{hdrSendfile}
	delete(r.Header, hdrAccelMapping)
}

// sendFile answers r with the file the app named, from w.
func sendFile(w http.ResponseWriter, r *http.Request, roots files.Roots, sf *sendfileWriter) error {
	p := sf.target
	if sf.accel {
		p, _, _ = strings.Cut(p, "?")
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	root, f, err := roots.Locate(p)
	if err == nil {
		err = root.Send(w, r, f)
	}
	if err != nil {
		return &sendfileError{path: p, err: err}
	}
	return nil
}
