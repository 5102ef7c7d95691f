// Package compress compresses an app's answers on their way to the client:
// zstd or gzip, as the client's Accept-Encoding prefers, for compressible
// types above a minimum size. It wraps an http.ResponseWriter and decides
// at the head; answers it leaves alone cost a pooled Writer and no more,
// and a request that accepts no coding gw makes gets no Writer at all.
//
// Left alone, as nginx's gzip filter and Caddy's encode leave them: HEAD
// answers, 1xx, 204, 304 and 206 (a range of the uncompressed bytes would
// not be a range of the compressed ones), answers already carrying a
// Content-Encoding or a Content-Range, Cache-Control: no-transform
// (RFC 9110 §7.7), types that do not compress (images, archives, video:
// already compressed), text/event-stream (each event must go at once), and
// a declared Content-Length below the minimum. A compressed answer loses
// its Content-Length, gets Vary: Accept-Encoding and a weak ETag (its bytes
// differ from the identity answer's: RFC 9110 §8.8.1).
package compress

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gwhq/gw/internal/acceptenc"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Options say what is compressed. A nil *Options turns compression off.
type Options struct {
	// Min is the smallest declared Content-Length compressed; an answer
	// without one (streamed) is compressed whatever its size.
	Min int64
}

// offered are the codings gw makes.
const offered = acceptenc.Zstd | acceptenc.Gzip

// GzipLevel and the zstd level trade CPU for size: gzip 6 and zstd's
// default (level 3) compress realistic JSON and HTML within a few percent
// of gzip 9 at a tenth of its CPU or less (BenchmarkCodings; the figures
// are in docs/design/sendfile-compress.md).
const GzipLevel = 6

// Writer is the http.ResponseWriter an app's answer is written to when the
// client accepts a coding.
type Writer struct {
	http.ResponseWriter
	opts   *Options
	coding acceptenc.Coding
	headed bool
	enc    encoder // nil: the answer goes out as it is
}

// encoder is what gzip.Writer and zstd.Encoder share.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

var (
	writers  = sync.Pool{New: func() any { return new(Writer) }}
	gzippers = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, GzipLevel)
		return w
	}}
	zstds = sync.Pool{New: func() any {
		// One goroutine and a 512 KiB window: an encoder per answer
		// in flight, so memory counts more than the last percent.
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10), zstd.WithLowerEncoderMem(true))
		return zstdEncoder{w}
	}}
)

// zstdEncoder gives zstd.Encoder the Reset encoder wants (its own has
// none to return).
type zstdEncoder struct{ *zstd.Encoder }

func (z zstdEncoder) Reset(w io.Writer) { z.Encoder.Reset(w) }

// New wraps w, the answer to r, when o is set and r accepts a coding gw
// makes; otherwise it returns nil and w is to be used as it is. The caller
// must call Close once the app is done, before anything below w finishes.
func New(w http.ResponseWriter, r *http.Request, o *Options) *Writer {
	if o == nil || r.Method == http.MethodHead {
		return nil
	}
	ae := r.Header["Accept-Encoding"]
	if len(ae) == 0 {
		return nil
	}
	c := acceptenc.Best(ae, offered)
	if c == 0 {
		return nil
	}
	cw := writers.Get().(*Writer)
	cw.ResponseWriter, cw.opts, cw.coding = w, o, c
	return cw
}

// Close ends the compressed stream, if any, and gives the Writer back; it
// must not be used after.
func (w *Writer) Close() error {
	var err error
	if w.enc != nil {
		err = w.enc.Close()
		w.enc.Reset(nil)
		if w.coding == acceptenc.Gzip {
			gzippers.Put(w.enc)
		} else {
			zstds.Put(w.enc)
		}
	}
	*w = Writer{}
	writers.Put(w)
	return err
}

// Compressing reports whether the answer's head chose compression.
func (w *Writer) Compressing() bool { return w.enc != nil }

// WriteHeader decides, from the final head, whether the answer is
// compressed, and fixes the head up if so.
func (w *Writer) WriteHeader(code int) {
	if code >= http.StatusOK && !w.headed {
		w.headed = true
		if h := w.Header(); w.wants(code, h) {
			delete(h, "Content-Length")
			h.Set("Content-Encoding", w.coding.Token())
			h.Add("Vary", "Accept-Encoding")
			if et := h["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
				h["Etag"] = []string{"W/" + et[0]}
			}
			if w.coding == acceptenc.Gzip {
				w.enc = gzippers.Get().(*gzip.Writer)
			} else {
				w.enc = zstds.Get().(zstdEncoder)
			}
			w.enc.Reset(writerOnly{w.ResponseWriter})
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// wants is the policy of the package doc.
func (w *Writer) wants(code int, h http.Header) bool {
	switch code {
	case http.StatusNoContent, http.StatusNotModified, http.StatusPartialContent:
		return false
	}
	if len(h["Content-Encoding"]) > 0 || len(h["Content-Range"]) > 0 || !Compressible(h.Get("Content-Type")) {
		return false
	}
	for _, cc := range h["Cache-Control"] {
		if containsFold(cc, "no-transform") {
			return false
		}
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n < w.opts.Min {
			return false
		}
	}
	return true
}

func (w *Writer) Write(p []byte) (int, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		return w.enc.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps the writer's sendfile(2) for answers left alone (PHP's
// static files).
func (w *Writer) ReadFrom(src io.Reader) (int64, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		return io.Copy(w.enc, src)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// Flush pushes out what the compressor holds, then flushes below: a
// streamed answer still streams (each flush ends a deflate or zstd block,
// at a few bytes' cost).
func (w *Writer) Flush() {
	if w.enc != nil {
		w.enc.Flush()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides ReadFrom, so io.Copy does not come back to it.
type writerOnly struct{ io.Writer }

// Compressible reports whether answers of the Content-Type ct are worth
// compressing: text (but event streams), JSON, JavaScript, XML, SVG and
// their +json/+xml kin, WebAssembly and a few font and data formats that
// are not compressed already. It does not allocate.
func Compressible(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	if len(mt) > 5 && strings.EqualFold(mt[:5], "text/") {
		return !strings.EqualFold(mt, "text/event-stream")
	}
	if hasSuffixFold(mt, "+json") || hasSuffixFold(mt, "+xml") {
		return true // application/ld+json, image/svg+xml, application/atom+xml
	}
	for _, t := range compressibleTypes {
		if strings.EqualFold(mt, t) {
			return true
		}
	}
	return false
}

var compressibleTypes = []string{
	"application/json", "application/javascript", "application/x-javascript", "application/ecmascript",
	"application/xml", "application/x-ndjson", "application/wasm", "application/graphql",
	"application/x-yaml", "application/yaml", "application/toml", "application/xhtml",
	"application/vnd.ms-fontobject", "font/ttf", "font/otf", "application/x-font-ttf",
	"image/x-icon", "image/bmp",
}

func hasSuffixFold(s, suf string) bool {
	return len(s) >= len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf)
}

// containsFold reports whether s holds sub, ASCII case folded.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
