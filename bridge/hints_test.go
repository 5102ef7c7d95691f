package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/proto/bridgepb"
)

// interimRecorder records each 1xx head with the fields it carried, as a
// front end would have sent them.
type interimRecorder struct {
	*httptest.ResponseRecorder
	interim []http.Header
	codes   []int
}

func (w *interimRecorder) WriteHeader(code int) {
	if code < 200 {
		w.codes = append(w.codes, code)
		w.interim = append(w.interim, w.Header().Clone())
		return
	}
	w.ResponseRecorder.WriteHeader(code)
}

func hintsFrame(t *testing.T, pairs ...string) []byte {
	t.Helper()
	b, err := AppendMessage(nil, EarlyHints, &bridgepb.EarlyHints{Headers: bs(pairs...)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEarlyHints: EARLY_HINTS before the head is a 103 carrying those
// fields alone (hop-by-hop and framing fields dropped), the final head
// keeps its own; an HTTP/1.0 client gets none, and hints after the head
// are dropped without harm.
func TestEarlyHints(t *testing.T) {
	links := []string{"link", "</a.css>; rel=preload", "link", "</b.js>; rel=preload"}
	final := answer(t, 200, []string{"Content-Type", "text/plain"}, []string{"ok"}, "")
	head, err := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200, Headers: bs("Content-Type", "text/plain")})
	if err != nil {
		t.Fatal(err)
	}
	rest := final[len(head):]
	for _, tc := range []struct {
		name    string
		proto   int // minor version of HTTP/1
		answer  []byte
		interim []http.Header
	}{
		{"before the head", 1, cat(hintsFrame(t, links...), final),
			[]http.Header{{"Link": {"</a.css>; rel=preload", "</b.js>; rel=preload"}}}},
		{"two of them", 1, cat(hintsFrame(t, "link", "</a>"), hintsFrame(t, "Link", "</b>"), final),
			[]http.Header{{"Link": {"</a>"}}, {"Link": {"</b>"}}}},
		{"framing fields dropped", 1, cat(hintsFrame(t, "link", "</a>", "content-length", "9", "connection", "close"), final),
			[]http.Header{{"Link": {"</a>"}}}},
		{"HTTP/1.0 client", 0, cat(hintsFrame(t, links...), final), nil},
		{"after the head", 1, cat(head, hintsFrame(t, links...), rest), nil},
		{"nothing to hint", 1, cat(hintsFrame(t), final), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.ProtoMinor = tc.proto
			w := &interimRecorder{ResponseRecorder: httptest.NewRecorder()}
			w.Header().Set("X-Gateway", "kept") // a field set before the app answered
			_, err := serveFake(t, w, r, false, func(rd *Reader, c io.Writer) { c.Write(tc.answer) })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(w.interim, tc.interim) {
				t.Errorf("103 heads %v, want %v", w.interim, tc.interim)
			}
			for _, c := range w.codes {
				if c != http.StatusEarlyHints {
					t.Errorf("interim status %d", c)
				}
			}
			got := w.Result()
			if got.StatusCode != 200 || w.Body.String() != "ok" || got.Header.Get("X-Gateway") != "kept" ||
				got.Header.Get("Content-Type") != "text/plain" || got.Header["Link"] != nil {
				t.Errorf("final answer %d %q %v", got.StatusCode, w.Body.String(), got.Header)
			}
		})
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// serveFake runs one exchange against a fake runner: run gets the
// runner's ends after the request's REQUEST_END was read.
func serveFake(t *testing.T, w http.ResponseWriter, r *http.Request, notify bool, run func(rd *Reader, c io.Writer)) (Result, error) {
	t.Helper()
	gwSide, runnerSide, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer gwSide.Close()
	defer runnerSide.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := NewReader(bufio.NewReader(runnerSide))
		for {
			typ, n, err := rd.Header()
			if err != nil || rd.Discard(n) != nil {
				return
			}
			if typ == RequestEnd {
				run(rd, runnerSide)
				return
			}
		}
	}()
	head := BeginHead(nil)
	cgi.Build(&head, r, cgi.Mount{})
	s := NewSlot(gwSide, gwSide)
	s.NotifyGone = notify
	res, err := s.Exchange(w, r, head.Finish("http", ""), nil)
	gwSide.Close()
	<-done
	return res, err
}

// failingWriter is a client that left: every body write fails.
type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestClientGoneBeforeAnswer: a client that leaves before the app said
// anything (a long poll) is heard of too, though the slot's send waits for
// the answer (internal/sendwait): the watch starts before it.
func TestClientGoneBeforeAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	got := make(chan Type, 1)
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	res, err := serveFake(t, httptest.NewRecorder(), r, true, func(rd *Reader, c io.Writer) {
		frames := make(chan Type, 1)
		go func() {
			typ, _, err := rd.Header()
			if err == nil {
				frames <- typ
			}
			close(frames)
		}()
		select {
		case typ := <-frames:
			got <- typ
		case <-time.After(5 * time.Second):
		}
		c.Write(AppendHeader(nil, ResponseEnd, 0))
	})
	if err != nil || res.HeadSent {
		t.Fatalf("%+v %v", res, err)
	}
	select {
	case typ := <-got:
		if typ != ClientGone {
			t.Fatalf("runner got frame %v", typ)
		}
	default:
		t.Fatal("the runner never heard the client left")
	}
}

// TestClientGone: a runner that asked for it hears CLIENT_GONE once the
// request's context ends or a write to the client fails, while it still
// answers; it then ends its answer and the exchange returns cleanly. A
// runner that did not ask never gets it.
func TestClientGone(t *testing.T) {
	head, err := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	head = AppendFrame(head, ResponseBody, []byte("part"))
	for _, tc := range []struct {
		name     string
		notify   bool
		cancel   bool // end the request's context after the first part
		failing  bool // the client's writes fail
		wantGone bool
	}{
		{"context ends", true, true, false, true},
		{"write fails", true, false, true, true},
		{"not asked for", false, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
			var w http.ResponseWriter = httptest.NewRecorder()
			if tc.failing {
				w = failingWriter{httptest.NewRecorder()}
			}
			gone := make(chan Type, 1)
			_, err := serveFake(t, w, r, tc.notify, func(rd *Reader, c io.Writer) {
				c.Write(head)
				if tc.cancel {
					cancel()
				}
				// Stream "forever": a part every 20 ms until told, at
				// most 2 s (then the test fails on the answer).
				frames := make(chan Type, 1)
				go func() {
					typ, n, err := rd.Header()
					if err == nil {
						rd.Discard(n)
						frames <- typ
					}
					close(frames)
				}()
				quiet, end := time.Now().Add(300*time.Millisecond), time.Now().Add(2*time.Second)
			stream:
				for time.Now().Before(end) {
					select {
					case typ, ok := <-frames:
						if ok {
							gone <- typ
						}
						break stream
					case <-time.After(20 * time.Millisecond):
					}
					if !tc.wantGone && time.Now().After(quiet) {
						break // 300 ms without a frame: none comes
					}
					c.Write(AppendFrame(nil, ResponseBody, []byte("part")))
				}
				c.Write(AppendHeader(nil, ResponseEnd, 0))
			})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case typ := <-gone:
				if !tc.wantGone || typ != ClientGone {
					t.Fatalf("runner got frame %v, want gone=%v", typ, tc.wantGone)
				}
			default:
				if tc.wantGone {
					t.Fatal("the runner never heard the client left")
				}
			}
		})
	}
}
