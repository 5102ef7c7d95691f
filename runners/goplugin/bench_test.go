package goplugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeHello is one GET through a plugin process and back, without
// an HTTP server around it: the host's share of the cost, plus the
// plugin's on the same CPUs.
func BenchmarkServeHello(b *testing.B) {
	log, _ := newLog()
	l := &Launcher{App: "bench", Path: examplePlugin, Slots: 32, SockDir: b.TempDir(), Log: log}
	w, err := l.Launch(context.Background(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Kill()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/", nil)
		for pb.Next() {
			tw := &discardWriter{h: http.Header{}}
			if err := w.Serve(0, tw, req); err != nil || tw.code != 200 {
				b.Errorf("%v %d", err, tw.code)
				return
			}
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
