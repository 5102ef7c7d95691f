package compress

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var text = strings.Repeat(`{"id":12345,"name":"gw","tags":["a","b"],"ok":true}`+"\n", 100)

// answer runs an app answer through New's Writer for a request with ae
// and returns what the client got.
func answer(t *testing.T, method, ae string, o *Options, code int, head map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/", nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	rec := httptest.NewRecorder()
	var w http.ResponseWriter = rec
	cw := New(rec, req, o)
	if cw != nil {
		w = cw
	}
	for k, v := range head {
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	io.WriteString(w, body)
	if cw != nil {
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return rec
}

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return string(out)
}

func TestWriter(t *testing.T) {
	on := &Options{Min: 1024}
	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, ae string
		o                *Options
		code             int
		head             map[string]string
		body, enc        string
	}{
		{"zstd preferred", "GET", "gzip, deflate, br, zstd", on, 200, json, text, "zstd"},
		{"gzip", "GET", "gzip", on, 200, json, text, "gzip"},
		{"q-values", "GET", "zstd;q=0.2, gzip;q=0.9", on, 200, json, text, "gzip"},
		{"no accept-encoding", "GET", "", on, 200, json, text, ""},
		{"only br", "GET", "br", on, 200, json, text, ""},
		{"off", "GET", "gzip", nil, 200, json, text, ""},
		{"html", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/html; charset=utf-8"}, text, "gzip"},
		{"svg", "GET", "gzip", on, 200, map[string]string{"Content-Type": "image/svg+xml"}, text, "gzip"},
		{"png", "GET", "gzip", on, 200, map[string]string{"Content-Type": "image/png"}, text, ""},
		{"no type", "GET", "gzip", on, 200, nil, text, ""},
		{"event stream", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/event-stream"}, text, ""},
		{"small", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/plain", "Content-Length": "5"}, "hello", ""},
		{"large declared", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/plain", "Content-Length": "5100"}, text, "gzip"},
		{"unknown length small", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/plain"}, "hello", "gzip"},
		{"encoded already", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}, text, "br"},
		{"no-transform", "GET", "gzip", on, 200, map[string]string{"Content-Type": "text/plain", "Cache-Control": "public, No-Transform"}, text, ""},
		{"range", "GET", "gzip", on, 206, map[string]string{"Content-Type": "text/plain", "Content-Range": "bytes 0-4/10"}, text, ""},
		{"404 page", "GET", "gzip", on, 404, json, text, "gzip"},
		{"HEAD", "HEAD", "gzip", on, 200, json, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := answer(t, tc.method, tc.ae, tc.o, tc.code, tc.head, tc.body)
			h := rec.Header()
			if got := h.Get("Content-Encoding"); got != tc.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.enc)
			}
			compressed := tc.enc == "gzip" || tc.enc == "zstd"
			if compressed {
				if got := decode(t, tc.enc, rec.Body.Bytes()); got != tc.body {
					t.Fatalf("decoded body differs: %d bytes, want %d", len(got), len(tc.body))
				}
				if h.Get("Vary") != "Accept-Encoding" || h.Get("Content-Length") != "" {
					t.Errorf("Vary %q Content-Length %q", h.Get("Vary"), h.Get("Content-Length"))
				}
				if len(tc.body) > 1000 && rec.Body.Len() > len(tc.body)/4 {
					t.Errorf("%d bytes compressed to %d", len(tc.body), rec.Body.Len())
				}
			} else if rec.Body.String() != tc.body || h.Get("Vary") != "" {
				t.Errorf("left alone, but body %d bytes (want %d), Vary %q", rec.Body.Len(), len(tc.body), h.Get("Vary"))
			}
		})
	}
}

func TestETagWeakened(t *testing.T) {
	rec := answer(t, "GET", "gzip", &Options{}, 200, map[string]string{"Content-Type": "text/plain", "ETag": `"abc"`}, text)
	if got := rec.Header().Get("ETag"); got != `W/"abc"` {
		t.Errorf("ETag %q, want W/\"abc\"", got)
	}
	rec = answer(t, "GET", "gzip", &Options{}, 200, map[string]string{"Content-Type": "text/plain", "ETag": `W/"abc"`}, text)
	if got := rec.Header().Get("ETag"); got != `W/"abc"` {
		t.Errorf("weak ETag became %q", got)
	}
}

// TestFlushStreams: what the app flushed is decodable at once, before the
// answer ends.
func TestFlushStreams(t *testing.T) {
	for _, enc := range []string{"gzip", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", enc)
			rec := httptest.NewRecorder()
			cw := New(rec, req, &Options{Min: 1024})
			cw.Header().Set("Content-Type", "text/plain")
			cw.WriteHeader(200)
			io.WriteString(cw, "first event\n")
			cw.Flush()
			if !rec.Flushed {
				t.Fatal("Flush did not reach the client side")
			}
			var r io.Reader
			if enc == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			} else {
				zr, _ := zstd.NewReader(bytes.NewReader(rec.Body.Bytes()))
				defer zr.Close()
				r = zr
			}
			buf := make([]byte, 12)
			if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "first event\n" {
				t.Fatalf("after Flush the client decodes %q, %v", buf, err)
			}
			cw.Close()
		})
	}
}

// TestNoAllocWhenNotCompressing: a request that accepts nothing gw makes
// gets no Writer; one whose answer is not compressible costs no
// allocation (the Writer is pooled).
func TestNoAllocWhenNotCompressing(t *testing.T) {
	o := &Options{Min: 1024}
	plain := httptest.NewRequest("GET", "/", nil)
	gz := httptest.NewRequest("GET", "/", nil)
	gz.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "image/png")
	if n := testing.AllocsPerRun(100, func() {
		if New(rec, plain, o) != nil {
			t.Fatal("a Writer without Accept-Encoding")
		}
	}); n != 0 {
		t.Errorf("no Accept-Encoding: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		cw := New(rec, gz, o)
		cw.headed = false
		cw.WriteHeader(200)
		cw.Close()
	}); n != 0 {
		t.Errorf("image/png: %v allocs", n)
	}
}

func TestCompressible(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html; charset=utf-8": true, "TEXT/CSS": true, "application/json": true, "application/ld+json": true,
		"image/svg+xml": true, "text/javascript": true, "application/javascript; charset=utf-8": true,
		"application/wasm": true, "image/png": false, "application/octet-stream": false, "application/zip": false,
		"text/event-stream": false, "": false, "video/mp4": false, "font/woff2": false,
	} {
		if got := Compressible(ct); got != want {
			t.Errorf("Compressible(%q) = %v, want %v", ct, got, want)
		}
	}
}
