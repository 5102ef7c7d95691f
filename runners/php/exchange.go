package php

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/fcgi"
	"github.com/gwhq/gw/internal/framing"
	"github.com/gwhq/gw/runners/pool"
)

type targetKey struct{}

// WithTarget attaches the resolved script to a request's context for the
// worker that serves it.
func WithTarget(ctx context.Context, t Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// BodyError is a failure reading the client's request body.
type BodyError = pool.BodyError

// params feeds cgi.Build into a PARAMS stream, leaving out the variables
// head sets itself: the script resolution's, and those that describe gw's
// document root rather than the front server's (a forwarded DOCUMENT_ROOT
// or PATH_TRANSLATED from nginx names nginx's idea of the files). Each
// name goes once: which of two php-cgi keeps is not ours to rely on.
type params struct {
	enc     *fcgi.ParamsEncoder
	scratch *[]byte // AddHeader builds HTTP_* names here
}

func (p params) Add(name, value string) {
	switch name {
	case "SCRIPT_NAME", "PATH_INFO", "SCRIPT_FILENAME", "PATH_TRANSLATED", "DOCUMENT_ROOT", "DOCUMENT_URI",
		"GATEWAY_INTERFACE", "SERVER_SOFTWARE", "REDIRECT_STATUS", "HTTPS", "REQUEST_SCHEME":
		return
	}
	p.enc.Add(name, value)
}

func (p params) AddHeader(canonical, value string) {
	*p.scratch = cgi.AppendName((*p.scratch)[:0], canonical)
	p.enc.AddBytes(*p.scratch, value)
}

// Abort closes the connection, which ends the exchange at once (the
// request deadline passed).
func (w *worker) Abort(int) {
	w.curMu.Lock()
	defer w.curMu.Unlock()
	if w.cur != nil {
		w.cur.Close()
	}
}

func (w *worker) setCur(c net.Conn) {
	w.curMu.Lock()
	w.cur = c
	w.curMu.Unlock()
}

// Serve runs the request's script on this php-cgi.
func (w *worker) Serve(_ int, rw http.ResponseWriter, r *http.Request) error {
	t, ok := r.Context().Value(targetKey{}).(Target)
	if !ok || t.Script == "" {
		return errors.New("php: request reached a worker without a resolved script")
	}
	body, length, err := requestBody(r)
	if err != nil {
		return &BodyError{Err: err}
	}
	if c, ok := body.(io.Closer); ok {
		defer c.Close()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.dial(); err != nil {
		return fmt.Errorf("%w: dial php-cgi: %v", pool.ErrWorkerGone, err)
	}
	w.setCur(w.conn)
	defer w.setCur(nil)
	head, err := w.head(r, t, length)
	if err != nil {
		return err
	}
	if body == nil {
		head = fcgi.AppendRecord(head, fcgi.TypeStdin, 1, nil)
		err = w.sendAndAwait(head)
	} else {
		_, err = w.conn.Write(head)
	}
	if err != nil {
		w.drop()
		return fmt.Errorf("%w: write: %v", pool.ErrWorkerGone, err)
	}
	var pumped chan error
	if body != nil {
		pumped = make(chan error, 1)
		conn := w.conn
		sw := &fcgi.StreamWriter{W: conn, Type: fcgi.TypeStdin, ID: 1, Size: 32 << 10}
		// Ends at the end of the body or on the first error.
		go func() {
			_, err := io.Copy(sw, body)
			if err == nil {
				err = sw.Close()
			}
			pumped <- err
			if err != nil {
				// php-cgi waits for all the CONTENT_LENGTH it was
				// promised (trap 6): only the end of the connection
				// stops it, and ends readResponse with it.
				conn.Close()
			}
		}()
	}
	err = w.readResponse(rw, r.Method)
	if pumped != nil {
		select {
		case perr := <-pumped:
			if perr != nil {
				// STDIN is incomplete: the connection cannot carry
				// another request.
				w.drop()
				var mbe *http.MaxBytesError
				if errors.As(perr, &mbe) || err != nil {
					return &BodyError{Err: perr}
				}
			}
		default:
			// php-cgi answered without reading all of STDIN; what is left
			// would be read as the next request.
			w.drop()
			<-pumped
		}
	}
	return err
}

// head builds BEGIN_REQUEST and the PARAMS stream: what nginx's
// fastcgi_params plus SCRIPT_FILENAME give php-fpm.
func (w *worker) head(r *http.Request, t Target, length int64) ([]byte, error) {
	// The buffers are the worker's (it serves one request at a time, under
	// w.mu): a hello's head is ~550 bytes that would otherwise be grown
	// from nothing, and one name allocated per header, on every request.
	var enc fcgi.ParamsEncoder
	enc.Reset(fcgi.AppendBeginRequest(w.headBuf[:0], 1, fcgi.RoleResponder, true), 1)
	cgi.Build(params{&enc, &w.nameBuf}, r, cgi.Mount{ScriptName: w.l.Mount})
	scriptName := w.l.Mount + t.ScriptName
	enc.Add("SCRIPT_FILENAME", t.Script)
	enc.Add("SCRIPT_NAME", scriptName)
	enc.Add("PATH_INFO", t.PathInfo)
	enc.Add("DOCUMENT_ROOT", w.l.Root.Dir())
	enc.Add("DOCUMENT_URI", scriptName+t.PathInfo)
	enc.Add("GATEWAY_INTERFACE", "CGI/1.1")
	enc.Add("SERVER_SOFTWARE", "gw")
	enc.Add("REDIRECT_STATUS", "200") // php-cgi's force-cgi-redirect check
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
		enc.Add("HTTPS", "on")
	}
	enc.Add("REQUEST_SCHEME", scheme)
	if _, ok := r.Header["Content-Length"]; !ok && length >= 0 {
		// A chunked body, spooled: php-cgi ignores a body without an
		// exact CONTENT_LENGTH (trap 6).
		enc.Add("CONTENT_LENGTH", fmt.Sprint(length))
	}
	b, err := enc.Finish()
	if err != nil {
		return nil, fmt.Errorf("php: %w", err)
	}
	if cap(b) <= maxKeptHead {
		w.headBuf = b[:0]
	}
	return b, nil
}

// maxKeptHead bounds the head buffer a worker keeps for the next request.
const maxKeptHead = 64 << 10

// requestBody returns the body to send as STDIN and its length (-1: none).
// A body of unknown length is spooled first, in memory up to 1 MiB, then to
// a temporary file, because php-cgi needs CONTENT_LENGTH up front.
func requestBody(r *http.Request) (io.Reader, int64, error) {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil, -1, nil
	}
	if r.ContentLength > 0 {
		return r.Body, r.ContentLength, nil
	}
	var mem bytes.Buffer
	n, err := io.CopyN(&mem, r.Body, 1<<20+1)
	if err == io.EOF {
		return &mem, n, nil
	}
	if err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp("", "gw-php-body-")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name()) // unlinked: gone when closed
	m, err := io.Copy(f, io.MultiReader(&mem, r.Body))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, m, nil
}

// sendAndAwait writes a whole request (no body to stream) and waits until
// php-cgi's answer starts to arrive, skipping the read that would find
// nothing yet (internal/sendwait). A short write is finished through conn;
// a failed wait (Abort's Close) is left for the read that follows to report.
func (w *worker) sendAndAwait(b []byte) error {
	var n int
	if w.sw != nil {
		var err error
		if n, err = w.sw.Send(b); err != nil && n < len(b) {
			return err
		}
	}
	if n < len(b) {
		_, err := w.conn.Write(b[n:])
		return err
	}
	return nil
}

// readResponse copies php-cgi's STDOUT to rw until END_REQUEST, logging
// STDERR. Errors that leave the connection unusable wrap ErrWorkerGone.
func (w *worker) readResponse(rw http.ResponseWriter, method string) error {
	flusher, _ := rw.(http.Flusher)
	head := cgiHead{buf: w.respHead[:0]}
	defer func() {
		if cap(head.buf) <= maxHead+fcgi.MaxContent {
			w.respHead = head.buf[:0]
		}
	}()
	var body framing.Body
	var dst io.Writer // &body once the head is out, until the client goes away
	var refused error // the head broke HTTP's rules: drain, then report
	var stderr strings.Builder
	defer func() {
		if stderr.Len() > 0 {
			for _, line := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
				w.log.Warn(line, "stream", "php stderr", "pid", w.run.PID())
			}
		}
	}()
	for {
		if head.done && dst != nil && flusher != nil && w.br.Buffered() == 0 {
			flusher.Flush() // nothing more waiting: let the client see it
		}
		h, content, err := w.rd.Next()
		if err != nil {
			w.drop()
			return fmt.Errorf("%w: %v", pool.ErrWorkerGone, err)
		}
		switch h.Type {
		case fcgi.TypeStdout:
			if len(content) == 0 {
				continue
			}
			if !head.done {
				rest, done, err := head.feed(content)
				if err != nil {
					w.drop()
					return fmt.Errorf("%w: %v", pool.ErrWorkerGone, err)
				}
				if !done {
					continue
				}
				if body, refused = head.start(rw, method); refused == nil {
					dst = &body
				}
				content = rest
			}
			if dst != nil && len(content) > 0 {
				if _, err := dst.Write(content); err != nil {
					dst = nil // client gone: drain php-cgi's answer
				}
			}
		case fcgi.TypeStderr:
			stderr.Write(content)
		case fcgi.TypeEndRequest:
			return end(&head, &body, dst != nil, refused)
		}
	}
}

// AppError is a request php-cgi could not answer properly.
type AppError = pool.AppError
