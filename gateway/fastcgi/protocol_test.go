package fastcgi

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/fcgi"
)

func TestUnknownRole(t *testing.T) {
	ts := start(t, echo)
	for _, keep := range []bool{true, false} {
		cl := ts.dial(t)
		cl.send(fcgi.AppendBeginRequest(nil, 1, fcgi.RoleAuthorizer, keep))
		if rep := cl.read(1); rep.end.ProtocolStatus != fcgi.StatusUnknownRole {
			t.Fatalf("END_REQUEST %+v", rep.end)
		}
		if closed := cl.closed(300 * time.Millisecond); closed == keep {
			t.Errorf("keep=%v: closed=%v", keep, closed)
		}
	}
	cl := ts.dial(t)
	cl.send(fcgi.AppendBeginRequest(nil, 1, fcgi.RoleFilter, true))
	cl.read(1)
	cl.get(2, true, "/after") // the connection still serves responders
	if _, body := cl.read(2).response(t); !strings.HasPrefix(body, "GET /after") {
		t.Fatalf("got %q", body)
	}
}

func TestParamsOverMaxParams(t *testing.T) {
	ts := start(t, echo, func(s *Server) { s.MaxParams = 1024 })
	cl := ts.dial(t)
	big := fcgi.AppendParam(nil, "HTTP_X_BIG", strings.Repeat("b", 2000))
	cl.send(begin(1, true),
		fcgi.AppendRecord(nil, fcgi.TypeParams, 1, big[:1000]),
		fcgi.AppendRecord(nil, fcgi.TypeParams, 1, big[1000:]))
	if !cl.closed(2 * time.Second) {
		t.Fatal("connection not closed")
	}
	waitLog(t, ts, "over MaxParams (1024 bytes)")
}

// TestParamsSplitMidPair: the spec allows a pair to straddle records
// (only php-cgi fails on it, trap 5); gw as a server must accept it.
func TestParamsSplitMidPair(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	p := params(1, nginxGET("/split")...)
	var stream []byte
	rd := recordsOf(t, p)
	for _, c := range rd {
		stream = append(stream, c...)
	}
	cl.send(begin(1, true))
	for i := 0; i < len(stream); i += 7 { // 7-byte records, unpadded
		cl.send(fcgi.Header{Version: 1, Type: fcgi.TypeParams, ID: 1, ContentLength: uint16(min(7, len(stream)-i))}.Append(nil), stream[i:min(i+7, len(stream))])
	}
	cl.send(fcgi.AppendRecord(nil, fcgi.TypeParams, 1, nil), stdin(1, nil))
	if _, body := cl.read(1).response(t); !strings.HasPrefix(body, "GET /split") {
		t.Fatalf("got %q", body)
	}
}

func recordsOf(t *testing.T, raw []byte) [][]byte {
	var out [][]byte
	for len(raw) > 0 {
		h, err := fcgi.ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw[8:8+int(h.ContentLength)])
		raw = raw[8+int(h.ContentLength)+int(h.PaddingLength):]
	}
	return out
}

// TestRecordsByteByByte: headers split across reads, padding 0-255 and
// junk in reserved bytes are all fine.
func TestRecordsByteByByte(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	var raw []byte
	raw = append(raw, begin(1, true)...)
	pairs := recordsOf(t, params(1, nginxGET("/bytes")...))[0]
	raw = append(raw, fcgi.Header{Version: 1, Type: fcgi.TypeParams, ID: 1, ContentLength: uint16(len(pairs)), PaddingLength: 255, Reserved: 'x'}.Append(nil)...)
	raw = append(raw, pairs...)
	raw = append(raw, make([]byte, 255)...)
	raw = append(raw, fcgi.Header{Version: 1, Type: fcgi.TypeParams, ID: 1, Reserved: 0xff}.Append(nil)...)
	raw = append(raw, stdin(1, nil)...)
	for i := range raw {
		cl.send(raw[i : i+1])
	}
	if _, body := cl.read(1).response(t); !strings.HasPrefix(body, "GET /bytes") {
		t.Fatalf("got %q", body)
	}
}

func TestProtocolViolationsClose(t *testing.T) {
	tests := []struct {
		name string
		raw  [][]byte
		log  string
	}{
		{"version 2", [][]byte{{2, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0}}, "record version 2"},
		{"STDIN before PARAMS end", [][]byte{begin(1, true), stdin(1, nil)}, "before its empty PARAMS record"},
		{"short BEGIN_REQUEST", [][]byte{fcgi.AppendRecord(nil, fcgi.TypeBeginRequest, 1, []byte{0, 1})}, "BEGIN_REQUEST body is 2 bytes"},
		{"BEGIN_REQUEST twice", [][]byte{begin(1, true), begin(1, true)}, "already in flight"},
		{"malformed pairs", [][]byte{begin(1, true), fcgi.AppendRecord(nil, fcgi.TypeParams, 1, []byte{5, 5, 'a'}),
			fcgi.AppendRecord(nil, fcgi.TypeParams, 1, nil)}, "overruns"},
		{"STDOUT from the web server", [][]byte{begin(1, true), fcgi.AppendRecord(nil, fcgi.TypeStdout, 1, []byte("x"))}, "STDOUT record from the web server"},
		{"record cut mid-request", [][]byte{begin(1, true), {1, 4, 0, 1, 0, 9}}, "web server closed the connection mid-request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen bool
			ts := start(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen = true }))
			cl := ts.dial(t)
			cl.send(tc.raw...)
			if tc.name == "record cut mid-request" {
				cl.c.(*net.UnixConn).CloseWrite()
			}
			if !cl.closed(2 * time.Second) {
				t.Fatal("connection not closed")
			}
			waitLog(t, ts, tc.log)
			if seen {
				t.Error("the handler ran")
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := start(t, echo, func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	cl := ts.dial(t)
	cl.get(1, true, "/first")
	cl.read(1)
	t0 := time.Now()
	if !cl.closed(3 * time.Second) {
		t.Fatal("idle kept-alive connection not closed")
	}
	if d := time.Since(t0); d < 80*time.Millisecond {
		t.Errorf("closed after %v, before IdleTimeout", d)
	}
}

func TestAbortHandlerCuts(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/abort")
	for {
		h, _, err := cl.rd.Next()
		if err != nil {
			break // closed with no END_REQUEST: nginx sees a truncated response
		}
		if h.Type == fcgi.TypeEndRequest {
			t.Fatal("END_REQUEST after ErrAbortHandler")
		}
	}
	if strings.Contains(ts.log.String(), "panicked") {
		t.Error("ErrAbortHandler logged as a panic")
	}
}

func TestPanicLogged(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	cl := ts.dial(t)
	cl.get(1, true, "/panic")
	if !cl.closed(2 * time.Second) {
		t.Fatal("connection survived a panic")
	}
	waitLog(t, ts, "handler panicked")
}

func TestShutdown(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			close(inside)
			<-release
		}
		io.WriteString(w, "finished")
	})}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	ts := &testServer{srv: s, addr: addr}

	idle := ts.dial(t) // kept alive after one request
	idle.get(1, true, "/warm")
	idle.read(1)
	busy := ts.dial(t)
	busy.get(1, true, "/busy")
	<-inside

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if !idle.closed(3 * time.Second) {
		t.Fatal("idle kept-alive connection not closed by Shutdown")
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if _, body := busy.read(1).response(t); body != "finished" {
		t.Fatalf("in-flight request got %q", body)
	}
	// FCGI_KEEP_CONN or not, a shutting-down server closes after it.
	if !busy.closed(3 * time.Second) {
		t.Fatal("connection kept after Shutdown")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if c, err := net.Dial("unix", addr); err == nil {
		c.Close()
		t.Fatal("still accepting after Shutdown")
	}
}
