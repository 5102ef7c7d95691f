package bridge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/proto/bridgepb"
)

// BenchmarkRequestHead builds the REQUEST_HEAD of a typical browser GET.
func BenchmarkRequestHead(b *testing.B) {
	r := httptest.NewRequest("GET", "/blog/post/42?ref=home", nil)
	for k, v := range map[string]string{"User-Agent": "Mozilla/5.0", "Accept": "text/html", "Accept-Language": "en",
		"Accept-Encoding": "gzip, br", "Cookie": "session=abc; theme=dark", "Referer": "http://example.com/"} {
		r.Header.Set(k, v)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		h := BeginHead(buf[:0])
		cgi.Build(&h, r, cgi.Mount{ScriptName: "/blog"})
		buf = h.Finish("http", "")
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeResponseHead decodes a small response head.
func BenchmarkDecodeResponseHead(b *testing.B) {
	frame, _ := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200,
		Headers: bs("Content-Type", "text/html; charset=utf-8", "Content-Length", "13", "Set-Cookie", "a=1")})
	payload := frame[HeaderSize:]
	b.ReportAllocs()
	for b.Loop() {
		DecodeResponseHead(payload, func(name, value []byte) {})
	}
}

// BenchmarkExchange runs whole exchanges over a socketpair against an
// in-process runner that answers every head with a canned response: the
// gateway side of the bridge, syscalls included.
func BenchmarkExchange(b *testing.B) {
	gwSide, runnerSide := net.Pipe()
	if c1, c2, err := unixPair(); err == nil {
		gwSide, runnerSide = c1, c2
	}
	defer gwSide.Close()
	answer, _ := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200, Headers: bs("Content-Type", "text/plain")})
	answer = AppendFrame(answer, ResponseBody, []byte("Hello, World!"))
	answer = AppendHeader(answer, ResponseEnd, 0)
	// The fake runner: read frames until REQUEST_END, answer, repeat.
	go func() {
		rd := NewReader(bufio.NewReader(runnerSide))
		for {
			t, n, err := rd.Header()
			if err != nil {
				return
			}
			if rd.Discard(n) != nil {
				return
			}
			if t == RequestEnd {
				if _, err := runnerSide.Write(answer); err != nil {
					return
				}
			}
		}
	}()
	r := httptest.NewRequest("GET", "/", nil)
	head := BeginHead(nil)
	cgi.Build(&head, r, cgi.Mount{})
	frame := head.Finish("http", "")
	w := &discardWriter{h: http.Header{}}
	// notify: a runner that takes CLIENT_GONE (ASGI), each request with
	// its own cancellable context, as gateway/h1 gives it.
	for _, notify := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "notify"}[notify], func(b *testing.B) {
			s := NewSlot(gwSide, gwSide)
			s.NotifyGone = notify
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				req := r
				var cancel context.CancelCauseFunc
				if notify {
					var ctx context.Context
					ctx, cancel = context.WithCancelCause(context.Background())
					req = r.WithContext(ctx)
				}
				if _, err := s.Exchange(w, req, frame, nil); err != nil {
					b.Fatal(err)
				}
				if cancel != nil {
					cancel(nil)
				}
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (d *discardWriter) WriteHeader(int)             {}

func unixPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("unix", "@gw-bench-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	c1, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	c2, err := ln.Accept()
	return c1, c2, err
}
