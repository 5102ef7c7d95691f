package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/runners/pool"
)

func TestBufferBody(t *testing.T) {
	big := strings.Repeat("b", smallBody+1)
	tests := []struct {
		name     string
		body     string
		length   int64 // -1: unknown (chunked)
		buffered bool
		wantErr  bool
	}{
		{"small", "hello", 5, true, false},
		{"exactly the limit", big[:smallBody], smallBody, true, false},
		{"over the limit", big, int64(len(big)), false, false},
		{"unknown length", "hello", -1, false, false},
		{"client stops short", "hel", 5, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			release, err := bufferBody(r)
			defer release()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			bb, ok := r.Body.(*bufferedBody)
			if ok != tc.buffered {
				t.Fatalf("buffered %v, want %v", ok, tc.buffered)
			}
			if ok && string(bb.Bytes()) != tc.body {
				t.Errorf("Bytes() = %d bytes, want the %d of the body", len(bb.Bytes()), len(tc.body))
			}
			if got, _ := io.ReadAll(r.Body); !tc.wantErr && string(got) != tc.body {
				t.Errorf("reading the body gave %d bytes, want %d", len(got), len(tc.body))
			}
		})
	}
}

// TestSlowUploadHoldsNoRunner: a client trickling a small body waits in
// the gateway, not on the app's only runner slot.
func TestSlowUploadHoldsNoRunner(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(b))
		return err
	}
	p := pool.New(pool.Options{Name: "one", QueueSize: 10}, &fakeWorker{serve: app, done: make(chan struct{})}, log)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	g := &Gateway{log: log}
	g.routes.Store(&table{routes: []route{{name: "one", mount: "/app", pool: p, serve: p.Serve}}})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	slow, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /app/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	time.Sleep(50 * time.Millisecond) // the gateway is now reading the body

	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(srv.URL + "/app/other")
	if err != nil {
		t.Fatalf("a request behind a slow upload: %v (the upload holds the runner?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a request behind a slow upload: %d", resp.StatusCode)
	}

	io.WriteString(slow, "defghij")
	slow.SetReadDeadline(time.Now().Add(2 * time.Second))
	up, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Body.Close()
	if b, _ := io.ReadAll(up.Body); up.StatusCode != 200 || string(b) != "10" {
		t.Errorf("slow upload answered %d %q, want 200 \"10\"", up.StatusCode, b)
	}
}
