package goplugin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/pool"
)

// replay plays a plugin's response messages, then err (io.EOF: complete).
type replay struct {
	msgs []*pluginpb.Response
	err  error
}

func (s *replay) Recv() (*pluginpb.Response, error) {
	if len(s.msgs) == 0 {
		return nil, s.err
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

func head(status int32, kv ...string) *pluginpb.ResponseHead {
	h := &pluginpb.ResponseHead{Status: status}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Headers = append(h.Headers, &pluginpb.Header{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return h
}

// headsWriter records each status written with the header map at the time.
type headsWriter struct {
	*httptest.ResponseRecorder
	heads []string
}

func (w *headsWriter) WriteHeader(code int) {
	w.heads = append(w.heads, http.StatusText(code)+" "+w.Header().Get("Link")+"|"+w.Header().Get("X-Final"))
	w.ResponseRecorder.WriteHeader(code)
}

func TestCopyResponse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		msgs     []*pluginpb.Response
		end      error
		protocol bool // a violation: the worker counts as gone
		check    func(t *testing.T, w *headsWriter)
	}{
		{name: "head, body, trailers", msgs: []*pluginpb.Response{
			{Head: head(200, "X-Final", "1", "x-dup", "a", "X-Dup", "b"), Body: []byte("he")},
			{Body: []byte("llo"), Flush: true},
			{Trailers: []*pluginpb.Header{{Name: []byte("x-sum"), Value: []byte("9")}}},
		}, end: io.EOF, check: func(t *testing.T, w *headsWriter) {
			if w.Body.String() != "hello" || !w.Flushed || len(w.Header().Values("X-Dup")) != 2 {
				t.Errorf("body %q flushed %v header %v", w.Body, w.Flushed, w.Header())
			}
			if got := w.Header().Get(http.TrailerPrefix + "X-Sum"); got != "9" {
				t.Errorf("trailer %q", got)
			}
		}},
		{name: "1xx keeps its fields out of the final head", msgs: []*pluginpb.Response{
			{Head: head(103, "Link", "</a.css>")},
			{Head: head(200, "X-Final", "1")},
		}, end: io.EOF, check: func(t *testing.T, w *headsWriter) {
			if len(w.heads) != 2 || w.heads[0] != "Early Hints </a.css>|" || w.heads[1] != "OK |1" {
				t.Errorf("heads %q", w.heads)
			}
		}},
		{name: "ends without a head", end: io.EOF, protocol: true},
		{name: "body before head", msgs: []*pluginpb.Response{{Body: []byte("x")}}, end: io.EOF, protocol: true},
		{name: "two final heads", msgs: []*pluginpb.Response{{Head: head(200)}, {Head: head(201)}}, end: io.EOF, protocol: true},
		{name: "bad status", msgs: []*pluginpb.Response{{Head: head(42)}}, end: io.EOF, protocol: true},
		// Only an upgrade request whose connection gw offered may be
		// hijacked (raw.go), and only before a final head.
		{name: "hijack without an offer", msgs: []*pluginpb.Response{{Hijacked: true}}, end: io.EOF, protocol: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &headsWriter{ResponseRecorder: httptest.NewRecorder()}
			err := copyResponse(w, &replay{msgs: tc.msgs, err: tc.end}, "GET", nil)
			if tc.protocol {
				r := httptest.NewRequest("GET", "/", nil)
				if !errors.Is(err, errProtocol) || !errors.Is(classify(context.Background(), r, err), pool.ErrWorkerGone) {
					t.Fatalf("error %v: want a protocol violation that retires the worker", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, w)
		})
	}
}

// TestCopyResponseFraming: a plugin's response is held to the rules every
// runner's is (internal/framing). Before, a NUL in a header value and a 101
// went to the client as sent, and a body past its Content-Length was
// dropped whole by net/http without a word.
func TestCopyResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		msgs    []*pluginpb.Response
		want    string // body the client got
		wantErr string // an *AppError saying this; "" for none
		sent    bool   // a final head went out
	}{
		{"NUL in a value", "GET", []*pluginpb.Response{{Head: head(200, "X-A", "a\x00b")}}, "", "NUL, CR or LF", false},
		{"NUL in a 103", "GET", []*pluginpb.Response{{Head: head(103, "Link", "a\x00")}, {Head: head(200)}}, "", "NUL, CR or LF", false},
		{"LF in a name", "GET", []*pluginpb.Response{{Head: head(200, "X-A\nB", "1")}}, "", "invalid response header name", false},
		{"NUL in a trailer", "GET", []*pluginpb.Response{{Head: head(200), Body: []byte("x"),
			Trailers: []*pluginpb.Header{{Name: []byte("X-T"), Value: []byte("\x00")}}}}, "x", "trailer", true},
		{"101", "GET", []*pluginpb.Response{{Head: head(101, "Upgrade", "websocket")}}, "", "final status", false},
		{"long", "GET", []*pluginpb.Response{{Head: head(200, "Content-Length", "3"), Body: []byte("hello")}}, "hel", "longer than its Content-Length", true},
		{"short", "GET", []*pluginpb.Response{{Head: head(200, "Content-Length", "9"), Body: []byte("hello")}}, "hello", "shorter than its Content-Length", true},
		{"HEAD", "HEAD", []*pluginpb.Response{{Head: head(200, "Content-Length", "9"), Body: []byte("hello")}}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &headsWriter{ResponseRecorder: httptest.NewRecorder()}
			err := copyResponse(w, &replay{msgs: tc.msgs, err: io.EOF}, tc.method, nil)
			var ae *AppError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (!errors.As(err, &ae) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want an app error saying %q", err, tc.wantErr)
			}
			if err != nil {
				r := httptest.NewRequest("GET", "/", nil)
				if got := classify(context.Background(), r, err); !errors.As(got, &ae) {
					t.Errorf("classified as %v, want the app error (the plugin is fine)", got)
				}
			}
			if sent := w.Code != 200 || len(w.heads) > 0; sent != tc.sent {
				t.Errorf("final head sent: %v, want %v (heads %q)", sent, tc.sent, w.heads)
			}
			if got := w.Body.String(); got != tc.want {
				t.Errorf("client got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	gone := status.Error(codes.Unavailable, "error reading from server: EOF")
	if err := classify(context.Background(), r, gone); !errors.Is(err, pool.ErrWorkerGone) {
		t.Errorf("Unavailable: %v", err)
	}
	var ae *AppError
	if err := classify(context.Background(), r, status.Error(codes.Aborted, "handler panicked: x")); !errors.As(err, &ae) {
		t.Errorf("Aborted: %v", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&BodyError{Err: io.ErrUnexpectedEOF})
	var be *BodyError
	if err := classify(ctx, r, status.Error(codes.Canceled, "canceled")); !errors.As(err, &be) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body failure: %v", err)
	}
	if err := classify(context.Background(), r, &writeError{io.ErrClosedPipe}); errors.Is(err, pool.ErrWorkerGone) {
		t.Errorf("a client write failure retired the worker: %v", err)
	}
}
