package cgireq

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// sink records what reached the peer and how many flushes pushed it.
type sink struct {
	bytes.Buffer
	flushes int
}

func (s *sink) Flush() error { s.flushes++; return nil }

func TestResponseWriter(t *testing.T) {
	big := strings.Repeat("z", preSize+1)
	tests := []struct {
		name    string
		head    Head
		method  string
		handler func(w http.ResponseWriter)
		want    string
	}{
		{"CGI 404 short body gets Content-Length", CGIHead, "GET", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(404)
			w.Write([]byte("nope"))
		}, "Status: 404 Not Found\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nnope"},
		{"HTTP head, sniffed type", HTTPHead, "GET", func(w http.ResponseWriter) {
			w.Write([]byte("<html>hi"))
		}, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html>hi"},
		{"no body at all", CGIHead, "GET", func(w http.ResponseWriter) {},
			"Status: 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"204 gets no Content-Length", HTTPHead, "GET", func(w http.ResponseWriter) { w.WriteHeader(204) },
			"HTTP/1.1 204 No Content\r\n\r\n"},
		{"unknown code", CGIHead, "GET", func(w http.ResponseWriter) { w.WriteHeader(299) },
			"Status: 299 status code 299\r\nContent-Length: 0\r\n\r\n"},
		{"1xx dropped", CGIHead, "GET", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) },
			"Status: 201 Created\r\nContent-Length: 0\r\n\r\n"},
		{"flushed: no Content-Length", CGIHead, "GET", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: 1\n\n"))
			w.(http.Flusher).Flush()
			w.Write([]byte("data: 2\n\n"))
		}, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n"},
		{"big body streams without Content-Length", HTTPHead, "GET", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "x/y")
			w.Write([]byte(big))
		}, "HTTP/1.1 200 OK\r\nContent-Type: x/y\r\n\r\n" + big},
		{"hop-by-hop, Status and trailers never sent", CGIHead, "GET", func(w http.ResponseWriter) {
			h := w.Header()
			h.Set("Status", "500 Lies")
			h.Set("Transfer-Encoding", "chunked")
			h.Set("Connection", "close")
			h.Set("Trailer", "X-T")
			h.Set(http.TrailerPrefix+"X-T", "v")
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("X-Evil", "a\r\nInjected: 1")
			w.WriteHeader(200)
		}, "Status: 200 OK\r\nContent-Length: 0\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Evil: a  Injected: 1\r\n\r\n"},
		{"HEAD keeps the length, drops the body", CGIHead, "HEAD", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("12345"))
		}, "Status: 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"},
		{"HEAD with nothing written", CGIHead, "HEAD", func(w http.ResponseWriter) {},
			"Status: 200 OK\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sink
			r, _ := http.NewRequest(tc.method, "/", nil)
			w := NewResponseWriter(&s, r, tc.head)
			tc.handler(w)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tc.want {
				t.Fatalf("wrote\n%q\nwant\n%q", trunc(got), trunc(tc.want))
			}
		})
	}
}

func trunc(s string) string { return s[:min(len(s), 200)] }

func TestResponseWriterErrors(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	var s sink
	w := NewResponseWriter(&s, r, CGIHead)
	w.Header().Set("Content-Length", "3")
	if _, err := w.Write([]byte("abcd")); !errors.Is(err, http.ErrContentLength) {
		t.Errorf("overlong write: %v", err)
	}
	w.Write([]byte("ab"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "2 of the 3") {
		t.Errorf("short body not reported: %v", err)
	}

	w = NewResponseWriter(&s, r, CGIHead)
	w.WriteHeader(304)
	if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Errorf("304 body: %v", err)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("WriteHeader(42) did not panic")
			}
		}()
		NewResponseWriter(&s, r, CGIHead).WriteHeader(42)
	}()

	s = sink{}
	w = NewResponseWriter(&s, r, CGIHead)
	w.Write([]byte("x"))
	w.Flush()
	if s.flushes != 1 || !strings.HasSuffix(s.String(), "\r\n\r\nx") {
		t.Errorf("Flush: %d flushes, %q", s.flushes, s.String())
	}
}
