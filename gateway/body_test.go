package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/spool"
	"github.com/gwhq/gw/runners/pool"
)

// testPolicy is the default body policy with max and mem bytes.
func testPolicy(t testing.TB, max, mem int64) bodyPolicy {
	t.Helper()
	p, err := newBodyPolicy(config.Limits{
		MaxBody: config.Size(max), BodyBufferSize: config.Size(mem), BodyTimeout: time.Minute,
		LingeringTime: 30 * time.Second, LingeringTimeout: 5 * time.Second,
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBufferBody(t *testing.T) {
	const mem = 16
	big := strings.Repeat("b", mem+1)
	tests := []struct {
		name      string
		body      string
		length    int64 // -1: unknown (chunked)
		streaming bool  // request_buffering: false
		inline    bool  // in memory, sent with the head
		spooled   bool  // buffered at all
		wantErr   bool
	}{
		{"small", "hello", 5, false, true, true, false},
		{"exactly the memory limit", big[:mem], mem, false, true, true, false},
		{"over the memory limit: a file", big, int64(len(big)), false, false, true, false},
		{"chunked, small", "hello", -1, false, true, true, false},
		{"chunked, large", big, -1, false, false, true, false},
		{"streaming, small", "hello", 5, true, true, true, false},
		{"streaming, large", big, int64(len(big)), true, false, false, false},
		{"streaming, chunked", "hello", -1, true, false, false, false},
		{"client stops short", "hel", 5, false, false, false, true},
	}
	p := testPolicy(t, 1<<20, mem)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			if tc.length < 0 {
				r.TransferEncoding = []string{"chunked"}
				r.Header.Del("Content-Length")
			}
			b := newReqBody(httptest.NewRecorder(), r, &p)
			release, err := b.buffer(r, &p, tc.streaming, false)
			defer release()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			_, inline := r.Body.(interface{ Bytes() []byte })
			_, spooled := r.Body.(spool.Body)
			if inline != tc.inline || spooled != tc.spooled {
				t.Fatalf("inline %v spooled %v, want %v %v", inline, spooled, tc.inline, tc.spooled)
			}
			if spooled && (r.ContentLength != int64(len(tc.body)) || tc.length < 0 && r.Header.Get("Content-Length") != fmt.Sprint(len(tc.body))) {
				t.Errorf("buffered body: ContentLength %d, header %q; want %d", r.ContentLength, r.Header.Get("Content-Length"), len(tc.body))
			}
			if got, _ := io.ReadAll(r.Body); string(got) != tc.body {
				t.Errorf("reading the body gave %d bytes, want %d", len(got), len(tc.body))
			}
		})
	}
}

// TestBodyStatus pins what fail answers for each way a body read fails.
func TestBodyStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{io.ErrUnexpectedEOF, 0}, // client left mid-body: nobody to answer
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, 0},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, 408},
		{&spool.Error{Err: syscall.ENOSPC}, 500},
		{errors.New("invalid byte in chunk length"), 400},
		{errors.New("http chunk length too large"), 400},
	}
	for i, tc := range tests {
		if got, _ := bodyStatus(tc.err); got != tc.want {
			t.Errorf("%d: bodyStatus(%v) = %d, want %d", i, tc.err, got, tc.want)
		}
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
	g.routes.Store(&table{body: testPolicy(t, 1<<20, 64<<10), routes: []route{{name: "one", mount: "/app", pool: p, serve: p.Serve}}})
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
