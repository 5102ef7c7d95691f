package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/fcgi"
)

func TestKeepConnTwoRequests(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	for id := uint16(1); id <= 2; id++ {
		cl.get(id, true, fmt.Sprintf("/r%d?q=1", id))
		rep := cl.read(id)
		if rep.end != (fcgi.EndRequest{}) {
			t.Fatalf("END_REQUEST %+v", rep.end)
		}
		resp, body := rep.response(t)
		if want := fmt.Sprintf(`GET /r%d?q=1 host=example.com body="" err=<nil>`, id); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	if cl.closed(100 * time.Millisecond) {
		t.Fatal("kept-alive connection closed")
	}
}

func TestNoKeepConnCloses(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	cl.get(1, false, "/once")
	cl.read(1)
	if !cl.closed(2 * time.Second) {
		t.Fatal("connection still open after END_REQUEST without FCGI_KEEP_CONN")
	}
}

func TestStatusAndHeaders(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Params(r.Context())
		w.Header().Set("X-Doc-Root", p["DOCUMENT_ROOT"])
		w.Header().Set("X-Scheme", map[bool]string{true: "https", false: "http"}[r.TLS != nil])
		w.Header().Set("X-Remote", r.RemoteAddr)
		w.Header().Set("X-Proxy", r.Header.Get("Proxy"))
		w.WriteHeader(404)
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/missing", "HTTPS", "on", "HTTP_PROXY", "http://evil")
	resp, _ := cl.read(1).response(t)
	if resp.StatusCode != 404 || resp.Header.Get("X-Doc-Root") != "/srv" || resp.Header.Get("X-Scheme") != "https" ||
		resp.Header.Get("X-Remote") != "127.0.0.1:40000" || resp.Header.Get("X-Proxy") != "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestBodyStreamedAndHashed(t *testing.T) {
	const size = 10 << 20
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x %v", n, h.Sum(nil), err)
	}))
	cl := ts.dial(t)
	payload := bytes.Repeat([]byte("gw streams bodies"), size/17+1)[:size]
	sum := sha256.Sum256(payload)
	go func() { // ends when the body is sent or the connection closes
		cl.c.Write(begin(1, true))
		cl.c.Write(params(1, nginxGET("/up", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", fmt.Sprint(size))...))
		cl.c.Write(stdin(1, payload))
	}()
	_, body := cl.read(1).response(t)
	if want := fmt.Sprintf("%d %s <nil>", size, hex.EncodeToString(sum[:])); body != want {
		t.Fatalf("got %q, want %q", body, want)
	}
}

// TestBodyBackpressure: a handler that does not read leaves the upload in
// the socket, not in gw's memory; the client's writes stall.
func TestBodyBackpressure(t *testing.T) {
	release := make(chan struct{})
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	}))
	cl := ts.dial(t)
	const size = 256 << 20
	cl.send(begin(1, true), params(1, nginxGET("/big", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", fmt.Sprint(size))...))
	record := fcgi.AppendRecord(nil, fcgi.TypeStdin, 1, make([]byte, 32<<10))
	cl.c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	sent := 0
	for sent < size {
		if _, err := cl.c.Write(record); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		sent += 32 << 10
	}
	if sent >= size {
		t.Fatal("256 MiB accepted while the handler read nothing: the body is being buffered")
	}
	t.Logf("writes stalled after %d KiB", sent>>10)
	close(release)
	cl.c.SetWriteDeadline(time.Time{})
	go func() { // ends when the rest is sent or the connection closes
		for ; sent < size; sent += 32 << 10 {
			if _, err := cl.c.Write(record); err != nil {
				return
			}
		}
		cl.c.Write(fcgi.AppendRecord(nil, fcgi.TypeStdin, 1, nil))
	}()
	if _, body := cl.read(1).response(t); body != fmt.Sprintf("%d <nil>", size) {
		t.Fatalf("got %q", body)
	}
}

func TestBodyFraming(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	tests := []struct {
		name string
		cl   string
		body []byte
		want string
	}{
		{"empty CONTENT_LENGTH, empty STDIN (trap 3)", "", nil, `body="" err=<nil>`},
		{"exact", "5", []byte("hello"), `body="hello" err=<nil>`},
		{"short: 5 announced, 2 sent", "5", []byte("he"), `body="he" err=request body shorter than its CONTENT_LENGTH: unexpected EOF`},
		{"no CONTENT_LENGTH, STDIN anyway", "", []byte("self-delimited"), `body="self-delimited" err=<nil>`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uint16(i + 1)
			cl.send(begin(id, true), params(id, nginxGET("/b", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", tc.cl)...), stdin(id, tc.body))
			if _, body := cl.read(id).response(t); !strings.HasSuffix(body, tc.want) {
				t.Fatalf("got %q, want suffix %q", body, tc.want)
			}
		})
	}
}

func TestLargeResponseSplit(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // 200 000 bytes
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	cl := ts.dial(t)
	cl.get(1, true, "/big")
	rep := cl.read(1)
	if rep.records < 4 || rep.largest > fcgi.MaxContent {
		t.Errorf("%d STDOUT records, largest %d", rep.records, rep.largest)
	}
	if _, body := rep.response(t); body != string(big) {
		t.Fatalf("body %d bytes, want %d", len(body), len(big))
	}
}

func TestFlush(t *testing.T) {
	next := make(chan struct{})
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part one;")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		<-next // the client must see part one before part two exists
		io.WriteString(w, "part two")
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/flush")
	h, content, err := cl.rd.Next()
	if err != nil || h.Type != fcgi.TypeStdout || !bytes.HasSuffix(content, []byte("\r\n\r\npart one;")) {
		t.Fatalf("first record %s %q, %v", h.Type, content, err)
	}
	close(next)
	rep := cl.read(1)
	if string(rep.stdout) != "part two" {
		t.Fatalf("rest %q", rep.stdout)
	}
}

func TestGetValues(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	q, _ := fcgi.AppendGetValues(nil, fcgi.MaxConns, fcgi.MaxReqs, fcgi.MpxsConns, "FCGI_UNKNOWN")
	cl.send(q)
	h, content, err := cl.rd.Next()
	if err != nil || h.Type != fcgi.TypeGetValuesResult || h.ID != 0 {
		t.Fatalf("%+v, %v", h, err)
	}
	vals, err := fcgi.ParseGetValuesResult(content)
	if err != nil || len(vals) != 3 || vals[fcgi.MpxsConns] != "0" || vals[fcgi.MaxConns] != "1024" || vals[fcgi.MaxReqs] != "1024" {
		t.Fatalf("GET_VALUES_RESULT %v, %v", vals, err)
	}
	// php-cgi says nothing to an unknown management type; the spec wants
	// UNKNOWN_TYPE (§4.2).
	cl.send(fcgi.AppendRecord(nil, 12, 0, nil))
	h, content, err = cl.rd.Next()
	if err != nil || h.Type != fcgi.TypeUnknownType {
		t.Fatalf("%+v, %v", h, err)
	}
	if ut, _ := fcgi.ParseUnknownType(content); ut != 12 {
		t.Fatalf("UNKNOWN_TYPE for %d", ut)
	}
	cl.get(1, true, "/after")
	if cl.read(1).end.ProtocolStatus != fcgi.StatusRequestComplete {
		t.Fatal("request after management records failed")
	}
}

func TestCantMultiplex(t *testing.T) {
	release := make(chan struct{})
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "one")
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/one")
	cl.get(2, true, "/two") // its PARAMS and STDIN must be ignored
	h, content, err := cl.rd.Next()
	if err != nil || h.Type != fcgi.TypeEndRequest || h.ID != 2 {
		t.Fatalf("%+v, %v", h, err)
	}
	if end, _ := fcgi.ParseEndRequest(content); end.ProtocolStatus != fcgi.StatusCantMultiplex {
		t.Fatalf("END_REQUEST %+v", end)
	}
	close(release)
	if _, body := cl.read(1).response(t); body != "one" {
		t.Fatalf("request 1 got %q", body)
	}
}

func TestAbortRequest(t *testing.T) {
	cause := make(chan error, 1)
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cause <- context.Cause(r.Context())
		case <-time.After(5 * time.Second):
			cause <- nil
		}
		w.WriteHeader(499)
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/slow")
	time.Sleep(20 * time.Millisecond)
	cl.send(fcgi.AppendRecord(nil, fcgi.TypeAbortRequest, 1, nil))
	if err := <-cause; err != ErrRequestAborted {
		t.Fatalf("cause %v", err)
	}
	if rep := cl.read(1); rep.end.ProtocolStatus != fcgi.StatusRequestComplete {
		t.Fatalf("END_REQUEST %+v", rep.end)
	}
}

func TestWebServerGone(t *testing.T) {
	cause := make(chan error, 1)
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/slow")
	time.Sleep(20 * time.Millisecond)
	cl.c.Close()
	select {
	case err := <-cause:
		if err != ErrConnClosed {
			t.Fatalf("cause %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler never saw the connection close")
	}
	waitLog(t, ts, "web server closed the connection mid-request")
}

func waitLog(t *testing.T, ts *testServer, want string) {
	t.Helper()
	for range 200 {
		if strings.Contains(ts.log.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("log lacks %q", want)
}

// TestNoKeepConnUnreadBody: without FCGI_KEEP_CONN the server closes, but
// only after half-closing and reading the rest of STDIN, so the response
// is never lost to a reset.
func TestNoKeepConnUnreadBody(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	cl := ts.dial(t)
	const size = 4 << 20
	go func() { // ends when the body is sent or the connection closes
		cl.c.Write(begin(1, false))
		cl.c.Write(params(1, nginxGET("/up", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", fmt.Sprint(size))...))
		cl.c.Write(stdin(1, make([]byte, size)))
	}()
	if resp, _ := cl.read(1).response(t); resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !cl.closed(3 * time.Second) {
		t.Fatal("connection not closed")
	}
}

// TestHalfCloseStillAnswered: EOF mid-request cancels the context (as
// net/http does), but a peer that only half-closed still gets the answer.
func TestHalfCloseStillAnswered(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		io.WriteString(w, context.Cause(r.Context()).Error())
	}))
	cl := ts.dial(t)
	cl.get(1, true, "/half")
	cl.c.(interface{ CloseWrite() error }).CloseWrite()
	if _, body := cl.read(1).response(t); body != ErrConnClosed.Error() {
		t.Fatalf("got %q", body)
	}
}
